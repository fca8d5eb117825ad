"""Klos & Memmesheimer (2025): smooth exact gradient descent with pseudospikes.

Klos & Memmesheimer's QIF and theta neurons spike when the voltage blows up to
`+inf`; in the phase form (`spikeode.QIF`, `spikeode.ThetaNeuron`) spikes move
continuously with the weights and can only enter or leave a trial at its end. With
`spikeode.Pseudodynamics(T, drive)` every neuron keeps running after the trial end `T`
with a suprathreshold drive, so a spike that leaves the trial becomes a pseudospike
and a silent neuron still has (pseudo)spike times with gradients. Three experiments:

(a) one QIF neuron, 20 inputs spiking once each at random times, initially silent,
    learns the target spike times 2.5 and 7.5 in a trial of length 10 by gradient
    descent on `losses.first_spikes_mse` (its first two (pseudo)spikes) plus a
    penalty pushing surplus spikes out of the trial; both spikes enter the trial as
    pseudospikes crossing its end and then move to the targets;
(b) a recurrent network of 10 QIF neurons driven by 5 Poisson inputs learns the
    spike trains of a teacher network of the same architecture with other weights
    (targets: the teacher's first k (pseudo)spikes per neuron);
(c) an initially silent network of theta neurons with two hidden layers
    (65-H-H-10, 8x8 digits latency-coded) is trained with and without pseudospikes;
    without them the loss only sees the trial's spikes, and in a silent network its
    gradient is exactly zero.

The layered network of (c) is simulated as one population with block-triangular
recurrent weights (input -> hidden 1 -> hidden 2 -> output, no other connections):
the same dynamics as `nn.Sequential` of three `nn.SpikingLayer`s (every spike of a
layer reaches the next one at once), but a single event loop, whose gradient compiles
2.5 times faster (6.7 against 16.8 s for a batch of 16, docs/architecture.md). Float64
throughout.

    python examples/klos_memmesheimer.py           # full run (< 10 minutes), writes
                                                   # docs/figures/klos_memmesheimer.png/.json
    python examples/klos_memmesheimer.py --fast    # tiny versions (tests)

`run(fast=...)` returns the numbers (tests/reproductions/test_klos_memmesheimer.py uses `--fast`).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax

jax.config.update("jax_enable_x64", True)  # before any array is created

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jaxtyping import Array, Float  # noqa: E402

import spikeode as so  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def take(x, idx):
    return jax.tree.map(lambda a: a[idx], x)


def surplus_penalty(
    train: so.SpikeTrain, k: int, trial_end: float
) -> Float[Array, "*batch"]:
    """`sum (T - t)^2 / num_neurons` over every neuron's spikes after its first `k` that
    lie inside the trial (`t < T`): continuous where such a spike leaves the trial,
    and pushes surplus spikes out of it (the first `k` are scored by
    `losses.first_spikes_mse`).

    **Arguments:**

    - `train`: the (pseudo)spikes, possibly batched.
    - `k`: number of target spikes per neuron.
    - `trial_end`: the trial end `T`.

    **Returns:** the penalty, one value per sample.
    """
    if not isinstance(k, int) or k < 0:
        raise ValueError(f"surplus_penalty: `k` must be a non-negative int, got {k!r}.")
    per = train.to_per_neuron(train.capacity)[..., k:]
    inside = per < trial_end
    safe = jnp.where(inside, per, trial_end)  # no inf in the unselected branch
    return jnp.sum((trial_end - safe) ** 2, axis=(-2, -1)) / train.num_neurons


def valid_times(train):
    t = np.asarray(train.times)
    return t[np.asarray(train.valid)]


# ---------------------------------------------------------------------------------
# (a) one neuron, target spike times 2.5 and 7.5
def single_neuron(fast: bool, steps: int | None = None, lr: float | None = None):
    T, t1 = 10.0, 18.0
    target = jnp.array([[2.5, 7.5]])
    rng = np.random.default_rng(0)
    n_in = 20
    inputs = so.SpikeTrain(
        jnp.asarray(np.sort(rng.uniform(0.0, T, n_in))), jnp.arange(n_in, dtype=jnp.int32), n_in
    )
    w0 = jnp.asarray(rng.normal(0.0, 0.2, (n_in, 1)))
    neuron = so.QIF(1, tau_mem=1.0)
    pseudo = so.Pseudodynamics(T, drive=1.0)
    capacity = 24

    def loss_fn(w):
        sim = so.simulate(neuron, t1, inputs, w, max_spikes=capacity, pseudodynamics=pseudo)
        mse = so.losses.first_spikes_mse(sim.spikes, target)
        return mse + surplus_penalty(sim.spikes, 2, T), sim.spikes.times

    steps = steps or (300 if fast else 1500)  # a step takes milliseconds
    lr = lr or (0.05 if fast else 0.01)
    vg = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    opt = optax.adam(lr)
    w, state = w0, opt.init(w0)
    losses, traj = [], []
    start = time.perf_counter()
    jax.block_until_ready(vg(w))
    compile_s = time.perf_counter() - start
    for _ in range(steps + 1):
        (loss, times), g = vg(w)
        losses.append(float(loss))
        traj.append(np.asarray(times))
        # (Optax's Adam mixes its int32 step count with float parameters: standard
        # promotion also where a caller runs JAX with strict promotion, as the tests do)
        with jax.numpy_dtype_promotion("standard"):
            upd, state = opt.update(g, state, w)
            w = optax.apply_updates(w, upd)
    traj = np.stack(traj)  # (steps + 1, capacity), +inf padded
    in_trial = np.where(traj < T, traj, np.inf)
    counts = np.sum(np.isfinite(in_trial), axis=1)
    final = np.sort(in_trial[-1][np.isfinite(in_trial[-1])])
    entered = [int(np.argmax(counts >= j)) if np.any(counts >= j) else None for j in (1, 2)]
    return {
        "setup": f"1 QIF neuron (tau_mem 1, tau_syn 0.5), {n_in} inputs spiking once at "
        f"uniform random times in [0, {T}], initial weights N(0, 0.2^2) (silent); "
        f"pseudodynamics drive 1 from T = {T} to {t1}; Adam lr {lr}",
        "trial_end": T,
        "targets": [2.5, 7.5],
        "steps": steps,
        "loss": losses,
        "initial_spikes_in_trial": int(counts[0]),
        "initial_pseudospikes": [float(t) for t in np.sort(traj[0][np.isfinite(traj[0])])[:2]],
        "step_spike_entered": {"first": entered[0], "second": entered[1]},
        "final_spikes_in_trial": [float(t) for t in final],
        "final_max_abs_error": float(np.max(np.abs(final - np.array([2.5, 7.5]))))
        if len(final) == 2
        else float("inf"),
        "compile_s": compile_s,
        "time_s": time.perf_counter() - start,
        "_trajectory": traj,
    }


# ---------------------------------------------------------------------------------
# (b) recurrent network of 10 QIF neurons learning a teacher's spike trains
def recurrent(fast: bool, steps: int | None = None, lr: float = 0.02):
    T, t1, n, n_in = 10.0, 22.0, 10, 5
    rng = np.random.default_rng(1)
    # Poisson inputs: rate 0.3 per unit time per input in [0, T]
    ev = [(t, i) for i in range(n_in) for t in np.cumsum(rng.exponential(1 / 0.3, 10)) if t < T]
    ev.sort()
    inputs = so.SpikeTrain(
        jnp.asarray([t for t, _ in ev]), jnp.asarray([i for _, i in ev], jnp.int32), n_in
    )
    no_self = 1.0 - jnp.eye(n)
    neuron = so.QIF(n, tau_mem=1.0)
    # drive 2 (period 2.4): a neuron silent in the trial has its k pseudospikes by t1
    pseudo = so.Pseudodynamics(T, drive=2.0)
    capacity = 160

    def simulate(params):
        w_in, w_rec = params
        return so.simulate(
            neuron, t1, inputs, w_in, w_rec=w_rec * no_self, max_spikes=capacity,
            pseudodynamics=pseudo,
        )  # fmt: skip

    teacher = (
        jnp.asarray(rng.normal(2.0, 1.5, (n_in, n))),
        jnp.asarray(rng.normal(0.0, 1.0, (n, n))),
    )
    k = 4  # target (pseudo)spikes per neuron: each neuron's trial spikes, then pseudospikes

    def loss_fn(params, target):
        sim = simulate(params)
        loss = so.losses.first_spikes_mse(sim.spikes, target)
        return loss + surplus_penalty(sim.spikes, k, T), sim.spikes

    vg = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    start = time.perf_counter()
    # the teacher's spikes, through the same compiled function (the target is a dummy)
    (_, t_spikes), _ = vg(teacher, jnp.zeros((n, k)))
    compile_s = time.perf_counter() - start
    t_times = np.asarray(t_spikes.to_per_neuron(capacity))
    t_counts = np.sum(t_times < T, axis=1)
    if t_counts.max() >= k:
        raise RuntimeError(f"the teacher fires up to {t_counts.max()} times; raise k")
    target = jnp.asarray(t_times[:, :k])

    student = (
        jnp.asarray(rng.normal(0.5, 0.5, (n_in, n))),
        jnp.asarray(rng.normal(0.0, 0.3, (n, n))),
    )
    steps = steps or (25 if fast else 600)
    opt = optax.adam(lr)
    params, state = student, opt.init(student)
    losses, first, last = [], None, None
    for _ in range(steps + 1):
        (loss, spikes), g = vg(params, target)
        losses.append(float(loss))
        first = spikes if first is None else first
        last = spikes
        # (Optax's Adam mixes its int32 step count with float parameters: standard
        # promotion also where a caller runs JAX with strict promotion, as the tests do)
        with jax.numpy_dtype_promotion("standard"):
            upd, state = opt.update(g, state, params)
            params = optax.apply_updates(params, upd)

    def trial_lists(train):
        return [[float(t) for t in ts if t < T] for ts in train.to_lists()]

    def count_match(train):
        c = np.array([len(ts) for ts in trial_lists(train)])
        return int(np.sum(c == t_counts))

    return {
        "setup": f"{n} recurrent QIF neurons (tau_mem 1, no self-connections), {n_in} "
        f"Poisson inputs (rate 0.3), trial T = {T}, pseudodynamics drive 2 to {t1}; "
        f"teacher weights w_in ~ N(2, 1.5^2), w_rec ~ N(0, 1); student w_in ~ N(0.5, "
        f"0.5^2), w_rec ~ N(0, 0.3^2); targets: the teacher's first k = {k} "
        f"(pseudo)spikes per neuron; Adam lr {lr}",
        "trial_end": T,
        "k": k,
        "num_input_spikes": len(ev),
        "target_spikes_in_trial": int(t_counts.sum()),
        "steps": steps,
        "loss": losses,
        "neurons_with_target_count": {"initial": count_match(first), "final": count_match(last)},
        "final_max_abs_error_in_trial": float(
            max(
                (abs(a - b) for s, t in zip(trial_lists(last), trial_lists(t_spikes))
                 if len(s) == len(t) for a, b in zip(s, t)),
                default=float("nan"),
            )
        ),
        "compile_s": compile_s,
        "time_s": time.perf_counter() - start,
        "_rasters": {
            "input": trial_lists(inputs),
            "target": trial_lists(t_spikes),
            "before": trial_lists(first),
            "after": trial_lists(last),
        },
    }


# ---------------------------------------------------------------------------------
# (c) an initially silent deep network of theta neurons on the 8x8 digits
class DeepNet(eqx.Module):
    """Weights of a layered theta-neuron network `sizes[0] - ... - sizes[-1]`."""

    weights: tuple[Float[Array, "a b"], ...]


def deep_block_weights(net: DeepNet, sizes):
    """`(w_in, w_rec)` of the whole network as one population: `w_in` reaches the
    first hidden layer, `w_rec` is block-triangular (layer l -> layer l + 1 only)."""
    n = sum(sizes[1:])
    offs = np.cumsum([0] + list(sizes[1:]))
    w_in = jnp.zeros((sizes[0], n), net.weights[0].dtype).at[:, : sizes[1]].set(net.weights[0])
    w_rec = jnp.zeros((n, n), net.weights[0].dtype)
    for layer, w in enumerate(net.weights[1:]):
        w_rec = w_rec.at[offs[layer] : offs[layer + 1], offs[layer + 1] : offs[layer + 2]].set(w)
    return w_in, w_rec


# Pseudodynamics drives per layer: the earlier a layer's pseudospikes (larger drive:
# from rest the first one comes 0.94, 1.78 and 4.7 after T), the more they move the
# next layer's, so the output's pseudospike times depend on every layer's weights.
DEEP = dict(T=4.0, t1=11.0, drive=(4.0, 1.5, 0.5), bias=0.0, softmax_scale=0.5,
            t_correct=2.5, alpha=0.1, t_max=2.0)  # fmt: skip


def make_deep(sizes, capacity):
    n = sum(sizes[1:])
    neuron = so.ThetaNeuron(n, tau=1.0, bias=DEEP["bias"])
    drive = jnp.concatenate([jnp.full((m,), d) for m, d in zip(sizes[1:], DEEP["drive"])])
    pseudo = so.Pseudodynamics(DEEP["T"], drive=drive)
    T = DEEP["T"]

    def forward(net, x):
        w_in, w_rec = deep_block_weights(net, sizes)
        sim = so.simulate(
            neuron, DEEP["t1"], x, w_in, w_rec=w_rec, max_spikes=capacity,
            pseudodynamics=pseudo,
        )  # fmt: skip
        t_first = so.losses.first_spike_times(sim.spikes, t_silent=DEEP["t1"])
        counts = jnp.sum(
            jax.nn.one_hot(sim.spikes.neurons, n) * (sim.spikes.times < T)[:, None].astype(float),
            axis=0,
        )
        return t_first[-sizes[-1] :], counts

    def loss_fn(net, x, y, use_pseudo):
        t_out, counts = jax.vmap(forward, (None, 0))(net, x)
        # Without pseudospikes the loss sees only the trial's spikes: an output that
        # does not fire in the trial counts as firing at T, with no gradient. (The
        # trial's spikes do not depend on what happens after it, so this is the
        # network without pseudodynamics.)
        t_out = jnp.where(use_pseudo | (t_out < T), t_out, T)
        logits = -t_out / DEEP["softmax_scale"]
        ce = -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1)[:, 0]
        t_c = jnp.take_along_axis(t_out, y[:, None], 1)[:, 0]
        late = DEEP["alpha"] * jax.nn.relu(t_c - DEEP["t_correct"]) ** 2
        return jnp.mean(ce + late), (t_out, counts)

    return forward, loss_fn


def deep_init(key, sizes, stds):
    """Gaussian weights, mean 0, standard deviation `stds[l]` for layer `l`."""
    keys = jax.random.split(key, len(sizes) - 1)
    return DeepNet(
        tuple(std * jax.random.normal(k, (a, b))
              for k, a, b, std in zip(keys, sizes[:-1], sizes[1:], stds))  # fmt: skip
    )


def deep(fast: bool, hidden=None, epochs=None, batch_size=None, lr=1e-2, stds=(0.05, 0.1, 0.1)):
    hidden = hidden or (6 if fast else 32)
    batch_size = batch_size or (8 if fast else 16)
    epochs = epochs or (1 if fast else 2)
    sizes = (65, hidden, hidden, 10)
    capacity = 6 * sum(sizes[1:])
    split = lambda s: so.data.digits_spikes(s, 0.0, DEEP["t_max"], bias_time=0.0)
    x_tr, y_tr = split("train")
    x_te, y_te = split("test")
    if fast:
        x_tr, y_tr = take(x_tr, slice(0, 4 * batch_size)), y_tr[: 4 * batch_size]
        x_te, y_te = take(x_te, slice(0, 32)), y_te[:32]
    _, loss_fn = make_deep(sizes, capacity)
    vg = eqx.filter_jit(eqx.filter_value_and_grad(loss_fn, has_aux=True))
    net0 = deep_init(jax.random.PRNGKey(3), sizes, stds)
    T = DEEP["T"]
    offs = np.cumsum([0] + list(sizes[1:]))

    def evaluate(net, x, y):
        """Test accuracy from the trial's spikes (first output spike in the trial;
        no output spike = wrong) and from first (pseudo)spikes; spikes per layer."""
        preds_trial, preds_pseudo, counts = [], [], []
        m = len(y)
        for s in range(0, m, batch_size):
            # chunks of the training batch size (the last one padded): no recompilation
            idx = np.arange(s, s + batch_size) % m
            _, (t_out, c) = vg(net, take(x, idx), y[idx], jnp.asarray(True))[0]
            t_out, c = np.asarray(t_out)[: m - s], np.asarray(c)[: m - s]
            fired = np.min(t_out, axis=1) < T
            preds_trial.append(np.where(fired, np.argmin(t_out, 1), -1))
            preds_pseudo.append(np.argmin(t_out, 1))
            counts.append(np.asarray(c))
        c = np.concatenate(counts)
        y = np.asarray(y)
        return {
            "acc_trial": float(np.mean(np.concatenate(preds_trial) == y)),
            "acc_pseudo": float(np.mean(np.concatenate(preds_pseudo) == y)),
            "spikes_per_sample": [
                float(c[:, offs[i] : offs[i + 1]].sum(1).mean()) for i in range(3)
            ],
        }

    # gradients at initialisation, with and without pseudospikes
    xb, yb = take(x_tr, slice(0, batch_size)), y_tr[:batch_size]
    init_grad = {}
    for name, flag in (("pseudo", True), ("no_pseudo", False)):
        (loss, _), g = vg(net0, xb, yb, jnp.asarray(flag))
        init_grad[name] = {"loss": float(loss),
                           "max_abs_grad_per_layer": [float(jnp.max(jnp.abs(w)))
                                                      for w in g.weights]}  # fmt: skip
    init_eval_train = evaluate(net0, x_tr, y_tr)
    init_eval_test = evaluate(net0, x_te, y_te)
    n = len(y_tr)
    rng = np.random.default_rng(0)
    orders = [rng.permutation(n) for _ in range(epochs)]
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(lr))
    runs = {}
    for name, flag in (("pseudo", True), ("no_pseudo", False)):
        net, state = net0, opt.init(net0)
        hist = {"loss": [], "test": [init_eval_test], "epoch_time_s": [],
                "first_batch_loss": [float(vg(net, xb, yb, jnp.asarray(flag))[0][0])]}  # fmt: skip
        for e in range(epochs):
            start = time.perf_counter()
            losses = []
            for b in range(n // batch_size):
                idx = orders[e][b * batch_size : (b + 1) * batch_size]
                (loss, _), g = vg(net, take(x_tr, idx), y_tr[idx], jnp.asarray(flag))
                losses.append(float(loss))
                # (Optax's Adam mixes its int32 step count with float parameters: standard
                # promotion also where a caller runs JAX with strict promotion, as the tests do)
                with jax.numpy_dtype_promotion("standard"):
                    upd, state = opt.update(g, state, net)
                    net = eqx.apply_updates(net, upd)
                if not fast and b % 10 == 0:
                    print(f"(c) {name} epoch {e + 1} step {b}: loss {losses[-1]:.4f} "
                          f"({time.perf_counter() - start:.0f} s)", flush=True)
            hist["epoch_time_s"].append(time.perf_counter() - start)
            hist["loss"].append(losses)
            hist["test"].append(evaluate(net, x_te, y_te))
            hist["first_batch_loss"].append(float(vg(net, xb, yb, jnp.asarray(flag))[0][0]))
            if not fast:
                print(f"(c) {name} epoch {e + 1}: loss {np.mean(losses):.4f}, test "
                      f"{hist['test'][-1]}, {hist['epoch_time_s'][-1]:.0f} s", flush=True)
        runs[name] = hist
    return {
        "network": f"65-{hidden}-{hidden}-10 theta neurons (tau 1, bias {DEEP['bias']}), "
        f"initial weights N(0, s^2), s = {stds} per layer (layer 1 small enough that no "
        f"neuron fires in the trial); digits latency-coded in [0, {DEEP['t_max']}] + bias "
        f"spike at 0; trial T = {T}, pseudodynamics drives {DEEP['drive']} (hidden 1, "
        f"hidden 2, output) to {DEEP['t1']}",
        "loss": f"cross-entropy of softmax(-t_first / {DEEP['softmax_scale']}) + "
        f"{DEEP['alpha']} relu(t_correct - {DEEP['t_correct']})^2",
        "optimizer": f"adam lr {lr}, clip global norm 1, batch {batch_size}, {epochs} epochs",
        "train_samples": n,
        "test_samples": len(y_te),
        "init_train": init_eval_train,
        "init_grad": init_grad,
        "runs": runs,
        "init_test": init_eval_test,
        "final_test_acc": {k: r["test"][-1]["acc_trial"] for k, r in runs.items()},
    }


# ---------------------------------------------------------------------------------
def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 3, figsize=(14, 7.5))
    a = results["single_neuron"]
    traj, T = a["_trajectory"], a["trial_end"]
    steps = np.repeat(np.arange(traj.shape[0]), traj.shape[1]).reshape(traj.shape)
    fin = np.isfinite(traj)
    inside = fin & (traj < T)
    steps = steps + 1
    ax[0, 0].plot(steps[inside], traj[inside], "k.", ms=1.5, label="spikes")
    ax[0, 0].plot(steps[fin & ~inside], traj[fin & ~inside], ".", color="0.7", ms=1.5,
                  label="pseudospikes")  # fmt: skip
    for tt in a["targets"]:
        ax[0, 0].axhline(tt, color="C1", lw=0.8, ls="--")
    ax[0, 0].axhline(T, color="C3", lw=0.8)
    ax[0, 0].set(title="(a) one QIF neuron: spike times (targets 2.5, 7.5)",
                 xlabel="step + 1", ylabel="t", xscale="log",
                 ylim=(0, traj[fin].max() + 0.5))  # fmt: skip
    ax[0, 0].legend(fontsize=8, loc="upper right", markerscale=6)
    b = results["recurrent"]
    ax[0, 1].semilogy(a["loss"], label="(a) single neuron")
    ax[0, 1].semilogy(b["loss"], label="(b) recurrent, 10 QIF")
    ax[0, 1].set(title="(a), (b) loss", xlabel="step")
    ax[0, 1].legend(fontsize=8)
    r = b["_rasters"]
    for j, key, col, off in (("target", "target", "C1", 0.2), ("before", "before", "0.6", -0.2),
                             ("after", "after", "k", 0.0)):  # fmt: skip
        for i, ts in enumerate(r[key]):
            ax[0, 2].plot(ts, np.full(len(ts), i + off), "|", color=col, ms=7,
                          label=j if i == 0 else None)  # fmt: skip
    ax[0, 2].set(title="(b) raster: target, before, after training", xlabel="t",
                 ylabel="neuron", xlim=(0, b["trial_end"]))  # fmt: skip
    ax[0, 2].legend(fontsize=8, loc="upper right")
    c = results["deep"]
    for name, style in (("pseudo", dict(color="C0")), ("no_pseudo", dict(color="C3"))):
        run = c["runs"][name]
        losses = np.concatenate([np.ravel(x) for x in run["loss"]])
        width = min(20, len(losses))
        smooth = np.convolve(losses, np.ones(width) / width, mode="valid")
        ax[1, 0].plot(np.arange(width, len(losses) + 1), smooth, label=name, **style)
        acc = [100 * t["acc_trial"] for t in run["test"]]
        ax[1, 1].plot(np.arange(len(acc)), acc, "o-", label=name, **style)
        spikes = np.array([t["spikes_per_sample"] for t in run["test"]])
        for layer, ls in zip(range(3), ("-", "--", ":")):
            ax[1, 2].plot(np.arange(len(acc)), spikes[:, layer], ls=ls,
                          label=f"{name}, layer {layer + 1}", **style)  # fmt: skip
    ax[1, 0].set(title=f"(c) {c['network'].split()[0]}: training loss (mean of 20 steps)",
                 xlabel="step")  # fmt: skip
    ax[1, 0].legend(fontsize=8)
    ax[1, 1].axhline(10, color="0.5", lw=0.8, ls=":")
    ax[1, 1].set(title="(c) test accuracy (spikes in the trial)", xlabel="epoch", ylabel="%")
    ax[1, 1].legend(fontsize=8)
    ax[1, 2].set(title="(c) spikes per test sample in the trial", xlabel="epoch")
    ax[1, 1].set_xticks(range(len(acc)))
    ax[1, 2].set_xticks(range(len(acc)))
    ax[1, 2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run(fast=False, deep_epochs=None, deep_hidden=None):
    start = time.perf_counter()
    results = {"fast": fast, "dtype": "float64"}
    results["single_neuron"] = single_neuron(fast)
    results["recurrent"] = recurrent(fast)
    results["deep"] = deep(fast, hidden=deep_hidden, epochs=deep_epochs)
    results["total_time_s"] = time.perf_counter() - start
    return results


def _public(results):
    """The JSON-able part of the results (no trajectories or rasters)."""
    return {
        k: _public(v) if isinstance(v, dict) else v
        for k, v in results.items()
        if not k.startswith("_")
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fast", action="store_true", help="tiny versions of (a), (b), (c)")
    p.add_argument("--deep-epochs", type=int, default=None)
    p.add_argument("--deep-hidden", type=int, default=None)
    p.add_argument("--figure", default=None,
                   help="default docs/figures/klos_memmesheimer.png (not with --fast)")
    p.add_argument("--json", default=None,
                   help="default docs/figures/klos_memmesheimer.json (not with --fast)")
    args = p.parse_args(argv)
    results = run(args.fast, args.deep_epochs, args.deep_hidden)
    figure = args.figure or (
        None if args.fast else str(ROOT / "docs/figures/klos_memmesheimer.png")
    )
    out_json = args.json or (
        None if args.fast else str(ROOT / "docs/figures/klos_memmesheimer.json")
    )
    if figure:
        plot(results, figure)
        print(f"wrote {figure}")
    if out_json:
        pathlib.Path(out_json).write_text(json.dumps(_public(results), indent=1) + "\n")
        print(f"wrote {out_json}")
    a, b, c = results["single_neuron"], results["recurrent"], results["deep"]
    print(f"(a) loss {a['loss'][0]:.3g} -> {a['loss'][-1]:.3g}; spikes entered the trial at "
          f"steps {a['step_spike_entered']}; final spikes {a['final_spikes_in_trial']}")
    print(f"(b) loss {b['loss'][0]:.3g} -> {b['loss'][-1]:.3g}; neurons with the target "
          f"count {b['neurons_with_target_count']}")
    print(f"(c) gradients at init {c['init_grad']}")
    print(f"(c) test accuracy (trial spikes): {c['final_test_acc']}")
    print(f"total {results['total_time_s']:.0f} s")
    return results


if __name__ == "__main__":
    main()

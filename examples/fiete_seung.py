"""Fiete & Seung (2006): node perturbation against exact gradients, on a small recurrent
LIF network.

Fiete & Seung estimate the gradient of a reward with respect to the weights of a
spiking network without differentiating it: the neurons' conductances are perturbed
by noise `xi_i(t)` delivered through "empiric synapses", each synapse keeps an
eligibility `e_ij = integral xi_i(t) s_j(t) dt` (noise of the postsynaptic neuron
times presynaptic activity), and `(R - R_bar) e_ij / sigma^2` estimates the gradient.
`spikeode.baselines.perturbation.network_node_perturbation` implements it for a
spikeode layer: noise channels spike on a grid of `num_bins` times and kick each
neuron's synaptic current by `xi_ki ~ N(0, sigma^2)`; presynaptic spikes are spread
over that grid by linear interpolation.

Task: a recurrent population of 12 LIF neurons (float64, 4 inputs spiking 3 times
each in 80 ms, trial 100 ms, no self-connections) must reproduce the spike trains of
a teacher network of the same architecture with other weights; the loss is the van
Rossum distance (tau 10 ms, window [0, 100 ms]) summed over the 12 neurons. Trained:
`w_in` (4 x 12) and `w_rec` (12 x 12 without the diagonal, which stays at zero):
180 weights.

(1) Cosine similarity between the perturbation estimate and the exact gradient
    (`jax.grad` through spikeode's event loop) at the initial weights, against the
    number of trials (1 .. 4096, median and quartiles over 8 independent repeats),
    for node perturbation (Fiete & Seung) and weight perturbation; and the cosine
    the node-perturbation estimate tends to with infinitely many trials (its
    first-order mean: the exact derivative with respect to the grid kicks, mapped
    through the eligibility), which shows the bias of the grid.
(2) Learning curves from the same initial weights, Adam for both, learning rate
    tuned per method on a small grid (the lowest mean loss over the last 10 steps):
    exact-gradient descent (1000 steps) against node-perturbation learning with
    `TRIALS` noisy trials (+ 1 noise-free trial for the baseline) per step (300
    steps), and against Fiete & Seung's online rule (one noisy trial per step, the
    baseline a running average of the rewards, 9900 steps: the batched run's
    simulation budget); the noise level sigma is tuned too. Loss per step and per
    simulation. A run whose activity runs away (the spike buffer fills) is recorded
    as diverged and left out of the selection.

The full run repeats (1) and (2) for seeds 0, 1, 2: the task (inputs, teacher) is
fixed, a seed sets the student's initial weights and the noise. The learning rates
and sigmas are tuned on seed 0's grid only; seeds 1 and 2 run the selected settings.
Per-seed values, their mean and sample standard deviation (ddof=1) are in `summary`.

    python examples/fiete_seung.py          # full run (3 seeds), writes
                                            # docs/figures/fiete_seung.png and .json
    python examples/fiete_seung.py --fast   # the same network, few trials and steps

`run(fast=...)` returns the numbers (tests/reproductions/test_fiete_seung.py uses `fast=True`).
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
from spikeode.baselines import perturbation as pert  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
N, M, T1 = 12, 4, 0.1  # neurons, inputs, trial end (s)
TAU_VR = 0.01  # van Rossum kernel
MAX_SPIKES = 128
TRIALS = 32  # noisy trials per estimator call (and per learning step)
NUM_BINS = 50  # noise kicks per neuron per trial (every 2 ms)
# (estimator, sigma) pairs of the cosine study. sigma of node perturbation: std of a
# noise kick in units of a weight (weights ~ 2); 0.005 changes no spike count in 512
# trials (linear regime), 0.05 changes a count in ~40 % of the trials.
CURVES_FULL = [("node", 0.005), ("node", 0.05), ("weight", 0.002), ("weight", 0.02)]
CURVES_FAST = [("node", 0.005)]
SIGMAS_LEARN_FULL = [0.005, 0.05]  # node perturbation learning: tuned with the lr
LRS_FULL = [0.01, 0.03, 0.1]
ALPHA = 0.05  # rate of the running reward average of the online rule
LRS_ONLINE = [0.003, 0.01, 0.03]


def make_student(seed=0):
    """The student of `seed` (initial weights from key 2 + seed): the same architecture
    as the teacher (key 1)."""
    return _layer(jax.random.PRNGKey(seed + 2))


def _layer(key):
    neuron = so.LIF(N, tau_mem=20e-3, tau_syn=5e-3, refractory_period=2e-3)
    lay = so.nn.RecurrentLayer(M, N, max_spikes=MAX_SPIKES, neuron=neuron,
                               w_mean=2.0, w_std=1.0, w_rec_std=0.5, key=key)
    return eqx.tree_at(lambda m: m.w_rec, lay, lay.w_rec * (1.0 - jnp.eye(N)))


def make_task(seed=0):
    """Input pattern and teacher (fixed: the same task for every seed), the student of
    `seed` (its initial weights), and the weight filter."""
    rng = np.random.default_rng(0)
    times = np.sort(rng.uniform(0.0, 0.08, (M, 3)), axis=1)
    inputs = so.SpikeTrain.from_per_neuron(times)
    teacher = _layer(jax.random.PRNGKey(1))
    student = make_student(seed)
    target = eqx.filter_jit(lambda lay: lay(inputs, T1).spikes)(teacher)
    only_weights = jax.tree.map(lambda _: False, student)
    only_weights = eqx.tree_at(lambda m: (m.w_in, m.w_rec), only_weights, (True, True))
    return inputs, teacher, student, target, only_weights


def flat(g):
    return jnp.concatenate([g.w_in.ravel(), g.w_rec.ravel()])


def cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


class Task:
    """The jitted pieces, each compiled once (parameters are arguments)."""

    def __init__(self, seed=0):
        self.inputs, self.teacher, student, self.target, filt = make_task(seed)
        self.filter = filt
        self.params0, self.static = eqx.partition(student, filt)
        self.mask = eqx.tree_at(  # keeps the diagonal of w_rec at zero
            lambda p: p.w_rec,
            jax.tree.map(jnp.ones_like, self.params0),
            1.0 - jnp.eye(N),
        )

        def loss_of_sim(sim):
            return so.losses.van_rossum_distance(sim.spikes, self.target, tau=TAU_VR, t1=T1)

        self.loss_of_sim = loss_of_sim

        def loss(params):
            return loss_of_sim(eqx.combine(params, self.static)(self.inputs, T1))

        self.loss = loss
        self.exact = jax.jit(jax.value_and_grad(loss))

        def flat_masked(g):  # (trials, 48 + 144): one row per trial
            g = jax.tree.map(lambda a, m: a * m[None], g, self.mask)  # (trials, ...)
            return jnp.concatenate([g.w_in.reshape(TRIALS, -1), g.w_rec.reshape(TRIALS, -1)], 1)

        @jax.jit
        def node(params, key, sigma):  # per-trial node-perturbation estimates
            layer = eqx.combine(params, self.static)
            loss0, g = pert.network_node_perturbation(
                loss_of_sim, layer, self.inputs, T1, key, sigma=sigma,
                trials=TRIALS, num_bins=NUM_BINS, per_trial=True)
            return loss0, g, flat_masked(g)

        self.node = node

        @jax.jit
        def weight(params, key, sigma):  # per-trial weight-perturbation estimates
            loss0, g = pert.weight_perturbation(loss, params, key, sigma=sigma,
                                                trials=TRIALS, per_trial=True)
            return loss0, g, flat_masked(g)

        self.weight = weight

        @jax.jit
        def online(params, key, lr, sigma, steps_placeholder):
            """Fiete & Seung's online rule: one noisy trial per step, the reward
            baseline a running average `R_bar <- R_bar + ALPHA (R - R_bar)`, Adam.
            Returns the perturbed trial's loss per step and the final parameters."""
            opt = optax.adam(lr)
            r_bar0 = loss(params)

            def step(carry, k):
                params, state, r_bar = carry
                layer = eqx.combine(params, self.static)
                r, g = pert.network_node_perturbation(
                    loss_of_sim, layer, self.inputs, T1, k, sigma=sigma, trials=1,
                    num_bins=NUM_BINS, baseline=r_bar, throw=False)  # a run may diverge
                g = self.masked(g)
                # (Optax's Adam mixes its int32 step count with float parameters: standard
                # promotion also where a caller runs JAX with strict promotion, as the tests do)
                with jax.numpy_dtype_promotion("standard"):
                    upd, state = opt.update(g, state, params)
                    params = optax.apply_updates(params, upd)
                return (params, state, r_bar + ALPHA * (r - r_bar)), r

            keys = jax.random.split(key, steps_placeholder.shape[0])
            (params, _, _), rs = jax.lax.scan(step, (params, opt.init(params), r_bar0), keys)
            return rs, params

        self.online = online

    def use_student(self, seed):
        """Start from the student of `seed` (same task, same compiled functions: the
        parameters are their arguments)."""
        self.params0, static = eqx.partition(make_student(seed), self.filter)
        assert bool(eqx.tree_equal(static, self.static))

    def masked(self, g):
        return jax.tree.map(lambda a, m: a * m, g, self.mask)

    def samples(self, estimator, params, key, n, sigma):
        """`n` (a multiple of TRIALS) independent one-trial estimates, flattened."""
        return np.concatenate([np.asarray(estimator(params, k, sigma)[2])
                               for k in jax.random.split(key, n // TRIALS)])

    def node_limit(self, params):
        """The node-perturbation estimate's first-order mean (infinitely many trials):
        the exact derivative of the loss with respect to the grid kicks at zero noise,
        mapped through the eligibility of the noise-free trial."""
        layer = eqx.combine(params, self.static)
        grid = pert.noise_grid(0.0, T1, NUM_BINS)
        merged = pert._merge_noise_inputs(self.inputs, M, grid)

        def loss_xi(xi):
            w = jnp.concatenate([layer.w_in, xi], axis=0)
            sim = so.simulate(layer.neuron, T1, merged, w, w_rec=layer.w_rec,
                              max_spikes=MAX_SPIKES)
            return self.loss_of_sim(sim), sim.spikes

        g_xi, spikes = jax.grad(loss_xi, has_aux=True)(jnp.zeros((NUM_BINS, N)))
        s_in = pert.spread_on_grid(self.inputs, grid)
        s_rec = pert.spread_on_grid(spikes, grid)
        g = eqx.tree_at(lambda p: (p.w_in, p.w_rec), params, (s_in @ g_xi, s_rec @ g_xi))
        return np.asarray(flat(self.masked(g)))


def cosine_curve(samples, exact, ns, repeats):
    """Cosine of the mean of the first n samples of each of `repeats` disjoint blocks."""
    block = samples.shape[0] // repeats
    cos = np.full((repeats, len(ns)), np.nan)
    for r in range(repeats):
        cums = np.cumsum(samples[r * block:(r + 1) * block], axis=0)
        for j, n in enumerate(ns):
            if n <= block:
                cos[r, j] = cosine(cums[n - 1] / n, exact)
    return cos


def train(task, kind, lr, steps, key, sigma=None):
    """Adam on the weights; returns the loss before each step (and after the last)."""
    opt = optax.adam(lr)
    params = task.params0
    state = opt.init(params)
    losses = []
    for k in jax.random.split(key, steps):
        if kind == "exact":
            loss, g = task.exact(params)
        else:
            loss, g, _ = task.node(params, k, sigma)
            g = jax.tree.map(lambda x: jnp.mean(x, axis=0), g)
        g = task.masked(g)
        losses.append(float(loss))
        # (Optax's Adam mixes its int32 step count with float parameters: standard
        # promotion also where a caller runs JAX with strict promotion, as the tests do)
        with jax.numpy_dtype_promotion("standard"):
            upd, state = opt.update(g, state, params)
            params = optax.apply_updates(params, upd)
    losses.append(float(task.exact(params)[0]))
    return losses


SEEDS = (0, 1, 2)


def steps_below(loss, level):
    """The first step whose loss (before the step) is below `level`, or None."""
    return next((i for i, v in enumerate(loss) if v < level), None)


def run_seed(task, fast, seed, tuned=None):
    """Everything for the student of `seed` (initial weights; and the keys of the
    noise: cosine study 100 + seed, batched learning 7 + seed, online rule 11 + seed).
    `tuned`: `{kind: (lr, sigma)}`, the settings selected on the first seed, run
    alone instead of the grid."""
    t_start = time.time()
    task.use_student(seed)
    res = dict(seed=seed)
    res["teacher_counts"] = np.asarray(task.target.counts()).tolist()

    # (1) cosine vs number of trials -----------------------------------------------
    t = time.time()
    loss0, g_exact = task.exact(task.params0)
    g_exact = np.asarray(flat(task.masked(g_exact)))
    res["initial_loss"] = float(loss0)
    res["time_exact_gradient_compile_s"] = time.time() - t
    t = time.time()
    task.exact(task.params0)[1].w_in.block_until_ready()
    res["time_exact_gradient_s"] = time.time() - t

    repeats = 4 if fast else 8
    max_n = 64 if fast else 4096
    ns = [2**i for i in range(int(np.log2(max_n)) + 1)]
    res["trials"] = ns
    res["repeats"] = repeats
    key = jax.random.PRNGKey(100 + seed)
    res["cosine"] = {}
    for i, (name, sigma) in enumerate(CURVES_FAST if fast else CURVES_FULL):
        est = task.node if name == "node" else task.weight
        t = time.time()
        est(task.params0, key, sigma)[2].block_until_ready()  # compile (once per estimator)
        t_compile = time.time() - t
        t = time.time()
        s = task.samples(est, task.params0, jax.random.fold_in(key, i), max_n * repeats, sigma)
        dt = time.time() - t
        cos = cosine_curve(s, g_exact, ns, repeats)
        m = s.mean(axis=0)  # every sample: bias + the remaining noise
        res["cosine"][f"{name} {sigma:g}"] = dict(
            estimator=name, sigma=sigma,
            median=np.median(cos, axis=0).tolist(),
            q25=np.quantile(cos, 0.25, axis=0).tolist(),
            q75=np.quantile(cos, 0.75, axis=0).tolist(),
            all=cos.tolist(),
            first_call_s=t_compile,
            time_per_trial_ms=1e3 * dt / (max_n * repeats),
            all_samples=dict(n=int(s.shape[0]), cosine=cosine(m, g_exact),
                             norm_ratio=float(np.linalg.norm(m) / np.linalg.norm(g_exact))),
        )
    if not fast:
        lim = task.node_limit(task.params0)
        res["node_infinite_trials_cosine"] = cosine(lim, g_exact)
        res["node_infinite_trials_norm_ratio"] = float(
            np.linalg.norm(lim) / np.linalg.norm(g_exact))

    # (2) learning curves ---------------------------------------------------------
    steps = 15 if fast else 300  # node perturbation, TRIALS + 1 simulations per step
    steps_exact = 15 if fast else 1000
    if tuned is None:
        configs = {"exact": [(lr, None) for lr in ([0.03] if fast else LRS_FULL)],
                   "node": [(lr, sg) for sg in ([0.005] if fast else SIGMAS_LEARN_FULL)
                            for lr in ([0.03] if fast else LRS_FULL)]}
    else:
        configs = {kind: [tuned[kind]] for kind in ("exact", "node")}
    res["learning"] = {"steps": steps, "steps_exact": steps_exact, "runs": {}, "best": {},
                       "tuned_on": "this seed (grid)" if tuned is None else "the first seed"}
    for kind, cfgs in configs.items():
        t = time.time()
        runs = {}
        for lr, sg in cfgs:
            name = f"lr {lr:g}" + ("" if sg is None else f", sigma {sg:g}")
            n_steps = steps_exact if kind == "exact" else steps
            t_run = time.time()
            try:
                curve = train(task, kind, lr, n_steps, jax.random.PRNGKey(7 + seed), sg)
            except Exception:  # noqa: BLE001 (runaway activity fills the spike buffer)
                curve = None
            runs[name] = dict(lr=lr, sigma=sg, loss=curve, diverged=curve is None,
                              time_per_step_ms=1e3 * (time.time() - t_run) / n_steps)
        ok = [r for r in runs if not runs[r]["diverged"]]
        res["learning"]["runs"][kind] = runs
        if not ok:
            res["learning"]["best"][kind] = dict(diverged=True, name=None, lr=cfgs[0][0],
                                                 sigma=cfgs[0][1])
            continue
        best = min(ok, key=lambda r: np.mean(runs[r]["loss"][-10:]))
        sims = 1 if kind == "exact" else TRIALS + 1
        res["learning"]["best"][kind] = dict(
            runs[best], name=best, final_mean10=float(np.mean(runs[best]["loss"][-10:])),
            simulations_per_step=sims,
            steps_below={str(v): steps_below(runs[best]["loss"], v) for v in (12, 10)},
            time_s=time.time() - t)
    if not fast:  # the online rule, with the simulation budget of the batched run
        t = time.time()
        n_online = steps * (TRIALS + 1)
        runs = {}
        grid = ([(lr, sg) for sg in SIGMAS_LEARN_FULL for lr in LRS_ONLINE] if tuned is None
                else [tuned["online"]])
        for lr, sg in grid:
            rs, p_final = task.online(task.params0, jax.random.PRNGKey(11 + seed),
                                      lr, sg, jnp.zeros(n_online))
            rs = np.asarray(rs)
            try:  # a diverged run (runaway activity) has no finite loss
                final = float(task.exact(p_final)[0])
            except Exception:  # noqa: BLE001 (the full spike buffer raises)
                final = float("nan")
            ok = bool(np.all(np.isfinite(rs)) and np.isfinite(final))
            runs[f"lr {lr:g}, sigma {sg:g}"] = dict(
                lr=lr, sigma=sg, diverged=not ok,
                trial_loss_mean_per_33=np.nan_to_num(
                    rs.reshape(-1, TRIALS + 1).mean(1), nan=-1.0).tolist(),
                trial_loss_last_330_mean=float(rs[-10 * (TRIALS + 1):].mean()) if ok else None,
                final_loss=final if ok else None)
        ok = [r for r in runs if not runs[r]["diverged"]]
        res["learning"]["runs"]["online"] = runs
        if ok:
            best = min(ok, key=lambda r: runs[r]["trial_loss_last_330_mean"])
            res["learning"]["best"]["online"] = dict(
                runs[best], name=best, steps=n_online, simulations_per_step=1, alpha=ALPHA,
                time_s=time.time() - t)
        else:
            res["learning"]["best"]["online"] = dict(
                diverged=True, name=None, lr=grid[0][0], sigma=grid[0][1], final_loss=None)
    res["time_s"] = time.time() - t_start
    return res


def summarise(per_seed):
    """The headline numbers of every seed, their mean and standard deviation."""
    get = lambda f: spread([f(r) for r in per_seed])  # noqa: E731
    out = {"std": "sample standard deviation over the seeds (numpy ddof=1)",
           "initial_loss": get(lambda r: r["initial_loss"]),
           "cosine_median": {name: {str(n): get(lambda r, j=j, name=name:
                                                r["cosine"][name]["median"][j])
                                    for j, n in enumerate(per_seed[0]["trials"])}
                             for name in per_seed[0]["cosine"]},
           "cosine_all_samples": {name: get(lambda r, name=name:
                                            r["cosine"][name]["all_samples"]["cosine"])
                                  for name in per_seed[0]["cosine"]}}
    if "node_infinite_trials_cosine" in per_seed[0]:
        out["node_infinite_trials_cosine"] = get(lambda r: r["node_infinite_trials_cosine"])
        out["node_infinite_trials_norm_ratio"] = get(
            lambda r: r["node_infinite_trials_norm_ratio"])
    best = lambda r, kind: r["learning"]["best"].get(kind, {})  # noqa: E731
    for kind in ("exact", "node"):
        out[f"{kind}_final_mean10"] = get(lambda r, k=kind: best(r, k).get("final_mean10"))
        for level in ("12", "10"):
            out[f"{kind}_steps_below_{level}"] = get(
                lambda r, k=kind, v=level: best(r, k).get("steps_below", {}).get(v))
    if "online" in per_seed[0]["learning"]["best"]:
        out["online_final_loss"] = get(lambda r: best(r, "online").get("final_loss"))
    # simulations to reach 10 per seed: node perturbation (33 per step) over exact steps
    ratio = []
    for r in per_seed:
        e = best(r, "exact").get("steps_below", {}).get("10")
        n = best(r, "node").get("steps_below", {}).get("10")
        ratio.append(None if not e or n is None else n * (TRIALS + 1) / e)
    out["simulations_ratio_below_10_node_over_exact"] = spread(ratio)
    return out


def run(fast=False, seeds=SEEDS):
    """The cosine study and the learning curves for every seed (fast: the first only).
    The task (inputs, teacher) is the same for every seed; a seed sets the student's
    initial weights and the noise. The learning rates and sigmas are tuned on the
    first seed's grid, and the other seeds run the selected settings. The first
    seed's record is the top level (as with one seed), the others' are in
    `more_seeds`, the spread in `summary`."""
    if isinstance(seeds, int):
        seeds = (seeds,)
    seeds = tuple(seeds[:1]) if fast else tuple(seeds)
    t_start = time.time()
    task = Task(seeds[0])
    per_seed, tuned = [], None
    for seed in seeds:
        r = run_seed(task, fast, seed, tuned)
        per_seed.append(r)
        b = r["learning"]["best"]
        if tuned is None:
            tuned = {k: (b[k]["lr"], b[k]["sigma"]) for k in b}
        print(f"seed {seed}: " + ", ".join(
            f"{k} {b[k].get('final_mean10', b[k].get('final_loss'))}" for k in b)
            + f" ({r['time_s']:.0f} s)", flush=True)
    res = dict(fast=fast, seeds=list(seeds), neurons=N, inputs=M, t1=T1,
               tau_van_rossum=TAU_VR, trials_per_call=TRIALS, num_bins=NUM_BINS,
               num_weights=M * N + N * (N - 1), **per_seed[0],
               more_seeds={str(s): r for s, r in zip(seeds[1:], per_seed[1:])},
               summary=summarise(per_seed))
    res["total_time_s"] = time.time() - t_start
    return res


def plot(res, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    ns = np.array(res["trials"])
    labels = {"node": "node pert. (Fiete & Seung)", "weight": "weight pert."}
    others = list(res.get("more_seeds", {}).values())
    seeds = res.get("seeds", [0])
    for i, (name, c) in enumerate(res["cosine"].items()):
        ax.plot(ns, c["median"], "o-", color=f"C{i}", ms=3,
                label=f"{labels[c['estimator']]}, sigma {c['sigma']:g}")
        ax.fill_between(ns, c["q25"], c["q75"], color=f"C{i}", alpha=0.2)
        for r in others:  # the other seeds' medians
            ax.plot(ns, r["cosine"][name]["median"], "--", color=f"C{i}", lw=0.8)
    if "node_infinite_trials_cosine" in res:
        ax.axhline(res["node_infinite_trials_cosine"], color="k", ls=":",
                   label="node pert., infinitely many trials (first order)")
    if others:
        ax.plot([], [], "k--", lw=0.8, label=f"dashed: medians of seeds {seeds[1:]}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("trials")
    ax.set_ylabel("cosine(estimate, exact gradient)")
    ax.set_ylim(-0.2, 1.02)
    ax.set_title(f"{res['num_weights']} weights, {res['num_bins']} noise kicks per neuron; "
                 f"seed {seeds[0]}: median, quartiles", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")

    bests = [res["learning"]["best"]] + [r["learning"]["best"] for r in others]
    for ax, per_sim in ((axes[1], False), (axes[2], True)):
        for j, best in enumerate(bests):
            lw, alpha = (1.5, 1.0) if j == 0 else (0.8, 0.6)
            for kind, c in (("exact", "k"), ("node", "C0")):
                b = best[kind]
                if b.get("loss") is None:
                    continue
                x = np.arange(len(b["loss"])) * (b["simulations_per_step"] if per_sim else 1)
                y = np.asarray(b["loss"])
                if per_sim:  # log axis: from the first step on (simulations used so far)
                    x, y = x[1:], y[1:]
                name = "exact gradient" if kind == "exact" else (
                    f"node pert., {res['trials_per_call']} trials/step")
                ax.plot(x, y, color=c, lw=lw, alpha=alpha,
                        label=f"{name} (Adam, {b['name']})" if j == 0 else None)
            if best.get("online", {}).get("trial_loss_mean_per_33") is not None:
                b = best["online"]
                y = np.asarray(b["trial_loss_mean_per_33"])  # noisy trials' mean loss
                x = np.arange(1, len(y) + 1) * (res["trials_per_call"] + 1)  # simulations
                if not per_sim:  # in units of the batched run's steps (33 simulations)
                    x = x / (res["trials_per_call"] + 1)
                ax.plot(x, y, color="C3", lw=0.8 * lw, alpha=alpha,
                        label=(f"online rule, 1 trial/step, running baseline ({b['name']});\n"
                               "mean loss of its noisy trials per 33 steps") if j == 0 else None)
        if others:
            ax.plot([], [], color="gray", lw=0.8, alpha=0.6,
                    label=f"thin: seeds {seeds[1:]} (settings tuned on seed {seeds[0]})")
        ax.set_yscale("log")
        ax.set_ylabel("van Rossum distance to the teacher")
        if per_sim:
            ax.set_xscale("log")
            ax.set_xlabel("simulations (exact: 1 forward + backward per step)")
        else:
            ax.set_xlabel("step (online rule: per 33 trials)")
        ax.legend(fontsize=7, loc="lower left" if per_sim else "upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fast", action="store_true", help="few trials and steps")
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                   help="seeds of the student's initial weights and of the noise "
                        "(--fast: the first)")
    p.add_argument("--figure", default=None,
                   help="default docs/figures/fiete_seung.png (not with --fast)")
    p.add_argument("--json", default=None,
                   help="default docs/figures/fiete_seung.json (not with --fast)")
    args = p.parse_args(argv)
    res = run(fast=args.fast, seeds=tuple(args.seeds))
    fig = args.figure or (None if args.fast else str(ROOT / "docs/figures/fiete_seung.png"))
    js = args.json or (None if args.fast else str(ROOT / "docs/figures/fiete_seung.json"))
    if js:  # first: the numbers survive a failing plot
        pathlib.Path(js).write_text(json.dumps(res, indent=1))
        print("wrote", js)
    if fig:
        plot(res, fig)
        print("wrote", fig)
    for name, c in res["cosine"].items():
        print(f"cosine {name} (median of {res['repeats']}): " + ", ".join(
            f"{n}: {m:.3f}" for n, m in zip(res["trials"], c["median"])))
    if "node_infinite_trials_cosine" in res:
        print("node perturbation, infinitely many trials: "
              f"{res['node_infinite_trials_cosine']:.4f}")
    for kind, b in res["learning"]["best"].items():
        if b.get("name") is None:
            print(f"{kind}: diverged")
            continue
        if kind == "online":
            print(f"online: {b['name']}, {b['steps']} steps, final loss {b['final_loss']:.4g}, "
                  f"{b['time_s']:.1f} s")
            continue
        print(f"{kind}: {b['name']}, loss {b['loss'][0]:.4g} -> {b['loss'][-1]:.4g} "
              f"(mean of last 10: {b['final_mean10']:.4g}), {b['time_s']:.1f} s")
    sm = res["summary"]
    for key in ("node_final_mean10", "exact_final_mean10", "online_final_loss",
                "simulations_ratio_below_10_node_over_exact"):
        if key in sm and sm[key]["mean"] is not None:
            print(f"{key}, seeds {res['seeds']}: {sm[key]['per_seed']}, mean "
                  f"{sm[key]['mean']:.4g} ± {sm[key]['std']:.2g} (std ddof=1)")
    print(f"total {res['total_time_s']:.1f} s")


if __name__ == "__main__":
    main()

"""Fitting escape-noise models to spike trains by maximum likelihood (`spikeode.fit`).

Two experiments on data generated from known parameters (float64):

1. One LIF neuron with an exponential hazard, driven by five Poisson inputs through
   known weights: its membrane time constant, threshold and noise width are fitted
   back from its spikes, with 95 % Wald intervals from the Hessian of the exact
   log-likelihood; repeated on independent data sets (coverage of the intervals) and
   for growing numbers of trials (the error shrinks).
2. A recurrent network of 10 such neurons: its connectivity `w_rec` is fitted back
   from the spikes of all neurons. Given every neuron's spikes the likelihood
   factorises over neurons, so each neuron's incoming weights are fitted on their
   own, with the recorded spikes of the network as its inputs.

Run: `python examples/fit_spike_trains.py [--quick] [--out DIR]`. Writes figures
(likelihood trajectory, true against fitted parameters with intervals, rasters) and
`fit_spike_trains.json` with the figures quoted in docs/noise.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import spikeode as so  # noqa: E402

# The neuron: tau_m dv/dt = b - v + I, tau_s dI/dt = -I, reset to 0 after a spike
# (refractory 2 ms), hazard rho0 exp((v - threshold) / delta).
TRUE = dict(tau_mem=0.02, threshold=1.0, delta=0.1)
FIXED = dict(tau_syn=0.005, bias=0.9, v_reset=0.0, refractory_period=0.002)
RHO0 = 20.0
W_IN = np.array([[1.5, 1.0, -1.2, 2.0, 0.8]]).T  # five inputs -> one neuron
INPUT_RATE, T1 = 20.0, 1.0
# Statistical error dwarfs 1e-8 in the likelihood: a looser tolerance than the
# default 1e-10 is faster and changes no figure.
OPTIONS = dict(stepsize_controller=diffrax.PIDController(rtol=1e-8, atol=1e-8))
# L-BFGS with a backtracking line search (usually one evaluation per step); the
# likelihood is smooth, and this converges in about 20 steps where Adam needs hundreds.
OPTIMISER = optax.lbfgs(
    linesearch=optax.scale_by_backtracking_linesearch(max_backtracking_steps=20, store_grad=True)
)
STEPS, TOL = 60, 1e-9
WHERE_NEURON = lambda o: (  # noqa: E731
    o.model.neuron.tau_mem, o.model.neuron.threshold, o.model.hazard.delta
)
WHERE_WEIGHTS = lambda o: o.w_in  # noqa: E731


def neuron(tau_mem, threshold, delta, key, num_neurons=1):
    """The escape-noise LIF population."""
    lif = so.LIF(num_neurons, tau_mem=tau_mem, threshold=threshold, **FIXED)
    return so.EscapeNoise(lif, so.ExponentialHazard(RHO0, delta), key)


def poisson_inputs(rng, trials, num_inputs, rate, t1):
    """`trials` trains of `num_inputs` Poisson inputs, batched."""
    capacity = int(rate * t1 * num_inputs + 6 * np.sqrt(rate * t1 * num_inputs) + 10)
    trains = [
        so.SpikeTrain.from_lists(
            [np.sort(rng.uniform(0, t1, rng.poisson(rate * t1))) for _ in range(num_inputs)],
            capacity=capacity,
        )
        for _ in range(trials)
    ]
    return jax.tree_util.tree_map(lambda *x: jnp.stack(x), *trains)


def single_neuron_data(trials, seed):
    """A `Recording` of the single neuron under the true parameters."""
    rng = np.random.default_rng(seed)
    inputs = poisson_inputs(rng, trials, W_IN.shape[0], INPUT_RATE, T1)
    keys = jax.random.split(jax.random.key(seed), trials)
    run = lambda key, inp: so.simulate(  # noqa: E731
        neuron(**TRUE, key=key), T1, inp, jnp.asarray(W_IN), max_spikes=100, **OPTIONS
    ).spikes
    return so.Recording(jax.jit(jax.vmap(run))(keys, inputs), T1, inputs)


def fit_single_neuron(data, start=(0.03, 0.8, 0.2), progress=False):
    """Maximum likelihood of (tau_mem, threshold, delta) from `start`."""
    objective = so.LogLikelihoodObjective(
        neuron(*start, key=jax.random.key(0)), w_in=jnp.asarray(W_IN), **OPTIONS
    )
    # (all three positive, optimised as logarithms: the threshold stays above the
    # reset, 0, however far a line search's trial step goes)
    return so.fit(
        objective, data, WHERE_NEURON, positive=True,
        optimiser=OPTIMISER, steps=STEPS, tol=TOL, progress=progress,
    )  # fmt: skip


def coverage(results, truth):
    """Per parameter: the fraction of fits whose 95 % interval holds the truth."""
    inside = [
        [bool(lo <= t <= hi) for (lo, hi), t in zip(r.intervals(0.95), truth)] for r in results
    ]
    return np.mean(np.array(inside), axis=0)


def network_data(w_rec, trials, t1, seed):
    """A `Recording` of the recurrent network (no inputs)."""
    n = w_rec.shape[0]
    keys = jax.random.split(jax.random.key(seed), trials)
    run = lambda key: so.simulate(  # noqa: E731
        neuron(**TRUE, key=key, num_neurons=n), t1, w_rec=jnp.asarray(w_rec),
        max_spikes=int(60 * n * t1), **OPTIONS,
    ).spikes  # fmt: skip
    return so.Recording(jax.jit(jax.vmap(run))(keys), t1)


def random_connectivity(n, seed, density=0.3, scale=2.0):
    """Sparse random weights (no autapses)."""
    rng = np.random.default_rng(seed)
    w = scale * rng.normal(size=(n, n)) * (rng.uniform(size=(n, n)) < density)
    np.fill_diagonal(w, 0.0)
    return w


def fit_connectivity(data):
    """Each neuron's incoming weights (a column of `w_rec`, the self-weight included)
    fitted with the recorded spikes of all neurons as its inputs; the neuron's own
    parameters are known. Returns the `FitResult` per neuron."""
    n = data.spikes.num_neurons
    objective = so.LogLikelihoodObjective(
        neuron(**TRUE, key=jax.random.key(0)), w_in=jnp.zeros((n, 1)), **OPTIONS
    )
    fits = []
    for i in range(n):
        data_i = so.Recording(data.spikes.select([i]), data.t1, data.spikes, data.t0)
        fits.append(so.fit(objective, data_i, WHERE_WEIGHTS, optimiser=OPTIMISER,
                           steps=STEPS, tol=TOL, progress=False))  # fmt: skip
    return fits


def single_neuron_experiment(reps, trials, sizes, out=None):
    """Fits on `reps` independent data sets of `trials` trials (coverage), and on 4
    data sets of each size in `sizes` (error against the amount of data)."""
    truth = [TRUE["tau_mem"], TRUE["threshold"], TRUE["delta"]]
    t = time.time()
    data = single_neuron_data(trials, seed=0)
    results = [fit_single_neuron(data, progress=True)]
    results += [fit_single_neuron(single_neuron_data(trials, seed=s)) for s in range(1, reps)]
    est = np.array([[float(v) for v in r.values] for r in results])
    err = np.array([[float(e) for e in r.standard_errors] for r in results])
    report = {
        "truth": truth,
        "trials": trials,
        "t1": T1,
        "spikes_per_trial": float(np.mean(np.asarray(data.spikes.num_spikes))),
        "repetitions": reps,
        "coverage_95": coverage(results, truth).tolist(),
        "mean_estimate": est.mean(0).tolist(),
        "sd_estimate": est.std(0, ddof=1).tolist() if reps > 1 else None,
        "mean_standard_error": err.mean(0).tolist(),
        "steps_taken": [int(r.losses.size) for r in results],
        "seconds": time.time() - t,
    }
    if out is not None:
        _write(out, "single_neuron", report)
    rmse = {}
    for m in sizes:
        fits = [fit_single_neuron(single_neuron_data(m, seed=100 + s)) for s in range(4)]
        e = np.array([[float(v) for v in r.values] for r in fits])
        rmse[str(m)] = (np.sqrt(np.mean((e - truth) ** 2, axis=0)) / truth).tolist()
    report["relative_rmse_by_trials"] = rmse
    return report, results, data


def network_experiment(reps, trials, t1, n=10):
    """Connectivity of an `n`-neuron network fitted on `reps` independent data sets."""
    t = time.time()
    w_rec = random_connectivity(n, seed=1)
    inside, fits0 = [], None
    for s in range(reps):
        data = network_data(w_rec, trials, t1, seed=s)
        fits = fit_connectivity(data)
        fits0 = (data, fits) if fits0 is None else fits0
        for i, r in enumerate(fits):
            ((lo, hi),) = r.intervals(0.95)
            w = w_rec[:, i]
            inside.append((np.asarray(lo)[:, 0] <= w) & (w <= np.asarray(hi)[:, 0]))
    data, fits = fits0
    w_fit = np.concatenate([np.asarray(r.values[0]) for r in fits], axis=1)
    w_se = np.concatenate([np.asarray(r.standard_errors[0]) for r in fits], axis=1)
    report = {
        "neurons": n,
        "trials": trials,
        "t1": t1,
        "spikes_per_trial": float(np.mean(np.asarray(data.spikes.num_spikes))),
        "repetitions": reps,
        "coverage_95": float(np.mean(inside)),
        "intervals": int(np.size(inside)),
        "max_abs_error_first": float(np.max(np.abs(w_fit - w_rec))),
        "median_standard_error_first": float(np.median(w_se)),
        "seconds": time.time() - t,
    }
    return report, data, w_rec, w_fit, w_se


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run (minutes)")
    parser.add_argument("--part", choices=["single", "network", "all"], default="all")
    parser.add_argument("--out", default="runs/fit_spike_trains")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if args.part in ("single", "all"):
        reps, trials, sizes = (3, 10, [5, 20]) if args.quick else (20, 20, [5, 20, 40])
        report, results, data = single_neuron_experiment(reps, trials, sizes, args.out)
        _write(args.out, "single_neuron", report)
        _plot_single(args.out, results, report["truth"], data)
    if args.part in ("network", "all"):
        reps, trials = (1, 5) if args.quick else (5, 10)
        report, data, w_rec, w_fit, w_se = network_experiment(reps, trials, t1=2.0)
        _write(args.out, "network", report)
        _plot_network(args.out, data, w_rec, w_fit, w_se)


def _write(out, name, report):
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(name, json.dumps(report, indent=2))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_single(out, results, truth, data):
    plt = _pyplot()
    fig, ax = plt.subplots(1, 4, figsize=(17, 3.6))
    ax[0].plot(-np.asarray(results[0].losses), "o-", ms=3)
    ax[0].set(xlabel="L-BFGS step", ylabel="log-likelihood per trial",
              title="Likelihood trajectory")  # fmt: skip
    est = np.array([[float(v) for v in r.values] for r in results])
    err = np.array([[float(e) for e in r.standard_errors] for r in results])
    names = ["tau_mem (s)", "threshold", "delta"]
    for k, (a, name) in enumerate(zip(ax[1:], names)):
        a.errorbar(np.arange(len(results)), est[:, k], yerr=1.96 * err[:, k], fmt="o", ms=3)
        a.axhline(truth[k], color="k", lw=1)
        a.set(xlabel="data set", title=f"{name}: fit, 95 % interval, truth")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "single_neuron.png"), dpi=120)
    fig, a = plt.subplots(figsize=(7, 3))
    for trial in range(min(10, data.num_trials)):
        inp = np.asarray(data.inputs.times[trial])
        out_t = np.asarray(data.spikes.times[trial])
        a.plot(inp[np.isfinite(inp)], np.full(np.isfinite(inp).sum(), trial), "|", c="0.6")
        a.plot(out_t[np.isfinite(out_t)], np.full(np.isfinite(out_t).sum(), trial), "|", c="C3",
               ms=10)  # fmt: skip
    a.set(xlabel="time (s)", ylabel="trial", title="Inputs (grey) and the neuron's spikes")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "single_neuron_raster.png"), dpi=120)
    plt.close("all")


def _plot_network(out, data, w_rec, w_fit, w_se):
    plt = _pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    ax[0].errorbar(w_rec.ravel(), w_fit.ravel(), yerr=1.96 * w_se.ravel(), fmt="o", ms=3)
    lim = np.abs(w_rec).max() * 1.2
    ax[0].plot([-lim, lim], [-lim, lim], "k", lw=1)
    ax[0].set(xlabel="true weight", ylabel="fitted weight, 95 % interval",
              title="Connectivity of 10 neurons")  # fmt: skip
    times, ids = np.asarray(data.spikes.times[0]), np.asarray(data.spikes.neurons[0])
    ax[1].plot(times[np.isfinite(times)], ids[np.isfinite(times)], "|")
    ax[1].set(xlabel="time (s)", ylabel="neuron", title="Trial 0")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "network.png"), dpi=120)
    plt.close("all")


if __name__ == "__main__":
    main()

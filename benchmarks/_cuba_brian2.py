"""The Brian2 side of `benchmarks/cuba.py`: a current-based LIF network simulated by
Brian2 (clock-driven, fixed step `dt`), and a comparison of spike trains.

Imported by `cuba.py` from the bench venv (`pip install -e ".[bench]"`: Brian2 2.9,
with NumPy < 2.4 since Brian2 2.9 still calls `ndarray.ptp`, removed in NumPy 2.4).
Brian2 is imported lazily, inside `run_brian2`, so that `compare_trains` needs only
NumPy. `python benchmarks/_cuba_brian2.py` runs a self-test of `compare_trains` and,
when Brian2 is installed, a tiny network.

The network (`net`, a dict in normalised dimensionless units, times in seconds):

    tau_mem dv/dt  = -v + I_e + I_i + bias      (v held at v_reset while refractory)
    tau_exc dI_e/dt = -I_e
    tau_inh dI_i/dt = -I_i
    spike when v >= threshold; then v = v_reset, held for `refractory` seconds
    (the currents keep decaying); a spike of synapse s (pre[s] -> post[s]) adds
    weight[s] to I_e of post[s] if weight[s] > 0, to I_i if weight[s] < 0 (a zero
    weight is dropped), delay[s] seconds after the presynaptic spike.

In Brian2: one `NeuronGroup` with `method='exact'` (the linear system is integrated
exactly over each step by Brian2's `linear` state updater: no integration error
between events), `threshold='v >= v_th'`, `reset='v = v_reset'`,
`refractory=refractory`, `v` marked `(unless refractory)`; two `Synapses` objects,
excitatory (`on_pre='ie_post += w'`) and inhibitory (`on_pre='ii_post += w'`), each
connected from the `pre`/`post` arrays with its own weights and delays; a
`SpikeMonitor`. `>=` rather than `>` because that is spikeode's event condition; for
continuous trajectories sampled at fixed steps the two differ only when `v` lands
exactly on the threshold at a step boundary (with the initial state `v0 =
threshold`, say). Delays: a per-synapse `delay` variable when the delays of a
`Synapses` object differ; when they are all equal (the usual case, 1 ms or 0 here)
one scalar delay given to the constructor, Brian2's faster homogeneous-delay path
(the same simulation: Brian2 rounds every delay to whole steps either way).

What Brian2 does differently from the exact (event-based) model, by construction of a
clock-driven simulator; all of it is error of order `dt` in the spike times:

- A spike is detected after the state update of a step: a threshold crossing
  anywhere in (t, t + dt] is recorded at t, the *start* of the step, and the reset
  is applied at the end of the step (v = v_reset from t + dt). Brian2's recorded
  times are returned as they are (not shifted): the true crossing lies in the step
  that starts at the recorded time.
- Synaptic input is applied in the synapses slot, after the state update of the step
  in which it is due, i.e. it takes effect at the end of that step: with zero delay a
  spike recorded at t kicks its targets at t + dt; with delay d, at t + d + dt.
- Delays are rounded to whole steps (`round(delay / dt)`).
- The refractory period: `not_refractory = timestep(t - lastspike, dt) >=
  timestep(refractory, dt)`, with `lastspike` the recorded (start-of-step) time and
  the reset at the step's end, so `v` is actually held for `refractory - dt` (the
  state update resumes at lastspike + refractory); with the true crossing anywhere in
  the step, the true hold differs from `refractory` by between -dt and 0.
- (Not used here, but relevant to driving Brian2 with external spike trains:)
  `SpikeGeneratorGroup` refuses two spikes of one source in one `dt` bin, so input
  trains must be thinned or binned first.
- Exact integration needs tau_mem different from tau_exc and tau_inh (Brian2's
  symbolic solution divides by their difference); the CUBA values (20, 5, 10 ms) are.

Timing (`run_brian2`'s `build_seconds`, `run_seconds`, ...): each call builds the
network twice from the same arrays, in a fresh `start_scope()` and `Network` each.

- `build_seconds`: the first build: constructing the groups, connecting the synapses,
  setting the state, and a warm-up `run` of one step, which generates the code of
  every object and, for the cython target, compiles it (Cython + gcc) unless an
  identical module is already in Brian2's on-disk cache (`~/.cython/brian_extensions`
  by default, kept across processes) or in memory (earlier calls in this process).
  `compiled_modules` says how many new modules the cache dir gained during it: 0
  means `build_seconds` includes no compilation (a cold compile of this network took
  about a minute on 2 cores). It also includes Brian2's symbolic solution of the
  linear system for `method='exact'` (a SymPy matrix exponential, 3-9 s here), which
  Brian2 caches in memory for the rest of the process, per group size. This first
  network is then discarded (its warm-up step changed its state).
- `setup_seconds`: constructing the second, identical network (no compilation).
- `run_seconds`: the wall time of `net.run(t1)` on the second network, which starts
  from `v0`, `ie0`, `ii0` at t = 0. Its code is already compiled (cache warm), so no
  compilation is included; what Brian2 does at the start of every `run` is: resolving
  the namespace, rendering the code templates and looking them up in the cache
  (loading the compiled modules), and initialising the spike queues.
- `loop_seconds`: Brian2's own measure of the same run's main loop only (its
  `device._last_run_time`), without that per-run preparation.

For the numpy target nothing is compiled to machine code: its code objects are
generated and byte-compiled during every `run`, which `run_seconds` includes and
`loop_seconds` does not.
"""

from __future__ import annotations

import os
import time

import numpy as np

__all__ = ["run_brian2", "compare_trains", "self_test"]

_NET_ARRAYS = ("pre", "post", "weight", "delay", "v0", "ie0", "ii0")
_NET_FLOATS = ("tau_mem", "tau_exc", "tau_inh", "threshold", "v_reset", "bias", "refractory")


def _check_net(net: dict) -> dict:
    missing = [k for k in ("n",) + _NET_ARRAYS + _NET_FLOATS if k not in net]
    if missing:
        raise KeyError(f"net lacks {missing}")
    n = int(net["n"])
    out = {"n": n}
    out["pre"] = np.asarray(net["pre"], dtype=np.int64).ravel()
    out["post"] = np.asarray(net["post"], dtype=np.int64).ravel()
    out["weight"] = np.asarray(net["weight"], dtype=np.float64).ravel()
    out["delay"] = np.broadcast_to(
        np.asarray(net["delay"], dtype=np.float64), out["pre"].shape
    ).copy()
    m = out["pre"].size
    if not (out["post"].size == out["weight"].size == m):
        raise ValueError("pre, post, weight and delay need one entry per synapse")
    if m and (
        out["pre"].min() < 0 or out["post"].min() < 0
        or out["pre"].max() >= n or out["post"].max() >= n
    ):
        raise ValueError("pre/post indices outside [0, n)")
    if m and out["delay"].min() < 0:
        raise ValueError("negative delay")
    for k in ("v0", "ie0", "ii0"):
        out[k] = np.broadcast_to(np.asarray(net[k], dtype=np.float64), (n,)).copy()
    for k in _NET_FLOATS:
        out[k] = float(net[k])
    return out


def _cache_files(target: str) -> int:
    """Number of compiled extension modules in Brian2's Cython cache dir (0 for
    other targets)."""
    if target != "cython":
        return 0
    from brian2.codegen.runtime.cython_rt.extension_manager import get_cython_cache_dir

    d = get_cython_cache_dir()
    if not d or not os.path.isdir(d):
        return 0
    return sum(
        f.endswith((".so", ".pyd")) for _, _, files in os.walk(d) for f in files
    )


def _build(b2, net: dict, dt: float):
    """A fresh Brian2 network for `net`: (Network, SpikeMonitor, namespace)."""
    second = b2.second
    b2.start_scope()
    b2.defaultclock.dt = dt * second
    namespace = {
        "tau_mem": net["tau_mem"] * second,
        "tau_exc": net["tau_exc"] * second,
        "tau_inh": net["tau_inh"] * second,
        "v_th": net["threshold"],
        "v_reset": net["v_reset"],
        "bias": net["bias"],
    }
    eqs = """
    dv/dt = (ie + ii - v + bias) / tau_mem : 1 (unless refractory)
    die/dt = -ie / tau_exc : 1
    dii/dt = -ii / tau_inh : 1
    """
    group = b2.NeuronGroup(
        net["n"],
        eqs,
        threshold="v >= v_th",
        reset="v = v_reset",
        refractory=net["refractory"] * second,
        method="exact",
        namespace=namespace,
        name="cuba_neurons",
    )
    group.v = net["v0"]
    group.ie = net["ie0"]
    group.ii = net["ii0"]
    objects = [group]
    w = net["weight"]
    for kind, mask, current in (
        ("exc", w > 0, "ie"),
        ("inh", w < 0, "ii"),
    ):
        if not mask.any():
            continue
        delays = net["delay"][mask]
        homogeneous = bool(np.all(delays == delays[0]))
        kwargs = {"delay": float(delays[0]) * second} if homogeneous else {}
        syn = b2.Synapses(
            group,
            group,
            model="w : 1 (constant)",
            on_pre=f"{current}_post += w",
            name=f"cuba_{kind}",
            **kwargs,
        )
        syn.connect(i=net["pre"][mask], j=net["post"][mask])
        syn.w = w[mask]
        if not homogeneous:
            syn.delay = delays * second
        objects.append(syn)
    monitor = b2.SpikeMonitor(group, name="cuba_spikes")
    objects.append(monitor)
    network = b2.Network(*objects)
    return network, monitor, namespace


def run_brian2(net: dict, t1: float, dt: float, target: str = "cython") -> dict:
    """Simulate `net` (see the module docstring) for `t1` seconds with Brian2 at a
    fixed step `dt` (seconds) with code-generation target `target` ("cython" or
    "numpy").

    Returns a dict: `times` (float64 seconds, Brian2's recorded spike times, i.e. the
    start of the step in which each threshold crossing happened; in time order),
    `ids` (int64 neuron indices), `run_seconds` (wall time of the measured
    `net.run(t1)`, compiled code already cached: no compilation), `build_seconds`
    (constructing the objects + the first compilation, in a separate warm-up build),
    `setup_seconds` (constructing the measured network), `loop_seconds` (Brian2's
    main-loop time of the measured run), `compiled_modules` (extension modules
    compiled during `build_seconds`; 0: it includes no compilation), `dt`,
    `target`, `brian2_version`, `n_synapses` (excitatory, inhibitory) and
    `delay_steps` (the distinct delays in steps, as Brian2 rounds them).
    """
    import brian2 as b2

    net = _check_net(net)
    if target not in ("cython", "numpy"):
        raise ValueError(f"target must be 'cython' or 'numpy', not {target!r}")
    b2.prefs.codegen.target = target
    second = b2.second

    # Warm-up build: construct, and one step to generate/compile every code object.
    cache_before = _cache_files(target)
    t0 = time.perf_counter()
    warm, _, namespace = _build(b2, net, dt)
    warm.run(dt * second, namespace=namespace)
    build_seconds = time.perf_counter() - t0
    compiled = max(0, _cache_files(target) - cache_before)
    del warm

    # Measured build: the same arrays, a fresh scope and Network.
    t0 = time.perf_counter()
    network, monitor, namespace = _build(b2, net, dt)
    setup_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    network.run(t1 * second, namespace=namespace)
    run_seconds = time.perf_counter() - t0
    loop_seconds = float(getattr(b2.get_device(), "_last_run_time", float("nan")))

    times = np.asarray(monitor.t_[:], dtype=np.float64).copy()
    ids = np.asarray(monitor.i[:], dtype=np.int64).copy()
    n_syn = {}
    for kind in ("exc", "inh"):
        obj = [o for o in network.objects if o.name == f"cuba_{kind}"]
        n_syn[kind] = int(len(obj[0])) if obj else 0
    d = net["delay"][net["weight"] != 0]
    delay_steps = sorted({int(s) for s in np.round(d / dt)}) if d.size else []
    return dict(
        times=times,
        ids=ids,
        run_seconds=run_seconds,
        build_seconds=build_seconds,
        setup_seconds=setup_seconds,
        loop_seconds=loop_seconds,
        compiled_modules=int(compiled),
        dt=float(dt),
        target=target,
        brian2_version=b2.__version__,
        n_synapses=n_syn,
        delay_steps=delay_steps[:16],
    )


def _by_neuron(times, ids, n):
    """Sort (id, time); return sorted times, ids, rank of each spike within its
    neuron, and per-neuron counts."""
    times = np.asarray(times, dtype=np.float64).ravel()
    ids = np.asarray(ids, dtype=np.int64).ravel()
    if times.shape != ids.shape:
        raise ValueError("times and ids differ in length")
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        raise ValueError("neuron ids outside [0, n)")
    order = np.lexsort((times, ids))
    times, ids = times[order], ids[order]
    counts = np.bincount(ids, minlength=n)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(ids.size) - starts[ids]
    return times, ids, rank, counts


def compare_trains(exact_times, exact_ids, approx_times, approx_ids, n, tol=1e-3) -> dict:
    """Accuracy of an approximate spike train against an exact one (pure NumPy).

    Per neuron the k-th spike of one train is matched with the k-th spike of the
    other. A neuron diverges at the first k where the two k-th spikes differ by more
    than `tol` (seconds), at time min(exact_k, approx_k) (the earlier of the two:
    an approximate spike far too early shows the difference before the exact one
    happens), or where only one train has a k-th spike, at that spike's time (an
    exact spike the approximation missed, or an extra approximate spike).
    `divergence_time` is the earliest over neurons (inf if the trains never differ by
    more than `tol`), `divergence_neuron` that neuron (-1 if none).

    Errors |approx_k - exact_k| are taken over the matched pairs (both spikes exist)
    whose exact time is before `divergence_time` (all pairs if it is inf):
    `median_error`, `max_error` (seconds; nan if there are none), `n_matched`.
    `n_exact` and `n_approx` count all spikes of each train (ids in [0, n));
    `neuron_divergence` is the per-neuron divergence time (array of shape (n,)).
    """
    n = int(n)
    te, ie, re, ce = _by_neuron(exact_times, exact_ids, n)
    ta, ia, ra, ca = _by_neuron(approx_times, approx_ids, n)
    kmax = int(max(ce.max(initial=0), ca.max(initial=0))) + 1
    key_e = ie * kmax + re
    key_a = ia * kmax + ra
    _, pe, pa = np.intersect1d(key_e, key_a, assume_unique=True, return_indices=True)
    only_e = np.ones(te.size, bool)
    only_e[pe] = False
    only_a = np.ones(ta.size, bool)
    only_a[pa] = False

    err = np.abs(ta[pa] - te[pe])
    neuron_div = np.full(n, np.inf)
    bad = err > tol
    np.minimum.at(neuron_div, ie[pe][bad], np.minimum(te[pe][bad], ta[pa][bad]))
    np.minimum.at(neuron_div, ie[only_e], te[only_e])
    np.minimum.at(neuron_div, ia[only_a], ta[only_a])
    divergence = float(neuron_div.min(initial=np.inf))
    div_neuron = int(np.argmin(neuron_div)) if np.isfinite(divergence) else -1

    before = te[pe] < divergence
    e = err[before]
    return dict(
        divergence_time=divergence,
        divergence_neuron=div_neuron,
        median_error=float(np.median(e)) if e.size else float("nan"),
        max_error=float(e.max()) if e.size else float("nan"),
        n_matched=int(e.size),
        n_exact=int(te.size),
        n_approx=int(ta.size),
        neuron_divergence=neuron_div,
    )


def self_test() -> None:
    """Checks `compare_trains` on synthetic trains (shifted, missing, extra spike)."""
    rng = np.random.default_rng(0)
    n = 20
    ids = rng.integers(0, n, 400)
    times = rng.uniform(0.0, 1.0, 400)
    # Identical trains.
    r = compare_trains(times, ids, times, ids, n)
    assert r["divergence_time"] == np.inf and r["divergence_neuron"] == -1, r
    assert r["max_error"] == 0.0 and r["n_matched"] == 400, r
    assert r["n_exact"] == r["n_approx"] == 400
    # Order of the input does not matter.
    p = rng.permutation(400)
    assert compare_trains(times, ids, times[p], ids[p], n)["max_error"] == 0.0
    # Shifted by less than tol: no divergence, errors equal the shift.
    r = compare_trains(times, ids, times + 2e-4, ids, n, tol=1e-3)
    assert r["divergence_time"] == np.inf, r
    assert np.isclose(r["median_error"], 2e-4) and np.isclose(r["max_error"], 2e-4), r
    # Shift by more than tol from t = 0.5 on, in neuron 3 only.
    shifted = times.copy()
    late3 = (ids == 3) & (times >= 0.5)
    shifted[late3] += 5e-3
    r = compare_trains(times, ids, shifted, ids, n, tol=1e-3)
    assert r["divergence_time"] == times[late3].min() and r["divergence_neuron"] == 3, r
    assert r["max_error"] == 0.0 and r["n_matched"] == int((times < r["divergence_time"]).sum())
    # A missing approximate spike (neuron 5's spike nearest 0.7).
    i5 = np.flatnonzero(ids == 5)
    drop = i5[np.argmin(np.abs(times[i5] - 0.7))]
    keep = np.arange(400) != drop
    r = compare_trains(times, ids, times[keep] + 1e-5, ids[keep], n)
    assert r["divergence_time"] == times[drop] and r["divergence_neuron"] == 5, r
    assert r["n_approx"] == 399 and np.isclose(r["max_error"], 1e-5), r
    # An extra approximate spike at 0.3 in neuron 7 (shifts the later matching).
    r = compare_trains(times, ids, np.append(times, 0.3), np.append(ids, 7), n)
    assert r["divergence_time"] == 0.3 and r["divergence_neuron"] == 7, r
    assert r["n_approx"] == 401 and r["max_error"] == 0.0, r
    # An extra spike after the last exact spike of neuron 7.
    t_last = times[ids == 7].max()
    r = compare_trains(times, ids, np.append(times, t_last + 0.01), np.append(ids, 7), n)
    assert np.isclose(r["divergence_time"], t_last + 0.01), r
    # An approximate spike far too early: divergence at the approximate time.
    i9 = np.flatnonzero(ids == 9)
    first9 = i9[np.argmin(times[i9])]
    early = times.copy()
    early[first9] -= 0.05
    r = compare_trains(times, ids, early, ids, n)
    if times[first9] - 0.05 < np.sort(times[i9])[1]:  # rank unchanged
        assert np.isclose(r["divergence_time"], times[first9] - 0.05), r
    # Empty trains.
    r = compare_trains([], [], [], [], n)
    assert r["divergence_time"] == np.inf and np.isnan(r["median_error"]) and r["n_exact"] == 0
    r = compare_trains([0.1], [2], [], [], n)
    assert r["divergence_time"] == 0.1 and r["divergence_neuron"] == 2
    print("compare_trains self-test passed")


def _tiny_network_demo() -> None:
    """Two neurons, one synapse 0 -> 1: neuron 0, without input, fires periodically
    with period tau_mem ln(11) + refractory in the exact model. Brian2's times follow
    the behaviours of the module docstring exactly: each spike is recorded at the
    start of its step and the neuron restarts `refractory` after that recorded time,
    so its error grows by up to one `dt` per spike."""
    dt, refractory, tau_mem = 1e-4, 0.005, 0.02
    net = dict(
        n=2, pre=np.array([0]), post=np.array([1]), weight=np.array([0.5]),
        delay=np.array([1e-3]), v0=np.zeros(2), ie0=np.zeros(2), ii0=np.zeros(2),
        tau_mem=tau_mem, tau_exc=0.005, tau_inh=0.01, threshold=1.0, v_reset=0.0,
        bias=1.1, refractory=refractory,
    )
    r = run_brian2(net, 0.2, dt, target="numpy")
    t0 = r["times"][r["ids"] == 0]
    free = tau_mem * np.log(11)
    exact = free + np.arange(t0.size) * (free + refractory)
    predicted, start = [], 0.0
    while start + free < 0.2:
        predicted.append(np.floor((start + free) / dt + 1e-9) * dt)
        start = predicted[-1] + refractory
    print(f"brian2 {r['brian2_version']}: neuron 0 fired at {np.round(t0, 6).tolist()} s;"
          f" exact {np.round(exact, 6).tolist()}; max |error| {np.abs(t0 - exact).max():.2e} s"
          f" (dt = {dt:g})")
    assert np.allclose(t0, predicted, rtol=0, atol=1e-9), (t0, predicted)


if __name__ == "__main__":
    self_test()
    try:
        import brian2  # noqa: F401
    except ImportError:
        print("brian2 not installed: skipped the network demo")
    else:
        _tiny_network_demo()

"""Benchmark: the Vogels-Abbott CUBA network in spikeode (exact, event-based) and in
Brian2 (clock-driven), side by side, on CPU.

The network (Vogels & Abbott 2005; Brian2's CUBA example, in units of the threshold
distance: v in (V - V_reset) / (V_threshold - V_reset), so 10 mV -> 1): N current-based
LIF neurons, `spikeode.ExcInhLIF` with tau_mem = 20 ms, tau_exc = 5 ms, tau_inh = 10 ms,
threshold 1, reset 0, bias 1.1 (E_leak = -49 mV), refractory 5 ms; the first 80 % are
excitatory (w = 0.162, 1.62 mV), the rest inhibitory (w = -0.9, -9 mV); every neuron
receives exactly 64 excitatory and 16 inhibitory synapses (fixed in-degree 80, no
self-connections: `spikeode.Synapses.excitatory_inhibitory`, seed 0), all with the
same delay (1 ms, or 0). Initial state: v uniform in [0, 1) (NumPy generator, seed 0),
both currents 0. No external input. Brian2 gets the same arrays (`pre`, `post`,
`weight`, `delay` from the spikeode builder, float64, and the same `v0`) through
`benchmarks/_cuba_brian2.run_brian2`.

Each measurement runs in its own subprocess (fresh JAX, its own precision, its own peak
RSS), one at a time, with a time limit (`--timeout`); a timeout or an error (e.g. a
capacity overflow) is recorded in the JSON instead of stopping the run. Per case
(N, delay):

- `build`: the network arrays (float64) and v0, saved for Brian2 (spikeode's builder).
- `spikeode_float64`, `spikeode_float32`: `spikeode.simulate` (delay 1 ms: the windowed
  loop, window 1 ms; delay 0: the event-driven loop) jitted with the synapses as an
  argument. `compile_s` = first call - fastest steady call; `run_s` = fastest of up to
  `--repeats` steady calls (fewer if they would not fit in the time limit); spike
  count, mean rate, peak RSS (`ru_maxrss`). The float64 train is the exact reference.
- `spikeode_grad_float32` (N <= `--grad-max-n`): `jax.value_and_grad` of the sum of
  all valid spike times with respect to every synaptic weight (`Synapses.weight`).
- `brian2_dt...`: Brian2 at dt = 0.1 ms and 0.01 ms (`--brian2-target`, default
  cython): `run_s` is the measured `net.run(t1)` with compiled code already cached
  (see `_cuba_brian2.py`), `build_s` the first build with code generation/compilation.
- `accuracy`: each Brian2 train, and spikeode's float32 train, against spikeode's
  float64 train (`compare_trains`, tolerance `--tol`): divergence time (the earliest
  spike that differs by more than `--tol` or is missing/extra), median and max error of
  the spikes matched before it.

Capacities (spikeode raises an error naming the one that overflowed): `max_spikes` =
rate bound (`--rate-bound`, 60 Hz) x N x t1, `max_window_spikes` = max(64, N/8),
`max_window_events` = 16 (the default), `max_pending` = 2 x max_window_spikes x the
largest fan-out; on an overflow error, one retry with all of them doubled (recorded as
`retries`).

With `--delay-loop windowed`, the forward pass runs the windowed loop with
`checkpoints` = the number of windows
(every window "stored": the faster form, and free without differentiation; spikeode's
default switches to Equinox's checkpointed loop when storing every window's carry for
reverse mode would take more than 256 MB). The gradient keeps spikeode's default
(`--grad-checkpoints` to override).

The JSON records the git commit and the files of spikeode/ changed in the working tree
(with a hash of the changes): spikeode is benchmarked as it is in the working tree.

With delay 0 the event-driven loop (`so.EventDrivenLoop`: each spike updates only its
targets) gets the `Synapses` (zero delays: the kick applied in the spike's jump);
`--zero-delay-loop coupled` runs the coupled loop instead (every neuron advanced at
every event), and `--zero-delay-form dense` passes it the equivalent dense `w_rec`.
The 1 ms delay runs by the event-driven loop too (one pending arrival per spike), as
`simulate`'s default loop does; `--delay-loop windowed` runs the windowed loop
instead. `--delays 0` or `--delays 1` runs one delay.

Writes `benchmarks/results/cuba.json` (machine, versions, command line, every entry)
and prints a summary table. `--plot` writes `docs/figures/cuba_scaling.png` from the
JSON (or from several, comma-separated in `--out`).

Usage (from the repository root, in the venv with the peers, see docs/benchmarks.md):

    .venv-bench/bin/python benchmarks/cuba.py                # N = 1000 ... 64000, 1 s
    .venv-bench/bin/python benchmarks/cuba.py --quick        # N = 1000, 0.2 s
    .venv-bench/bin/python benchmarks/cuba.py --sizes 1000,4000 --t1 0.5 --timeout 900
    .venv-bench/bin/python benchmarks/cuba.py --plot         # the figure from the JSON
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

from _machine import machine_info, max_rss_mb, version

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(HERE, "results", "cuba.json")
DEFAULT_FIGURE = os.path.join(ROOT, "docs", "figures", "cuba_scaling.png")

# The network (units of the threshold distance, seconds)
SEED = 0
K_EXC, K_INH = 64, 16
W_EXC, W_INH = 0.162, -0.9
TAU_MEM, TAU_EXC, TAU_INH = 20e-3, 5e-3, 10e-3
THRESHOLD, V_RESET, BIAS, REFRACTORY = 1.0, 0.0, 1.1, 5e-3
WINDOW = 1e-3  # the windowed loop's window (= the delay)

SIZES = (1000, 4000, 16000, 64000)
ZERO_DELAY_MAX_N = 4000
GRAD_MAX_N = 16000
BRIAN2_DTS = (1e-4, 1e-5)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def emit(res):
    """One JSON line on stdout: the worker's results so far (the parent keeps the
    last one, so a timeout still reports what was measured before it)."""
    sys.stdout.write(json.dumps(res) + "\n")
    sys.stdout.flush()


def initial_voltage(n):
    import numpy as np

    return np.random.default_rng(SEED).uniform(0.0, 1.0, n)


def case_name(n, delay):
    return f"N{n}_d{delay * 1e3:g}ms"


# ============================================================================ workers
def build_worker(args):
    """The network in float64 from spikeode's builder, saved for Brian2."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np

    import spikeode as so

    t0 = time.perf_counter()
    syn = so.Synapses.excitatory_inhibitory(
        SEED, args.n, k_exc=K_EXC, k_inh=K_INH, w_exc=W_EXC, w_inh=W_INH, delay=args.delay
    )
    build_s = time.perf_counter() - t0
    np.savez(
        os.path.join(args.dir, f"net_{case_name(args.n, args.delay)}.npz"),
        pre=np.asarray(syn.pre), post=np.asarray(syn.post),
        weight=np.asarray(syn.weight, np.float64), delay=np.asarray(syn.delay, np.float64),
        v0=initial_voltage(args.n),
    )  # fmt: skip
    return {"num_synapses": int(syn.num_synapses), "max_fan_out": int(syn.max_fan_out),
            "builder_s": build_s, "weight_dtype": str(syn.weight.dtype)}


def _neuron(so, n, dtype):
    """ExcInhLIF (or, if it is missing, LIF with one synaptic time constant)."""
    f = lambda x: dtype(x)  # noqa: E731
    if hasattr(so, "ExcInhLIF"):
        try:
            neuron = so.ExcInhLIF(
                n, tau_mem=f(TAU_MEM), tau_exc=f(TAU_EXC), tau_inh=f(TAU_INH),
                threshold=f(THRESHOLD), v_reset=f(V_RESET), bias=f(BIAS),
                refractory_period=f(REFRACTORY),
            )  # fmt: skip
            return neuron, "ExcInhLIF", None
        except Exception as e:  # being finished by a colleague
            why = f"ExcInhLIF failed: {type(e).__name__}: {e}"
    else:
        why = "spikeode has no ExcInhLIF"
    neuron = so.LIF(n, tau_mem=f(TAU_MEM), tau_syn=f(TAU_EXC), threshold=f(THRESHOLD),
                    v_reset=f(V_RESET), bias=f(BIAS), refractory_period=f(REFRACTORY))
    return neuron, "LIF (fallback: one synaptic time constant, 5 ms)", why


def _is_overflow(msg):
    return any(k in msg for k in ("max_spikes", "max_pending", "max_window_spikes",
                                  "max_window_events", "max_segments"))


def _short_error(e):
    msg = f"{type(e).__name__}: {e}"
    # keep the spikeode message, not the XLA traceback around it
    for line in str(e).splitlines():
        if "simulate:" in line:
            return f"{type(e).__name__}: {line[line.index('simulate:'):].strip()}"
    return msg[:1500]


def spikeode_worker(args):
    """Forward (or forward + gradient) of the network in spikeode, one precision."""
    import jax

    jax.config.update("jax_enable_x64", args.dtype == "float64")
    import equinox as eqx
    import jax.numpy as jnp
    import numpy as np

    import spikeode as so

    start = time.perf_counter()
    n, t1, delay = args.n, args.t1, args.delay
    dt = np.float64 if args.dtype == "float64" else np.float32
    t0 = time.perf_counter()
    syn = so.Synapses.excitatory_inhibitory(
        SEED, n, k_exc=K_EXC, k_inh=K_INH, w_exc=dt(W_EXC), w_inh=dt(W_INH), delay=dt(delay)
    )
    builder_s = time.perf_counter() - t0
    ref = np.load(os.path.join(args.dir, f"net_{case_name(n, delay)}.npz"))
    same = (np.array_equal(ref["pre"], np.asarray(syn.pre))
            and np.array_equal(ref["post"], np.asarray(syn.post)))
    neuron, model, fallback = _neuron(so, n, dt)
    y0 = np.zeros((n, neuron.state_size), dt)
    y0[:, 0] = initial_voltage(n)
    y0 = jnp.asarray(y0)

    windowed = delay > 0 and args.delay_loop == "windowed"
    coupled_dense = delay == 0 and args.zero_delay_form == "dense"
    zero_loop = "coupled" if coupled_dense else args.zero_delay_loop
    other_loop = args.delay_loop if delay > 0 else zero_loop
    caps = {"max_spikes": max(64, int(args.rate_bound * n * t1))}
    if windowed:
        caps["max_window_spikes"] = min(n, max(64, n // 8))
        caps["max_window_events"] = 16
        caps["max_pending"] = 2 * caps["max_window_spikes"] * max(1, syn.max_fan_out)

    # The windowed loop's outer loop (over windows) stores every window's carry for
    # reverse mode when that takes at most 256 MB and otherwise runs Equinox's
    # checkpointed loop, also for a forward-only call (where storing costs nothing).
    # The forward pass asks for every window (`checkpoints` = the number of windows):
    # the checkpointed form is slower. The gradient keeps spikeode's default
    # (`--grad-checkpoints` overrides it): storing every window of a large network for
    # 1 s would take many GB.
    num_windows = math.ceil(t1 / WINDOW - 1e-9)
    if not windowed:
        checkpoints = None
    elif args.mode == "forward":
        checkpoints = num_windows
    else:
        checkpoints = None if args.grad_checkpoints == "auto" else int(args.grad_checkpoints)

    res = {
        "dtype": args.dtype, "mode": args.mode, "model": model,
        "checkpoints": checkpoints,
        "loop": other_loop,
        "w_rec_form": "Synapses" if not coupled_dense else
        "dense matrix from the Synapses, delays=None (kick in the spike's jump)",
        "window_s": WINDOW if windowed else None,
        "num_synapses": int(syn.num_synapses), "max_fan_out": int(syn.max_fan_out),
        "network_arrays_match_build": bool(same), "builder_s": builder_s,
        "jax_version": version("jax"),
    }
    if fallback:
        res["model_fallback_reason"] = fallback

    def simulate(w, syn_arg, y0, caps):
        caps = dict(caps)
        max_spikes = caps.pop("max_spikes")
        if coupled_dense:
            w_rec = jnp.zeros((n, n), w.dtype).at[syn_arg.pre, syn_arg.post].add(w)
            return so.simulate(neuron, t1, w_rec=w_rec, y0=y0, loop=so.CoupledLoop(),
                               max_spikes=max_spikes)  # fmt: skip
        if windowed:
            s = eqx.tree_at(lambda s: s.weight, syn_arg, w)
            return so.simulate(neuron, t1, w_rec=s, y0=y0, max_spikes=max_spikes,
                               loop=so.WindowedLoop(window=WINDOW, **caps),
                               adjoint=so.DirectAdjoint(checkpoints=checkpoints))  # fmt: skip
        # the coupled loop converts Synapses to dense matrices (Synapses.to_dense), which
        # needs concrete indices, and the event loop needs the delays known to be zero:
        # close over the synapses instead of passing them (the weights are traced)
        s = eqx.tree_at(lambda s: s.weight, syn, w)
        loop = {"event": so.EventDrivenLoop, "coupled": so.CoupledLoop}[other_loop]()
        return so.simulate(neuron, t1, w_rec=s, y0=y0, loop=loop, max_spikes=max_spikes)

    def make(caps):
        def forward(w, syn_arg, y0):
            sim = simulate(w, syn_arg, y0, caps)
            return sim.spikes.times, sim.spikes.neurons, sim.num_segments

        def loss(w, syn_arg, y0):  # the sum of all spike times
            times, ids, segs = forward(w, syn_arg, y0)
            return jnp.sum(jnp.where(ids < n, times, 0.0)), (times, ids, segs)

        def forward_grad(w, syn_arg, y0):
            (value, (times, ids, segs)), grad = jax.value_and_grad(loss, has_aux=True)(
                w, syn_arg, y0)
            return times, ids, segs, value, grad

        return eqx.filter_jit(forward if args.mode == "forward" else forward_grad)

    syn_arg = syn if (windowed or coupled_dense) else None
    w = syn.weight
    res["retries"] = []
    for attempt in range(2):
        res["capacities"] = dict(caps)
        fn = make(caps)
        try:
            t0 = time.perf_counter()
            out = jax.block_until_ready(fn(w, syn_arg, y0))
            first = time.perf_counter() - t0
            break
        except Exception as e:  # noqa: BLE001
            msg = _short_error(e)
            if attempt == 0 and _is_overflow(msg):
                log(f"[spikeode] overflow, retrying with doubled capacities: {msg}")
                res["retries"].append({"capacities": dict(caps), "error": msg})
                caps = {k: (min(n, 2 * v) if k == "max_window_spikes" else 2 * v)
                        for k, v in caps.items()}
                continue
            res["error"] = msg
            res["max_rss_mb"] = max_rss_mb()
            res["status"] = "error"
            return res
    res["first_call_s"] = first
    res["max_rss_mb"] = max_rss_mb()
    times, ids = np.asarray(out[0]), np.asarray(out[1])
    valid = ids < n
    res["num_spikes"] = int(valid.sum())
    res["rate_hz"] = res["num_spikes"] / n / t1
    res["num_segments" if not windowed else "num_windows"] = int(out[2])
    if args.mode == "grad":
        g = np.asarray(out[4])
        res["loss"] = float(out[3])
        res["grad_finite"] = bool(np.all(np.isfinite(g)))
        res["grad_abs_max"] = float(np.abs(g).max())
        res["grad_nonzero"] = int((g != 0).sum())
    else:
        np.savez(os.path.join(args.dir, f"spikeode_{case_name(n, delay)}_{args.dtype}.npz"),
                 times=times[valid].astype(np.float64), ids=ids[valid].astype(np.int64))
    emit(res | {"partial": "first call only"})
    # steady calls: up to --repeats, while they fit in the time limit
    steady = []
    budget = args.timeout - (time.perf_counter() - start) - 10
    while len(steady) < args.repeats:
        last = steady[-1] if steady else first
        if len(steady) >= 1 and last > budget - sum(steady):
            break
        t0 = time.perf_counter()
        jax.block_until_ready(fn(w, syn_arg, y0))
        steady.append(time.perf_counter() - t0)
        res["steady_calls_s"] = steady
        res["run_s"] = min(steady)
        res["compile_s"] = first - min(steady)
        res["max_rss_mb"] = max_rss_mb()
        emit(res | {"partial": f"{len(steady)} steady calls"})
    res["compile_method"] = "first call minus the fastest steady call"
    return res


def brian2_worker(args):
    import numpy as np
    from _cuba_brian2 import run_brian2

    a = np.load(os.path.join(args.dir, f"net_{case_name(args.n, args.delay)}.npz"))
    net = dict(
        n=args.n, pre=a["pre"], post=a["post"], weight=a["weight"], delay=a["delay"],
        v0=a["v0"], ie0=0.0, ii0=0.0, tau_mem=TAU_MEM, tau_exc=TAU_EXC, tau_inh=TAU_INH,
        threshold=THRESHOLD, v_reset=V_RESET, bias=BIAS, refractory=REFRACTORY,
    )  # fmt: skip
    target, res = args.brian2_target, {}
    try:
        r = run_brian2(net, args.t1, args.dt, target)
    except Exception as e:  # noqa: BLE001
        if target != "cython":
            raise
        log(f"[brian2] cython target failed ({type(e).__name__}: {e}); numpy target")
        res["cython_error"] = f"{type(e).__name__}: {str(e)[:1000]}"
        r = run_brian2(net, args.t1, args.dt, "numpy")
    np.savez(os.path.join(args.dir, f"brian2_{case_name(args.n, args.delay)}_{args.dt:g}.npz"),
             times=r.pop("times"), ids=r.pop("ids"))
    res.update({
        "run_s": r["run_seconds"], "build_s": r["build_seconds"], "setup_s": r["setup_seconds"],
        "loop_s": r["loop_seconds"], "compiled_modules": r["compiled_modules"],
        "dt_s": r["dt"], "target": r["target"], "brian2_version": r["brian2_version"],
        "n_synapses": r["n_synapses"], "delay_steps": r["delay_steps"],
    })
    ids = np.load(os.path.join(
        args.dir, f"brian2_{case_name(args.n, args.delay)}_{args.dt:g}.npz"))["ids"]
    res["num_spikes"] = int(ids.size)
    res["rate_hz"] = ids.size / args.n / args.t1
    res["max_rss_mb"] = max_rss_mb()
    return res


def worker(args):
    t0 = time.perf_counter()
    sys.path.insert(0, HERE)
    if args.worker == "build":
        res = build_worker(args)
    elif args.worker == "spikeode":
        res = spikeode_worker(args)
    elif args.worker == "brian2":
        res = brian2_worker(args)
    else:
        raise ValueError(args.worker)
    res.setdefault("max_rss_mb", max_rss_mb())
    res["wall_time_s"] = time.perf_counter() - t0
    emit(res)


# ============================================================================= parent
def git_state():
    """The commit, and the files of spikeode/ changed in the working tree (with a hash
    of their diff): spikeode is benchmarked as it is in the working tree."""
    def git(*a):
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True,
                                  timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    import hashlib

    changed = git("status", "--porcelain", "--", "spikeode").splitlines()
    h = hashlib.sha256(git("diff", "HEAD", "--", "spikeode").encode())
    for line in changed:
        if line.startswith("??"):  # untracked: hash the contents
            try:
                with open(os.path.join(ROOT, line[3:].strip()), "rb") as f:
                    h.update(f.read())
            except OSError:
                pass
    return {"commit": git("rev-parse", "HEAD").strip() or None,
            "spikeode_changed_files": changed,
            "spikeode_changes_sha256": h.hexdigest()[:16] if changed else None}


def _text(x):
    if x is None:
        return ""
    return x.decode(errors="replace") if isinstance(x, bytes) else x


def run_child(args, kind, n, delay, extra=()):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--n", str(n),
           "--delay", repr(delay), "--t1", repr(args.t1), "--dir", args.dir,
           "--timeout", repr(args.timeout), "--repeats", str(args.repeats),
           "--rate-bound", repr(args.rate_bound), "--zero-delay-form", args.zero_delay_form,
           "--zero-delay-loop", args.zero_delay_loop, "--delay-loop", args.delay_loop,
           "--brian2-target", args.brian2_target, "--grad-checkpoints", args.grad_checkpoints,
           *extra]
    log(f"== {kind} N={n} delay={delay:g} {' '.join(extra)}")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=args.timeout)
        out, err, rc, status = proc.stdout, proc.stderr, proc.returncode, None
    except subprocess.TimeoutExpired as e:
        out, err, rc, status = _text(e.stdout), _text(e.stderr), None, "timeout"
    wall = time.perf_counter() - t0
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    res = lines[-1] if lines else {}
    if status == "timeout":
        res.update(status="timeout", timeout_s=args.timeout)
        res["stderr_tail"] = err[-1500:]
    elif rc != 0:
        res.update(status="error", returncode=rc, stderr_tail=err[-3000:])
    else:
        res.setdefault("status", "ok")
    res["subprocess_wall_s"] = wall
    log(f"   -> {res['status']} in {wall:.1f} s"
        + (f": {res['error']}" if "error" in res else "")
        + (f", run {res['run_s']:.3g} s" if res.get("run_s") is not None else "")
        + (f", {res['num_spikes']} spikes" if "num_spikes" in res else ""))
    return res


def compare(args, n, delay, approx_file, exact_file):
    import numpy as np
    from _cuba_brian2 import compare_trains

    pa, pe = os.path.join(args.dir, approx_file), os.path.join(args.dir, exact_file)
    if not (os.path.exists(pa) and os.path.exists(pe)):
        return {"status": "missing train"}
    a, e = np.load(pa), np.load(pe)
    r = compare_trains(e["times"], e["ids"], a["times"], a["ids"], n, tol=args.tol)
    div = r.pop("neuron_divergence")
    finite = lambda x: float(x) if np.isfinite(x) else None  # noqa: E731 (JSON: no inf/nan)
    return {
        "divergence_time": finite(r["divergence_time"]),  # None: never diverged
        "divergence_neuron": r["divergence_neuron"],
        "median_error": finite(r["median_error"]),
        "max_error": finite(r["max_error"]),
        "n_matched": r["n_matched"], "n_exact": r["n_exact"], "n_approx": r["n_approx"],
        "neurons_diverged_fraction": float(np.isfinite(div).mean()),
        "tol_s": args.tol,
    }


def run_case(args, n, delay, skip):
    """Every measurement of one (N, delay); `skip`: {measure: reason} (a smaller N
    timed out)."""
    case = {"n": n, "delay_s": delay, "t1_s": args.t1}
    case["build"] = run_child(args, "build", n, delay)
    if case["build"].get("status") != "ok":
        return case
    jobs = [("spikeode_float64", "spikeode", ("--dtype", "float64", "--mode", "forward")),
            ("spikeode_float32", "spikeode", ("--dtype", "float32", "--mode", "forward"))]
    if n <= args.grad_max_n:
        jobs.append(("spikeode_grad_float32", "spikeode",
                     ("--dtype", "float32", "--mode", "grad")))
    for dt in args.brian2_dts:
        jobs.append((f"brian2_dt{dt:g}", "brian2", ("--dt", repr(dt))))
    for name, kind, extra in jobs:
        key = (name, delay > 0)
        if key in skip and not args.no_skip:
            case[name] = {"status": "skipped", "reason": skip[key]}
            continue
        case[name] = run_child(args, kind, n, delay, extra)
        if case[name].get("status") == "timeout":
            skip[key] = f"timed out at N = {n} ({args.timeout:g} s)"
    cn = case_name(n, delay)
    acc = {}
    exact = f"spikeode_{cn}_float64.npz"
    for dt in args.brian2_dts:
        acc[f"brian2_dt{dt:g}"] = compare(args, n, delay, f"brian2_{cn}_{dt:g}.npz", exact)
    acc["spikeode_float32"] = compare(args, n, delay, f"spikeode_{cn}_float32.npz", exact)
    case["accuracy_vs_spikeode_float64"] = acc
    return case


def fmt(x, spec=".3g"):
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    return format(x, spec)


def summary(report):
    """The summary table (markdown)."""
    rows = ["| N | delay | measure | status | run (s) | compile / build (s) | peak RSS (MB) "
            "| spikes | rate (Hz) | vs spikeode float64: divergence (s) / median / max "
            "error (s) |",
            "| ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for case in report["cases"]:
        acc = case.get("accuracy_vs_spikeode_float64", {})
        for name, r in case.items():
            if not isinstance(r, dict) or name in ("build", "accuracy_vs_spikeode_float64"):
                continue
            status = r.get("status", "?")
            if status == "timeout":
                status = f"timeout ({r['timeout_s']:g} s)"
            elif status == "error":
                status = "error: " + (r.get("error") or r.get("stderr_tail", "")[-200:]).replace(
                    "|", "/").replace("\n", " ")[:160]
            if r.get("retries"):
                status += f" (retried: {len(r['retries'])})"
            a = acc.get(name, {})
            if a.get("status") == "missing train" or not a:
                err = "-" if name != "spikeode_float64" else "(reference)"
            else:
                div = "none" if a["divergence_time"] is None else f"{a['divergence_time']:.4g}"
                err = f"{div} / {fmt(a['median_error'], '.2g')} / {fmt(a['max_error'], '.2g')}"
            comp = r.get("compile_s", r.get("build_s"))
            rows.append(
                f"| {case['n']} | {case['delay_s'] * 1e3:g} ms | {name} | {status} | "
                f"{fmt(r.get('run_s'))} | {fmt(comp)} | {fmt(r.get('max_rss_mb'), '.0f')} | "
                f"{fmt(r.get('num_spikes'), 'd')} | {fmt(r.get('rate_hz'), '.2f')} | {err} |")
    return "\n".join(rows)


def plot(path_json, path_fig):
    """The figure from one JSON, or several (comma-separated) of the same trial length:
    their cases together, a later file's (N, delay) replacing an earlier one's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reports = []
    for path in path_json.split(","):
        with open(path) as f:
            reports.append(json.load(f))
    report = reports[-1]
    if len({r["config"]["t1_s"] for r in reports}) > 1:
        raise SystemExit("--plot: the JSON files have different trial lengths")
    cases = {(c["n"], c["delay_s"]): c for r in reports for c in r["cases"]}
    report = dict(report, cases=list(cases.values()), config=dict(
        report["config"], sizes=sorted({n for n, _ in cases}),
        timeout_s=max(r["config"]["timeout_s"] for r in reports)))
    t1 = report["config"]["t1_s"]
    series = {  # measure -> (label, colour, marker)
        "spikeode_float32": ("spikeode float32", "C0", "o"),
        "spikeode_float64": ("spikeode float64", "C1", "s"),
        "spikeode_grad_float32": ("spikeode fwd+grad float32", "C2", "^"),
        "brian2_dt0.0001": ("Brian2 dt 0.1 ms", "C3", "v"),
        "brian2_dt1e-05": ("Brian2 dt 0.01 ms", "C4", "D"),
    }
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.2))
    lim = report["config"]["timeout_s"]
    for delay, ls, fill in ((True, "-", None), (False, "--", "white")):
        for key, (label, colour, marker) in series.items():
            pts = sorted((c["n"], c[key]) for c in report["cases"]
                         if (c["delay_s"] > 0) == delay and isinstance(c.get(key), dict))
            for ax, field in zip(axes, ("run_s", "max_rss_mb")):
                xy = [(n, r[field]) for n, r in pts if r.get(field) is not None
                      and r.get("status") == "ok"]
                if xy:
                    x, y = zip(*xy)
                    ax.plot(x, y, ls=ls, color=colour, marker=marker, ms=6, mfc=fill,
                            label=f"{label}, delay {'1 ms' if delay else '0'}" if ax is axes[0]
                            else None)
            # timeouts: a cross at the time limit
            tos = [n for n, r in pts if r.get("status") == "timeout"]
            if tos:
                axes[0].plot(tos, [lim] * len(tos), ls="none", marker="x", ms=7, color=colour)
    sizes = report["config"]["sizes"]
    axes[0].set_ylabel(f"wall time of one {t1:g} s simulation (s)")
    axes[1].set_ylabel("peak RSS of the process (MB)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(min(sizes) / 2, max(sizes) * 2)
        ax.set_xlabel("neurons N (in-degree 80)")
        ax.grid(True, which="both", alpha=0.3)
    fig.legend(loc="lower center", ncol=3, fontsize=7.5, frameon=False)
    note = " (quick run)" if report["config"].get("quick") else ""
    cfg = report["config"]
    loops = (f"spikeode's loop: {cfg.get('delay_loop', 'windowed')} (delay 1 ms), "
             f"{cfg.get('zero_delay_loop', 'coupled')} (delay 0)")
    fig.suptitle(f"CUBA network, {t1:g} s: spikeode vs Brian2{note}; solid: delay 1 ms, "
                 f"dashed/hollow: delay 0; x: timed out ({lim:g} s)\n{loops}", fontsize=10)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    os.makedirs(os.path.dirname(path_fig), exist_ok=True)
    fig.savefig(path_fig, dpi=110)
    log(f"wrote {path_fig}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="network sizes N")
    parser.add_argument("--t1", type=float, default=1.0, help="simulated time (s)")
    parser.add_argument("--quick", action="store_true", help="N = 1000, t1 = 0.2 s (smoke test)")
    parser.add_argument("--zero-delay-max-n", type=int, default=ZERO_DELAY_MAX_N,
                        help="also run delay 0 (coupled loop) up to this N")
    parser.add_argument("--grad-max-n", type=int, default=GRAD_MAX_N,
                        help="measure forward + gradient up to this N")
    parser.add_argument("--brian2-dts", default=",".join(map(repr, BRIAN2_DTS)),
                        help="Brian2 time steps (s)")
    parser.add_argument("--brian2-target", default="cython", choices=("cython", "numpy"))
    parser.add_argument("--repeats", type=int, default=3, help="steady calls per measure (at most)")
    parser.add_argument("--timeout", type=float, default=600, help="per subprocess (s)")
    parser.add_argument("--rate-bound", type=float, default=60.0,
                        help="Hz; max_spikes = rate bound x N x t1")
    parser.add_argument("--tol", type=float, default=1e-3,
                        help="compare_trains tolerance (s) for the divergence time")
    parser.add_argument("--delay-loop", choices=("windowed", "event"), default="event",
                        help="spikeode's loop for the 1 ms delay (default: event, "
                             "what simulate's default loop is)")
    parser.add_argument("--delays", default="1,0",
                        help="delays to run, in ms (default 1,0; 1 is the only positive "
                             "delay the windowed loop's window fits)")
    parser.add_argument("--zero-delay-loop", choices=("event", "coupled"), default="event",
                        help="spikeode's loop for delay 0 (default: event)")
    parser.add_argument("--zero-delay-form", choices=("dense", "synapses"), default="synapses",
                        help="delay 0: dense w_rec without delays, or Synapses with delay 0")
    parser.add_argument("--grad-checkpoints", default="auto",
                        help="windowed loop, gradient: `checkpoints` of simulate ('auto': "
                        "spikeode's default; the forward pass stores every window)")
    parser.add_argument("--no-skip", action="store_true",
                        help="run every N even after a measure timed out at a smaller one")
    parser.add_argument("--out", default=DEFAULT_OUT, help="JSON results")
    parser.add_argument("--plot", action="store_true",
                        help=f"only write the figure ({os.path.relpath(DEFAULT_FIGURE, ROOT)}) "
                        "from --out (several JSON files: comma-separated)")
    parser.add_argument("--figure", default=DEFAULT_FIGURE)
    parser.add_argument("--keep-trains", default=None,
                        help="directory to keep the spike trains in (default: a temporary one)")
    # worker options
    parser.add_argument("--worker", choices=("build", "spikeode", "brian2"), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--delay", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="forward", help=argparse.SUPPRESS)
    parser.add_argument("--dt", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.plot:
        return plot(args.out, args.figure)
    if args.quick:
        args.sizes, args.t1 = "1000", 0.2
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    args.brian2_dts = [float(x) for x in args.brian2_dts.split(",") if x.strip()]
    delays = [float(d) * 1e-3 for d in args.delays.split(",")]
    cases = [(n, d) for d in delays if d > 0 for n in sizes] + [
        (n, 0.0) for n in sizes if 0.0 in delays and n <= args.zero_delay_max_n]

    wall0 = time.perf_counter()
    args.dir = args.keep_trains or tempfile.mkdtemp(prefix="cuba_")
    os.makedirs(args.dir, exist_ok=True)
    report = {
        "benchmark": "cuba",
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.executable), "benchmarks/cuba.py",
                             *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine_info(),
        "git": git_state(),
        "versions": {k: version(k) for k in ("spikeode", "jax", "jaxlib", "equinox", "diffrax",
                                             "brian2", "numpy", "cython")},
        "config": {
            "quick": args.quick, "sizes": sizes, "t1_s": args.t1, "timeout_s": args.timeout,
            "repeats": args.repeats, "rate_bound_hz": args.rate_bound, "tol_s": args.tol,
            "brian2_dts_s": args.brian2_dts, "brian2_target": args.brian2_target,
            "zero_delay_max_n": args.zero_delay_max_n, "grad_max_n": args.grad_max_n,
            "zero_delay_form": args.zero_delay_form, "zero_delay_loop": args.zero_delay_loop,
            "delay_loop": args.delay_loop, "delays_ms": args.delays,
            "grad_checkpoints": args.grad_checkpoints,
            "network": {
                "model": "ExcInhLIF (Vogels-Abbott CUBA, units of the threshold distance)",
                "tau_mem_s": TAU_MEM, "tau_exc_s": TAU_EXC, "tau_inh_s": TAU_INH,
                "threshold": THRESHOLD, "v_reset": V_RESET, "bias": BIAS,
                "refractory_s": REFRACTORY, "k_exc": K_EXC, "k_inh": K_INH, "w_exc": W_EXC,
                "w_inh": W_INH, "frac_exc": 0.8, "seed": SEED,
                "connectivity": "Synapses.excitatory_inhibitory (fixed in-degree, no "
                "self-connections)", "v0": "uniform [0, 1), numpy default_rng(0); currents 0",
                "window_s": WINDOW,
            },
        },
        "notes": {
            "run_s": "spikeode: the fastest steady call of the jitted simulation; Brian2: "
            "wall time of net.run(t1), compiled code cached",
            "compile_s": "spikeode: first call minus the fastest steady call",
            "build_s": "Brian2: first build including code generation (and Cython compilation "
            "unless cached: compiled_modules)",
            "max_rss_mb": "peak RSS (getrusage ru_maxrss) of the subprocess that ran only "
            "this measure",
            "accuracy": "compare_trains against spikeode's float64 train: per neuron, k-th "
            "spike against k-th spike; divergence = the first spike off by more than tol "
            "(or missing/extra); errors over matched spikes before it. Brian2's times are "
            "the start of the step of each crossing (not shifted)",
            "timeout": "status 'timeout': the subprocess was killed at the time limit; "
            "fields present were measured before it (partial)",
        },
        "cases": [],
    }
    skip = {}
    try:
        for n, delay in cases:
            report["cases"].append(run_case(args, n, delay, skip))
            report["wall_time_s"] = time.perf_counter() - wall0
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            with open(args.out, "w") as f:  # after every case: a partial file survives
                json.dump(report, f, indent=2)
                f.write("\n")
    finally:
        if not args.keep_trains:
            shutil.rmtree(args.dir, ignore_errors=True)
    report["wall_time_s"] = time.perf_counter() - wall0
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    log(f"wrote {args.out} ({report['wall_time_s']:.0f} s)")
    print(summary(report))


if __name__ == "__main__":
    main()

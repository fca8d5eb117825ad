"""Scaling study: cost of `spikeode.simulate` on a recurrent LIF network.

The network is the one of `benchmarks/recurrent_lif.py` (current-based LIF,
tau_mem = 50 ms, tau_syn = 10 ms, threshold 1, reset 0, heterogeneous constant bias,
random recurrent weights w_rec ~ N(0, 1/N) with a zero diagonal, float64, fixed seeds);
its parameters, loss and compile/memory helpers are imported from that file. Three
sweeps:

- `neurons`: N = 10, 30, 100, 300, 1000 recurrent neurons, 1 s trial, bias as in
  `recurrent_lif.py` (about 10 spikes per neuron);
- `rate`: N = 100, 1 s trial, the bias raised so that spikes per neuron go from
  about 1.4 to 30 (target rates r = 1.5, 3, 6, 15, 30 Hz: each neuron's bias is the
  one that would make it fire alone at a rate drawn uniformly in [0.7 r, 1.3 r]); the
  ~10 Hz point is the N = 100 point of the `neurons` sweep;
- `duration`: N = 30, trials of 1, 3, 10, 30 and 100 s at the `recurrent_lif.py`
  bias (the spike buffer `max_spikes` grows with the trial); the 1 s point is the
  N = 30 point of the `neurons` sweep.

Every point measures, for the forward pass and for forward+gradient (of the
`recurrent_lif.py` loss, a smooth function of the spike times, with respect to the
recurrent weights and the bias), by two gradient methods, each under two
checkpointing configurations of the loop over segments (`GRADS`):

- differentiating through the solver (`simulate`'s default) or the continuous adjoint
  `spikeode.EventPropAdjoint()`;
- `default`: `simulate`'s default (a checkpoint per segment when that takes at most
  64 MB, else Equinox's automatic scheme of about sqrt(2 * max_segments) checkpoints);
  `lean`: `checkpoints=16` (memory independent of the number of segments, more
  recomputation in the backward pass).

For each compiled function: trace+lower and XLA compile times (`eqx.filter_jit(...)
.lower(...).compile()`), the median wall time of repeated calls after the first, and
XLA's memory analysis of the executable (temp + argument + output - alias bytes).
Also the number of spikes and segments, and the process's peak RSS (each point runs in
a fresh subprocess; within it the forward and then the `GRADS` functions are compiled
and run in that order, so the RSS high-water mark after each is cumulative). `--quick`
runs its four tiny points in the parent process (no subprocesses) to stay under a
minute.

The spike buffer is sized from the expected spike count (x 1.5, plus 64) and doubled
(and the forward recompiled) if it overflows; `max_segments` keeps its default,
2 * max_spikes + 4.

Prints the JSON on stdout (progress on stderr). The full study also writes
benchmarks/results/scaling.json and docs/figures/scaling.png; `--quick` and `--only`
write files only where `--out` / `--figure` say.

Usage:

    python benchmarks/scaling.py            # full study (~6 minutes on 2 shared cores)
    python benchmarks/scaling.py --quick    # tiny sizes, a smoke test (< 1 minute)
    python benchmarks/scaling.py --only neurons --no-plot   # one sweep
    python benchmarks/scaling.py --memory   # each gradient alone in a process: memory
                                            # vs trial length (5-7 minutes)
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import recurrent_lif as rl  # noqa: E402  (also turns on jax_enable_x64)

LEAN_CHECKPOINTS = 16
# The gradient configurations measured at every point: (key, simulate options, label).
GRADS = (
    ("forward_grad_default", {}, "solver diff, default checkpoints"),
    ("forward_grad_lean", {"checkpoints": LEAN_CHECKPOINTS},
     f"solver diff, checkpoints={LEAN_CHECKPOINTS}"),
    ("forward_grad_eventprop", {"eventprop": True}, "EventProp, default checkpoints"),
    ("forward_grad_eventprop_lean", {"eventprop": True, "checkpoints": LEAN_CHECKPOINTS},
     f"EventProp, checkpoints={LEAN_CHECKPOINTS}"),
)  # fmt: skip


def simulate_options(grad: dict) -> dict:
    """The `simulate` options of a GRADS entry: its gradient method."""
    if not grad:
        return {}
    method = rl.so.EventPropAdjoint if grad.get("eventprop") else rl.so.DirectAdjoint
    return {"adjoint": method(checkpoints=grad.get("checkpoints"))}


TIMED = ("forward",) + tuple(key for key, _, _ in GRADS)
BASE_RATE_HZ = 10.0  # about what the recurrent_lif.py bias gives (measured: see JSON)


# ----------------------------------------------------------------------------- points
def bias_range_for_rate(rate_hz: float, tau_mem: float = 0.05, threshold: float = 1.0):
    """Bias range whose ends make an isolated LIF neuron (reset 0) fire at 0.7 and 1.3
    times `rate_hz`: period T = tau ln(b / (b - threshold))."""

    def bias(r):
        return threshold / -math.expm1(-1.0 / (r * tau_mem))

    return bias(0.7 * rate_hz), bias(1.3 * rate_hz)


def point(studies, n, t1, expected_rate_hz, bias=None, quick=False):
    """One network; `studies` are the sweeps it belongs to (a point can serve several:
    the N = 100 point of the `neurons` sweep is the ~10 Hz point of the `rate` sweep,
    the 1 s point of the `duration` sweep is a point of the `neurons` sweep)."""
    bias_low, bias_high = bias if bias is not None else (rl.FULL.bias_low, rl.FULL.bias_high)
    expected = n * expected_rate_hz * t1
    return {
        "studies": list(studies),
        "num_neurons": n,
        "t1": t1,
        "bias_low": bias_low,
        "bias_high": bias_high,
        "max_spikes": int(math.ceil(1.5 * expected)) + 64,
        "quick": quick,
    }


def make_points(quick: bool):
    if quick:  # 4 points, each shared where possible
        n_rate, n_dur = 10, 10
        neurons, t1s, rates, t1_base = (5, 10), (0.3, 1.0), (30.0,), 0.3
    else:
        n_rate, n_dur = 100, 30
        neurons, t1s, rates, t1_base = (10, 30, 100, 300, 1000), (1.0, 3.0, 10.0, 30.0, 100.0), (
            1.5, 3.0, 6.0, 15.0, 30.0), 1.0
    pts = []
    for n in neurons:
        studies = ["neurons"]
        studies += ["rate"] if n == n_rate else []
        studies += ["duration"] if n == n_dur and t1_base in t1s else []
        pts.append(point(studies, n, t1_base, BASE_RATE_HZ, quick=quick))
    for r in rates:
        pts.append(point(["rate"], n_rate, t1_base, r, bias_range_for_rate(r), quick=quick))
    for t1 in t1s:
        if not (t1 == t1_base and n_dur in neurons):
            pts.append(point(["duration"], n_dur, t1, BASE_RATE_HZ, quick=quick))
    return pts


# ----------------------------------------------------------------------------- worker
def time_calls(fn, args, first_s, budget_s, max_reps, min_reps=3):
    """Median of repeated calls: as many as fit in `budget_s` (from the first call's
    duration), at least `min_reps`, at most `max_reps`."""
    reps = max(min_reps, min(max_reps, int(budget_s / max(first_s, 1e-6))))
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        samples.append(time.perf_counter() - t0)
    return {
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "samples": len(samples),
        "first_call_s": first_s,
    }


def measure(fn, args, budget_s, max_reps):
    compiled, timing, mem = rl.compile_fn(fn, args)
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    first = time.perf_counter() - t0
    return out, compiled, {
        "compile": timing,
        "memory": mem,
        "run": time_calls(compiled, args, first, budget_s, max_reps),
        "max_rss_mb_after": rl.max_rss_mb(),
    }


def checkpoint_rule(n: int, max_segments: int):
    """What `simulate` picks when `checkpoints=None` (mirrors the coupled loop: the
    carry is t, y (n x 2) and refr_until (n), plus 64 bytes)."""
    from spikeode._gradients import _FULL_STORE_BYTES

    carry_bytes = 64 + 8 + 8 * 2 * n + 8 * n
    full = max_segments * carry_bytes <= _FULL_STORE_BYTES
    # equinox.internal.checkpointed_while_loop's default for checkpoints=None
    auto = math.floor(-1.5 + math.sqrt(2 * max_segments + 0.25)) + 1
    return {
        "carry_bytes": carry_bytes,
        "default_scheme": "every segment" if full else "equinox automatic (~sqrt)",
        "default_checkpoints": max_segments if full else auto,
        "every_segment_bytes": max_segments * carry_bytes,
    }


def worker(pt: dict) -> dict:
    budget, max_reps = (0.3, 5) if pt["quick"] else (3.0, 25)
    max_spikes = pt["max_spikes"]
    while True:
        cfg = dataclasses.replace(
            rl.FULL,
            num_neurons=pt["num_neurons"],
            t1=pt["t1"],
            bias_low=pt["bias_low"],
            bias_high=pt["bias_high"],
            max_spikes=max_spikes,
        )
        params = rl.make_params(cfg)
        fwd_fn, grad_default_fn = rl.make_spikeode_fns(cfg, {})
        try:
            fwd_out, _, fwd = measure(fwd_fn, (params,), budget, max_reps)
            break
        except Exception as e:  # an overflowing spike buffer: double it
            if "max_spikes" not in str(e):
                raise
            rl.log(f"  buffer of {max_spikes} spikes overflowed; doubling")
            max_spikes *= 2
    grads, grad_outs = {}, {}
    for key, grad, _ in GRADS:
        options = simulate_options(grad)
        fn = rl.make_spikeode_fns(cfg, options)[1] if options else grad_default_fn
        grad_outs[key], _, grads[key] = measure(fn, (params,), budget, max_reps)
    default_out = grad_outs["forward_grad_default"]

    n = cfg.num_neurons
    neurons = np.asarray(fwd_out["neurons"])
    num_spikes = int((neurons < n).sum())
    max_segments = 2 * max_spikes + 4
    g_def = default_out[1]

    def rel_diff(key):
        g = grad_outs[key][1]
        return max(
            float(np.max(np.abs(g[k] - g_def[k])) / max(np.max(np.abs(g_def[k])), 1e-300))
            for k in g_def
        )
    counts = np.bincount(neurons[neurons < n], minlength=n)
    segs = max(int(fwd_out["num_segments"]), 1)
    timed = {"forward": fwd} | grads
    per_segment_us = {k: 1e6 * v["run"]["median_s"] / segs for k, v in timed.items()}
    return pt | {
        "max_spikes": max_spikes,
        "max_segments": max_segments,
        "num_spikes": num_spikes,
        "spikes_per_neuron": num_spikes / n,
        "silent_neurons": int((counts == 0).sum()),
        "num_segments": int(fwd_out["num_segments"]),
        "checkpointing": checkpoint_rule(n, max_segments)
        | {"lean_checkpoints": LEAN_CHECKPOINTS},
        "time_per_segment_us": per_segment_us,
        # the spike record: output times, ids and slopes (8 + 4 + 8 bytes per spike)
        "spike_record_bytes": 20 * max_spikes,
        **timed,
        "grad_vs_default_max_rel_diff": {key: rel_diff(key) for key, _, _ in GRADS[1:]},
        "loss": float(default_out[0]),
    }


# ---------------------------------------------------------------------- memory sweep
# `--memory`: the gradient methods' memory against trial length, each (point, method)
# alone in a fresh process, so that its peak RSS is its own and not cumulative.
MEMORY_NEURONS = (30, 100)
MEMORY_T1S = (1.0, 10.0, 100.0)
MEMORY_GRADS = ("forward_grad_eventprop_lean", "forward_grad_eventprop", "forward_grad_default")


def memory_worker(pt: dict) -> dict:
    """Compile and run one gradient (`pt["grad"]`, a key of `GRADS`) at one point, and
    nothing else before it: the process's peak RSS, XLA's memory analysis split into
    its parts, and the spike count (from a forward pass run after the measurement)."""
    rss_imports = rl.max_rss_mb()
    cfg = dataclasses.replace(
        rl.FULL, num_neurons=pt["num_neurons"], t1=pt["t1"], bias_low=pt["bias_low"],
        bias_high=pt["bias_high"], max_spikes=pt["max_spikes"],
    )  # fmt: skip
    options = simulate_options(next(o for key, o, _ in GRADS if key == pt["grad"]))
    params = rl.make_params(cfg)
    compiled, timing, mem = rl.compile_fn(rl.make_spikeode_fns(cfg, options)[1], (params,))
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(params))
    seconds = time.perf_counter() - t0
    rss = rl.max_rss_mb()
    neurons = np.asarray(rl.make_spikeode_fns(cfg, {})[0](params)["neurons"])
    return pt | {
        "num_spikes": int((neurons < cfg.num_neurons).sum()),
        "memory": mem,
        "compile": timing,
        "first_call_s": seconds,
        "max_rss_mb": rss,
        "max_rss_mb_after_imports": rss_imports,
        "spike_record_bytes": 20 * cfg.max_spikes,
    }


def memory_sweep(quick: bool = False) -> list[dict]:
    neurons, t1s, grads = (
        ((10,), (0.3, 3.0), MEMORY_GRADS[:1]) if quick
        else (MEMORY_NEURONS, MEMORY_T1S, MEMORY_GRADS)
    )  # fmt: skip
    results = []
    for n in neurons:
        for t1 in t1s:
            for grad in grads:
                pt = point(["memory"], n, t1, BASE_RATE_HZ, quick=quick) | {"grad": grad}
                rl.log(f"[memory] N={n} t1={t1:g} s {grad}")
                proc = subprocess.run(
                    [sys.executable, __file__, "--memory-worker", json.dumps(pt)],
                    stdout=subprocess.PIPE, text=True,
                )  # fmt: skip
                if proc.returncode != 0:
                    results.append(pt | {"error": f"worker exit code {proc.returncode}"})
                    continue
                res = json.loads(proc.stdout)
                rl.log(f"  {res['num_spikes']} spikes: peak RSS {res['max_rss_mb']:.0f} MB "
                       f"(after imports {res['max_rss_mb_after_imports']:.0f}), XLA "
                       f"{res['memory']['peak_bytes'] / 2**20:.2f} MB")  # fmt: skip
                results.append(res)
    return results


# ------------------------------------------------------------------------------ plot
def plot(report: dict, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    pts = [p for p in report["points"] if "error" not in p]
    fig, axes = plt.subplots(1, 3, figsize=(16, 6.2))
    series = [("forward", "forward", "C0", "o")] + [
        (key, label, f"C{i + 1}", "s^Dv"[i]) for i, (key, _, label) in enumerate(GRADS)
    ]
    panels = [
        ("neurons", "num_neurons", "recurrent neurons N",
         "(a) time vs N ({t1:g} s trial, ~10 Hz)"),
        ("rate", "spikes_per_neuron", "spikes per neuron (measured)",
         "(b) time vs spikes/neuron (N = {n}, {t1:g} s trial)"),
        ("duration", "t1", "trial length [s]",
         "(c) time (solid) and XLA memory (dashed) vs trial length (N = {n})"),
    ]  # fmt: skip
    plain = FuncFormatter(lambda v, _: f"{v:.3g}" if v < 1000 else f"{v:.0f}")
    for ax, (study, xkey, xlabel, title) in zip(axes, panels):
        sel = sorted((p for p in pts if study in p["studies"]), key=lambda p: p[xkey])
        if not sel:
            ax.set_visible(False)
            continue
        xs = np.array([p[xkey] for p in sel], float)
        for key, label, color, marker in series:
            ys = [p[key]["run"]["median_s"] for p in sel]
            ax.loglog(xs, ys, "-", color=color, marker=marker, label=label)
        # points where the default fell back to equinox's ~sqrt(2 max_segments) scheme
        auto = [p for p in sel if p["checkpointing"]["default_scheme"] != "every segment"]
        if auto:
            ax.loglog([p[xkey] for p in auto],
                      [p["forward_grad_default"]["run"]["median_s"] for p in auto],
                      "o", ms=14, mfc="none", mec="k",
                      label="default > 64 MB: ~sqrt(2 max_segments) checkpoints")  # fmt: skip
        # reference slopes through the first forward point
        y0 = sel[0]["forward"]["run"]["median_s"]
        xr = np.array([xs[0], xs[-1]])
        ax.loglog(xr, y0 * (xr / xs[0]), ":", color="gray", lw=1, label="slope 1")
        ax.loglog(xr, y0 * (xr / xs[0]) ** 2, "--", color="gray", lw=1, label="slope 2")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("median wall time per call [s]")
        ax.set_title(title.format(n=sel[0]["num_neurons"], t1=sel[0]["t1"]), fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if study == "duration":
            ax2 = ax.twinx()
            for key, label, color, marker in series:
                label = f"memory, {label}"
                mb = [p[key]["memory"]["peak_bytes"] / 2**20 for p in sel]
                ax2.loglog(xs, mb, "--", color=color, marker=marker, mfc="none", label=label)
            ax2.set_ylabel("XLA memory: temp + args + out [MB]")
            h2, l2 = ax2.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        ax.set_xticks(xs)
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend(handles, labels, fontsize=7.5, loc="upper center", ncol=2,
                  bbox_to_anchor=(0.5, -0.13), frameon=False)
    meta = report["meta"]
    fig.suptitle(
        f"spikeode.simulate on a recurrent LIF network (float64, CPU, "
        f"{meta['machine']['cpu_count_usable']} cores shared with other jobs), "
        f"{meta['date']}" + ("  [--quick]" if report["quick"] else ""),
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------- main
def fit_slope(xs, ys):
    """Least-squares slope of log y against log x."""
    if len(xs) < 2:
        return None
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def slopes(points):
    out = {}
    for study, xkey in (("neurons", "num_neurons"), ("rate", "spikes_per_neuron"),
                        ("duration", "t1")):  # fmt: skip
        sel = sorted((p for p in points if study in p["studies"] and "error" not in p),
                     key=lambda p: p[xkey])
        if len(sel) < 2:
            continue
        xs = [p[xkey] for p in sel]
        d = {}
        for key in TIMED:
            d[f"{key}_time"] = fit_slope(xs, [p[key]["run"]["median_s"] for p in sel])
            d[f"{key}_memory"] = fit_slope(xs, [p[key]["memory"]["peak_bytes"] for p in sel])
        d["num_spikes"] = fit_slope(xs, [p["num_spikes"] for p in sel])
        out[study] = {"x": xkey} | d
    return out


def git_commit():
    """The checked-out commit (read-only `git rev-parse`), or None."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=10)  # fmt: skip
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--only", default=None, help="comma-separated: neurons,rate,duration")
    parser.add_argument("--out", default=None,
                        help="JSON path (default: benchmarks/results/scaling.json for the "
                        "full study; not written with --quick or --only unless given)")
    parser.add_argument("--figure", default=None,
                        help="PNG path (default: docs/figures/scaling.png, same rule)")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--in-process", action="store_true",
                        help="run the points in this process (RSS numbers then cumulative); "
                        "the default with --quick")
    parser.add_argument("--subprocess", action="store_true",
                        help="one fresh subprocess per point (the default without --quick)")
    parser.add_argument("--memory", action="store_true",
                        help="only the memory sweep: each gradient method alone in a fresh "
                        "process at N = 30 and 100 for 1, 10 and 100 s trials (with "
                        "--quick: N = 10, 0.3 and 3 s, EventProp with 16 checkpoints); "
                        "writes benchmarks/results/scaling_memory.json unless --out or "
                        "--quick is given")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--memory-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker is not None:
        json.dump(worker(json.loads(args.worker)), sys.stdout)
        return
    if args.memory_worker is not None:
        json.dump(memory_worker(json.loads(args.memory_worker)), sys.stdout)
        return
    if args.memory:
        wall0 = time.perf_counter()
        report = {
            "benchmark": "scaling memory",
            "command": " ".join(
                ["python benchmarks/scaling.py", *(sys.argv[1:] if argv is None else argv)]
            ),
            "meta": {
                "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "git_commit": git_commit(),
                "machine": rl.machine_info(),
            },
            "notes": {
                "max_rss_mb": "peak RSS of a fresh process that imported JAX and spikeode, "
                "compiled the gradient and called it once (nothing else)",
                "memory": "XLA memory_analysis of the gradient's executable (bytes)",
                "spike_record_bytes": "20 bytes per slot of the spike buffer (the output "
                "spike train: times, ids, slopes); max_spikes = 1.5 x expected + 64",
            },
            "points": memory_sweep(args.quick),
        }
        report["meta"]["wall_time_s"] = time.perf_counter() - wall0
        out = args.out or (None if args.quick else HERE / "results" / "scaling_memory.json")
        if out:
            Path(out).write_text(json.dumps(report, indent=2) + "\n")
            rl.log(f"wrote {out}")
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return

    wall0 = time.perf_counter()
    load_before = os.getloadavg()
    pts = make_points(args.quick)
    if args.only:
        keep = {s.strip() for s in args.only.split(",")}
        pts = [p for p in pts if keep & set(p["studies"])]
    in_process = args.in_process or (args.quick and not args.subprocess)
    results = []
    for i, pt in enumerate(pts):
        t0 = time.perf_counter()
        rl.log(f"[{i + 1}/{len(pts)}] {'+'.join(pt['studies'])}: N={pt['num_neurons']} "
               f"t1={pt['t1']} bias=[{pt['bias_low']:.4g}, {pt['bias_high']:.4g}]")  # fmt: skip
        if in_process:
            res = worker(pt)
        else:
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", json.dumps(pt)],
                stdout=subprocess.PIPE,
                text=True,
            )
            if proc.returncode != 0:
                rl.log(f"  worker failed (exit {proc.returncode})")
                results.append(pt | {"error": f"worker exit code {proc.returncode}"})
                continue
            res = json.loads(proc.stdout)
            res["process_max_rss_mb"] = res[TIMED[-1]]["max_rss_mb_after"]
        results.append(res)
        costs = ", ".join(
            f"{k.removeprefix('forward_grad_')} {1e3 * res[k]['run']['median_s']:.1f} ms / "
            f"{res[k]['memory']['peak_bytes'] / 2**20:.2f} MB" for k in TIMED
        )
        rl.log(f"  {res['num_spikes']} spikes ({res['spikes_per_neuron']:.1f}/neuron), "
               f"{res['num_segments']} segments; {costs} [{time.perf_counter() - t0:.0f} s]")

    report = {
        "benchmark": "scaling",
        "quick": args.quick,
        "command": " ".join(
            ["python benchmarks/scaling.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "meta": {
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "git_commit": git_commit(),
            "versions": {
                "spikeode": getattr(rl.so, "__version__", None),
                "jax": jax.__version__,
                "jaxlib": rl.version("jaxlib"),
                "diffrax": rl.version("diffrax"),
                "equinox": rl.version("equinox"),
            },
            "machine": rl.machine_info()
            | {"load_average_before": load_before, "load_average_after": os.getloadavg()},
            "wall_time_s": None,
        },
        "network": {
            "model": "spikeode.LIF, tau_mem 50 ms, tau_syn 10 ms, threshold 1, reset 0",
            "w_rec": "N(0, 1/N), zero diagonal, seed 0",
            "loss": "sum_k sin(2 pi 3 Hz t_k + 0.1 n_k) over the spikes; gradient wrt "
            "w_rec and bias",
            "dtype": "float64",
        },
        "notes": {
            "run.median_s": "median wall time of repeated calls of the compiled "
            "function, after a first call",
            "memory.peak_bytes": "XLA memory_analysis of the executable: temp + argument "
            "+ output - alias bytes; static, so set by the buffer sizes (max_spikes, "
            "max_segments, checkpoints), not by the spikes actually produced",
            "max_rss_mb_after": "process peak RSS after compiling and running that "
            "function; cumulative within a point (forward, then GRADS in order)",
            "default": "simulate's default: every segment stored (spikeode's loop driver) "
            "if max_segments * carry_bytes <= 64 MB, else equinox's automatic scheme",
            "lean": f"checkpoints={LEAN_CHECKPOINTS}",
            "adjoint": "forward_grad_default/_lean differentiate through the solver; "
            "forward_grad_eventprop/_lean use spikeode.EventPropAdjoint (continuous "
            "adjoint, same loop driver)",
            "spike_record_bytes": "20 bytes per slot of the spike buffer (times, ids, "
            "slopes): the part of the memory that is the output itself",
        },
        "isolation": "in-process (RSS cumulative over points)" if in_process
        else "one subprocess per point",
        "points": results,
        "loglog_slopes": slopes(results),
    }
    report["meta"]["wall_time_s"] = time.perf_counter() - wall0
    full = not (args.quick or args.only)
    out = args.out or (str(HERE / "results" / "scaling.json") if full else None)
    figure = args.figure or (str(ROOT / "docs" / "figures" / "scaling.png") if full else None)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=2) + "\n")
        rl.log(f"wrote {out}")
    if figure and not args.no_plot:
        plot(report, Path(figure))
        rl.log(f"wrote {figure}")
    rl.log(f"done in {report['meta']['wall_time_s']:.0f} s")
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

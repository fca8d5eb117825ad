"""Built-in verification, behind `spikeode check`: spike times against closed forms or
an independent integrator (SciPy's DOP853), gradients against finite differences.

One module per model family holds its checks (`_lif`, `_delta`, `_phase`,
`_numerical`, `_smooth`, `_noise`); they share `_result` (`CheckResult` and the
helpers) and the references, `_reference` (`reference_simulate`, an independent SciPy
simulator) and `_formulas` (closed forms in NumPy). Model code never imports this
package.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import time
from collections.abc import Callable

import jax

from ._delta import check_delta_if, check_delta_lif
from ._lif import (
    check_alpha,
    check_first_spikes,
    check_lif_constant_drive,
    check_lif_feedforward,
    check_lif_input_driven,
    check_lif_lambert,
    check_lif_recurrent,
    check_nonleaky,
    reference_lif,
)
from ._noise import check_escape_noise
from ._numerical import check_adaptive_lif, check_exp_if
from ._phase import check_qif, check_qif_pseudo, check_theta, reference_qif
from ._reference import reference_simulate
from ._result import ADJOINT_TOL, CheckResult
from ._smooth import check_smooth_gated

__all__ = [
    "ADJOINT_TOL",
    "CHECKS",
    "CheckResult",
    "format_table",
    "reference_lif",
    "reference_qif",
    "reference_simulate",
    "run_checks",
]

CHECKS: dict[str, Callable[[], CheckResult]] = {
    "lif-constant": check_lif_constant_drive,
    "lif-input": check_lif_input_driven,
    "lif-feedforward": check_lif_feedforward,
    "lif-recurrent": check_lif_recurrent,
    "lif-equal-tau": lambda: check_lif_lambert(1.0),
    "lif-double-tau": lambda: check_lif_lambert(2.0),
    "nonleaky": check_nonleaky,
    "first-spikes": check_first_spikes,
    "alpha": check_alpha,
    "delta-lif": check_delta_lif,
    "delta-if": check_delta_if,
    "theta": check_theta,
    "qif": check_qif,
    "qif-pseudo": check_qif_pseudo,
    "smooth-gated": check_smooth_gated,
    "adaptive-lif": check_adaptive_lif,
    "exp-if": check_exp_if,
    "escape-noise": check_escape_noise,
}


# The checks that take longest (numerical models, pseudodynamics, two layers: 40-85 s
# each on a loaded 2-core machine, the others 15-40 s).
_LONGEST = (
    "adaptive-lif", "qif-pseudo", "exp-if", "lif-feedforward", "smooth-gated", "escape-noise"
)


def _run_one(name: str) -> CheckResult:
    """One check, timed (also the work of a `run_checks` worker process)."""
    jax.config.update("jax_enable_x64", True)
    start = time.perf_counter()
    res = CHECKS[name]()
    return dataclasses.replace(res, seconds=time.perf_counter() - start)


def run_checks(
    names=None, progress: Callable[[str], None] | None = None, workers: int = 1
) -> list[CheckResult]:
    """Run the named built-in checks (all by default) in float64.

    **Arguments:** `names` (default: every check, in `CHECKS`'s order), `progress`
    (called with a line of text as checks start, or finish with `workers > 1`),
    `workers`: how many processes run the checks at once (1: in this process). Each
    check is single-threaded compilation for the most part, so a process per core
    divides the wall time by about the number of cores.

    **Returns:** one `CheckResult` per name, in the order of `names`.
    """
    if not jax.config.jax_enable_x64:
        raise RuntimeError("run_checks needs float64: enable jax_enable_x64 first.")
    names = list(CHECKS) if names is None else list(names)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; choose from {list(CHECKS)}.")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"run_checks: `workers` must be a positive int, got {workers!r}.")
    if workers == 1 or len(names) == 1:
        results = []
        for name in names:
            if progress:
                progress(f"running {name} ...")
            results.append(_run_one(name))
        return results
    # fresh interpreters ("spawn": JAX's threads do not survive a fork), each running
    # several checks, so that checks in one process share its compiled functions
    context = multiprocessing.get_context("spawn")
    # the longest checks first (longest processing time first), so that no worker is
    # left with a long one at the end
    order = sorted(names, key=lambda n: n not in _LONGEST)
    with concurrent.futures.ProcessPoolExecutor(min(workers, len(names)), context) as pool:
        futures = {pool.submit(_run_one, name): name for name in order}
        done = {}
        for future in concurrent.futures.as_completed(futures):
            done[futures[future]] = future.result()
            if progress:
                progress(f"done {futures[future]} ({len(done)}/{len(names)})")
    return [done[name] for name in names]


def format_table(results: list[CheckResult]) -> str:
    head = (
        f"{'model':<12} {'network':<32} {'spikes':>6} {'min/neuron':>10} "
        f"{'spike-time err':>14} {'grad rel err':>12} {'adjoint err':>11} "
        f"{'value err':>9}  result"
    )
    na = lambda x: "n/a" if x is None else f"{x:.2e}"  # noqa: E731
    rows = [head, "-" * len(head)]
    for r in results:
        rows.append(
            f"{r.model:<12} {r.network:<32} {r.spikes:>6} {r.min_spikes_per_neuron:>10} "
            f"{r.spike_time_error:>14.2e} {r.grad_error:>12.2e} "
            f"{na(r.adjoint_error):>11} {na(r.value_error):>9}  "
            f"{'pass' if r.passed else 'FAIL'}"
        )
    return "\n".join(rows)

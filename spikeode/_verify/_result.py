"""What every check returns and the helpers the check modules share: `CheckResult`
(one row of `spikeode check`), the spike-time comparison, random input trains, the
loss of all spike times whose gradient is checked, and the comparison of
`EventPropAdjoint`'s gradient with the checked one. Depends on no other module of
`spikeode._verify`."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._adjoint import EventPropAdjoint
from .._gradcheck import check_grads
from .._spikes import SpikeTrain

# ----------------------------------------------------------------------------------
# EventPropAdjoint against differentiating through the solver (relative, float64)
ADJOINT_TOL = 1e-8


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One row of `spikeode check` (`spikeode check --json` prints `as_dict()` of each).

    **Fields:** `model` and `network` (what was simulated), `spikes` (in all
    simulations of the check) and `min_spikes_per_neuron`; `spike_time_error` (the
    largest absolute difference, in the model's time unit, from the spike times of
    `spike_time_reference`, a closed form or an independent integrator; `inf` if the
    spike counts differ) and its bound `spike_time_tol`; `grad_error` (largest
    relative error of the gradient against finite differences, by
    [`spikeode.check_grads`][]) and its bound `grad_tol`; `adjoint_error` (the
    gradient by [`spikeode.EventPropAdjoint`][] against the checked gradient through
    the solver or, for numerically integrated models, against finite differences, as
    `details` says; `None`: not applicable) and its bound `adjoint_tol`; `value_error`
    (another computed value against its reference, as `details` says, e.g. a
    log-likelihood; `None`: none) and its bound `value_tol`; `seconds`
    (wall time) and `details` (the parameters differentiated, and notes). `passed`:
    every error within its bound.
    """

    model: str
    network: str
    spikes: int
    min_spikes_per_neuron: int
    spike_time_error: float
    spike_time_reference: str
    spike_time_tol: float
    grad_error: float
    grad_tol: float
    seconds: float
    details: str
    # gradient by `EventPropAdjoint` vs through the solver, or vs finite differences
    # for numerically integrated models (see `details`); None: not applicable
    adjoint_error: float | None = None
    adjoint_tol: float = ADJOINT_TOL
    # another value against its reference (see `details`); None: none
    value_error: float | None = None
    value_tol: float = 0.0

    @property
    def passed(self) -> bool:
        """Whether every error is within its bound (`adjoint_error` and
        `value_error` only where they apply)."""
        return bool(
            self.spike_time_error <= self.spike_time_tol
            and self.grad_error <= self.grad_tol
            and (self.adjoint_error is None or self.adjoint_error <= self.adjoint_tol)
            and (self.value_error is None or self.value_error <= self.value_tol)
        )

    def as_dict(self) -> dict:
        """The row as a dict of its fields and `passed` (`spikeode check --json`)."""
        d = dataclasses.asdict(self)
        d["passed"] = self.passed
        return d


def _spike_error(sim_spikes: SpikeTrain, ref: tuple[np.ndarray, np.ndarray]) -> float:
    valid = np.asarray(sim_spikes.valid)
    t = np.asarray(sim_spikes.times)[valid]
    i = np.asarray(sim_spikes.neurons)[valid]
    ref_t, ref_i = ref
    if len(t) != len(ref_t) or np.any(np.sort(i) != np.sort(ref_i)):
        return np.inf
    # compare per neuron (order of near-simultaneous spikes of different neurons may differ)
    err = 0.0
    for j in np.unique(i):
        a, b = np.sort(t[i == j]), np.sort(ref_t[ref_i == j])
        err = max(err, float(np.max(np.abs(a - b))))
    return err


def _random_inputs(rng, num_inputs, spikes_each, t_max):
    times = np.sort(rng.uniform(0.0, t_max, (num_inputs, spikes_each)), axis=1)
    return SpikeTrain.from_per_neuron(times)


def _loss_of_times(train: SpikeTrain, t1):
    # A smooth function of all spike times that weights each spike differently.
    k = jnp.arange(train.capacity, dtype=train.times.dtype)
    w = jnp.cos(0.7 * k + 0.3 * train.neurons.astype(k.dtype))
    return jnp.sum(jnp.where(train.valid, w * train.times / t1, 0.0))


def _adjoint_error(rep, adjoint_grad) -> float:
    """Largest relative difference, per parameter, between the gradient `adjoint_grad`
    (by the continuous adjoint; the structure of the checked parameters) and the one
    `check_grads` checked in `rep` (through the solver)."""
    solver = eqx.filter(rep.grad, eqx.is_inexact_array)
    adjoint = eqx.filter(adjoint_grad, eqx.is_inexact_array)
    err = 0.0
    for a, b in zip(jax.tree_util.tree_leaves(solver), jax.tree_util.tree_leaves(adjoint)):
        a, b = np.asarray(a), np.asarray(b)
        scale = float(np.max(np.abs(a)))
        if scale > 0 or np.any(b != 0):
            err = max(err, float(np.max(np.abs(a - b))) / max(scale, 1e-300))
    return err


def _adjoint_grad(problem, adjoint):
    """The gradient of `fn(params, adjoint)`'s loss, for `problem = (fn, params)`."""
    fn, params = problem
    dyn, static = eqx.partition(params, eqx.is_inexact_array)
    grad = eqx.filter_jit(jax.grad(lambda d: fn(eqx.combine(d, static), adjoint)[0]))(dyn)
    return eqx.combine(grad, static)


def _result(model, network, sims, err, ref_name, tol, rep, details, problem=None,
            adjoint=None, adjoint_vs_fd=False):  # fmt: skip
    """A `CheckResult`; with `problem = (fn, params)` also the continuous adjoint's
    gradient (`adjoint`, default `EventPropAdjoint()`): against the checked gradient
    through the solver (bound `ADJOINT_TOL`) or, with `adjoint_vs_fd`, against finite
    differences (bound `rep.rtol`; for numerically integrated models, whose two
    gradients differ by the forward solver's discretisation)."""
    adjoint_error, adjoint_tol = None, ADJOINT_TOL
    if problem is not None and rep.grad is not None:
        adjoint = EventPropAdjoint() if adjoint is None else adjoint
        if adjoint_vs_fd:
            # the adjoint's gradient is the one its finite-difference check computed
            fn, params = problem
            fd = check_grads(lambda p: fn(p, adjoint), params, steps=np.logspace(-3, -7, 9))
            vs_solver = _adjoint_error(rep, fd.grad)
            adjoint_error, adjoint_tol = float(fd.max_rel_error), fd.rtol
            details += (
                f"; adjoint err: EventPropAdjoint vs finite differences (vs the "
                f"gradient through the solver: {vs_solver:.1e})"
            )
        else:
            adjoint_error = _adjoint_error(rep, _adjoint_grad(problem, adjoint))
    sims = sims if isinstance(sims, tuple) else (sims,)
    spikes = sum(int(s.spikes.num_spikes) for s in sims)
    min_per = min(int(np.min(np.asarray(s.spikes.counts()))) for s in sims)
    messages = "; ".join(rep.messages)
    return CheckResult(
        model=model,
        network=network,
        spikes=spikes,
        min_spikes_per_neuron=min_per,
        spike_time_error=float(err),
        spike_time_reference=ref_name,
        spike_time_tol=tol,
        grad_error=float(rep.max_rel_error) if rep.passed or rep.leaves else np.inf,
        grad_tol=rep.rtol,
        seconds=0.0,
        details=details + (f"; {messages}" if messages else ""),
        adjoint_error=adjoint_error,
        adjoint_tol=adjoint_tol,
    )

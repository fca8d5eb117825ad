"""`ExactSolver`: a Diffrax solver that advances a neuron model by its closed form,
and its segment (the closed-form flow with the crossing found by a root find and
differentiated by the implicit function theorem). `make_segment` builds the segment
of `simulate`'s solver options."""

from __future__ import annotations

from typing import ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx
from jaxtyping import Array

from ._gradients import AbstractAdjoint
from ._root_finder import BracketedNewton, find_root
from ._segment import AbstractSegment, DiffraxSegment, event_condition, SegmentArgs
from .neurons import AbstractNeuron
from .neurons._base import AbstractFlowNeuron
from .neurons._diffusion import AbstractDiffusionNeuron


class _FlowInterpolation(diffrax.AbstractLocalInterpolation):
    t0: Array
    t1: Array
    y0: Array
    args: SegmentArgs

    def evaluate(self, t0, t1=None, left=True):
        del left
        flow = self.args.neuron.flow
        y_a = flow(self.t0, self.y0, t0, self.args.refractory)
        if t1 is None:
            return y_a
        return flow(self.t0, self.y0, t1, self.args.refractory) - y_a


class ExactSolver(diffrax.AbstractSolver):
    """Advances the state by the neuron model's closed-form `flow`, and interpolates
    inside a step by the same flow, so spike times found by Diffrax's event root
    finder are exact to round-off.

    Works with any model whose `flow` is implemented, given `args=SegmentArgs(model,
    refractory)` and `diffrax.ODETerm(neuron_vector_field)`; the step size is free.
    Passed to [`spikeode.simulate`][] (its default for models with a `flow`), it
    selects the closed-form segment: the loop then advances each segment by the flow
    and finds crossings by the root finder on the flow itself, which is what Diffrax
    does with this solver's single step, without Diffrax's per-solve bookkeeping.
    """

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar = _FlowInterpolation

    def order(self, terms):
        return None

    def init(self, terms, t0, t1, y0, args):
        return None

    def step(self, terms, t0, t1, y0, args: SegmentArgs, solver_state, made_jump):
        del terms, solver_state, made_jump
        y1 = args.neuron.flow(t0, y0, t1, args.refractory)
        dense_info = dict(y0=y0, args=args)
        return y1, None, dense_info, None, diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def segment(self, neuron: AbstractNeuron, root_finder: optx.AbstractRootFinder):
        """The closed-form segment of `neuron` (a `FlowSegment`, `spikeode/_segment.py`)."""
        if not isinstance(neuron, AbstractFlowNeuron):
            raise ValueError(
                f"simulate: ExactSolver needs a closed-form `flow` (a "
                f"spikeode.neurons.AbstractFlowNeuron), which {type(neuron).__name__} "
                "is not; pass a numerical solver."
            )
        return FlowSegment(root_finder)


def _along_flow(condition, model, t, y, refractory):
    """The event condition along the flow from `(t, y)`, as a function of time."""
    return lambda s: condition(model, s, model.flow(t, y, s, refractory), refractory)


def find_crossing(condition, root_finder, model, t, t_end, y, refractory, crossed, guess=None):
    """The root of `condition` along the flow in `(t, t_end]` where `crossed` (else
    `t_end`), and whether the root find succeeded; no derivatives. `guess`: where the
    root finder starts (used by `BracketedNewton` where it lies inside the bracket)."""
    along = _along_flow(condition, model, t, y, refractory)

    def fn(s, _):
        # Without a crossing (vmap runs the root find for every lane) a linear
        # function with its root at t_end: found at once.
        return jnp.where(crossed, along(s), s - t_end)

    y0 = t_end if guess is None else guess
    return find_root(root_finder, fn, y0, dict(lower=t, upper=t_end))


@eqx.filter_custom_jvp
def flow_crossing(model, t, t_end, y, refractory, crossed, root, *, condition):
    """`root` (the crossing found by `find_crossing`) where `crossed`, else `t_end`,
    with the implicit function theorem's derivatives, to any order."""
    del model, t, y, refractory, condition
    return jnp.where(crossed, root, t_end)


@flow_crossing.def_jvp
def _flow_crossing_jvp(primals, tangents, *, condition):
    model, t, t_end, y, refractory, crossed, _ = primals
    # through the function itself, so that derivatives of this rule are right too
    t_hit = flow_crossing(*primals, condition=condition)
    dmodel, dt, dt_end, dy = tangents[:4]
    # missing tangents (None) are zeros
    zero = lambda x, dx: jnp.zeros_like(x) if dx is None else dx
    dt, dt_end, dy = zero(t, dt), zero(t_end, dt_end), zero(y, dy)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    if dmodel is None:
        dmodel = jax.tree_util.tree_map(lambda _: None, params)
    dmodel = jax.tree_util.tree_map(
        lambda p, d: None if p is None else zero(p, d), params, dmodel,
        is_leaf=lambda x: x is None,
    )  # fmt: skip

    def c(s, p, t0, y0):
        return _along_flow(condition, eqx.combine(p, static), t0, y0, refractory)(s)

    # 0 = dc/ds ds + dc/d(theta, t, y) d(theta, t, y) at the crossing
    _, c_s = jax.jvp(lambda s: c(s, params, t, y), (t_hit,), (jnp.ones_like(t_hit),))
    _, c_p = jax.jvp(lambda p, t0, y0: c(t_hit, p, t0, y0), (params, t, y), (dmodel, dt, dy))
    c_s = jnp.where(crossed, c_s, 1.0)
    return t_hit, jnp.where(crossed, -jnp.where(crossed, c_p, 0.0) / c_s, dt_end)


class FlowSegment(AbstractSegment):
    """`ExactSolver`'s segment: what its one Diffrax step and event handling compute
    (the flow to `t_end`; on an upward crossing, the root of the condition along the
    flow, differentiated by the implicit function theorem), without Diffrax's
    per-solve bookkeeping. The root finder's iterations are memoised for the reverse
    pass through the loop's `read` (see `_stored_loop`)."""

    root_finder: optx.AbstractRootFinder
    closed_form: ClassVar[bool] = True

    def solve(self, model, t, t_end, y, refractory, read=None):
        y_end = model.flow(t, y, t_end, refractory)
        crossed = event_condition(model, t_end, y_end, refractory) > 0
        find = lambda: find_crossing(
            event_condition, self.root_finder, model, t, t_end, y, refractory, crossed
        )
        root, found = find() if read is None else read.memo("root", find)
        t_hit = flow_crossing(
            model, t, t_end, y, refractory, crossed, root, condition=event_condition
        )
        y_hit = jnp.where(crossed, model.flow(t, y, t_hit, refractory), y_end)
        return t_hit, y_hit, crossed, ~crossed | found


def default_solver(neuron: AbstractNeuron) -> diffrax.AbstractSolver:
    """`ExactSolver` for models with a closed-form flow, `ShARK` (strong order 1.5
    for additive noise) for diffusion-noise models, else `Tsit5`."""
    if isinstance(neuron, AbstractFlowNeuron):
        return ExactSolver()
    if isinstance(neuron, AbstractDiffusionNeuron):
        return diffrax.ShARK()
    return diffrax.Tsit5()


def _check_diffusion(neuron, adjoint, solver, stepsize_controller, dt0, t_span):
    """Refuse the options that cannot integrate a diffusion-noise model."""
    name = type(neuron).__name__
    if isinstance(solver, ExactSolver):
        raise ValueError(
            f"simulate: ExactSolver cannot integrate the diffusion noise of {name} (it "
            "has no closed-form flow); pass an SDE solver, e.g. diffrax.ShARK() (the "
            "default), with a fixed step `dt0`."
        )
    if adjoint.per_segment:
        raise ValueError(
            f"simulate: {type(adjoint).__name__} cannot differentiate the diffusion "
            f"noise of {name}; use DirectAdjoint (pathwise reverse mode) or ForwardMode."
        )
    if stepsize_controller is None and dt0 is None:
        raise ValueError(
            f"simulate: the diffusion noise of {name} is integrated at a fixed step "
            "`dt0`, which has no default; pass `dt0` (and `max_steps` of at least the "
            "longest interval between events over `dt0`)."
        )
    if t_span is None:
        raise ValueError("make_segment: a diffusion-noise model needs `t_span`.")


def make_segment(
    neuron: AbstractNeuron,
    adjoint: AbstractAdjoint,
    solver: diffrax.AbstractSolver | None = None,
    stepsize_controller: diffrax.AbstractStepSizeController | None = None,
    root_finder: optx.AbstractRootFinder | None = None,
    dt0=None,
    max_steps: int = 4096,
    t_span=None,
) -> AbstractSegment:
    """The segment of `simulate`'s solver options, as `adjoint` differentiates it:
    `ExactSolver`'s closed-form segment, or a Diffrax solve (default step size
    controller `PIDController(rtol=1e-10, atol=1e-10)`) for any other solver. For a
    diffusion-noise model the solve is of its SDE over Brownian paths spanning
    `t_span` (the simulation's `(t0, t1)`), by default `ShARK` at the constant step
    `dt0` (required)."""
    noisy = isinstance(neuron, AbstractDiffusionNeuron)
    if noisy:
        _check_diffusion(neuron, adjoint, solver, stepsize_controller, dt0, t_span)
    if solver is None:
        solver = default_solver(neuron)
    if root_finder is None:
        root_finder = BracketedNewton()
    if isinstance(solver, ExactSolver):
        seg = solver.segment(neuron, root_finder)
    else:
        if stepsize_controller is None:
            stepsize_controller = (
                diffrax.ConstantStepSize() if noisy
                else diffrax.PIDController(rtol=1e-10, atol=1e-10)
            )  # fmt: skip
        span = None
        if noisy:
            dtype = jnp.result_type(*t_span, float)
            span = tuple(jnp.asarray(t, dtype) for t in t_span)
        seg = DiffraxSegment(
            solver, stepsize_controller, dt0, max_steps, adjoint.solver_adjoint, root_finder,
            span,
        )  # fmt: skip
    return adjoint.segment(seg)

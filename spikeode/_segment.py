"""The segment: how a loop advances a population (or one neuron) from one event to the
next, shared by the coupled and the windowed loop: the segment solve of `simulate`'s
options, the closed-form crossing and its implicit-function-theorem derivatives, the
order of coinciding scheduled times, one neuron's model."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx
from jaxtyping import Array

from ._adjoint import _Segment, EventPropAdjoint, segment
from ._root_finder import BracketedNewton, find_root
from ._solver import ExactSolver, neuron_vector_field, SegmentArgs
from ._spikes import SpikeTrain
from .neurons import AbstractNeuron


def _along_flow(condition, model, t, y, refractory):
    """The event condition along the flow from `(t, y)`, as a function of time."""
    return lambda s: condition(model, s, model.flow(t, y, s, refractory), refractory)


def _find_crossing(condition, root_finder, model, t, t_end, y, refractory, crossed, guess=None):
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
def _flow_crossing(model, t, t_end, y, refractory, crossed, root, *, condition):
    """`root` (the crossing found by `_find_crossing`) where `crossed`, else `t_end`,
    with the implicit function theorem's derivatives, to any order."""
    del model, t, y, refractory, condition
    return jnp.where(crossed, root, t_end)


@_flow_crossing.def_jvp
def _flow_crossing_jvp(primals, tangents, *, condition):
    model, t, t_end, y, refractory, crossed, _ = primals
    # through the function itself, so that derivatives of this rule are right too
    t_hit = _flow_crossing(*primals, condition=condition)
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


class SegmentSolver(NamedTuple):
    """How a loop advances a population over one segment: `solve(model, t, t_end, y,
    refractory, read)` returns `(t_hit, y_hit, crossed, ok)`: the first upward
    crossing of `condition` (the largest `masked` condition over non-refractory
    neurons) in `(t, t_end]` and the state there, else `t_end` and the state there;
    and whether the solve succeeded. `forward`: whether the loop must support forward
    mode (a plain while loop). `exact`: whether segments are the model's closed-form
    flow, with the crossing found by `root_finder` (`_find_crossing`,
    `_flow_crossing`), which the windowed loop runs only where a crossing occurred."""

    solve: Callable
    masked: Callable
    condition: Callable
    forward: bool
    exact: bool
    root_finder: optx.AbstractRootFinder


def segment_solver(
    neuron, dtype, solver, stepsize_controller, root_finder, dt0, max_steps, adjoint
) -> SegmentSolver:
    """The segment solve of `simulate`'s options (see its docstring)."""
    if solver is None:
        solver = default_solver(neuron)
    exact = isinstance(solver, ExactSolver)
    if exact and not neuron.has_flow:
        raise ValueError(
            f"simulate: ExactSolver needs a closed-form `flow`, which "
            f"{type(neuron).__name__} does not implement; pass a numerical solver."
        )
    # (numerical solvers only: an ExactSolver segment is one step)
    if stepsize_controller is None and not exact:
        stepsize_controller = diffrax.PIDController(rtol=1e-10, atol=1e-10)
    if root_finder is None:
        root_finder = BracketedNewton()
    eventprop = isinstance(adjoint, EventPropAdjoint)
    # (numerical solvers only: ExactSolver segments are differentiated directly)
    if adjoint is not None and not eventprop:
        inner_adjoint = adjoint
    else:
        inner_adjoint = diffrax.RecursiveCheckpointAdjoint()
    forward = isinstance(inner_adjoint, diffrax.ForwardMode)

    def masked_condition(model, t, y, refractory):
        return jnp.where(refractory, -jnp.ones((), dtype), model.condition(t, y))

    def event_condition(model, t, y, refractory):
        return jnp.max(masked_condition(model, t, y, refractory))

    def event_fn(t, y, args, **kwargs):
        return event_condition(args.neuron, t, y, args.refractory)

    term = diffrax.ODETerm(neuron_vector_field)
    event = diffrax.Event(event_fn, root_finder=root_finder, direction=True)

    def diffrax_solve(model, t, t_end, y, refractory, read=None):
        # numerical solvers (ExactSolver segments are flow_solve's)
        del read  # nothing memoised: the solve is differentiated as it runs
        sol = diffrax.diffeqsolve(
            term,
            solver,
            t,
            t_end,
            dt0,
            y,
            SegmentArgs(model, refractory),
            saveat=diffrax.SaveAt(t1=True),
            stepsize_controller=stepsize_controller,
            event=event,
            max_steps=max_steps,
            adjoint=inner_adjoint,
            throw=False,
        )
        return sol.ts[-1], sol.ys[-1], jnp.asarray(sol.event_mask), diffrax.is_okay(sol.result)

    def flow_solve(model, t, t_end, y, refractory, read=None):
        # ExactSolver's segment without Diffrax's step bookkeeping: what its one step
        # and event handling compute (the flow to t_end; on an upward crossing, the
        # root of the condition along the flow, differentiated by the implicit
        # function theorem), with a fraction of the operations. The root finder's
        # iterations are memoised for the reverse pass (see _stored_loop).
        y_end = model.flow(t, y, t_end, refractory)
        crossed = event_condition(model, t_end, y_end, refractory) > 0
        find = lambda: _find_crossing(
            event_condition, root_finder, model, t, t_end, y, refractory, crossed
        )
        root, found = find() if read is None else read.memo("root", find)
        t_hit = _flow_crossing(
            model, t, t_end, y, refractory, crossed, root, condition=event_condition
        )
        y_hit = jnp.where(crossed, model.flow(t, y, t_hit, refractory), y_end)
        return t_hit, y_hit, crossed, ~crossed | found

    segment_solve = flow_solve if exact else diffrax_solve
    if eventprop:
        seg = _Segment(segment_solve, event_condition, exact, adjoint)

        def solve(model, t, t_end, y, refractory, read):
            del read  # the adjoint's segment keeps its own residuals
            return segment((model, t, t_end, y), refractory, seg)
    else:
        solve = segment_solve

    return SegmentSolver(
        solve, masked_condition, event_condition, forward, exact and not eventprop, root_finder
    )


def first_of(*times):
    """The earliest time; on ties the first listed wins (and alone gets the gradient:
    `jnp.minimum` would split it between equal times)."""
    out = times[-1]
    for t in reversed(times[:-1]):
        out = jnp.where(t <= out, t, out)
    return out


def argmin(x: Array) -> Array:
    """`jnp.argmin` of a 1-d array (the first index of the minimum) by two plain
    reductions: XLA's CPU backend runs `argmin`'s two-operand reduction several times
    slower, which dominates a loop step over a large population."""
    lowest = jnp.min(x)
    return jnp.min(jnp.where(x == lowest, jnp.arange(x.shape[0]), x.shape[0])) % x.shape[0]


def check_dtype(dtype) -> None:
    """Refuse float32 states while `jax_enable_x64` is on (time and state would mix
    precisions)."""
    if dtype != jnp.float64 and jax.config.jax_enable_x64:
        raise ValueError(
            f"simulate: the state is {dtype} but jax_enable_x64 is on; use float64 "
            "parameters and inputs, or run float32 with x64 disabled (JAX's default)."
        )


def time_span(t0, t1, dtype) -> tuple[Array, Array]:
    """`(t0, t1)` as arrays of `dtype`, with a (run-time) check that `t1 > t0`."""
    t0 = jnp.asarray(t0, dtype)
    t1 = jnp.asarray(t1, dtype)
    return t0, eqx.error_if(t1, ~(t1 > t0), "simulate: `t1` must be greater than `t0`.")


def earliest_pending(pend_t: Array, keys: Array) -> tuple[Array, Array]:
    """The slot of the earliest pending arrival (on ties the lowest key) and its
    time (`+inf` if none is pending)."""
    earliest = pend_t == jnp.min(pend_t)
    slot = argmin(jnp.where(earliest, keys, jnp.iinfo(keys.dtype).max))
    return slot, pend_t[slot]


def output_buffers(max_spikes: int, n: int, num_save: int, state_size: int, dtype):
    """The loops' output buffers: spike times (`+inf` padding), neurons (`n`
    padding), slopes, and the saved states if there are save times."""
    buffers = dict(
        out_t=jnp.full((max_spikes,), jnp.inf, dtype),
        out_i=jnp.full((max_spikes,), n, jnp.int32),
        out_slope=jnp.full((max_spikes,), jnp.inf, dtype),
    )
    if num_save:
        buffers["ys"] = jnp.zeros((num_save, n, state_size), dtype)
    return buffers


def default_solver(neuron: AbstractNeuron) -> diffrax.AbstractSolver:
    """`ExactSolver` for models with a closed-form flow, else `Tsit5`."""
    return ExactSolver() if neuron.has_flow else diffrax.Tsit5()


def _checked_w_in(inputs: SpikeTrain, w_in, n: int) -> Array:
    """`w_in` as an array, after checking it fits the inputs and `n` neurons."""
    if w_in is None:
        raise ValueError("simulate: `inputs` were given without `w_in`.")
    w_in = jnp.asarray(w_in)
    if w_in.shape != (inputs.num_neurons, n):
        raise ValueError(
            f"simulate: `w_in` has shape {w_in.shape}; expected ({inputs.num_neurons}, "
            f"{n}) for {inputs.num_neurons} inputs and {n} neurons."
        )
    return w_in


def _one_neuron_model(neuron: AbstractNeuron):
    """The model as a template for one of its neurons, and the `vmap` axes of its
    leaves: per-neuron parameters (shape `(num_neurons,)`) are mapped, scalars shared."""
    n = neuron.num_neurons

    def axis(x):
        if not eqx.is_array(x) or x.ndim == 0:
            return None
        if x.shape == (n,):
            return 0
        raise ValueError(
            f"simulate: the per-neuron, windowed and event-driven loops need every "
            f"parameter of {type(neuron).__name__} to be a scalar or of shape ({n},); "
            f"found one of shape {x.shape}."
        )

    single = copy.copy(neuron)
    object.__setattr__(single, "num_neurons", 1)
    return single, jax.tree_util.tree_map(axis, single)


def lane_models(neuron: AbstractNeuron):
    """`(single, axes, lanes_of)`: the one-neuron model and its `vmap` axes
    (`_one_neuron_model`), and `lanes_of(model, idx)`, the model restricted to the
    neurons `idx` (per-neuron leaves gathered; `model` has the template's structure)."""
    single, axes = _one_neuron_model(neuron)
    treedef = jax.tree_util.tree_structure(single)
    leaf_axes = treedef.flatten_up_to(axes)

    def lanes_of(model, idx):
        flat = jax.tree_util.tree_leaves(model)
        return treedef.unflatten([x if ax is None else x[idx] for x, ax in zip(flat, leaf_axes)])

    return single, axes, lanes_of

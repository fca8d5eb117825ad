"""The segment: how a loop advances a population (or one neuron) from one event to the
next. The segments' contract and the numerical (Diffrax) segment; the closed-form
segment is `ExactSolver`'s (`_solver.py`), the continuous adjoint's wrapper
`EventPropAdjoint`'s (`_adjoint.py`). Also what the loops share around segments: the
order of coinciding scheduled times, output buffers, one neuron's model."""

import abc
from typing import Any, ClassVar

import diffrax
import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import optimistix as optx
from equinox import AbstractClassVar, AbstractVar
from jaxtyping import Array, Bool, Float, Scalar

from ._spikes import SpikeTrain
from .neurons import AbstractNeuron


class SegmentArgs(eqx.Module):
    """The `args` the loop passes to Diffrax: the neuron model and which neurons are
    refractory (constant within a segment)."""

    neuron: AbstractNeuron
    refractory: Bool[Array, " neurons"]


def neuron_vector_field(t, y, args: SegmentArgs):
    """The jump-free vector field of the model in `args`, as a Diffrax `ODETerm`
    function."""
    return args.neuron.vector_field(t, y, args.refractory)


def masked_condition(model, t, y, refractory) -> Float[Array, " neurons"]:
    """The model's condition, `-1` for refractory neurons (which cannot fire)."""
    return jnp.where(refractory, -jnp.ones((), y.dtype), model.condition(t, y))


def receive(model, y, weights, refractory):
    """`model.receive(y, weights)`: a presynaptic spike's jump, at a time at which the
    neurons `refractory` are refractory. Their weights are zero for a model whose
    refractory neurons ignore input (`receives_while_refractory` false; a class
    attribute, so other models' jumps are unchanged)."""
    if not model.receives_while_refractory:
        weights = jnp.where(refractory, jnp.zeros((), weights.dtype), weights)
    return model.receive(y, weights)


def event_condition(model, t, y, refractory) -> Scalar:
    """The population's event function: the largest masked condition; a segment ends
    where it crosses zero upwards."""
    return jnp.max(masked_condition(model, t, y, refractory))


def fires_now(model, t, y, refractory) -> Bool[Array, ""]:
    """Whether a neuron fires at `t` without a segment: some non-refractory neuron's
    condition is already `>= 0` (a jump put it at or above threshold, e.g. an input
    of a delta synapse, or it reached threshold together with the one that just
    fired). Every loop checks this before solving a segment, so a segment always
    starts with every condition negative, and such a spike's time is that of the
    jump (its derivative is the jump time's). At one instant these neurons fire one
    at a time, the lowest index first, each followed by its jumps."""
    return event_condition(model, t, y, refractory) >= 0


class AbstractSegment(eqx.Module):
    """How a loop advances a population (or one neuron) over one segment: from `t` to
    the first upward crossing of [`event_condition`][] in `(t, t_end]`, or to `t_end`.
    The loops call it with every non-refractory condition negative at `t` (a neuron
    at or above threshold fires first: `fires_now`).

    - `solve(model, t, t_end, y, refractory, read)` returns `(t_hit, y_hit, crossed,
      ok)`: the crossing time and the state there (else `t_end` and the state there),
      whether a crossing ended the segment, and whether the solve succeeded. `read`
      is the loop's table reader (`_stored_loop`), through which a segment may memoise
      work for the reverse pass, or `None`.
    - `root_finder`: what finds crossings.
    - `closed_form`: whether the segment is the model's closed-form `flow` with the
      crossing found on it by `root_finder` and differentiated by the implicit
      function theorem (`_solver.find_crossing`, `_solver.flow_crossing`). Loops that
      advance neurons as independent lanes (event-driven, windowed) then run the root
      find only on lanes that crossed.
    """

    root_finder: AbstractVar[optx.AbstractRootFinder]
    closed_form: AbstractClassVar[bool]

    @abc.abstractmethod
    def solve(self, model, t, t_end, y, refractory, read=None):
        """`(t_hit, y_hit, crossed, ok)`; see the class docstring."""


class DiffraxSegment(AbstractSegment):
    """A segment integrated by a numerical Diffrax solver, its crossing found by a
    `diffrax.Event` on the solver's dense output (the segment of models without a
    closed-form flow)."""

    solver: diffrax.AbstractSolver
    stepsize_controller: diffrax.AbstractStepSizeController
    dt0: Any
    max_steps: int = eqx.field(static=True)
    adjoint: diffrax.AbstractAdjoint
    root_finder: optx.AbstractRootFinder
    closed_form: ClassVar[bool] = False

    def solve(self, model, t, t_end, y, refractory, read=None):
        del read  # nothing memoised: the solve is differentiated as it runs
        event = diffrax.Event(
            lambda t, y, args, **_: event_condition(args.neuron, t, y, args.refractory),
            root_finder=self.root_finder,
            direction=True,
        )
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(neuron_vector_field),
            self.solver,
            t,
            t_end,
            self.dt0,
            y,
            SegmentArgs(model, refractory),
            saveat=diffrax.SaveAt(t1=True),
            stepsize_controller=self.stepsize_controller,
            event=event,
            max_steps=self.max_steps,
            adjoint=self.adjoint,
            throw=False,
        )
        return sol.ts[-1], sol.ys[-1], jnp.asarray(sol.event_mask), diffrax.is_okay(sol.result)


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
    leaves: per-neuron parameters (shape `(num_neurons,)`) are mapped, scalars shared.

    The template has the structure of the model's one-neuron model
    (`neuron.one_neuron()`, rebuilt by its constructor with `num_neurons == 1`) and the
    population's leaves: mapped over `axes` it is each neuron's own model."""
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

    leaves = jax.tree_util.tree_leaves(neuron)
    for x in leaves:
        axis(x)
    try:
        # (traced for its structure only: nothing is computed)
        one = jax.eval_shape(lambda m: m.one_neuron(), neuron)
    except TypeError as e:
        raise TypeError(
            f"simulate: the per-neuron, windowed and event-driven loops rebuild "
            f"{type(neuron).__name__} for one neuron by its constructor "
            f"(`AbstractNeuron.one_neuron`), which must accept the model's fields as "
            f"keyword arguments: {e}"
        ) from e
    single = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(one), leaves)
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


def merge_buffers(times, ids, slopes, max_spikes: int, num_neurons: int):
    """Spike buffers (times, neuron ids, slopes; padding `+inf`) concatenated in any
    order, as one time-sorted buffer of capacity `max_spikes` (stable: equal times keep
    their order; truncated or padded). Overflow is the caller's to report."""
    pad = max_spikes - times.shape[0]
    if pad > 0:
        times = jnp.concatenate([times, jnp.full((pad,), jnp.inf, times.dtype)])
        ids = jnp.concatenate([ids, jnp.full((pad,), num_neurons, ids.dtype)])
        slopes = jnp.concatenate([slopes, jnp.full((pad,), jnp.inf, slopes.dtype)])
    # one sort carries all three along
    times, ids, slopes = lax.sort((times, ids, slopes), num_keys=1, is_stable=True)
    return times[:max_spikes], ids[:max_spikes], slopes[:max_spikes]

"""The segment: how a loop advances a population (or one neuron) from one event to the
next. The segments' contract and the numerical (Diffrax) segment; the closed-form
segment is `ExactSolver`'s (`_solver.py`), the continuous adjoint's wrapper
`EventPropAdjoint`'s (`_adjoint.py`). Also what the loops share around segments: the
order of coinciding scheduled times, output buffers, one neuron's model. With
diffusion noise (`AbstractDiffusionNeuron`) the numerical segment solves the SDE over
one Brownian path per neuron (`NeuronBrownianPaths`)."""

import abc
from typing import Any, ClassVar

import diffrax
import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import optimistix as optx
from equinox import AbstractClassVar, AbstractVar
from jaxtyping import Array, Bool, Float, Key, Scalar

from ._spikes import SpikeTrain
from .neurons import AbstractNeuron
from .neurons._diffusion import AbstractDiffusionNeuron

# The Brownian paths of diffusion noise are resolved to `(t1 - t0) 2^-BROWNIAN_DEPTH`.
BROWNIAN_DEPTH = 32


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


class NeuronBrownianPaths(diffrax.AbstractBrownianPath):
    """One standard Brownian motion per neuron over `[t0, t1]`, neuron `i`'s a
    `diffrax.VirtualBrownianTree` of the key `keys[i]` (with space-time Lévy area, so
    that every solver sees the same path), resolved to `tol`. Evaluated as a batch over
    neurons: increments of shape `(neurons,)`. Times outside `[t0, t1]` are clipped to
    it: only the loops' dummy solves of zero-length segments (whose results are
    discarded) reach past `t1`.

    The path is not differentiable in time, and its values are constants for
    differentiation with respect to the times at which they are evaluated (Diffrax
    refuses tangents there): derivatives are those of the model whose noise
    increments of each step stay fixed while the step's times move.

    **Arguments:**

    - `t0`, `t1`: the span (the simulation's).
    - `tol`: the resolution of the paths.
    - `keys`: one key per neuron.
    """

    t0: Float[Array, ""]
    t1: Float[Array, ""]
    tol: Float[Array, ""]
    keys: Key[Array, " neurons"]
    levy_area: type[diffrax.SpaceTimeLevyArea] = eqx.field(
        static=True, default=diffrax.SpaceTimeLevyArea
    )

    def evaluate(self, t0, t1=None, left=True, use_levy=False):
        del left  # (Brownian paths have no jumps)
        clip = lambda s: lax.stop_gradient(jnp.clip(s, self.t0, self.t1))
        s0, s1 = clip(t0), None if t1 is None else clip(t1)

        def one(key):
            tree = diffrax.VirtualBrownianTree(
                self.t0, self.t1, self.tol, jax.ShapeDtypeStruct((), self.t0.dtype), key,
                levy_area=self.levy_area,
            )  # fmt: skip
            return tree.evaluate(s0, s1, use_levy=True)

        levy = jax.vmap(one)(self.keys)
        if not use_levy:
            return levy.W
        # (one time increment for all neurons, not one each)
        dt = s0 if s1 is None else s1 - s0
        return diffrax.SpaceTimeLevyArea(dt=dt, W=levy.W, H=levy.H)


class _NoiseTerm(diffrax.AbstractTerm):
    """The diffusion term of a diffusion-noise model: `g(t, y) dW`, with `g` the
    model's `diffusion` (in `args`) and one Brownian increment per neuron."""

    path: NeuronBrownianPaths

    def vf(self, t, y, args: SegmentArgs):
        return args.neuron.diffusion(t, y, args.refractory)

    def contr(self, t0, t1, **kwargs):
        return self.path.evaluate(t0, t1, **kwargs)

    def prod(self, vf, control):
        return vf * control[:, None]


class DiffraxSegment(AbstractSegment):
    """A segment integrated by a numerical Diffrax solver, its crossing found by a
    `diffrax.Event` on the solver's dense output (the segment of models without a
    closed-form flow). For a diffusion-noise model (`AbstractDiffusionNeuron`) the
    solve is of the SDE `dy = f dt + g dW` (`diffrax.MultiTerm` of the vector field
    and the noise term), `W` the model's Brownian paths over `t_span`, the
    simulation's `[t0, t1]` (then required)."""

    solver: diffrax.AbstractSolver
    stepsize_controller: diffrax.AbstractStepSizeController
    dt0: Any
    max_steps: int = eqx.field(static=True)
    adjoint: diffrax.AbstractAdjoint
    root_finder: optx.AbstractRootFinder
    t_span: tuple[Float[Array, ""], Float[Array, ""]] | None = None
    closed_form: ClassVar[bool] = False

    def terms(self, model) -> diffrax.AbstractTerm:
        """The Diffrax terms of `model`'s segments: its vector field, plus the noise
        term for a diffusion-noise model."""
        drift = diffrax.ODETerm(neuron_vector_field)
        if not isinstance(model, AbstractDiffusionNeuron):
            return drift
        t0, t1 = self.t_span
        tol = (t1 - t0) * 2.0**-BROWNIAN_DEPTH
        return diffrax.MultiTerm(
            drift, _NoiseTerm(NeuronBrownianPaths(t0, t1, tol, model.brownian_keys()))
        )

    def solve(self, model, t, t_end, y, refractory, read=None):
        del read  # nothing memoised: the solve is differentiated as it runs
        event = diffrax.Event(
            lambda t, y, args, **_: event_condition(args.neuron, t, y, args.refractory),
            root_finder=self.root_finder,
            direction=True,
        )
        sol = diffrax.diffeqsolve(
            self.terms(model),
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

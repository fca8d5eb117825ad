"""[`spikeode.simulate`][]: the arguments checked, the segment and the loop chosen, the
loop run, its failures reported; and [`spikeode.Pseudodynamics`][], run as two phases
of the same loop."""

from __future__ import annotations

import functools

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx
from jaxtyping import Array, ArrayLike, Float

from ._gradients import AbstractAdjoint, DirectAdjoint
from ._loops import AbstractLoop, default_loop
from ._results import INVALIDATING, RESULTS
from ._segment import merge_buffers
from ._simulation import Failure, Problem, Simulation
from ._solver import make_segment
from ._spikes import SpikeTrain
from ._synapses import Synapses
from ._typing import RealScalarLike
from .neurons import AbstractNeuron, AbstractPhaseNeuron
from .neurons._base import require_capability
from .neurons._params import ParamLike


class Pseudodynamics(eqx.Module):
    """Pseudodynamics after the trial end (after Klos & Memmesheimer 2025), an option
    of [`spikeode.simulate`][] and the layers.

    The trial is `[t0, trial_end]`. From `trial_end` to `t1` the same network keeps
    running (synaptic currents, recurrent and feed-forward kicks unchanged; input
    spikes after `trial_end`, e.g. an upstream layer's pseudospikes, still arrive)
    but every neuron's constant drive is replaced by `drive`, which makes it fire
    (`neuron.pseudodynamics(drive)`). The spikes after `trial_end` are pseudospikes.

    For phase models ([`spikeode.QIF`][], [`spikeode.ThetaNeuron`][]) spikes move
    continuously with the parameters and can appear or vanish only at the trial end;
    there a spike that leaves the trial becomes the first pseudospike, so every
    (pseudo)spike time, and a loss of the first `k` (pseudo)spikes of each neuron, is
    continuous in the parameters, and a neuron silent in the trial still gets a
    gradient through its pseudospikes. (Klos & Memmesheimer instead stop the coupling
    and use a state-dependent drive; this variant keeps the coupling, which makes
    continuity hold by construction for recurrent and layered networks alike.)

    **Arguments:**

    - `trial_end`: end of the trial, strictly between `t0` and `t1`.
    - `drive`: the constant drive after it (scalar or per neuron, differentiable);
      for the QIF and theta neurons it must exceed 1/4.
    """

    trial_end: Float[Array, ""]
    drive: Float[Array, "..."]

    def __init__(self, trial_end: RealScalarLike, drive: ParamLike = 1.0):
        # (as floating arrays: an int `trial_end` or `drive` would stay an int array)
        self.trial_end = _as_float(trial_end)
        self.drive = _as_float(drive)


def _as_float(x: ParamLike) -> Float[Array, "..."]:
    """`x` as an array, of the default floating dtype unless it is floating already."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def simulate(
    neuron: AbstractNeuron,
    t1: RealScalarLike,
    inputs: SpikeTrain | None = None,
    # (the shapes of `w_in`, `w_rec`, `y0` and the delays, `(inputs, neurons)`,
    # `(neurons, neurons)`, `(neurons, state)` and what broadcasts to the weights, are
    # checked below, with errors that name the shape expected)
    w_in: Float[ArrayLike, "..."] | None = None,
    *,
    w_rec: Float[ArrayLike, "..."] | Synapses | None = None,
    delays: ArrayLike | None = None,
    input_delays: ArrayLike | None = None,
    t0: RealScalarLike = 0.0,
    y0: Float[ArrayLike, "..."] | None = None,
    max_spikes: int,
    save_ts: Float[ArrayLike, " save"] | None = None,
    throw: bool = True,
    loop: AbstractLoop | None = None,
    adjoint: AbstractAdjoint | None = None,
    solver: diffrax.AbstractSolver | None = None,
    stepsize_controller: diffrax.AbstractStepSizeController | None = None,
    root_finder: optx.AbstractRootFinder | None = None,
    dt0: RealScalarLike | None = None,
    max_steps: int = 4096,
    max_segments: int | None = None,
    pseudodynamics: Pseudodynamics | None = None,
) -> Simulation:
    """Simulate a population of spiking neurons over `[t0, t1]`.

    Between events the state is advanced to the first upward zero crossing of
    `max_i condition_i` over the non-refractory neurons (by the model's closed-form
    flow and a root find on it with `ExactSolver`, else by a Diffrax solve with a
    `diffrax.Event`); the spiking neuron is the arg-max. Jumps (reset, the
    recurrent kick `w_rec[i]`, input kicks `w_in[j]`) are applied between segments.
    Scheduled times (input spikes, ends of refractory periods, save times, `t1`) end a
    segment; so does the model's `safe_step_end`, so that no crossing hides inside a
    step. Everything is differentiable: spike times through the implicit function
    theorem on the root find, states through the solver and the jumps. Reverse-mode
    memory does not grow with the number of solver steps.

    **Main arguments:**

    - `neuron`: the population's model ([`spikeode.AbstractNeuron`][]).
    - `t1`: end time.
    - `inputs`: input spikes (sorted, none before `t0`); spikes at or after `t1` have no
      effect.
    - `w_in`: input weights, shape `(inputs.num_neurons, neuron.num_neurons)`.
    - `w_rec`: recurrent weights: a matrix `w_rec[pre, post]`, or
      [`spikeode.Synapses`][] (sparse, with their own delays), or `None`.
    - `delays`: recurrent transmission delays (needs `w_rec`): a spike of `pre` at
      `t` arrives at `post` at `t + delays[pre, post]`. Broadcasts against `w_rec`: a
      scalar, shape `(neurons, 1)` (per presynaptic neuron), `(neurons,)` (per
      postsynaptic neuron) or `(neurons, neurons)`; every value finite and `>= 0`,
      differentiable. `None` (the default) applies the kick in the spike's jump; a
      zero delay gives the same spikes, with the kick one zero-length segment later.
      Arrivals are scheduled events (see the loops' `max_pending`); at equal times
      the loop processes spikes (neurons at threshold), then saves, input arrivals,
      recurrent arrivals (lowest `pre`, then lowest `post`, first), ends of
      refractory periods.
    - `t0`: start time.
    - `y0`: initial state (default `neuron.init_state()`).
    - `max_spikes`: capacity of the output spike buffer. Exceeding it is an error
      (or, with `throw=False`, reported in `Simulation.result`).
    - `save_ts`: sorted times in `[t0, t1]` at which to record the state.
    - `throw`: raise on a full buffer, a failed root find or solver, or a loop that ran
      out of segments, with an error naming it. With `False` these are reported in
      `Simulation.result` ([`spikeode.RESULTS`][]), and the last two also by NaN spike
      times.

    **Other arguments** (loops, solvers, gradients):

    - `input_delays`: input transmission delays: an input spike of source `j` at `t`
      arrives at neuron `i` at `t + input_delays[j, i]`; broadcasts against `w_in`
      like `delays`. Arrivals at equal times keep the input train's order.
    - `loop`: the loop that runs the simulation ([`spikeode.AbstractLoop`][]):
      [`spikeode.CoupledLoop`][] (every neuron advanced at each event; supports
      everything), [`spikeode.PerNeuronLoop`][] (independent neurons, one loop
      each), [`spikeode.EventDrivenLoop`][] (each neuron advanced only at its own
      events) or [`spikeode.WindowedLoop`][] (all neurons in parallel within windows
      shorter than every delay); the loops own their capacities (`max_pending`, ...).
      All give the same spikes and gradients. Default (`None`): the event-driven loop
      for `Synapses` with delays known (concrete) to be zero or to depend only on the
      presynaptic neuron and a closed-form model; else the windowed loop when the
      recurrent delays are concrete and all `> 0` and no option needs the coupled
      loop (`save_ts`, `EventPropAdjoint`); else the coupled loop.
    - `adjoint`: how the result is differentiated ([`spikeode.AbstractAdjoint`][]):
      [`spikeode.DirectAdjoint`][] (the default: reverse mode through the loop, with
      its `checkpoints`), [`spikeode.EventPropAdjoint`][] (the continuous adjoint,
      backwards in time with jump conditions at events) or
      [`spikeode.ForwardMode`][] (forward-mode sensitivities: `jax.jvp`,
      `jax.jacfwd`; no reverse mode).
    - `solver`: any Diffrax solver; default `ExactSolver()` if the model has a
      closed-form flow, `diffrax.ShARK()` (an SDE solver, at the constant step `dt0`,
      then required) for diffusion noise ([`spikeode.DiffusionNoise`][]), else
      `diffrax.Tsit5()`.
    - `stepsize_controller`: default `diffrax.PIDController(rtol=1e-10, atol=1e-10)`
      for numerical solvers; ignored by `ExactSolver` (one step per segment).
    - `root_finder`: finds event times; default [`spikeode.BracketedNewton`][].
    - `dt0`: initial step for numerical solvers (default: Diffrax's choice).
    - `max_steps`: maximum solver steps per segment.
    - `max_segments`: bound on the iterations of the coupled, per-neuron and
      event-driven loops; default `arrivals + len(save_ts) + (2 + a) * max_spikes +
      4`, enough for the models here (each spike, input arrival, save and end of a
      refractory period takes one segment; `a` is the number of arrival slots a spike
      takes, 0 without `delays`). Raise it for models whose `safe_step_end` ends
      segments without a spike.
    - `pseudodynamics`: a [`spikeode.Pseudodynamics`][]: the trial ends at its
      `trial_end` (before `t1`) and the network then continues to `t1` with every
      neuron's constant drive replaced by its `drive`; spikes after the trial end are
      pseudospikes (Klos & Memmesheimer).

    **Returns:** a [`spikeode.Simulation`][].

    **Raises:**

    - `ValueError` (at call time) for arguments that are wrong in themselves: shapes
      that do not fit (`w_in`, `w_rec`, `delays`, `y0`), capacities that are not
      positive ints, a `loop` that cannot run this problem (named with the reason),
      options that do not combine, a float64 `y0` without x64. `TypeError` for a
      `loop` or `adjoint` of the wrong kind.
    - `equinox.EquinoxRuntimeError` (also inside `jit`, via `equinox.error_if`) for
      values that are wrong: NaN, infinite or unsorted input times, spikes before `t0`,
      NaN or infinite weights, parameters or `y0`, non-positive time constants,
      negative or non-finite delays, `t1 <= t0`; and, with `throw=True`, for a run
      that failed: a full buffer (naming the capacity to raise), a root find or solver
      that did not converge, an exhausted `max_segments`. With `throw=False` the run's
      failures are returned in `Simulation.result` instead.
    """
    if adjoint is None:
        adjoint = DirectAdjoint()
    if not isinstance(adjoint, AbstractAdjoint):
        raise TypeError(
            f"simulate: `adjoint` must be a spikeode.AbstractAdjoint (DirectAdjoint, "
            f"EventPropAdjoint or ForwardMode), got {type(adjoint).__name__}; a Diffrax "
            "adjoint for numerical solvers goes in DirectAdjoint(solver_adjoint=...), "
            "forward mode is spikeode.ForwardMode()."
        )
    if loop is not None and not isinstance(loop, AbstractLoop):
        raise TypeError(
            f"simulate: `loop` must be a spikeode.AbstractLoop (CoupledLoop, "
            f"PerNeuronLoop, EventDrivenLoop, WindowedLoop) or None, got {loop!r}."
        )
    if not isinstance(max_spikes, int) or max_spikes < 1:
        raise ValueError(f"simulate: `max_spikes` must be a positive int, got {max_spikes!r}.")
    if max_segments is not None and (not isinstance(max_segments, int) or max_segments < 1):
        raise ValueError(
            f"simulate: `max_segments` must be a positive int, got {max_segments!r}."
        )
    if delays is not None and w_rec is None:
        raise ValueError("simulate: `delays` were given without recurrent weights `w_rec`.")
    if input_delays is not None and inputs is None:
        raise ValueError("simulate: `input_delays` were given without `inputs`.")
    neuron = neuron.check()
    n = neuron.num_neurons
    y0 = neuron.init_state() if y0 is None else jnp.asarray(y0)
    if y0.shape != (n, neuron.state_size):
        raise ValueError(
            f"simulate: `y0` has shape {y0.shape}; expected ({n}, {neuron.state_size})."
        )
    neuron, y0, w_in, w_rec = _check_finite(neuron, y0, w_in, w_rec)
    segment_of = functools.partial(
        make_segment, adjoint=adjoint, solver=solver, stepsize_controller=stepsize_controller,
        root_finder=root_finder, dt0=dt0, max_steps=max_steps, t_span=(t0, t1),
    )  # fmt: skip
    segment = segment_of(neuron)
    problem = Problem(
        neuron=neuron, t0=t0, t1=t1, inputs=inputs, w_in=w_in, w_rec=w_rec, delays=delays,
        input_delays=input_delays, y0=y0, save_ts=save_ts, max_spikes=max_spikes,
        max_segments=max_segments, segment=segment, adjoint=adjoint,
    )  # fmt: skip
    if loop is None:
        loop = default_loop(problem)
    if pseudodynamics is None:
        sim, failures = loop.run(problem)
    else:
        sim, failures = _with_pseudodynamics(loop, problem, pseudodynamics, segment_of)
    times, result = _report(sim.spikes.times, failures, throw)
    return eqx.tree_at(lambda s: (s.spikes.times, s.result), sim, (times, result))


def _with_pseudodynamics(loop: AbstractLoop, p: Problem, pseudo: Pseudodynamics, segment_of):
    """The trial and the pseudodynamics after it as one simulation over `[t0, t1]`,
    and its failures. Where `loop` can switch models and the pseudodynamics model has
    the structure of the model (e.g. a theta neuron with another bias), one loop runs
    both phases; otherwise `loop` runs each phase and the spikes are merged.
    `segment_of(model)`: the segment of `simulate`'s solver options for a model (the
    model after the trial end may need another solver by default, e.g. a numerical
    one)."""
    if p.delayed or p.input_delays is not None:
        raise ValueError(
            "simulate: `pseudodynamics` cannot be combined with `delays`, "
            "`input_delays` or `Synapses` (arrivals pending at the trial end would be "
            "lost)."
        )
    # (the pseudodynamics model, built now so that a model without it fails first)
    phase_model = require_capability(p.neuron, AbstractPhaseNeuron)
    after_model = phase_model.pseudodynamics(pseudo.drive).check()
    dtype = jnp.result_type(p.t0, p.t1, pseudo.trial_end, float)
    t_end = jnp.asarray(pseudo.trial_end, dtype)
    t_end = eqx.error_if(
        t_end,
        ~((t_end > jnp.asarray(p.t0, dtype)) & (t_end < jnp.asarray(p.t1, dtype))),
        "Pseudodynamics: `trial_end` must lie strictly between t0 and t1.",
    )
    if loop.switches and (
        jax.tree_util.tree_structure(after_model) == jax.tree_util.tree_structure(p.neuron)
    ):
        # one loop: the model switches to its pseudodynamics at the trial end
        return loop.run(p.replace(switch=(t_end, after_model)))
    save_ts = ts1 = ts2 = None
    if p.save_ts is not None:
        save_ts = jnp.asarray(p.save_ts)
        ts1, ts2 = jnp.minimum(save_ts, t_end), jnp.maximum(save_ts, t_end)
    trial, trial_failures = loop.run(p.replace(t1=t_end, save_ts=ts1))
    inputs = p.inputs
    if inputs is not None:
        # The second phase sees only the inputs from the trial end on.
        late = inputs.times >= t_end
        inputs = SpikeTrain(
            jnp.where(late, inputs.times, jnp.inf),
            jnp.where(late, inputs.neurons, inputs.num_neurons),
            inputs.num_neurons,
        ).sorted()
    after, after_failures = loop.run(p.replace(
        neuron=after_model, segment=segment_of(after_model), t0=t_end, inputs=inputs,
        y0=trial.y_final, save_ts=ts2,
    ))  # fmt: skip
    # Merge: all spikes of the trial precede those after it.
    times, ids, slopes = merge_buffers(
        jnp.concatenate([trial.spikes.times, after.spikes.times]),
        jnp.concatenate([trial.spikes.neurons, after.spikes.neurons]),
        jnp.concatenate([trial.slopes, after.slopes]),
        p.max_spikes,
        p.neuron.num_neurons,
    )
    total = trial.spikes.num_spikes + after.spikes.num_spikes
    full: Failure = (
        total > p.max_spikes, RESULTS.max_spikes_reached, f"simulate: more than max_"
        f"spikes={p.max_spikes} spikes in the trial and the pseudodynamics together; "
        "raise `max_spikes`.",
    )  # fmt: skip
    ys = None
    if save_ts is not None:
        before = (save_ts < t_end)[:, None, None]
        ys = jnp.where(before, trial.ys, after.ys)
    sim = Simulation(
        spikes=SpikeTrain(times, ids, p.neuron.num_neurons),
        t0=trial.t0,
        t1=after.t1,
        ts=None if save_ts is None else save_ts.astype(dtype),
        ys=ys,
        y_final=after.y_final,
        slopes=slopes,
        result=RESULTS.successful,
        num_segments=trial.num_segments + after.num_segments,
    )
    return sim, trial_failures + after_failures + [full]


def _finite(x, what: str):
    """`x`, checked (at run time) to have no NaN or infinite entry."""
    return eqx.error_if(
        x, ~jnp.all(jnp.isfinite(x)), f"simulate: {what} has NaN or infinite entries; "
        "expected finite values.",
    )  # fmt: skip


def _check_finite(neuron, y0, w_in, w_rec):
    """The model's parameters, the initial state and the weights, checked to be finite
    (a NaN weight would otherwise give a network without spikes, silently)."""
    name = type(neuron).__name__

    def param(path, x):
        if not eqx.is_inexact_array(x):
            return x
        return _finite(x, f"the parameter {name}{jax.tree_util.keystr(path)}")

    neuron = jax.tree_util.tree_map_with_path(param, neuron)
    y0 = _finite(y0, "the initial state `y0`")
    if w_in is not None:
        w_in = _finite(jnp.asarray(w_in), "`w_in`")
    if isinstance(w_rec, Synapses):
        w_rec = eqx.tree_at(lambda s: s.weight, w_rec, _finite(w_rec.weight, "`w_rec.weight`"))
    elif w_rec is not None:
        w_rec = _finite(jnp.asarray(w_rec), "`w_rec`")
    return neuron, y0, w_in, w_rec


def _report(times, failures: list[Failure], throw: bool):
    """`(times, result)`: each failure raised as an error where its flag is set
    (`throw`), else `times` NaN where a failure leaves the spikes meaningless
    (`RESULTS` items in `INVALIDATING`); `result` the first flagged one's, else
    `successful`."""
    result = RESULTS.successful
    for flag, item, _ in reversed(failures):
        result = RESULTS.where(flag, item, result)
    if throw:
        for flag, _, message in failures:
            times = eqx.error_if(times, flag, message)
        return times, result
    bad = jnp.zeros((), bool)
    for flag, item, _ in failures:
        if item in INVALIDATING:
            bad = bad | flag
    return jnp.where(bad, jnp.nan, times), result

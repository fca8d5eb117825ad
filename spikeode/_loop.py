"""The event loop: segments of Diffrax solves separated by jumps."""

from __future__ import annotations

import functools
import operator

import diffrax
import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Scalar

from ._adjoint import EventPropAdjoint
from ._delays import check_delays, input_schedule, per_presynaptic, save_schedule
from ._event_driven import event_connections, event_driven_run
from ._results import CAPACITIES, RESULTS
from ._segment import (
    _checked_w_in,
    _one_neuron_model,
    check_dtype,
    default_solver as default_solver,
    earliest_pending,
    first_of,
    output_buffers,
    segment_solver,
    time_span,
)
from ._solver import ExactSolver
from ._spikes import SpikeTrain
from ._stored_loop import event_while_loop, loop_kind
from ._synapses import Synapses
from ._windowed import windowed_run
from .neurons import AbstractNeuron


class Simulation(eqx.Module):
    """What [`spikeode.simulate`][] returns.

    **Fields:**

    - `spikes`: the population's output [`spikeode.SpikeTrain`][].
    - `t0`, `t1`: the simulated window.
    - `ts`: the requested save times (or `None`).
    - `ys`: states at `ts`, shape `(len(ts), neurons, state)` (or `None`). A state at
      the time of a jump is the one before the jump.
    - `y_final`: the state at `t1`.
    - `slopes`: for each spike, the rate of change of the spiking neuron's condition at
      the crossing (`+inf` for padding); small values mean grazing crossings, whose
      times are ill-conditioned.
    - `result`: how the simulation ended, a [`spikeode.RESULTS`][] (with
      `throw=True`, the default, always `successful`: failures are raised).
    - `num_segments`: number of solver segments the loop ran (the windowed loop:
      number of windows; the event-driven loop: number of events).
    """

    spikes: SpikeTrain
    t0: Scalar
    t1: Scalar
    ts: Float[Array, " save"] | None
    ys: Float[Array, "save neurons state"] | None
    y_final: Float[Array, "neurons state"]
    slopes: Float[Array, " capacity"]
    result: RESULTS
    num_segments: Int[Array, ""]

    @property
    def overflow(self) -> Bool[Array, ""]:
        """Whether a capacity was exceeded (`max_spikes`, `max_pending`, ...; the
        simulation then stopped at the first spike or arrival that did not fit)."""
        return functools.reduce(operator.or_, [self.result == r for r in CAPACITIES])


class _Carry(eqx.Module):
    t: Scalar
    y: Array
    in_ptr: Array
    save_ptr: Array
    refr_until: Array
    n_out: Array
    done: Array
    overflow: Array
    failed: Array
    segments: Array
    # delayed recurrent arrivals (empty arrays without delays): times (+inf: free
    # slot) and keys `pre * (n + 1) + post` (`post == n`: every target)
    pend_t: Array
    pend_key: Array
    pend_overflow: Array


class _Consts(eqx.Module):
    neuron: AbstractNeuron
    t0: Scalar
    t1: Scalar
    t_ref: Array
    in_ids: Array
    in_post: Array


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

    def __init__(self, trial_end: ArrayLike, drive: ArrayLike = 1.0):
        self.trial_end = jnp.asarray(trial_end)
        self.drive = jnp.asarray(drive)

    def simulate(self, neuron, t1, inputs, w_in, *, t0, y0, save_ts, **kwargs) -> Simulation:
        """Both phases of [`spikeode.simulate`][] with this option; returns one
        [`spikeode.Simulation`][] over `[t0, t1]`."""
        pseudo_neuron = neuron.pseudodynamics(self.drive)
        dtype = jnp.result_type(t0, t1, self.trial_end, float)
        t_end = jnp.asarray(self.trial_end, dtype)
        t_end = eqx.error_if(
            t_end,
            ~((t_end > jnp.asarray(t0, dtype)) & (t_end < jnp.asarray(t1, dtype))),
            "Pseudodynamics: `trial_end` must lie strictly between t0 and t1.",
        )
        ts1 = ts2 = None
        if save_ts is not None:
            save_ts = jnp.asarray(save_ts)
            ts1, ts2 = jnp.minimum(save_ts, t_end), jnp.maximum(save_ts, t_end)
        trial = _simulate(neuron, t_end, inputs, w_in, t0=t0, y0=y0, save_ts=ts1, **kwargs)
        if inputs is not None:
            # The second phase sees only the inputs from the trial end on.
            late = inputs.times >= t_end
            inputs = SpikeTrain(
                jnp.where(late, inputs.times, jnp.inf),
                jnp.where(late, inputs.neurons, inputs.num_neurons),
                inputs.num_neurons,
            ).sorted()
        after = _simulate(
            pseudo_neuron, t1, inputs, w_in, t0=t_end, y0=trial.y_final, save_ts=ts2,
            **kwargs,
        )  # fmt: skip
        # Merge: all spikes of the trial precede those after it.
        max_spikes = kwargs["max_spikes"]
        times, ids, slopes = _merge_buffers(
            jnp.concatenate([trial.spikes.times, after.spikes.times]),
            jnp.concatenate([trial.spikes.neurons, after.spikes.neurons]),
            jnp.concatenate([trial.slopes, after.slopes]),
            max_spikes,
            neuron.num_neurons,
        )
        total = trial.spikes.num_spikes + after.spikes.num_spikes
        times, full = _report(times, [(
            total > max_spikes, RESULTS.max_spikes_reached,
            f"simulate: more than max_spikes={max_spikes} spikes in the trial and the "
            "pseudodynamics together; raise `max_spikes`.",
        )], kwargs["throw"], False)  # fmt: skip
        ok = trial.result == RESULTS.successful
        result = RESULTS.where(ok, RESULTS.where(after.result == RESULTS.successful, full,
                                                 after.result), trial.result)
        ys = None
        if save_ts is not None:
            before = (save_ts < t_end)[:, None, None]
            ys = jnp.where(before, trial.ys, after.ys)
        return Simulation(
            spikes=SpikeTrain(times, ids, neuron.num_neurons),
            t0=trial.t0,
            t1=after.t1,
            ts=None if save_ts is None else save_ts.astype(dtype),
            ys=ys,
            y_final=after.y_final,
            slopes=slopes,
            result=result,
            num_segments=trial.num_segments + after.num_segments,
        )


def simulate(
    neuron: AbstractNeuron,
    t1: ArrayLike,
    inputs: SpikeTrain | None = None,
    w_in: Float[Array, "inputs neurons"] | None = None,
    *,
    w_rec: Float[Array, "neurons neurons"] | None = None,
    delays: ArrayLike | None = None,
    input_delays: ArrayLike | None = None,
    t0: ArrayLike = 0.0,
    y0: Float[Array, "neurons state"] | None = None,
    max_spikes: int,
    max_spikes_per_neuron: int | None = None,
    max_pending: int | None = None,
    loop: str = "auto",
    window: float | None = None,
    max_window_spikes: int | None = None,
    max_window_events: int | None = None,
    save_ts: Float[Array, " save"] | None = None,
    solver: diffrax.AbstractSolver | None = None,
    stepsize_controller: diffrax.AbstractStepSizeController | None = None,
    root_finder: optx.AbstractRootFinder | None = None,
    dt0: ArrayLike | None = None,
    max_steps: int = 4096,
    adjoint: diffrax.AbstractAdjoint | None = None,
    checkpoints: int | None = None,
    max_segments: int | None = None,
    throw: bool = True,
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
    memory does not grow with the number of solver steps (the loop stores one state
    per segment, or `checkpoints` of them).

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
      Arrivals are scheduled events (see `max_pending`); at equal times the loop
      processes spikes (neurons at threshold), then saves, input arrivals,
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

    **Other arguments** (loops, capacities, solvers, gradients):

    - `input_delays`: input transmission delays: an input spike of source `j` at `t`
      arrives at neuron `i` at `t + input_delays[j, i]`; broadcasts against `w_in`
      like `delays`. Arrivals at equal times keep the input train's order.
    - `max_spikes_per_neuron`: for populations without recurrent weights only. The
      neurons are then independent, and each is simulated on its own (`jax.vmap`
      over neurons of one event loop): every loop has a segment per input spike and
      per spike of its own neuron instead of per spike of the whole population,
      which is much faster for wide layers. Each neuron's buffer holds this many
      spikes (more is an error, or a `Simulation.result` with `throw=False`); the merged,
      time-sorted train has capacity `max_spikes`. The same spikes and gradients
      as the coupled loop. Needs a model whose parameters are scalars or of shape
      `(num_neurons,)` (the contract of [`spikeode.AbstractNeuron`][]).
    - `max_pending`: capacity of the buffer of delayed recurrent arrivals not yet
      delivered (with delays only; arrivals at or after `t1` are not stored). In the
      coupled loop a spike takes one slot if the delays depend only on the
      presynaptic neuron, else one per neuron (default: room for 32 spikes); in the
      event-driven loop one (default `min(max_spikes, max(32, n // 8))`); in the
      windowed loop one per synapse (default: twice the arrivals of a full window).
      Exceeding it is an error (or, with `throw=False`, reported in
      `Simulation.result`).
    - `loop`: `"coupled"` (one loop over the population's events, every neuron
      advanced at each), `"event"` (event-driven: each neuron advanced only at its own
      events, its next crossing predicted exactly; an event costs O(fan-out), not
      O(n); closed-form models, recurrent delays zero or per presynaptic neuron, not
      `EventPropAdjoint`), `"windowed"` (see `window`) or `"auto"` (the default):
      event-driven for `Synapses` with delays known (concrete) to be zero or to
      depend only on the presynaptic neuron, and a closed-form model; else windowed
      when the recurrent delays are concrete and all `> 0`, or `window` is given, and
      no option needs another loop (`save_ts`, `EventPropAdjoint`,
      `max_spikes_per_neuron`); else coupled. All give the same spikes and
      gradients.
    - `window`: the windowed loop's window length (a Python float, `<=` every
      recurrent delay; default the smallest delay). Within a window every neuron's
      arrivals are known, so all neurons advance in parallel, each by its own loop
      of segments; the window's spikes then become arrivals of later windows.
      Needs concrete `t0` and `t1`.
    - `max_window_spikes`: the windowed loop's capacity for the spikes of one window
      (default `min(n, max(64, n // 32))`: 31 Hz on average over a 1 ms window);
      exceeding it is an error.
    - `max_window_events`: the windowed loop's bound on one neuron's segments in one
      window (its arrivals, spikes, ends of refractory periods, plus one; default
      16); exceeding it is an error.
    - `solver`: any Diffrax solver; default `ExactSolver()` if the model has a
      closed-form flow, else `diffrax.Tsit5()`.
    - `stepsize_controller`: default `diffrax.PIDController(rtol=1e-10, atol=1e-10)`
      for numerical solvers; ignored by `ExactSolver` (one step per segment).
    - `root_finder`: finds event times; default [`spikeode.BracketedNewton`][].
    - `dt0`: initial step for numerical solvers (default: Diffrax's choice).
    - `max_steps`: maximum solver steps per segment.
    - `adjoint`: for numerical solvers, the Diffrax adjoint of each segment's solve
      (default `diffrax.RecursiveCheckpointAdjoint()`); `ExactSolver` segments have
      no solver steps and are differentiated directly. Or
      [`spikeode.EventPropAdjoint`][] for the continuous adjoint (the adjoint
      equation backwards in time with jump conditions at events), for every model.
      Pass `diffrax.ForwardMode()` for forward-mode sensitivities (`jax.jvp`,
      `jax.jacfwd`, Hessian-vector products by forward over forward), for every
      model: the loop over segments then runs as a plain `lax.while_loop`, which
      supports forward mode but not reverse mode.
    - `checkpoints`: checkpoints of the loop over segments for reverse mode. Default:
      every segment if that takes at most 64 MB (memory proportional to the number of
      segments, i.e. spikes and input spikes, never to solver steps; the fastest
      reverse pass), else Equinox's automatic scheme (about `sqrt(2 * max_segments)`
      checkpoints, more recomputation).
    - `max_segments`: bound on the loop's iterations; default
      `arrivals + len(save_ts) + (2 + a) * max_spikes + 4`, enough for the models
      here (each spike, input arrival, save and end of a refractory period takes one
      segment; `a` is the number of arrival slots a spike takes, 0 without
      `delays`). Raise it for models whose `safe_step_end` ends segments without a
      spike.
    - `pseudodynamics`: a [`spikeode.Pseudodynamics`][]: the trial ends at its
      `trial_end` (before `t1`) and the network then continues to `t1` with every
      neuron's constant drive replaced by its `drive`; spikes after the trial end are
      pseudospikes (Klos & Memmesheimer).

    **Returns:** a [`spikeode.Simulation`][].

    **Raises:**

    - `ValueError` (at call time) for arguments that are wrong in themselves: shapes
      that do not fit (`w_in`, `w_rec`, `delays`, `y0`), capacities that are not
      positive ints, a `loop` that cannot run this problem (named with the reason),
      options that do not combine, a float64 `y0` without x64.
    - `equinox.EquinoxRuntimeError` (also inside `jit`, via `equinox.error_if`) for
      values that are wrong: NaN, infinite or unsorted input times, spikes before `t0`,
      NaN or infinite weights, parameters or `y0`, non-positive time constants,
      negative or non-finite delays, `t1 <= t0`; and, with `throw=True`, for a run
      that failed: a full buffer (naming the capacity to raise), a root find or solver
      that did not converge, an exhausted `max_segments`. With `throw=False` the run's
      failures are returned in `Simulation.result` instead.
    """
    kwargs = dict(
        w_rec=w_rec, delays=delays, input_delays=input_delays, max_pending=max_pending,
        loop=loop, window=window, max_window_spikes=max_window_spikes,
        max_window_events=max_window_events,
        max_spikes=max_spikes, max_spikes_per_neuron=max_spikes_per_neuron,
        solver=solver,
        stepsize_controller=stepsize_controller, root_finder=root_finder, dt0=dt0,
        max_steps=max_steps, adjoint=adjoint, checkpoints=checkpoints,
        max_segments=max_segments, throw=throw,
    )  # fmt: skip
    if pseudodynamics is None:
        return _simulate(neuron, t1, inputs, w_in, t0=t0, y0=y0, save_ts=save_ts, **kwargs)
    if delays is not None or input_delays is not None or isinstance(w_rec, Synapses):
        raise ValueError(
            "simulate: `pseudodynamics` cannot be combined with `delays`, "
            "`input_delays` or `Synapses` (arrivals pending at the trial end would be "
            "lost)."
        )
    return pseudodynamics.simulate(
        neuron, t1, inputs, w_in, t0=t0, y0=y0, save_ts=save_ts, **kwargs
    )


def _simulate(
    neuron, t1, inputs, w_in, *, max_spikes, max_spikes_per_neuron, y0, throw, **kwargs
) -> Simulation:
    """`simulate` without pseudodynamics: the coupled loop, or one loop per neuron."""
    if kwargs["delays"] is not None and kwargs["w_rec"] is None:
        raise ValueError("simulate: `delays` were given without recurrent weights `w_rec`.")
    if kwargs["input_delays"] is not None and inputs is None:
        raise ValueError("simulate: `input_delays` were given without `inputs`.")
    loop = kwargs.pop("loop")
    window = kwargs.pop("window")
    window_caps = dict(
        max_window_spikes=kwargs.pop("max_window_spikes"),
        max_window_events=kwargs.pop("max_window_events"),
    )
    neuron = neuron.check()
    n = neuron.num_neurons
    if y0 is None:
        y0 = neuron.init_state()
    y0 = jnp.asarray(y0)
    if y0.shape != (n, neuron.state_size):
        raise ValueError(
            f"simulate: `y0` has shape {y0.shape}; expected ({n}, {neuron.state_size})."
        )
    neuron, y0, w_in, kwargs["w_rec"] = _check_finite(neuron, y0, w_in, kwargs["w_rec"])
    if not isinstance(max_spikes, int) or max_spikes < 1:
        raise ValueError(f"simulate: `max_spikes` must be a positive int, got {max_spikes!r}.")
    loop, window = _choose_loop(
        loop, window, kwargs, max_spikes_per_neuron=max_spikes_per_neuron, neuron=neuron
    )
    if loop == "event":
        return _simulate_event(neuron, t1, inputs, w_in, y0=y0, max_spikes=max_spikes,
                               throw=throw, **kwargs)  # fmt: skip
    if loop == "windowed":
        return _simulate_windowed(
            neuron, t1, inputs, w_in, window=window, y0=y0, max_spikes=max_spikes,
            throw=throw, **window_caps, **kwargs,
        )  # fmt: skip
    if isinstance(kwargs["w_rec"], Synapses):
        kwargs["w_rec"], kwargs["delays"] = _coupled_connections(kwargs["w_rec"])
    if max_spikes_per_neuron is None:
        sim, failed, unfinished, pend_overflow, max_pending = _run(
            neuron, t1, inputs, w_in, y0=y0, max_spikes=max_spikes, **kwargs
        )
        messages = _buffer_messages(
            sim.overflow & ~pend_overflow, pend_overflow, max_spikes, max_pending
        )
    else:
        sim, failed, unfinished, neuron_overflow = _run_per_neuron(
            neuron, t1, inputs, w_in, y0=y0, max_spikes=max_spikes,
            max_spikes_per_neuron=max_spikes_per_neuron, **kwargs,
        )  # fmt: skip
        messages = [
            (neuron_overflow, RESULTS.max_spikes_per_neuron_reached, "simulate: a neuron "
             f"fired more than max_spikes_per_neuron={max_spikes_per_neuron} times. Raise "
             "`max_spikes_per_neuron`."),
            (sim.overflow, RESULTS.max_spikes_reached, f"simulate: more than max_spikes="
             f"{max_spikes} spikes in the population. Raise `max_spikes`."),
        ]  # fmt: skip
    messages += [
        (failed, RESULTS.root_find_failed, "simulate: a segment failed (event root find "
         "did not converge or the solver hit max_steps); check the model parameters, "
         "tolerances or `max_steps`."),
        (unfinished, RESULTS.max_segments_reached, "simulate: the event loop ran out of "
         "segments before t1; raise `max_segments`."),
    ]  # fmt: skip
    out_t, result = _report(sim.spikes.times, messages, throw, failed | unfinished)
    return eqx.tree_at(lambda s: (s.spikes.times, s.result), sim, (out_t, result))


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


def _buffer_messages(overflow, pend_overflow, max_spikes, max_pending):
    """The errors of a full spike buffer and a full buffer of delayed arrivals."""
    return [
        (overflow, RESULTS.max_spikes_reached, f"simulate: more than max_spikes="
         f"{max_spikes} spikes; the spike buffer is full. Raise `max_spikes`."),
        (pend_overflow, RESULTS.max_pending_reached, f"simulate: more than max_pending="
         f"{max_pending} delayed arrivals pending; the arrival buffer is full. Raise "
         "`max_pending`."),
    ]  # fmt: skip


def _report(times, messages, throw: bool, bad):
    """`(times, result)`: each `(flag, result, message)` of `messages` raised as an
    error where the flag is set (`throw`), else `times` NaN where `bad` (a failure that
    leaves the spikes meaningless); `result` the first flagged one's, else
    `successful`."""
    result = RESULTS.successful
    for flag, item, _ in reversed(messages):
        result = RESULTS.where(flag, item, result)
    if throw:
        for flag, _, message in messages:
            times = eqx.error_if(times, flag, message)
        return times, result
    return jnp.where(bad, jnp.nan, times), result


def _coupled_connections(syn: Synapses):
    """`(w_rec, delays)` for the coupled loop from `Synapses`. Known (concrete)
    delays that are all 0 become no delays, delays that depend only on the presynaptic
    neuron one per neuron (a spike then takes one arrival slot, not one per neuron);
    otherwise (e.g. traced, inside `jit`) one per connection."""
    w, d = syn.to_dense()
    if isinstance(syn.delay, jax.core.Tracer):
        return w, d
    delay, pre = np.asarray(syn.delay), np.asarray(syn.pre)
    if not np.any(delay):
        return w, None
    first = np.zeros(syn.num_pre, delay.dtype)
    first[pre[::-1]] = delay[::-1]  # (one delay of each presynaptic neuron)
    if np.all(delay == first[pre]):
        return w, jnp.asarray(first[:, None], d.dtype)
    return w, d


def _min_delay(kwargs) -> float | None:
    """The smallest recurrent delay if it is known now (concrete), else `None`."""
    w_rec, delays = kwargs["w_rec"], kwargs["delays"]
    d = w_rec.delay if isinstance(w_rec, Synapses) else delays
    if d is None or isinstance(d, jax.core.Tracer):
        return None
    d = np.asarray(d)
    return float(d.min()) if d.size else None


def _per_presynaptic_or_zero(kwargs) -> bool:
    """Whether the recurrent delays are known now to be all zero or to depend only on
    the presynaptic neuron (what the event-driven loop supports)."""
    w_rec, delays = kwargs["w_rec"], kwargs["delays"]
    if isinstance(w_rec, Synapses):
        if not w_rec.unique_pairs or isinstance(w_rec.delay, jax.core.Tracer):
            return False
        if isinstance(w_rec.pre, jax.core.Tracer):
            return False
        delay, pre = np.asarray(w_rec.delay), np.asarray(w_rec.pre)
        first = np.zeros(w_rec.num_pre, delay.dtype)
        first[pre[::-1]] = delay[::-1]
        return bool(np.all(delay == first[pre]))
    return delays is None or (
        not isinstance(delays, jax.core.Tracer) and per_presynaptic(jnp.asarray(delays))
    )


def _choose_loop(loop, window, kwargs, *, max_spikes_per_neuron, neuron):
    """Which loop runs (`"coupled"`, `"windowed"` or `"event"`), and the window."""
    if loop not in ("auto", "coupled", "windowed", "event"):
        raise ValueError(
            f"simulate: `loop` must be 'auto', 'coupled', 'windowed' or 'event', got {loop!r}."
        )
    if window is not None and loop not in ("auto", "windowed"):
        raise ValueError("simulate: `window` is an option of loop='windowed'.")
    blockers = [
        name for name, on in (
            ("EventPropAdjoint", isinstance(kwargs["adjoint"], EventPropAdjoint)),
            ("max_spikes_per_neuron", max_spikes_per_neuron is not None),
        ) if on
    ]  # fmt: skip
    closed_form = neuron.has_flow and isinstance(
        kwargs["solver"] or default_solver(neuron), ExactSolver
    )
    if loop == "coupled":
        return "coupled", None
    if loop == "event":
        if kwargs["w_rec"] is None:
            raise ValueError("simulate: loop='event' needs recurrent weights `w_rec`.")
        if not closed_form:
            raise ValueError(
                "simulate: loop='event' needs a model with a closed-form `flow` and "
                "ExactSolver (it advances each neuron on its own by the flow)."
            )
        if blockers:
            raise ValueError(
                f"simulate: loop='event' does not support {', '.join(blockers)}; use "
                "loop='coupled'."
            )
        return "event", None
    # sparse synapses whose delays are known to be zero or per presynaptic neuron: the
    # event-driven loop (also faster than the windowed loop there: docs/scaling.md)
    if (
        loop == "auto" and window is None and not blockers and closed_form
        and isinstance(kwargs["w_rec"], Synapses) and _per_presynaptic_or_zero(kwargs)
    ):  # fmt: skip
        return "event", None
    if kwargs["save_ts"] is not None:
        blockers.append("save_ts")
    delayed = kwargs["delays"] is not None or isinstance(kwargs["w_rec"], Synapses)
    d_min = _min_delay(kwargs)
    if loop == "auto":
        use = delayed and not blockers and (window is not None or (d_min or 0) > 0)
        if not use:
            return "coupled", None
    else:  # windowed
        if not delayed:
            raise ValueError(
                "simulate: loop='windowed' needs recurrent delays (`delays`, or "
                "`Synapses` as `w_rec`)."
            )
        if blockers:
            raise ValueError(
                f"simulate: loop='windowed' does not support {', '.join(blockers)}; use "
                "loop='coupled'."
            )
    if window is None:
        if d_min is None:
            raise ValueError(
                "simulate: the windowed loop needs `window` when the delays are traced "
                "(e.g. inside jax.jit): pass a window length <= the smallest delay."
            )
        if not d_min > 0:
            raise ValueError(
                f"simulate: the windowed loop needs every recurrent delay > 0; the "
                f"smallest is {d_min}. Use loop='coupled'."
            )
        window = d_min
    return "windowed", window


def _simulate_windowed(
    neuron, t1, inputs, w_in, *, window, y0, max_spikes, throw, w_rec, delays,
    input_delays, max_pending, max_window_spikes, max_window_events, t0, save_ts,
    solver, stepsize_controller, root_finder, dt0, max_steps, adjoint, checkpoints,
    max_segments,
) -> Simulation:  # fmt: skip
    """`simulate` by the windowed loop (`_windowed.windowed_run`)."""
    del save_ts, max_segments  # (refused by _choose_loop; not used)
    dtype = y0.dtype
    check_dtype(dtype)
    seg = segment_solver(
        neuron, dtype, solver, stepsize_controller, root_finder, dt0, max_steps, adjoint
    )
    times, ids, slopes, y_final, f = windowed_run(
        neuron, t1, inputs, w_in, w_rec=w_rec, delays=delays, input_delays=input_delays,
        window=window, t0=t0, y0=y0, max_spikes=max_spikes, max_pending=max_pending,
        max_window_spikes=max_window_spikes, max_window_events=max_window_events,
        seg=seg, checkpoints=checkpoints,
    )  # fmt: skip
    n = neuron.num_neurons
    messages = [
        *_buffer_messages(f["overflow"], f["pend_overflow"], max_spikes, f["max_pending"]),
        (f["window_overflow"], RESULTS.max_window_spikes_reached, "simulate: a window "
         f"of the windowed loop held more than max_window_spikes={f['max_window_spikes']}"
         " spikes. Raise `max_window_spikes` or shorten `window`."),
        (f["events_overflow"], RESULTS.max_window_events_reached, "simulate: a neuron "
         f"needed more than max_window_events={f['max_window_events']} segments "
         "(arrivals, spikes, ends of refractory periods) in one window of the windowed "
         "loop. Raise `max_window_events` or shorten `window`."),
        (f["failed"], RESULTS.root_find_failed, "simulate: a segment failed (event root "
         "find did not converge or the solver hit max_steps); check the model "
         "parameters, tolerances or `max_steps`."),
        (f["unfinished"], RESULTS.max_segments_reached, "simulate: the windowed loop did "
         "not reach t1."),
    ]  # fmt: skip
    # (a full spike or arrival buffer stops the loop after the window in which it
    # happened: the spikes up to there are right, as with the coupled loop)
    bad = f["failed"] | f["unfinished"] | f["window_overflow"] | f["events_overflow"]
    times, result = _report(times, messages, throw, bad)
    dtype_t = times.dtype
    return Simulation(
        spikes=SpikeTrain(times, ids, n),
        t0=jnp.asarray(t0, dtype_t),
        t1=jnp.asarray(t1, dtype_t),
        ts=None,
        ys=None,
        y_final=y_final,
        slopes=slopes,
        result=result,
        num_segments=f["windows"],
    )


def _simulate_event(
    neuron, t1, inputs, w_in, *, y0, max_spikes, throw, w_rec, delays, input_delays,
    max_pending, t0, save_ts, solver, stepsize_controller, root_finder, dt0, max_steps,
    adjoint, checkpoints, max_segments,
) -> Simulation:  # fmt: skip
    """`simulate` by the event-driven loop (`_event_driven.event_driven_run`)."""
    n = neuron.num_neurons
    dtype = y0.dtype
    check_dtype(dtype)
    t0, t1 = time_span(t0, t1, dtype)
    schedule = input_schedule(inputs, w_in, input_delays, n, dtype, t0)
    saves = save_schedule(save_ts, t0, t1, dtype)
    syn, d_pre = event_connections(w_rec, delays, n, dtype)
    seg = segment_solver(
        neuron, dtype, solver, stepsize_controller, root_finder, dt0, max_steps, adjoint
    )
    times, ids, slopes, ys, y_final, f = event_driven_run(
        neuron, t0, t1, schedule, saves, y0.astype(dtype), syn=syn, d_pre=d_pre,
        max_spikes=max_spikes, max_pending=max_pending, seg=seg, checkpoints=checkpoints,
        max_segments=max_segments,
    )  # fmt: skip
    messages = [
        *_buffer_messages(f["overflow"], f["pend_overflow"], max_spikes, f["max_pending"]),
        (f["failed"], RESULTS.root_find_failed, "simulate: a threshold crossing's root "
         "find did not converge; check the model parameters."),
        (f["unfinished"], RESULTS.max_segments_reached, "simulate: the event loop ran "
         "out of events before t1; raise `max_segments`."),
    ]  # fmt: skip
    times, result = _report(times, messages, throw, f["failed"] | f["unfinished"])
    return Simulation(
        spikes=SpikeTrain(times, ids, n),
        t0=t0,
        t1=t1,
        ts=saves[1],
        ys=ys,
        y_final=y_final,
        slopes=slopes,
        result=result,
        num_segments=f["events"],
    )


def _merge_buffers(times, ids, slopes, max_spikes: int, num_neurons: int):
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


def _run_per_neuron(
    neuron, t1, inputs, w_in, *, w_rec, delays, input_delays, max_pending, y0, max_spikes,
    max_spikes_per_neuron, save_ts, **kwargs,
):  # fmt: skip
    """Independent neurons, one event loop each (vmapped); the spikes merged."""
    del delays, max_pending  # (only with w_rec, which is refused below)
    if w_rec is not None:
        raise ValueError(
            "simulate: `max_spikes_per_neuron` needs independent neurons; it cannot be "
            "combined with recurrent weights `w_rec`."
        )
    k = max_spikes_per_neuron
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"simulate: `max_spikes_per_neuron` must be a positive int, got {k!r}.")
    n = neuron.num_neurons
    if inputs is not None:
        w_cols = _checked_w_in(inputs, w_in, n).T[:, :, None]
    else:
        w_cols = jnp.zeros((n, 0, 1), y0.dtype)
    if input_delays is not None:
        # each neuron's loop sees its own column of delays, as delays per source
        d_in = check_delays(input_delays, (inputs.num_neurons, n), "input_delays", y0.dtype)
        d_cols = jnp.broadcast_to(d_in, (inputs.num_neurons, n)).T[:, :, None]
    else:
        d_cols = jnp.zeros((n, 0, 1), y0.dtype)
    single, axes = _one_neuron_model(neuron)

    def one(model, w_col, d_col, y0_i):
        sim, failed, unfinished, _, _ = _run(
            model, t1, inputs, None if inputs is None else w_col, w_rec=None, delays=None,
            input_delays=None if input_delays is None else d_col, max_pending=None,
            y0=y0_i[None], max_spikes=k, save_ts=save_ts, **kwargs,
        )  # fmt: skip
        return sim, failed, unfinished

    sims, failed, unfinished = eqx.filter_vmap(one, in_axes=(axes, 0, 0, 0))(
        single, w_cols, d_cols, y0
    )
    # merge the n buffers of k spikes into one sorted train of capacity max_spikes
    real = sims.spikes.neurons.reshape(-1) == 0
    ids = jnp.where(real, jnp.repeat(jnp.arange(n, dtype=jnp.int32), k), n)
    times, ids, slopes = _merge_buffers(
        sims.spikes.times.reshape(-1), ids, sims.slopes.reshape(-1), max_spikes, n
    )
    neuron_overflow = jnp.any(sims.overflow)
    overflow = neuron_overflow | (jnp.sum(real) > max_spikes)
    ys = None if sims.ys is None else jnp.moveaxis(sims.ys[:, :, 0], 0, 1)
    sim = Simulation(
        spikes=SpikeTrain(times, ids, n),
        t0=sims.t0[0],
        t1=sims.t1[0],
        ts=None if sims.ts is None else sims.ts[0],
        ys=ys,
        y_final=sims.y_final[:, 0],
        slopes=slopes,
        result=RESULTS.where(overflow, RESULTS.max_spikes_reached, RESULTS.successful),
        num_segments=jnp.sum(sims.num_segments),
    )
    return sim, jnp.any(failed), jnp.any(unfinished), neuron_overflow


def _run(
    neuron, t1, inputs, w_in, *, w_rec, delays, input_delays, max_pending, t0, y0,
    max_spikes, save_ts, solver, stepsize_controller, root_finder, dt0, max_steps,
    adjoint, checkpoints, max_segments,
):  # fmt: skip
    """The coupled event loop; returns the simulation (without error checks), whether
    a segment failed, whether the loop ran out of segments, whether the buffer of
    delayed arrivals overflowed, and that buffer's capacity."""
    n = neuron.num_neurons
    dtype = y0.dtype
    check_dtype(dtype)
    t0, t1 = time_span(t0, t1, dtype)

    # ---- inputs: sorted arrivals, padded with one extra +inf; kick rows with a zero row
    in_times, in_ids, in_post, w_in_pad = input_schedule(
        inputs, w_in, input_delays, n, dtype, t0
    )
    if w_rec is not None:
        w_rec = jnp.asarray(w_rec)
        if w_rec.shape != (n, n):
            raise ValueError(
                f"simulate: `w_rec` has shape {w_rec.shape}; expected ({n}, {n})."
            )
        w_rec = w_rec.astype(dtype)
    # ---- recurrent delays: a spike puts `fan` arrivals into a buffer of `max_pending`
    delayed = delays is not None
    if delayed:
        d_rec = check_delays(delays, (n, n), "delays", dtype)
        fan = 1 if per_presynaptic(d_rec) else n
        d_rec = jnp.broadcast_to(d_rec, (n, fan))
        if max_pending is None:
            max_pending = fan * min(max_spikes, 32)
        if not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(
                f"simulate: `max_pending` must be a positive int, got {max_pending!r}."
            )
        pend_targets = np.arange(fan, dtype=np.int32) if fan > 1 else np.full(1, n, np.int32)
    else:
        fan = 0
        max_pending = 0

    num_save, save_ts, save_pad = save_schedule(save_ts, t0, t1, dtype)

    # ---- solver set-up
    seg = segment_solver(
        neuron, dtype, solver, stepsize_controller, root_finder, dt0, max_steps, adjoint
    )
    solve, masked_condition, event_condition = seg.solve, seg.masked, seg.condition
    forward = seg.forward
    t_ref = jnp.broadcast_to(jnp.asarray(neuron.refractory_period, dtype), (n,))

    def body(k: _Consts, c: _Carry, read):
        # Everything traced comes in through `k` (differentiated as a whole), the
        # carry `c`, or `read(site, index)` (one row of a table; see _stored_loop).
        neuron = k.neuron
        refractory = c.refr_until > c.t
        t_in = read("in_times", c.in_ptr)
        t_save = read("save", c.save_ptr)
        # the earliest end of a refractory period (one neuron's alone carries the
        # gradient: a `min` would share it between equal times)
        releasing = jnp.where(refractory, c.refr_until, jnp.inf)
        t_release = releasing[jnp.argmin(releasing)]
        if delayed:
            # the earliest pending arrival; on ties the lowest key (pre, then post)
            slot, t_pend = earliest_pending(c.pend_t, c.pend_key)
        else:
            t_pend = jnp.asarray(jnp.inf, dtype)
        # in the order in which coinciding items are processed: saves, input arrivals,
        # recurrent arrivals, ends of refractory periods
        t_sched = first_of(t_save, t_in, t_pend, t_release, k.t1)
        # A neuron already at threshold (e.g. a jump put it there) fires now.
        fire_now = event_condition(neuron, c.t, c.y, refractory) >= 0
        # A segment ends at the next scheduled time (differentiable: input spike times
        # move it) or earlier where the model says a crossing could hide. That
        # breakpoint does not change the trajectory, so it carries no gradient.
        t_safe = lax.stop_gradient(neuron.safe_step_end(c.t, c.y, t_sched, refractory))
        t_end = jnp.where(t_safe < t_sched, t_safe, t_sched)
        t_end = jnp.where(fire_now, c.t, t_end)
        has_length = t_end > c.t
        # Segments without length (coinciding scheduled times, immediate spikes) need
        # no solve; it runs anyway (with a dummy positive length: Diffrax fills the
        # dense info of a zero-length solve with zeros, which a root find under vmap
        # would then evaluate) and its result is discarded, without gradient.
        t_start = jnp.where(has_length, c.t, lax.stop_gradient(c.t))
        t_stop = jnp.where(has_length, t_end, t_start + 1e-4 * (k.t1 - k.t0))
        t_sol, y_sol, spiked_solve, ok = solve(neuron, t_start, t_stop, c.y, refractory, read)
        spiked_solve = spiked_solve & has_length
        ok = ok | ~has_length
        # Without length, the end time still carries the gradient of the scheduled
        # time (e.g. the second of two coinciding input spikes), and the state its
        # first-order dependence on it: y + f(y) (t_end - t), which equals y.
        y_still = c.y + neuron.vector_field(c.t, c.y, refractory) * (t_end - c.t)
        t_new = jnp.where(has_length, t_sol, t_end)
        y_new = jnp.where(has_length, y_sol, y_still)
        spiked = fire_now | spiked_solve

        cond_new = masked_condition(neuron, t_new, y_new, refractory)
        i = jnp.argmax(cond_new)
        fired = (jnp.arange(n) == i) & spiked
        _, dcond = jax.jvp(
            lambda tt, yy: neuron.condition(tt, yy),
            (t_new, y_new),
            (jnp.ones_like(t_new), neuron.vector_field(t_new, y_new, refractory)),
        )
        slope = lax.stop_gradient(dcond[i])
        room = c.n_out < max_spikes
        write = spiked & room
        overflow = c.overflow | (spiked & ~room)

        # jumps: spike (reset + recurrent kick, or arrivals scheduled), else scheduled
        # items at t_end
        y_spk = neuron.reset(y_new, fired)
        if w_rec is not None and not delayed:
            y_spk = neuron.receive(y_spk, read("w_rec", i))
        is_save = ~spiked & (t_new == t_save) & (t_save <= t_in)
        is_input = ~spiked & ~is_save & (t_new == t_in) & (t_in < k.t1)
        targets = jnp.arange(n, dtype=jnp.int32)
        w_inp = read("w_in", k.in_ids[c.in_ptr])
        post = k.in_post[c.in_ptr]
        y_inp = neuron.receive(y_new, jnp.where((post == n) | (targets == post), w_inp, 0))
        y_next = jnp.where(spiked, y_spk, jnp.where(is_input, y_inp, y_new))
        pend = {}
        if delayed:
            is_pend = ~spiked & ~is_save & ~is_input & (t_new == t_pend) & (t_pend < k.t1)
            pre, post = c.pend_key[slot] // (n + 1), c.pend_key[slot] % (n + 1)
            w_pend = read("w_rec", pre)
            y_pend = neuron.receive(y_new, jnp.where((post == n) | (targets == post), w_pend, 0))
            y_next = jnp.where(is_pend, y_pend, y_next)
            # deliver (free the slot), or schedule the spike's arrivals before t1
            pend_t = jnp.where(is_pend & (jnp.arange(max_pending) == slot), jnp.inf, c.pend_t)
            t_arr = t_new + read("delays", i)
            push = spiked & (t_arr < k.t1)
            free = pend_t == jnp.inf
            free_slots = jnp.nonzero(free, size=fan, fill_value=max_pending)[0]
            rank = jnp.clip(jnp.cumsum(push) - 1, 0, fan - 1)
            dest = jnp.where(push, free_slots[rank], max_pending)
            pend = dict(
                pend_t=pend_t.at[dest].set(t_arr, mode="drop"),
                pend_key=c.pend_key.at[dest].set(
                    i.astype(jnp.int32) * (n + 1) + pend_targets, mode="drop"
                ),
                pend_overflow=c.pend_overflow | (jnp.sum(push) > jnp.sum(free)),
            )

        idx = jnp.minimum(c.n_out, max_spikes - 1)
        writes = dict(
            out_t=(idx, t_new, write),
            out_i=(idx, i.astype(jnp.int32), write),
            out_slope=(idx, slope, write),
        )
        if num_save:
            writes["ys"] = (jnp.minimum(c.save_ptr, num_save - 1), y_new, is_save)
        refr_until = jnp.where(fired, t_new + k.t_ref, c.refr_until)
        save_ptr = c.save_ptr + is_save.astype(jnp.int32)
        if delayed:
            overflow = overflow | pend["pend_overflow"]
        done = (
            overflow
            | ~ok
            | ((t_new >= k.t1) & ~spiked & (read("save_next", save_ptr) > k.t1))
        )
        carry = _Carry(
            t=t_new,
            y=y_next,
            in_ptr=c.in_ptr + is_input.astype(jnp.int32),
            save_ptr=save_ptr,
            refr_until=refr_until,
            n_out=c.n_out + write.astype(jnp.int32),
            done=done,
            overflow=overflow,
            failed=c.failed | ~ok,
            segments=c.segments + 1,
            pend_t=pend.get("pend_t", c.pend_t),
            pend_key=pend.get("pend_key", c.pend_key),
            pend_overflow=pend.get("pend_overflow", c.pend_overflow),
        )
        return carry, writes

    num_in = in_times.shape[0] - 1
    if max_segments is None:
        max_segments = num_in + num_save + (2 + fan) * max_spikes + 4
    init = _Carry(
        t=t0,
        y=y0.astype(dtype),
        in_ptr=jnp.array(0, jnp.int32),
        save_ptr=jnp.array(0, jnp.int32),
        refr_until=jnp.full((n,), -jnp.inf, dtype),
        n_out=jnp.array(0, jnp.int32),
        done=jnp.array(False),
        overflow=jnp.array(False),
        failed=jnp.array(False),
        segments=jnp.array(0, jnp.int32),
        pend_t=jnp.full((max_pending,), jnp.inf, dtype),
        pend_key=jnp.zeros((max_pending,), jnp.int32),
        pend_overflow=jnp.array(False),
    )
    buffers = output_buffers(max_spikes, n, num_save, neuron.state_size, dtype)
    tables = dict(in_times=in_times, save=save_pad, save_next=save_pad, w_in=w_in_pad)
    if w_rec is not None:
        tables["w_rec"] = w_rec
    if delayed:
        tables["delays"] = d_rec
    consts = _Consts(neuron=neuron, t0=t0, t1=t1, t_ref=t_ref, in_ids=in_ids, in_post=in_post)
    kind = loop_kind(forward, checkpoints, max_segments, init)
    final, buffers = event_while_loop(
        body, init, buffers, tables, consts, max_steps=max_segments, kind=kind,
        checkpoints=checkpoints,
    )  # fmt: skip
    ys = buffers.get("ys")
    spikes = SpikeTrain(buffers["out_t"], buffers["out_i"], n)
    sim = Simulation(
        spikes=spikes,
        t0=t0,
        t1=t1,
        ts=save_ts,
        ys=ys,
        y_final=final.y,
        slopes=buffers["out_slope"],
        result=RESULTS.where(final.overflow, RESULTS.max_spikes_reached, RESULTS.successful),
        num_segments=final.segments,
    )
    return sim, final.failed, ~final.done, final.pend_overflow, max_pending

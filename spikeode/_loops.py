"""The loops of [`spikeode.simulate`][] as strategy objects (its `loop` argument):
the contract, the four loops, and the choice `simulate` makes when none is given."""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._delays import input_schedule, per_presynaptic, save_schedule
from ._event_driven import event_connections, event_driven_run
from ._loop import coupled_run, per_neuron_run
from ._results import RESULTS
from ._segment import check_dtype, time_span
from ._simulation import buffer_failures, Failure, Problem, segment_failures, Simulation
from ._spikes import SpikeTrain
from ._synapses import Synapses
from ._windowed import windowed_run


class AbstractLoop(eqx.Module):
    """How [`spikeode.simulate`][] runs its loop of segments and jumps (its `loop`
    argument). All loops give the same spikes and gradients; they differ in what they
    advance at each step and so in speed, and in what they support.

    A loop implements `run(problem)`, which returns the [`spikeode.Simulation`][]
    (spike times not yet checked, `result` successful) and the list of its possible
    failures `(flag, RESULTS item, message)`; `simulate` turns these into errors or
    into `Simulation.result`. A loop that cannot run a problem raises `ValueError`
    naming itself and the reason.

    A loop whose class attribute `switches` is true also runs problems with a model
    switch (`problem.switch`, from [`spikeode.Pseudodynamics`][]) in one loop; for
    the others `simulate` runs the phases before and after the switch one by one.
    """

    switches: ClassVar[bool] = False

    @abc.abstractmethod
    def run(self, problem: Problem) -> tuple[Simulation, list[Failure]]:
        """Simulate `problem`; see the class docstring."""


def _check_capacity(name: str, value) -> None:
    if value is not None and (not isinstance(value, int) or value < 1):
        raise ValueError(f"simulate: `{name}` must be a positive int, got {value!r}.")


class CoupledLoop(AbstractLoop):
    """One loop over the population's events: at each, every neuron is advanced to
    the next event (a threshold crossing of any neuron, an input or recurrent
    arrival, a save time, the end of a refractory period). Supports everything: any
    model and solver, save times, every gradient method, delays of any shape.

    **Arguments:**

    - `max_pending`: capacity of the buffer of delayed recurrent arrivals not yet
      delivered (with delays only; arrivals at or after `t1` are not stored). A
      spike takes one slot if the delays depend only on the presynaptic neuron, else
      one per neuron. Default: room for 32 spikes.
    """

    max_pending: int | None = eqx.field(default=None, static=True)
    switches: ClassVar[bool] = True

    def __check_init__(self):
        _check_capacity("max_pending", self.max_pending)

    def run(self, problem):
        return coupled_run(problem, self.max_pending)


class PerNeuronLoop(AbstractLoop):
    """For populations without recurrent weights: the neurons are independent, and
    each is simulated by its own coupled loop (`jax.vmap` over neurons). Every loop
    then has a segment per input spike and per spike of its own neuron, instead of
    per spike of the whole population: much faster for wide layers. The same spikes
    and gradients as the coupled loop. Needs a model whose parameters are scalars or
    of shape `(num_neurons,)`.

    **Arguments:**

    - `max_spikes_per_neuron`: the capacity of each neuron's buffer; more is an
      error (or, with `throw=False`, `RESULTS.max_spikes_per_neuron_reached`). The
      merged, time-sorted train has capacity `max_spikes`.
    """

    max_spikes_per_neuron: int = eqx.field(static=True)
    switches: ClassVar[bool] = True

    def __check_init__(self):
        _check_capacity("max_spikes_per_neuron", self.max_spikes_per_neuron)

    def run(self, problem):
        return per_neuron_run(problem, self.max_spikes_per_neuron)


def _lane_loop_checks(name: str, problem: Problem) -> None:
    """What the loops that advance neurons as independent lanes cannot do."""
    if problem.adjoint.per_segment:
        raise ValueError(
            f"simulate: {name} does not support {type(problem.adjoint).__name__} (it "
            "differentiates segment by segment); use CoupledLoop."
        )
    if problem.w_rec is None:
        raise ValueError(f"simulate: {name} needs recurrent weights `w_rec`.")


class EventDrivenLoop(AbstractLoop):
    """Event-driven: each neuron is advanced only at its own events, its next
    threshold crossing predicted exactly by its closed-form flow; an event costs
    O(fan-out), not O(n). Needs recurrent weights (best as sparse
    [`spikeode.Synapses`][]), a model with a closed-form flow and `ExactSolver`, and
    recurrent delays that are zero or depend only on the presynaptic neuron; not
    [`spikeode.EventPropAdjoint`][].

    **Arguments:**

    - `max_pending`: capacity of the buffer of delayed arrivals (one slot per spike;
      default `min(max_spikes, max(32, n // 8))`).
    """

    max_pending: int | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        _check_capacity("max_pending", self.max_pending)

    def run(self, problem):
        p = problem
        _lane_loop_checks("EventDrivenLoop", p)
        if not p.segment.closed_form:
            raise ValueError(
                "simulate: EventDrivenLoop needs a model with a closed-form `flow` and "
                "ExactSolver (it advances each neuron on its own by the flow)."
            )
        n = p.neuron.num_neurons
        dtype = p.y0.dtype
        check_dtype(dtype)
        t0, t1 = time_span(p.t0, p.t1, dtype)
        schedule = input_schedule(p.inputs, p.w_in, p.input_delays, n, dtype, t0)
        saves = save_schedule(p.save_ts, t0, t1, dtype)
        syn, d_pre = event_connections(p.w_rec, p.delays, n, dtype)
        times, ids, slopes, ys, y_final, f = event_driven_run(
            p.neuron, t0, t1, schedule, saves, p.y0, syn=syn, d_pre=d_pre,
            max_spikes=p.max_spikes, max_pending=self.max_pending, seg=p.segment,
            adjoint=p.adjoint, max_segments=p.max_segments,
        )  # fmt: skip
        sim = Simulation(
            spikes=SpikeTrain(times, ids, n),
            t0=t0,
            t1=t1,
            ts=saves[1],
            ys=ys,
            y_final=y_final,
            slopes=slopes,
            result=RESULTS.successful,
            num_segments=f["events"],
        )
        failures = buffer_failures(
            f["overflow"], f["pend_overflow"], p.max_spikes, f["max_pending"]
        ) + segment_failures(f["failed"], f["unfinished"], "event-driven loop")
        return sim, failures


class WindowedLoop(AbstractLoop):
    """With every recurrent delay at least `window > 0`, nothing a neuron emits in a
    window can arrive within it: every neuron's arrivals in a window are known, so all
    neurons advance in parallel, each by its own loop of segments; the window's
    spikes then become arrivals of later windows. Needs recurrent delays, concrete
    `t0` and `t1`; not `save_ts` or [`spikeode.EventPropAdjoint`][].

    **Arguments:**

    - `window`: the window length (a Python float, `<=` every recurrent delay;
      default the smallest delay, which must then be concrete).
    - `max_pending`: capacity of the buffer of pending arrivals, one per synapse
      (default: twice the arrivals of a full window).
    - `max_window_spikes`: capacity for the spikes of one window (default
      `min(n, max(64, n // 32))`: 31 Hz on average over a 1 ms window); exceeding it
      is an error.
    - `max_window_events`: bound on one neuron's segments in one window (its
      arrivals, spikes, ends of refractory periods, plus one; default 16); exceeding
      it is an error.
    """

    window: float | int | None = eqx.field(default=None, static=True)
    max_pending: int | None = eqx.field(default=None, static=True)
    max_window_spikes: int | None = eqx.field(default=None, static=True)
    max_window_events: int | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        for name in ("max_pending", "max_window_spikes", "max_window_events"):
            _check_capacity(name, getattr(self, name))

    def run(self, problem):
        p = problem
        _lane_loop_checks("WindowedLoop", p)
        if not p.delayed:
            raise ValueError(
                "simulate: WindowedLoop needs recurrent delays (`delays`, or `Synapses` "
                "as `w_rec`)."
            )
        if p.save_ts is not None:
            raise ValueError("simulate: WindowedLoop does not support `save_ts`; use "
                             "CoupledLoop.")  # fmt: skip
        window = self.window
        if window is None:
            d_min = min_delay(p)
            if d_min is None:
                raise ValueError(
                    "simulate: WindowedLoop needs `window` when the delays are traced "
                    "(e.g. inside jax.jit): pass a window length <= the smallest delay."
                )
            if not d_min > 0:
                raise ValueError(
                    f"simulate: WindowedLoop needs every recurrent delay > 0; the "
                    f"smallest is {d_min}. Use CoupledLoop."
                )
            window = d_min
        dtype = p.y0.dtype
        check_dtype(dtype)
        times, ids, slopes, y_final, f = windowed_run(
            p.neuron, p.t1, p.inputs, p.w_in, w_rec=p.w_rec, delays=p.delays,
            input_delays=p.input_delays, window=window, t0=p.t0, y0=p.y0,
            max_spikes=p.max_spikes, max_pending=self.max_pending,
            max_window_spikes=self.max_window_spikes,
            max_window_events=self.max_window_events, seg=p.segment, adjoint=p.adjoint,
        )  # fmt: skip
        failures = [
            *buffer_failures(f["overflow"], f["pend_overflow"], p.max_spikes, f["max_pending"]),
            (f["window_overflow"], RESULTS.max_window_spikes_reached, "simulate: a window "
             "of the windowed loop held more than max_window_spikes="
             f"{f['max_window_spikes']} spikes. Raise WindowedLoop's `max_window_spikes` "
             "or shorten its `window`."),
            (f["events_overflow"], RESULTS.max_window_events_reached, "simulate: a neuron "
             f"needed more than max_window_events={f['max_window_events']} segments "
             "(arrivals, spikes, ends of refractory periods) in one window of the "
             "windowed loop. Raise WindowedLoop's `max_window_events` or shorten its "
             "`window`."),
            # (a failed segment as in every loop; the windowed loop's own end)
            segment_failures(f["failed"], f["unfinished"], "windowed loop")[0],
            (f["unfinished"], RESULTS.max_segments_reached, "simulate: the windowed loop "
             "did not reach t1."),
        ]  # fmt: skip
        sim = Simulation(
            spikes=SpikeTrain(times, ids, p.neuron.num_neurons),
            t0=jnp.asarray(p.t0, times.dtype),
            t1=jnp.asarray(p.t1, times.dtype),
            ts=None,
            ys=None,
            y_final=y_final,
            slopes=slopes,
            result=RESULTS.successful,
            num_segments=f["windows"],
        )
        return sim, failures


def min_delay(p: Problem) -> float | None:
    """The smallest recurrent delay if it is known now (concrete), else `None`."""
    d = p.w_rec.delay if isinstance(p.w_rec, Synapses) else p.delays
    if d is None or isinstance(d, jax.core.Tracer):
        return None
    d = np.asarray(d)
    return float(d.min()) if d.size else None


def _per_presynaptic_or_zero(p: Problem) -> bool:
    """Whether the recurrent delays are known now to be all zero or to depend only on
    the presynaptic neuron (what the event-driven loop supports)."""
    w_rec, delays = p.w_rec, p.delays
    if isinstance(w_rec, Synapses):
        return w_rec.unique_pairs and w_rec.presynaptic_delays() is not None
    return delays is None or (
        not isinstance(delays, jax.core.Tracer) and per_presynaptic(jnp.asarray(delays))
    )


def default_loop(p: Problem) -> AbstractLoop:
    """The loop `simulate` runs when none is given: the event-driven loop for sparse
    `Synapses` whose delays are known (concrete) to be zero or to depend only on the
    presynaptic neuron, with a closed-form segment (it is also faster than the
    windowed loop there: docs/scaling.md); else the windowed loop when the recurrent
    delays are concrete and all `> 0` and nothing needs the coupled loop (`save_ts`,
    a per-segment gradient method); else the coupled loop."""
    lanes_ok = not p.adjoint.per_segment
    if (
        lanes_ok and p.segment.closed_form and isinstance(p.w_rec, Synapses)
        and _per_presynaptic_or_zero(p)
    ):  # fmt: skip
        return EventDrivenLoop()
    if lanes_ok and p.delayed and p.save_ts is None and (min_delay(p) or 0) > 0:
        return WindowedLoop()
    return CoupledLoop()

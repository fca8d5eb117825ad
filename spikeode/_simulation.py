"""What a loop is given and what it returns: the validated problem of
[`spikeode.simulate`][] and the [`spikeode.Simulation`][]."""

from __future__ import annotations

import dataclasses
import functools
import operator

import equinox as eqx
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Scalar

from ._gradients import AbstractAdjoint
from ._results import CAPACITIES, RESULTS
from ._segment import AbstractSegment
from ._spikes import SpikeTrain
from ._synapses import Synapses
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
    - `num_segments`: number of iterations the loop ran (segments of the coupled and
      per-neuron loops, events of the event-driven loop, windows of the windowed
      loop).
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
    def overflow(self) -> Bool[Array, "*batch"]:
        """Whether a capacity was exceeded (`max_spikes`, `max_pending`, ...; the
        simulation then stopped at the first spike or arrival that did not fit)."""
        return functools.reduce(operator.or_, [self.result == r for r in CAPACITIES])


@dataclasses.dataclass(frozen=True)
class Problem:
    """[`spikeode.simulate`][]'s arguments as a loop receives them: checked in
    themselves (shapes of `y0`, finiteness of weights and parameters, capacities),
    with the segment built from the solver options and the gradient method. See
    `simulate` for the meaning of each field."""

    neuron: AbstractNeuron
    t0: ArrayLike
    t1: ArrayLike
    inputs: SpikeTrain | None
    w_in: Array | None
    w_rec: Array | Synapses | None
    delays: ArrayLike | None
    input_delays: ArrayLike | None
    y0: Float[Array, "neurons state"]
    save_ts: Float[ArrayLike, " save"] | None
    max_spikes: int
    max_segments: int | None
    segment: AbstractSegment
    adjoint: AbstractAdjoint
    # `(t_switch, after)`: from `t_switch` on the model is `after`, a model of the same
    # type and structure as `neuron` (e.g. its pseudodynamics); only for loops whose
    # `switches` is true
    switch: tuple[Array, AbstractNeuron] | None = None

    @property
    def delayed(self) -> bool:
        """Whether recurrent arrivals are delayed (`delays`, or `Synapses`)."""
        return self.delays is not None or isinstance(self.w_rec, Synapses)

    def replace(self, **changes) -> Problem:
        return dataclasses.replace(self, **changes)


# A loop's report of one way it can fail: (flag, RESULTS item, error message).
Failure = tuple[Bool[Array, ""], RESULTS, str]


def buffer_failures(overflow, pend_overflow, max_spikes: int, max_pending: int) -> list[Failure]:
    """The failures of a full spike buffer and a full buffer of delayed arrivals."""
    return [
        (overflow, RESULTS.max_spikes_reached, f"simulate: more than max_spikes="
         f"{max_spikes} spikes; the spike buffer is full. Raise `max_spikes`."),
        (pend_overflow, RESULTS.max_pending_reached, f"simulate: more than max_pending="
         f"{max_pending} delayed arrivals pending; the arrival buffer is full. Raise "
         "the loop's `max_pending`."),
    ]  # fmt: skip


def segment_failures(failed, unfinished, loop: str) -> list[Failure]:
    """The failures of a segment (root find or solver) and of an exhausted loop."""
    return [
        (failed, RESULTS.root_find_failed, "simulate: a segment failed (event root find "
         "did not converge or the solver hit max_steps); check the model parameters, "
         "tolerances or `max_steps`."),
        (unfinished, RESULTS.max_segments_reached, f"simulate: the {loop} ran out of "
         "iterations before t1; raise `max_segments`."),
    ]  # fmt: skip

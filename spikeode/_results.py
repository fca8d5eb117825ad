"""`RESULTS`: how a simulation ended."""

from __future__ import annotations

import equinox as eqx


class RESULTS(eqx.Enumeration):
    """How [`spikeode.simulate`][] ended, in `Simulation.result` (an Equinox
    enumeration, like Diffrax's `RESULTS`: compare with `==`, e.g.
    `sim.result == spikeode.RESULTS.successful`, which works inside `jit` and `vmap`).

    With `throw=True` (the default) every failure is raised as an error naming it and
    the capacity or option to change; with `throw=False` the simulation returns, and
    `result` says which failure happened (the first, in this order, if several did):

    - `successful`.
    - Buffers that were full (the simulation stops at the first spike or arrival that
      did not fit; the spikes before it are right): `max_spikes_reached`,
      `max_spikes_per_neuron_reached`, `max_pending_reached`.
    - The windowed loop's per-window capacities (spike times are then NaN: the
      window's spikes are incomplete): `max_window_spikes_reached`,
      `max_window_events_reached`.
    - `root_find_failed`: a threshold crossing's root find did not converge, or a
      numerical solver hit `max_steps` (spike times are then NaN).
    - `max_segments_reached`: the loop ran out of iterations before `t1` (spike times
      are then NaN).
    """

    successful = ""
    max_spikes_reached = "More spikes than `max_spikes`: the spike buffer is full."
    max_spikes_per_neuron_reached = (
        "A neuron fired more than `max_spikes_per_neuron` times."
    )
    max_pending_reached = (
        "More delayed arrivals pending than `max_pending`: the arrival buffer is full."
    )
    max_window_spikes_reached = (
        "A window of the windowed loop held more than `max_window_spikes` spikes."
    )
    max_window_events_reached = (
        "A neuron needed more than `max_window_events` segments in one window."
    )
    root_find_failed = (
        "A segment failed: a threshold crossing's root find did not converge, or the "
        "solver hit `max_steps`."
    )
    max_segments_reached = "The loop ran out of segments (`max_segments`) before t1."


CAPACITIES = (
    RESULTS.max_spikes_reached,
    RESULTS.max_spikes_per_neuron_reached,
    RESULTS.max_pending_reached,
    RESULTS.max_window_spikes_reached,
    RESULTS.max_window_events_reached,
)

# Failures after which the spike times are meaningless (NaN with `throw=False`).
INVALIDATING = (
    RESULTS.max_window_spikes_reached,
    RESULTS.max_window_events_reached,
    RESULTS.root_find_failed,
    RESULTS.max_segments_reached,
)

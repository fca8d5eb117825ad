"""An independent reference simulator for verification: any neuron model written as
NumPy functions, integrated by SciPy's `solve_ivp` with event location, segment by
segment. It shares no code with Diffrax or with spikeode's event loop. Behind every
SciPy reference of `spikeode check` (the models' NumPy right-hand sides are in the
check modules)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._spikes import SpikeTrain


def reference_simulate(
    rhs: Callable[[float, np.ndarray, np.ndarray], np.ndarray],
    condition: Callable[[np.ndarray], np.ndarray],
    reset: Callable[[np.ndarray, int], np.ndarray],
    receive: Callable[[np.ndarray, np.ndarray], np.ndarray],
    y0: np.ndarray,
    t1: float,
    inputs: SpikeTrain | None = None,
    w_in=None,
    w_rec=None,
    *,
    delays=None,
    input_delays=None,
    refractory_period=0.0,
    t0: float = 0.0,
    max_step: float = np.inf,
    rtol: float = 1e-12,
    atol: float = 1e-12,
    method: str = "DOP853",
    max_spikes: int = 100_000,
    breaks=(),
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate a population with SciPy's `solve_ivp` between events.

    The model is given as plain NumPy functions of the state `y` of shape
    `(neurons, state)`:

    - `rhs(t, y, refractory)`: `dy/dt` (`refractory`: boolean mask of neurons);
    - `condition(y)`: neuron `i` spikes when entry `i` crosses zero upwards;
    - `reset(y, i)`: the state after neuron `i` spiked;
    - `receive(y, w)`: the state after a presynaptic spike with weights `w`.

    Between events the ODE is integrated with `method` (default DOP853) at the given
    tolerances and a step bound `max_step`; SciPy locates the first upward zero of
    the largest condition over the non-refractory neurons on its dense output (a
    crossing that rises and falls back inside one step is missed, so choose
    `max_step` well below the model's fastest time scale). At a spike: `reset`, the
    recurrent kick `w_rec[i]`, and neuron `i` is refractory for
    `refractory_period`. Input spikes (`inputs`, weights `w_in`) are applied at their
    times, in order; a neuron at or above threshold after a jump fires at once (several:
    the lowest index first, each followed by its jumps).
    `breaks`: further times at which a segment ends (where `rhs` changes, e.g. at the
    end of a trial).

    With `delays` (broadcast to `w_rec`'s shape) or `input_delays` (to `w_in`'s), every
    spike becomes one arrival per target at `t + delay`, kept in a list ordered by
    (time, input before recurrent, input order or presynaptic index, target), and
    arrivals are applied one at a time, each followed by the check for neurons at
    threshold.

    **Returns:** `(times, neurons)` of the output spikes, in order.
    """
    from scipy.integrate import solve_ivp

    y = np.array(y0, dtype=float)
    n, k = y.shape
    t_ref = np.broadcast_to(np.asarray(refractory_period, float), (n,))
    if inputs is not None:
        valid = np.asarray(inputs.valid)
        in_t = np.asarray(inputs.times, float)[valid]
        in_i = np.asarray(inputs.neurons)[valid]
        w_in = np.asarray(w_in, float)
    else:
        in_t, in_i = np.zeros(0), np.zeros(0, int)
    w_rec = None if w_rec is None else np.asarray(w_rec, float)
    refr_until = np.full(n, -np.inf)
    t, ptr = float(t0), 0
    out_t, out_i = [], []
    queued = delays is not None or input_delays is not None
    # pending arrivals: (time, kind, order, target, weight); kind 0 input, 1 recurrent
    pending = []
    if queued:
        d_in = np.broadcast_to(
            np.asarray(0.0 if input_delays is None else input_delays, float),
            (0, n) if w_in is None else w_in.shape,
        )
        for m, (tm, jm) in enumerate(zip(in_t, in_i)):
            pending += [(tm + d_in[jm, i], 0, m, i, w_in[jm, i]) for i in range(n)]
        in_t, in_i = np.zeros(0), np.zeros(0, int)
        d_rec = None
        if w_rec is not None:
            d_rec = np.broadcast_to(np.asarray(0.0 if delays is None else delays, float), (n, n))

    def spike(j, t_spike, y):
        y = reset(y, j)
        if w_rec is not None and not queued:
            y = receive(y, w_rec[j])
        elif w_rec is not None:
            pending.extend((t_spike + d_rec[j, i], 1, j, i, w_rec[j, i]) for i in range(n))
        refr_until[j] = t_spike + t_ref[j]
        out_t.append(t_spike)
        out_i.append(j)
        return y

    while t < t1 and len(out_t) < max_spikes:
        refractory = refr_until > t
        masked = np.where(refractory, -np.inf, condition(y))
        if np.max(masked) >= 0:  # a jump put neurons at threshold: lowest index first
            y = spike(int(np.flatnonzero(masked >= 0)[0]), t, y)
            continue
        pending.sort(key=lambda a: a[:4])
        t_next = min(
            pending[0][0] if pending else np.inf,
            in_t[ptr] if ptr < len(in_t) else np.inf,
            refr_until[refractory].min() if refractory.any() else np.inf,
            min((b for b in breaks if b > t), default=np.inf),
            t1,
        )
        if t_next > t:

            def fun(s, z, refractory=refractory):
                return rhs(s, z.reshape(n, k), refractory).reshape(-1)

            def event(s, z, refractory=refractory):
                c = condition(z.reshape(n, k))
                return np.max(np.where(refractory, -1.0, c))

            event.terminal, event.direction = True, 1
            sol = solve_ivp(
                fun, (t, t_next), y.reshape(-1), method=method, rtol=rtol, atol=atol,
                max_step=max_step, events=None if refractory.all() else event,
            )  # fmt: skip
            if sol.status == -1:
                raise RuntimeError(f"reference_simulate: solve_ivp failed: {sol.message}")
            if sol.status == 1:  # a spike
                t_e = float(sol.t_events[0][0])
                y = sol.y_events[0][0].reshape(n, k).copy()
                j = int(np.argmax(np.where(refractory, -np.inf, condition(y))))
                t = t_e
                y = spike(j, t_e, y)
                continue
            y = sol.y[:, -1].reshape(n, k).copy()
            t = t_next
        if pending and pending[0][0] <= t and t < t1:
            _, _, _, i, w = pending.pop(0)
            y = receive(y, np.where(np.arange(n) == i, w, 0.0))
            continue
        if ptr < len(in_t) and in_t[ptr] <= t and t < t1:  # one at a time, as arrivals
            y = receive(y, w_in[in_i[ptr]])
            ptr += 1
    return np.asarray(out_t), np.asarray(out_i, dtype=int)


# ----------------------------------------------------------------------------------
# `reset` and `receive` building blocks for models whose state is `(v, I, ...)` columns
def _set(y, j, value):
    """`y` with `v` (column 0) of neuron `j` set to `value`."""
    y = y.copy()
    y[j, 0] = value
    return y


def _add_column(column):
    def receive(y, w):
        y = y.copy()
        y[:, column] += w
        return y

    return receive

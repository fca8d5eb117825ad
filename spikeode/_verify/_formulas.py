"""Closed-form reference formulas for verification, in NumPy/SciPy, independent of the
event loop and of the models' own closed-form flows (`spikeode.neurons._closed_form`).

First spike times of integrate-and-fire neurons on a causal set of input spikes: for
each prefix `k` of the time-sorted inputs (the candidate causal set), the voltage on
`[t_k, t_{k+1})` has a closed form whose first upward threshold crossing is solved
exactly; the first prefix with a crossing inside its interval gives the first output
spike. Theta-neuron networks (`theta_population`): event by event from the voltage's
tan / tanh / coth forms. Delta-synapse networks (`delta_population`): event by event
from the exponential or linear voltage.
"""

from __future__ import annotations

import numpy as np


def _first_over_prefixes(times, weights, solve):
    order = np.argsort(times, kind="stable")
    t, w = np.asarray(times, float)[order], np.asarray(weights, float)[order]
    for k in range(1, len(t) + 1):
        t_out = solve(t[:k], w[:k])
        upper = t[k] if k < len(t) else np.inf
        if t_out is not None and t[k - 1] <= t_out < upper:
            return t_out
    return np.inf


def mostafa_first_spike(times, weights, threshold: float = 1.0) -> float:
    """Non-leaky IF with `tau_syn = 1` (Mostafa 2017): on a causal set `C`,
    `v(t) = sum_C w_i (1 - exp(-(t - t_i)))`, so
    `exp(t_out) = sum_C w_i exp(t_i) / (sum_C w_i - threshold)`."""

    def solve(t, w):
        total, a = w.sum(), np.sum(w * np.exp(t))
        if total <= threshold or a <= 0:
            return None
        return float(np.log(a / (total - threshold)))

    return _first_over_prefixes(times, weights, solve)


def alpha_first_spike(times, weights, tau: float, threshold: float = 1.0) -> float:
    """Alpha-shaped PSPs `v(t) = sum_C w_i (t - t_i) exp(-(t - t_i)/tau)` (Comsa et al.
    2020): with `a = sum w_i e^{t_i/tau}`, `b = sum w_i t_i e^{t_i/tau}`,
    `t_out = b/a - tau W_0(-(threshold/(a tau)) e^{b/(a tau)})` (Lambert W, principal
    branch: the rising crossing)."""
    from scipy.special import lambertw

    def solve(t, w):
        e = np.exp((t - t[-1]) / tau)  # scaled by e^{-t_k/tau} for range
        a, b = np.sum(w * e), np.sum(w * t * e)
        if a <= 0:
            return None
        # z = -(theta/(a tau)) e^{(b/a - t_k)/tau} in the scaled variables
        z = -(threshold / (a * tau)) * np.exp((b / a - t[-1]) / tau)
        if z < -1 / np.e:
            return None
        return float(b / a - tau * np.real(lambertw(z, 0)))

    return _first_over_prefixes(times, weights, solve)


def lif_equal_tau_first_spike(times, weights, tau: float, threshold: float = 1.0) -> float:
    """spikeode's `LIF` with `tau_mem = tau_syn = tau` (Goeltz et al. 2021): an input of
    weight `w` gives `w (t - t_i)/tau exp(-(t - t_i)/tau)`, the alpha form with
    weights `w/tau`."""
    return alpha_first_spike(times, np.asarray(weights, float) / tau, tau, threshold)


def lif_double_tau_first_spike(times, weights, tau_mem: float, threshold: float = 1.0) -> float:
    """spikeode's `LIF` with `tau_mem = 2 tau_syn` (Goeltz et al. 2021): an input of
    weight `w` gives `w (y - y^2)` in `y = exp(-(t - t_i)/tau_mem)`, so on a causal set
    `A y - B y^2 = threshold` with `A = sum w_i e^{t_i/tau_mem}`,
    `B = sum w_i e^{2 t_i/tau_mem}`: a quadratic in `y = e^{-t/tau_mem}`; the first
    crossing is its larger root."""

    def solve(t, w):
        shift = t[-1]  # y relative to e^{-t_k/tau_mem}, for range
        a = np.sum(w * np.exp((t - shift) / tau_mem))
        b = np.sum(w * np.exp(2 * (t - shift) / tau_mem))
        disc = a * a - 4 * b * threshold
        if b <= 0 or disc < 0:
            return None
        y = (a + np.sqrt(disc)) / (2 * b)
        if y <= 0:
            return None
        return float(shift - tau_mem * np.log(y))

    return _first_over_prefixes(times, weights, solve)


# ----------------------------------------------------------------------------------
# Theta neurons (QIF with delta pulses and constant drive), in the voltage form
def _qif_time_to_spike(x0: float, eta: float) -> float:
    """Time (in units of tau) for `x = V - 1/2`, `dx/ds = x^2 + eta`, to blow up."""
    if eta > 0:
        r = np.sqrt(eta)
        return (np.pi / 2 - np.arctan(x0 / r)) / r  # arctan(-inf) = -pi/2
    if eta < 0:
        r = np.sqrt(-eta)
        return np.arctanh(r / x0) / r if x0 > r else np.inf  # acoth(x0 / r)
    return 1 / x0 if x0 > 0 else np.inf


def _qif_advance(x0: float, eta: float, s: float) -> float:
    """`x(s)` for `dx/ds = x^2 + eta` from `x0` (which may be `-inf`), before any
    blow-up: tan, coth/tanh or rational forms."""
    if eta > 0:
        r = np.sqrt(eta)
        return r * np.tan(np.arctan(x0 / r) + r * s)
    if eta < 0:
        r = np.sqrt(-eta)
        if abs(x0) < r:
            return -r * np.tanh(r * s - np.arctanh(x0 / r))
        if x0 == r or x0 == -r:
            return x0
        # |x0| > r: x = -r coth(u), u linear in s with slope r (u0 = 0 for x0 = -inf)
        u0 = -np.arctanh(r / x0) if np.isfinite(x0) else 0.0
        return -r / np.tanh(u0 + r * s)
    return x0 / (1 - x0 * s) if np.isfinite(x0) else -1 / s


def theta_population(
    tau, bias, t1, in_times=(), in_ids=(), w_in=None, w_rec=None, v0=None
) -> tuple[np.ndarray, np.ndarray]:
    """Spike times of a population of theta neurons
    (`tau dV/dt = V(V-1) + bias + tau sum_k w_k delta(t - t_k)`) computed event by
    event from the closed-form voltage (tan/tanh/coth forms), without phases.

    **Arguments:** `tau`, `bias` (per neuron), `t1`, input spikes (times, ids) with
    weights `w_in[input, neuron]`, recurrent weights `w_rec[pre, post]`, initial
    voltages `v0` (default 0).

    **Returns:** `(times, neurons)` of all spikes in `[0, t1)`, in order.
    """
    tau, bias = np.asarray(tau, float), np.asarray(bias, float)
    n = len(bias)
    tau = np.broadcast_to(tau, (n,))
    eta = bias - 0.25
    x = (np.zeros(n) if v0 is None else np.asarray(v0, float)) - 0.5
    t, k = 0.0, 0
    out_t, out_i = [], []
    while True:
        t_in = in_times[k] if k < len(in_times) else np.inf
        t_spike = np.array([t + tau[j] * _qif_time_to_spike(x[j], eta[j]) for j in range(n)])
        j = int(np.argmin(t_spike))
        t_next = min(t_in, t_spike[j], t1)
        x = np.array(
            [_qif_advance(x[i], eta[i], (t_next - t) / tau[i]) if i != j or t_next < t_spike[j]
             else -np.inf for i in range(n)]
        )  # fmt: skip
        t = t_next
        if t >= t1:
            break
        if t == t_spike[j] and t_spike[j] <= t_in:
            out_t.append(t)
            out_i.append(j)
            if w_rec is not None:
                x = x + np.asarray(w_rec, float)[j]
        else:
            x = x + np.asarray(w_in, float)[in_ids[k]]
            k += 1
    return np.array(out_t), np.array(out_i, dtype=int)


# ----------------------------------------------------------------------------------
# Delta-synapse integrate-and-fire neurons (DeltaLIF, DeltaIF), event by event
def delta_population(
    leaky: bool, tau_mem, threshold, v_reset, bias, refractory_period, t1,
    in_times=(), in_ids=(), w_in=None, w_rec=None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Spike times of a population of delta-synapse neurons, `tau_mem dv/dt = bias - v`
    (`leaky`) or `dv/dt = bias`, with an input of weight `w` moving `v` by `w`,
    computed event by event from the closed-form voltage: the next flow crossing is
    `tau_mem log((bias - v) / (bias - threshold))` (`leaky`, `bias > threshold`) or
    `(threshold - v) / bias` (`bias > 0`). Each neuron is held at `v_reset` for its
    refractory period after a spike and ignores input meanwhile. Input spikes are
    applied one at a time, each followed by the spikes of the neurons it put at or
    above threshold, in the order of their indices, each followed by its recurrent
    kicks (no delays; they may put further neurons at threshold).

    **Arguments:** the parameters (scalars or per neuron; `tau_mem` unused unless
    `leaky`), `t1`, input spikes (times, ids) with weights `w_in[input, neuron]`,
    recurrent weights `w_rec[pre, post]`; every neuron starts at 0.

    **Returns:** `(times, neurons)` of all spikes in `[0, t1)`, in order.
    """
    params = (tau_mem, threshold, v_reset, bias, refractory_period)
    weights = [w for w in (w_in, w_rec) if w is not None]
    n = max([np.size(x) for x in params] + [np.shape(w)[-1] for w in weights])
    tau, thr, v_reset, bias, t_ref = (
        np.broadcast_to(np.asarray(x, float), (n,))
        for x in params
    )
    v = np.zeros(n)
    free_at = np.full(n, -np.inf)  # end of each neuron's refractory period
    t, k = 0.0, 0
    in_times = np.asarray(in_times, float)
    out_t, out_i = [], []
    while True:
        ready = (free_at <= t) & (v >= thr)
        if np.any(ready):  # fire at once, lowest index first
            j = int(np.argmax(ready))
            out_t.append(t)
            out_i.append(j)
            v[j], free_at[j] = v_reset[j], t + t_ref[j]
            if w_rec is not None:
                v = v + np.where(free_at > t, 0.0, np.asarray(w_rec, float)[j])
            continue
        # the next event: a flow crossing, an input, the end of a refractory period
        gap = np.full(n, np.inf)
        for i in np.flatnonzero(free_at <= t):
            if leaky and bias[i] > thr[i]:
                gap[i] = tau[i] * np.log((bias[i] - v[i]) / (bias[i] - thr[i]))
            elif not leaky and bias[i] > 0:
                gap[i] = (thr[i] - v[i]) / bias[i]
        t_in = in_times[k] if k < len(in_times) else np.inf
        t_free = np.min(free_at[free_at > t], initial=np.inf)
        t_next = min(t + np.min(gap), t_in, t_free, t1)
        s = t_next - t
        moving = free_at <= t
        flowed = bias + (v - bias) * np.exp(-s / tau) if leaky else v + bias * s
        v = np.where(moving, flowed, v)
        # a crossing reaches the threshold exactly (round-off aside)
        v = np.where(moving & (t + gap == t_next), np.maximum(v, thr), v)
        t = t_next
        if t >= t1:
            break
        if np.any(moving & (t + gap == t)):
            continue  # the crossing neuron fires first
        if t == t_in:
            v = v + np.where(free_at > t, 0.0, np.asarray(w_in, float)[in_ids[k]])
            k += 1
    return np.array(out_t), np.array(out_i, dtype=int)

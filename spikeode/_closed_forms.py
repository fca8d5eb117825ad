"""Closed-form first spike times of integrate-and-fire neurons on a causal set of
input spikes (NumPy/SciPy, independent of the event loop), for verification.

For each prefix `k` of the time-sorted inputs (the candidate causal set), the voltage
on `[t_k, t_{k+1})` has a closed form whose first upward threshold crossing is
solved exactly; the first prefix with a crossing inside its interval gives the first
output spike.
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

"""First spike times against closed forms (float64): Mostafa's non-leaky neuron, the
alpha-synapse neuron (Lambert W), and LIF with tau_mem = tau_syn (Lambert W) and
tau_mem = 2 tau_syn (a quadratic)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spikeode as so
from spikeode._verify._formulas import (
    alpha_first_spike,
    lif_double_tau_first_spike,
    lif_equal_tau_first_spike,
    mostafa_first_spike,
)

TRIALS, INPUTS = 40, 6


def _trials(seed, t_max, w_mean, w_std):
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(0.0, t_max, (TRIALS, INPUTS)), axis=1)
    weights = rng.normal(w_mean, w_std, (TRIALS, INPUTS))
    return times, weights


def _first_spikes(neuron, times, weights, t1):
    """First output spike of one neuron per trial; input j of a trial has weight w_j."""
    ids = jnp.arange(INPUTS, dtype=jnp.int32)

    @eqx.filter_jit
    def run(t, w):
        inp = so.SpikeTrain(t, ids, INPUTS)
        return so.simulate(neuron, t1, inp, w[:, None], max_spikes=64).spikes.times[0]

    return np.asarray(jax.vmap(run)(jnp.asarray(times), jnp.asarray(weights)))


def _compare(sim, ref, min_spiking):
    fired = np.isfinite(ref)
    assert fired.sum() >= min_spiking, "too few trials with a spike to test anything"
    np.testing.assert_array_equal(np.isfinite(sim), fired)
    err = np.max(np.abs(sim[fired] - ref[fired]))
    assert err <= 1e-10, err
    return err


def test_mostafa_non_leaky_closed_form():
    times, weights = _trials(0, 2.0, 0.45, 0.5)  # mixed signs
    neuron = so.NonLeakyIF(1, tau_syn=1.0, threshold=1.0)
    sim = _first_spikes(neuron, times, weights, 6.0)
    ref = np.array([mostafa_first_spike(t, w) for t, w in zip(times, weights)])
    _compare(sim, ref, TRIALS // 2)


def test_alpha_neuron_lambert_w():
    tau = 1.0
    times, weights = _trials(1, 2.0, 1.2, 0.8)
    sim = _first_spikes(so.AlphaIF(1, tau=tau), times, weights, 8.0)
    ref = np.array([alpha_first_spike(t, w, tau) for t, w in zip(times, weights)])
    _compare(sim, ref, TRIALS // 2)


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_lif_lambert_w_and_quadratic(ratio):
    tau_mem = 0.02
    times, weights = _trials(2, 0.02, 1.6, 1.0)
    weights = np.abs(weights)  # excitatory, as in Goeltz et al.
    neuron = so.LIF(1, tau_mem=tau_mem, tau_syn=tau_mem / ratio)
    sim = _first_spikes(neuron, times, weights, 0.1)
    solve = lif_equal_tau_first_spike if ratio == 1.0 else lif_double_tau_first_spike
    ref = np.array([solve(t, w, tau_mem) for t, w in zip(times, weights)])
    _compare(sim, ref, TRIALS // 2)


def test_closed_forms_are_not_vacuous():
    """The references differ between models (so agreement is not an accident)."""
    t, w = np.array([0.0, 0.5, 1.0]), np.array([0.6, 0.6, 0.6])
    a = mostafa_first_spike(t, w)
    b = alpha_first_spike(t, w * 2, 1.0)
    assert np.isfinite(a) and np.isfinite(b) and abs(a - b) > 1e-3
    assert mostafa_first_spike(t, w * 0.3) == np.inf  # never reaches threshold

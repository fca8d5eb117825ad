"""QIF and theta neurons (Klos & Memmesheimer): exact spike times, the numerical and
closed-form integrations agreeing, and pseudodynamics making the loss continuous and
giving silent neurons a gradient. Networks against independent references and their
gradients are in the `spikeode check` rows "theta", "qif" and "qif-pseudo" (run by
tests/test_gradients.py)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import RuntimeErr

import spikeode as so
from spikeode._verify._formulas import theta_population


def _valid_times(train):
    return np.asarray(train.times)[np.asarray(train.valid)]


@eqx.filter_jit  # one compilation for every bias (the module runs on one xdist worker)
def _constant_drive(neuron, t1):
    return so.simulate(neuron, t1, max_spikes=400)


@pytest.mark.parametrize("bias", [0.26, 0.3, 1.0, 5.0, 40.0])
def test_theta_neuron_constant_drive_is_periodic(bias):
    """From V = 0 the first spike is at tau (pi/2 + atan(1/(2 sqrt(eta))))/sqrt(eta),
    then one every period tau pi / sqrt(eta), eta = bias - 1/4."""
    tau, t1 = 0.7, 30.0
    sim = _constant_drive(so.ThetaNeuron(1, tau=tau, bias=bias), t1)
    t = _valid_times(sim.spikes)
    r = np.sqrt(bias - 0.25)
    first = tau * (np.pi / 2 + np.arctan(0.5 / r)) / r
    expected = first + tau * np.pi / r * np.arange(400)
    expected = expected[expected < t1]
    assert len(t) == len(expected) >= 1
    assert np.max(np.abs(t - expected)) <= 1e-10 * max(1.0, t1 / tau)
    # the theta neuron's step bound never ends a segment without a spike
    assert int(sim.num_segments) <= len(t) + 2


def test_theta_excitable_neuron_against_closed_form():
    """An excitable neuron (bias < 1/4) kicked above and below its threshold: spike
    times against the tanh/coth closed form of the voltage."""
    times = np.array([1.0, 3.0, 3.5, 8.0, 8.2, 8.4])
    weights = np.array([[0.3], [0.2], [0.9], [-0.4], [1.5], [0.1]])
    inputs = so.SpikeTrain(jnp.asarray(times), jnp.arange(6, dtype=jnp.int32), 6)
    neuron = so.ThetaNeuron(1, tau=0.8, bias=0.1)
    sim = so.simulate(neuron, 15.0, inputs, weights, max_spikes=8)
    ref_t, _ = theta_population([0.8], [0.1], 15.0, times, np.arange(6), weights)
    t = _valid_times(sim.spikes)
    assert len(ref_t) >= 2 and len(t) == len(ref_t)
    assert np.max(np.abs(t - ref_t)) <= 1e-10


def test_qif_numerical_integration_matches_closed_form():
    """The general QIF (Tsit5, rtol 1e-10) with tau_syn = tau_mem/2 and bias 0 against
    the closed form (Bessel functions of order 1/2)."""
    rng = np.random.default_rng(0)
    times = jnp.asarray(np.sort(rng.uniform(0, 5, 8)))
    inputs = so.SpikeTrain(times, jnp.asarray(rng.integers(0, 2, 8), jnp.int32), 2)
    w = jnp.asarray(rng.normal(3.0, 2.0, (2, 3)))
    w_rec = jnp.asarray(rng.normal(0.5, 1.0, (3, 3)))
    tau = jnp.array([1.0, 0.7, 1.4])
    run = eqx.filter_jit(lambda neuron: so.simulate(neuron, 10.0, inputs, w, w_rec=w_rec,
                                                    max_spikes=32))  # fmt: skip
    exact = run(so.QIF(3, tau_mem=tau))
    numeric = run(so.QIF(3, tau_mem=tau, tau_syn=tau / 2, bias=0.0))
    assert isinstance(so.QIF(3), so.neurons.ClosedFormQIF)
    assert isinstance(so.QIF(3, bias=0.0), so.neurons.GeneralQIF)
    assert not isinstance(so.QIF(3, bias=0.0), so.AbstractFlowNeuron)
    assert int(exact.spikes.num_spikes) >= 6
    np.testing.assert_array_equal(exact.spikes.neurons, numeric.spikes.neurons)
    assert np.max(np.abs(_valid_times(exact.spikes) - _valid_times(numeric.spikes))) <= 1e-8
    np.testing.assert_allclose(exact.y_final, numeric.y_final, rtol=1e-8, atol=1e-9)


# ----------------------------------------------------------------------------------
# pseudodynamics: one QIF neuron whose second spike enters the trial [0, 10] as the
# second input's weight w2 grows (Klos & Memmesheimer's target times 2.5 and 7.5).
T_TRIAL, T_END = 10.0, 25.0
TARGET = jnp.array([[2.5, 7.5]])
INPUTS = so.SpikeTrain.from_lists([[0.5], [5.0]])
NEURON = so.QIF(1, tau_mem=1.0)


def _run(w2, pseudo):
    w = jnp.stack([jnp.array([3.0]), jnp.reshape(w2, (1,))])
    if pseudo:
        return so.simulate(
            NEURON, T_END, INPUTS, w, max_spikes=8,
            pseudodynamics=so.Pseudodynamics(T_TRIAL, drive=1.0),
        )  # fmt: skip
    return so.simulate(NEURON, T_TRIAL, INPUTS, w, max_spikes=8)


def _pseudo_loss(w2):
    sim = _run(w2, True)
    return so.losses.first_spikes_mse(sim.spikes, TARGET), sim


@jax.jit
def _plain_losses(w2):
    # Without pseudodynamics a missing spike needs a stand-in time: a constant (here
    # 0) makes the loss jump; the trial end makes it flat on the silent side.
    plain = _run(w2, False)
    target = so.SpikeTrain.from_per_neuron(TARGET)
    return (
        so.losses.spike_time_mse(plain.spikes, target, t_missing=0.0),
        so.losses.spike_time_mse(plain.spikes, target, t_missing=T_TRIAL),
        plain.spikes.num_spikes,
    )


def _entry_weight():
    lo, hi = 2.0, 3.0  # 1 spike in the trial at lo, 2 at hi
    assert int(_plain_losses(lo)[2]) == 1 and int(_plain_losses(hi)[2]) == 2
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if int(_plain_losses(mid)[2]) == 1 else (lo, mid)
    return lo, hi


def test_pseudodynamics_make_the_loss_continuous_where_a_spike_enters():
    lo, hi = _entry_weight()
    assert hi - lo < 1e-12
    pseudo_loss = jax.jit(lambda w: _pseudo_loss(w)[0])
    pseudo = [float(pseudo_loss(w)) for w in (lo - 1e-6, lo, hi, hi + 1e-6)]
    penalty = [float(_plain_losses(w)[0]) for w in (lo, hi)]
    # With pseudodynamics: no jump at the entry point, Lipschitz on either side.
    assert abs(pseudo[2] - pseudo[1]) < 1e-9
    assert abs(pseudo[1] - pseudo[0]) < 1e-4 and abs(pseudo[3] - pseudo[2]) < 1e-4
    # Without: the stand-in time for the missing spike makes the loss jump by
    # ((T - 7.5)^2 - 7.5^2) / 2 = -25.
    assert abs(penalty[1] - penalty[0] + 25.0) < 1e-6


def test_pseudodynamics_give_the_missing_spike_a_gradient():
    w2 = jnp.asarray(1.5)  # second spike missing from the trial
    g_penalty, g_flat = jax.jit(jax.jacrev(lambda w: jnp.stack(_plain_losses(w)[:2])))(w2)
    assert g_penalty == 0.0 and g_flat == 0.0  # nothing pulls the spike in
    report = so.check_grads(_pseudo_loss, w2)
    assert report.passed and report.max_rel_error <= 1e-6, report
    assert report.grad < -1e-3  # a larger w2 pulls the pseudospike towards 7.5


# Theta pseudodynamics in closed form: one neuron at rest (bias 0, u = V - 1/2 = -1/2),
# a subthreshold kick w at t = 1, the drive c from T on. In `u`, tau = 1:
# u' = u^2 - 1/4 before T (u = -tanh((t - 1)/2 + atanh(-2 u_1)) / 2 after the kick),
# u' = u^2 + k^2 after it, k = sqrt(c - 1/4): spikes where k (t - T) + atan(u_T / k)
# = pi/2 + m pi.
PSEUDO_T = 4.0


def _theta_pseudospikes_closed_form(w, c, m=3):
    u1 = -0.5 + w
    u_T = -0.5 * jnp.tanh((PSEUDO_T - 1.0) / 2 + jnp.arctanh(-2 * u1))
    k = jnp.sqrt(c - 0.25)
    return PSEUDO_T + (jnp.pi / 2 - jnp.arctan(u_T / k) + jnp.pi * jnp.arange(m, dtype=k.dtype)) / k


@pytest.mark.parametrize("loop", ["coupled", "event-driven"])
def test_theta_pseudospikes_and_gradients_match_the_closed_form(loop):
    # the coupled loop runs trial and pseudodynamics in one loop (the model switches
    # at T), the event-driven loop one after the other: both against the closed form
    inputs = so.SpikeTrain.from_lists([[1.0]])
    recurrent = loop == "event-driven"

    @jax.jit
    def first_three(w, c):
        sim = so.simulate(
            so.ThetaNeuron(1, tau=1.0, bias=0.0), 14.5, inputs, jnp.reshape(w, (1, 1)),
            w_rec=jnp.zeros((1, 1)) if recurrent else None, max_spikes=8,
            loop=so.EventDrivenLoop() if recurrent else so.CoupledLoop(),
            pseudodynamics=so.Pseudodynamics(PSEUDO_T, drive=c),
        )  # fmt: skip
        return sim.spikes.times[:3], sim.spikes.num_spikes

    w, c = jnp.asarray(0.3), jnp.asarray(1.0)
    times, count = first_three(w, c)
    assert int(count) == 3  # silent in the trial; 3 pseudospikes before 14.5
    np.testing.assert_allclose(times, _theta_pseudospikes_closed_form(w, c), rtol=1e-13)
    jac = jax.jacrev(lambda w, c: first_three(w, c)[0], argnums=(0, 1))(w, c)
    ref = jax.jacrev(_theta_pseudospikes_closed_form, argnums=(0, 1))(w, c)
    for g, r in zip(jac, ref):
        np.testing.assert_allclose(g, r, rtol=1e-10)
        assert np.all(np.abs(np.asarray(r)) > 1e-3)


@pytest.mark.slow  # (a training run; the gradient through pseudospikes: the test above)
def test_silent_layered_theta_network_learns_through_pseudospikes():
    """An initially silent 3-4-2 network of excitable theta neurons (Klos &
    Memmesheimer's deep set-up): every neuron gets a gradient through pseudospikes,
    and it agrees with finite differences."""
    key1, key2 = jax.random.split(jax.random.PRNGKey(0))
    hidden = so.nn.SpikingLayer(
        3, 4, max_spikes=16, neuron=so.ThetaNeuron(4, tau=1.0, bias=0.1),
        w_mean=0.05, w_std=0.05, key=key1,
    )  # fmt: skip
    out = so.nn.SpikingLayer(
        4, 2, max_spikes=16, neuron=so.ThetaNeuron(2, tau=1.0, bias=0.1),
        w_mean=0.05, w_std=0.05, key=key2,
    )  # fmt: skip
    model = so.nn.Sequential([hidden, out])
    inputs = so.SpikeTrain.from_lists([[0.5], [1.0], [2.0]])
    pseudo = so.Pseudodynamics(5.0, drive=0.5)

    def fn(weights):
        m = eqx.tree_at(lambda m: (m.layers[0].w_in, m.layers[1].w_in), model, weights)
        sims = m(inputs, 20.0, pseudodynamics=pseudo)
        target = jnp.array([[5.5], [6.0]])
        return so.losses.first_spikes_mse(sims[-1].spikes, target), sims

    report = so.check_grads(fn, (hidden.w_in, out.w_in))
    assert report.passed and report.max_rel_error <= 1e-6, report
    for sim in report.aux:  # silent in the trial, pseudospikes after it
        times = _valid_times(sim.spikes)
        assert np.all(times > 5.0) and np.all(np.asarray(sim.spikes.counts()) >= 1)
    for g in report.grad:
        assert np.all(np.abs(np.asarray(g)) > 0)


# ----------------------------------------------------------------------------------
def test_bad_parameters_and_options():
    with pytest.raises(ValueError, match="tau_mem` must be positive"):
        so.QIF(2, tau_mem=-1.0)
    with pytest.raises(ValueError, match="tau` must be positive"):
        so.ThetaNeuron(2, tau=0.0)
    with pytest.raises(ValueError, match="tau_syn` must be positive"):
        so.QIF(2, tau_syn=jnp.array([0.5, 0.0]))
    with pytest.raises(ValueError, match="shape"):
        so.ThetaNeuron(2, bias=jnp.ones(3))
    with pytest.raises(ValueError, match="drive` must exceed 1/4"):
        so.simulate(
            so.QIF(1), 3.0, max_spikes=4, pseudodynamics=so.Pseudodynamics(1.0, 0.2)
        )
    with pytest.raises(TypeError, match="LIF has no pseudodynamics"):
        so.simulate(so.LIF(1), 3.0, max_spikes=4, pseudodynamics=so.Pseudodynamics(1.0))
    with pytest.raises(RuntimeErr, match="trial_end` must lie strictly between"):
        so.simulate(so.QIF(1), 3.0, max_spikes=4, pseudodynamics=so.Pseudodynamics(3.0))
    with pytest.raises(ValueError, match="ExactSolver needs a closed-form"):
        so.simulate(so.QIF(1, bias=0.5), 3.0, max_spikes=4, solver=so.ExactSolver())
    # too few (pseudo)spikes for the loss
    sim = so.simulate(so.QIF(1), 3.0, max_spikes=4)
    with pytest.raises(RuntimeErr, match="fewer than 1 spikes"):
        so.losses.first_spikes_mse(sim.spikes, jnp.array([[1.0]]))
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 1, k\)"):
        so.losses.first_spikes_mse(sim.spikes, jnp.array([1.0]))
    # pseudospikes must fit into the buffer with the trial's spikes
    with pytest.raises(RuntimeErr, match="max_spikes"):
        so.simulate(
            so.ThetaNeuron(1, bias=1.0), 30.0, max_spikes=4,
            pseudodynamics=so.Pseudodynamics(3.0, 5.0),
        )  # fmt: skip


def test_phase_voltage_conversions_round_trip():
    v = jnp.array([-3.0, 0.0, 0.5, 1.0, 7.0])
    np.testing.assert_allclose(
        so.neurons.phase_to_voltage(so.neurons.voltage_to_phase(v)), v, rtol=1e-12, atol=1e-15
    )

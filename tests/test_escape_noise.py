"""Escape noise (`EscapeNoise`, `ExponentialHazard`) and the exact log-likelihood
(`log_likelihood`): sampled interspike intervals against the exact ISI distribution
(Kolmogorov-Smirnov), the deterministic limit, batches over keys, pathwise gradients
and gradients of an expectation against finite differences and the exact derivative,
the likelihood against an independent reference (`quad`) and its gradient, bad
input.

Statistical tests use fixed seeds, so they are deterministic; each states the bound
it applies and how often a correct sampler would fail it for a random seed."""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.stats
from helpers import JitRuntimeErr

import spikeode as so
from spikeode._verify._noise import (
    constant_drive_model,
    escape_spike_times,
    lif_integrated_hazard,
    network,
    reference_log_likelihood,
)
from spikeode._verify._result import _loss_of_times

# One LIF neuron under constant drive (threshold 1, reset 0) with an exponential
# hazard: mean interval ~50 ms.
TAU, BIAS, REFR, RHO0, DELTA = 0.02, 1.1, 0.002, 50.0, 0.1
LIF_PARAMS = dict(tau_mem=TAU, threshold=1.0, v_reset=0.0)
# Tsit5 tolerance of the statistical tests: spike times to ~1e-8 s, far below what
# thousands of samples resolve (KS distance ~1e-2 of a distribution of width ~50 ms).
FAST = diffrax.PIDController(rtol=1e-8, atol=1e-8)
TIGHT = diffrax.PIDController(rtol=1e-12, atol=1e-12)
K = 4  # spikes per trial
N = 1000  # trials: K * N = 4000 intervals


def _neuron(key, bias=BIAS, rho0=RHO0, delta=DELTA):
    lif = so.LIF(1, tau_mem=TAU, bias=bias, refractory_period=REFR)
    return so.EscapeNoise(lif, so.ExponentialHazard(rho0, delta), key)


@jax.jit
def _trials(keys, bias):
    """Per key: the first `K` spike times (the trial runs until the buffer is full)
    and their derivatives with respect to `bias` (pathwise, fixed key; forward mode,
    one tangent)."""

    def times(key, b):
        sim = so.simulate(
            _neuron(key, b), 10.0, max_spikes=K, throw=False, stepsize_controller=FAST,
            adjoint=so.ForwardMode(),
        )  # fmt: skip
        return sim.spikes.times

    one = lambda key: jax.jvp(lambda b: times(key, b), (bias,), (jnp.ones_like(bias),))
    return jax.vmap(one)(keys)


@pytest.fixture(scope="module")
def trials():
    keys = jax.random.split(jax.random.key(1), N)
    times, grads = _trials(keys, jnp.asarray(BIAS))
    return keys, np.asarray(times), np.asarray(grads)[:, 0]


def _cdf(delta=DELTA, rho0=RHO0, bias=BIAS):
    """Exact ISI distribution after a reset (the refractory period excluded):
    `1 - exp(-Lambda(s))` with the closed-form integrated hazard."""
    params = dict(LIF_PARAMS, bias=bias, rho0=rho0, delta=delta)
    return lambda s: -np.expm1(-lif_integrated_hazard(s, **params))


def test_integrated_hazard_closed_form_against_quad():
    # the reference the statistical tests use: E1 form vs quad along the voltage
    for s in (1e-3, 0.02, 0.1):
        f = lambda r: RHO0 * np.exp((BIAS * -np.expm1(-r / TAU) - 1.0) / DELTA)
        ref, _ = scipy.integrate.quad(f, 0.0, s, epsabs=1e-14, epsrel=1e-13)
        params = dict(LIF_PARAMS, bias=BIAS, rho0=RHO0, delta=DELTA)
        assert abs(lif_integrated_hazard(s, **params) - ref) < 1e-12 * max(1.0, ref)


def test_isi_distribution_kolmogorov_smirnov(trials):
    """4000 intervals (1000 keys x the first 4 spikes: the first from rest, the others
    after the refractory period; i.i.d. by time rescaling) against the exact
    distribution. Seed 1: p = 0.37; the test fails for 1% of seeds (p < 0.01). The
    same samples reject a 10% smaller `delta` (p = 2.5e-6 < 1e-3): the test has
    power at this size."""
    _, times, _ = trials
    assert np.all(np.isfinite(times))
    isi = np.concatenate([times[:, 0], (np.diff(times, axis=1) - REFR).ravel()])
    assert isi.size == K * N and np.all(isi > 0)
    assert scipy.stats.kstest(isi, _cdf()).pvalue > 0.01
    assert scipy.stats.kstest(isi, _cdf(delta=0.9 * DELTA)).pvalue < 1e-3


def test_gradient_of_expectation(trials):
    """The mean of the pathwise derivatives of the first spike time in `bias` over
    1000 keys (forward mode): (a)
    equals central finite differences of the sample mean with the same keys (common
    random numbers), to 1e-6 relative; (b) is within 4 standard errors (a bound a
    correct, unbiased estimator exceeds for 6e-5 of seeds) of the exact derivative of
    `E[T] = int_0^inf exp(-Lambda(s)) ds` (quad, central differences in `bias`)."""
    keys, times, grads = trials
    g, se = grads.mean(), grads.std(ddof=1) / np.sqrt(N)
    assert np.all(np.isfinite(grads))
    # (a) common random numbers: the same keys at bias +- h (no spike appears or
    # vanishes: every key's first spike exists)
    h = 1e-5
    up, _ = _trials(keys, jnp.asarray(BIAS + h))
    down, _ = _trials(keys, jnp.asarray(BIAS - h))
    fd = (np.asarray(up)[:, 0].mean() - np.asarray(down)[:, 0].mean()) / (2 * h)
    assert abs(fd - g) < 1e-6 * abs(g)

    # (b) the exact derivative
    def mean_first_spike(b):
        survival = lambda s: np.exp(-lif_integrated_hazard(s, **LIF_PARAMS, bias=b, rho0=RHO0,
                                                           delta=DELTA))  # fmt: skip
        return scipy.integrate.quad(survival, 0.0, np.inf, epsabs=1e-14, epsrel=1e-12)[0]

    assert abs(times[:, 0].mean() - mean_first_spike(BIAS)) < 4 * times[:, 0].std() / np.sqrt(N)
    hb = 1e-4
    exact = (mean_first_spike(BIAS + hb) - mean_first_spike(BIAS - hb)) / (2 * hb)
    assert g < 0 and abs(g - exact) < 4 * se, (g, exact, se)


def test_batch_over_keys_matches_single_runs(trials):
    # vmap over keys gives each key's own run; different keys, different trains
    keys, times, _ = trials
    for j in (0, 1):
        sim = so.simulate(
            _neuron(keys[j]), 10.0, max_spikes=K, throw=False, stepsize_controller=FAST
        )
        np.testing.assert_allclose(sim.spikes.times, times[j], rtol=0, atol=1e-12)
    assert not np.allclose(times[0], times[1])


def test_spike_times_against_closed_form_and_loops():
    """A population (3 neurons below, near and above threshold) under constant drive:
    spike times equal the closed-form inversion of the integrated hazard for the
    same Exp(1) draws (1e-9 s at rtol 1e-12); the per-neuron loop (which rebuilds
    each neuron with its own key, `one_neuron`) gives the same spikes."""
    model, t1 = constant_drive_model(), 0.3
    sim = so.simulate(model, t1, max_spikes=64, stepsize_controller=TIGHT)
    draws = np.asarray(jax.vmap(model.draws)(jnp.broadcast_to(jnp.arange(64.0)[:, None], (64, 3))))
    got = sim.spikes.to_lists()
    assert min(len(t) for t in got) >= 3
    for i, bias in enumerate((0.9, 1.1, 1.3)):
        params = dict(LIF_PARAMS, bias=bias, rho0=50.0, delta=0.1)
        ref = escape_spike_times(draws[:, i], t1, 0.002, **params)
        assert len(ref) == len(got[i])
        assert np.max(np.abs(got[i] - ref)) < 1e-9
    lanes = so.simulate(
        model, t1, max_spikes=64, stepsize_controller=TIGHT, loop=so.PerNeuronLoop(32)
    )
    np.testing.assert_array_equal(lanes.spikes.neurons, sim.spikes.neurons)
    np.testing.assert_allclose(lanes.spikes.times, sim.spikes.times, rtol=0, atol=1e-12)


def test_deterministic_limit():
    """As `delta -> 0` the first spike approaches the threshold crossing of the
    deterministic LIF, `t* = tau log(b / (b - 1))`: to first order it is
    `t* + (delta / s) log(E s / (rho0 delta))` (`s`: the voltage's slope at
    threshold, `E`: the Exp(1) draw), so `|t - t*| <= 2 (delta / s) (1 + |log(E s /
    (rho0 delta))|)`, for 8 keys and delta down to 1e-4."""
    bias = 1.2
    t_star, slope = TAU * np.log(bias / (bias - 1.0)), (bias - 1.0) / TAU
    keys = jax.random.split(jax.random.key(2), 8)
    deltas = jnp.asarray([1e-2, 1e-3, 1e-4])

    @jax.jit
    def first(keys, deltas):
        def one(key, delta):
            model = _neuron(key, bias, delta=delta)
            sim = so.simulate(model, 0.1, max_spikes=1, throw=False)
            return sim.spikes.times[0], model.draws(jnp.zeros(1))[0]

        return jax.vmap(jax.vmap(one, (None, 0)), (0, None))(keys, deltas)

    t, e = (np.asarray(x) for x in first(keys, deltas))
    d = np.asarray(deltas)[None, :]
    bound = 2 * d / slope * (1 + np.abs(np.log(e * slope / (RHO0 * d))))
    assert np.all(np.abs(t - t_star) <= bound), (t - t_star, bound)
    assert np.max(np.abs(t[:, -1] - t_star)) < 2e-4


@pytest.mark.slow  # (~25 s: compiles the loop's value and reverse-mode gradient)
def test_pathwise_gradient_fixed_key():
    """A recurrent network with inputs: the gradient (reverse mode) of a loss of all
    spike times for one key (pathwise: the implicit function theorem on `Lambda =
    E`) against finite differences with the same key, in the weights and the
    parameters of the model and the hazard. (The fast suite checks forward-mode
    pathwise derivatives against finite differences: `test_gradient_of_expectation`.)"""
    model, t1, inputs, w_in, w_rec = network()

    def fn(p):
        wi, wr, bias, rho0, delta = p
        m = so.EscapeNoise(
            so.LIF(3, tau_mem=0.02, bias=bias, refractory_period=0.002),
            so.ExponentialHazard(rho0, delta),
            model.key,
        )
        sim = so.simulate(m, t1, inputs, wi, w_rec=wr, max_spikes=32, stepsize_controller=TIGHT)
        return _loss_of_times(sim.spikes, t1), sim

    params = (w_in, w_rec, model.neuron.bias, model.hazard.rho0, model.hazard.delta)
    rep = so.check_grads(fn, params, steps=np.logspace(-3, -7, 9))
    assert rep.passed and rep.num_spikes >= 6, rep


# An observed train of the `network()` neurons (a sample of the model, rounded):
# 3 neurons, 9 spikes, no interval below the refractory period.
OBSERVED = so.SpikeTrain.from_lists(
    [[0.0341, 0.0592, 0.0899], [0.0301, 0.0446, 0.0930], [0.0228, 0.0609, 0.1000]], capacity=12
)


def _likelihood(p, key, spikes, t1, inputs, adjoint=None):
    wi, wr, tau, bias, rho0, delta = p
    m = so.EscapeNoise(
        so.LIF(3, tau_mem=tau, bias=bias, refractory_period=0.002),
        so.ExponentialHazard(rho0, delta),
        key,
    )
    ll = so.log_likelihood(
        m, spikes, t1, inputs, wi, w_rec=wr, stepsize_controller=TIGHT, adjoint=adjoint
    )
    return ll, spikes


def _likelihood_problem():
    model, t1, inputs, w_in, w_rec = network()
    params = (w_in, w_rec, model.neuron.tau_mem, model.neuron.bias, model.hazard.rho0,
              model.hazard.delta)  # fmt: skip
    return model, t1, inputs, params


def test_log_likelihood_against_quad_and_forward_mode():
    """The log-likelihood of a recurrent network's train (3 neurons, 9 spikes, inputs,
    recurrent kicks from the observed spikes, refractory periods) against the
    event-by-event reference with the closed-form voltage and `quad` (measured
    5e-12; bound 1e-8), and its derivative (forward mode) in a random direction of
    all parameters (weights, the model's and the hazard's) against central
    differences with relative step 1e-5 (bound 1e-6 relative; measured 1.4e-8).
    (Reverse mode against `check_grads`: the slow test below.)"""
    model, t1, inputs, params = _likelihood_problem()
    rng = np.random.default_rng(0)
    direction = tuple(jnp.asarray(rng.normal(size=np.shape(x))) * x for x in params)

    @jax.jit
    def value_and_derivative(p):
        ll = lambda q: _likelihood(q, model.key, OBSERVED, t1, inputs, so.ForwardMode())[0]
        return jax.jvp(ll, (p,), (direction,))

    ll, derivative = value_and_derivative(params)
    ref = reference_log_likelihood(
        model, OBSERVED.to_lists(), t1, inputs.to_lists(), *(np.asarray(w) for w in params[:2])
    )
    assert abs(float(ll) - ref) < 1e-8
    h = 1e-5
    up, _ = value_and_derivative(tuple(x + h * d for x, d in zip(params, direction)))
    down, _ = value_and_derivative(tuple(x - h * d for x, d in zip(params, direction)))
    fd = (float(up) - float(down)) / (2 * h)
    assert abs(fd - float(derivative)) < 1e-6 * abs(float(derivative))


@pytest.mark.slow  # (~25 s: compiles the value and the reverse-mode gradient)
def test_log_likelihood_gradient_against_finite_differences():
    """Reverse mode, every parameter, against `check_grads` (1e-6)."""
    model, t1, inputs, params = _likelihood_problem()
    rep = so.check_grads(
        lambda p: _likelihood(p, model.key, OBSERVED, t1, inputs), params,
        steps=np.logspace(-3, -7, 9),
    )  # fmt: skip
    assert rep.passed, rep


@pytest.mark.slow  # (~10 s: compiles a likelihood)
def test_log_likelihood_impossible_train():
    # two spikes of one neuron closer than its refractory period (2 ms)
    model, t1, inputs, w_in, w_rec = network()
    spikes = so.SpikeTrain.from_lists([[0.01, 0.011], [], []])
    ll = so.log_likelihood(model, spikes, t1, inputs, w_in, w_rec=w_rec)
    assert float(ll) == -np.inf


def test_neuron_contract():
    """The fields are the constructor's arguments (one key per neuron is kept), and
    the lane loops' one-neuron template, sliced, draws what `one_neuron(i)` and the
    population draw for neuron `i`."""
    import dataclasses

    from spikeode._segment import _one_neuron_model

    model = constant_drive_model()
    again = dataclasses.replace(model)
    assert np.all(jax.random.key_data(again.key) == jax.random.key_data(model.key))
    single, axes = _one_neuron_model(model)
    assert single.num_neurons == 1 and axes.key == 0
    zero = jnp.zeros(1)
    for i in range(3):
        lane = jax.tree_util.tree_map(lambda x, ax: x if ax is None else x[i], single, axes)
        expected = model.draws(jnp.zeros(3))[i]
        assert lane.draws(zero)[0] == model.one_neuron(i).draws(zero)[0] == expected
    assert model.state_size == 5 and model.init_state().shape == (3, 5)


def test_bad_input():
    lif = so.LIF(2)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="delta` must be positive"):
        so.ExponentialHazard(1.0, 0.0)
    with pytest.raises(ValueError, match="rho0` must be positive"):
        so.ExponentialHazard(-1.0, 0.1)
    with pytest.raises(ValueError, match="scalar or one value per neuron"):
        so.ExponentialHazard(jnp.ones((2, 2)), 0.1)
    with pytest.raises(ValueError, match=r"hazard parameter .* shape \(3,\)"):
        so.EscapeNoise(lif, so.ExponentialHazard(jnp.ones(3), 0.1), key)
    hazard = so.ExponentialHazard(1.0, 0.1)
    for bad in (jax.random.split(key, 3), jnp.zeros(2), jnp.zeros((3, 2), jnp.uint32), 7):
        with pytest.raises(ValueError, match="`key` must be a JAX PRNG key"):
            so.EscapeNoise(lif, hazard, bad)
    with pytest.raises(TypeError, match="hazard"):
        so.EscapeNoise(lif, lambda u: u, key)
    with pytest.raises(TypeError, match="`neuron` must be"):
        so.EscapeNoise(so.EscapeNoise(lif, hazard, key), hazard, key)
    # one key per neuron, typed or legacy, is kept; of a single one neuron `i` gets
    # `fold_in(key, i)`, whatever the population size
    per = jax.random.split(key, 2)
    assert so.EscapeNoise(lif, hazard, per).key.shape == (2,)
    assert so.EscapeNoise(lif, hazard, jax.random.PRNGKey(0)).key.shape == (2,)
    three = so.EscapeNoise(so.LIF(3), hazard, key).key
    for i in range(3):
        assert np.all(jax.random.key_data(three[i])
                      == jax.random.key_data(jax.random.fold_in(key, i)))  # fmt: skip
    assert np.all(jax.random.key_data(so.EscapeNoise(lif, hazard, key).key)
                  == jax.random.key_data(three[:2]))  # fmt: skip
    # traced parameters that are not positive: at run time, by the model's `check`
    # (which `simulate` calls)
    model = so.EscapeNoise(lif, hazard, key)
    negative = eqx.tree_at(lambda m: m.hazard.delta, model, jnp.asarray(-0.1))
    with pytest.raises(JitRuntimeErr, match="delta` must be positive"):
        jax.jit(lambda m: m.check().hazard.delta)(negative)
    spikes = so.SpikeTrain.from_lists([[0.01], []])
    with pytest.raises(TypeError, match="must be a spikeode.EscapeNoise"):
        so.log_likelihood(lif, spikes, 0.1)
    with pytest.raises(ValueError, match="one train of 2 neurons"):
        so.log_likelihood(model, so.SpikeTrain.from_lists([[0.01]]), 0.1)

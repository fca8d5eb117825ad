"""Fitting models to spike trains (`spikeode.fit`): maximum likelihood of escape-noise
models with standard errors from the exact Hessian (checked against finite differences
of the reverse-mode gradient), the factorisation of a network's likelihood over
neurons that per-neuron fits rely on, a spike-distance fit of a deterministic model,
bad input; slow: parameter recovery with the coverage of the 95 % intervals over
repeated data sets (examples/fit_spike_trains.py).

Statistical tests use fixed seeds, so they are deterministic; each states its bound."""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import spikeode as so

TOL = dict(stepsize_controller=diffrax.PIDController(rtol=1e-10, atol=1e-10))
LBFGS = optax.lbfgs(
    linesearch=optax.scale_by_backtracking_linesearch(max_backtracking_steps=20, store_grad=True)
)
# One LIF neuron under constant drive with an exponential hazard (about 11 Hz).
TRUE = dict(threshold=1.0, delta=0.1)
WHERE = lambda o: (o.model.neuron.threshold, o.model.hazard.delta)  # noqa: E731
TRIALS, T1 = 8, 1.0


def _neuron(threshold, delta, key, n=1):
    lif = so.LIF(n, tau_mem=0.02, bias=0.95, refractory_period=0.002, threshold=threshold)
    return so.EscapeNoise(lif, so.ExponentialHazard(50.0, delta), key)


@pytest.fixture(scope="module")
def single():
    keys = jax.random.split(jax.random.key(7), TRIALS)
    run = lambda key: so.simulate(_neuron(**TRUE, key=key), T1, max_spikes=60, **TOL).spikes
    data = so.Recording(jax.jit(jax.vmap(run))(keys), T1)
    objective = so.LogLikelihoodObjective(_neuron(0.9, 0.15, jax.random.key(0)), **TOL)
    result = so.fit(objective, data, WHERE, positive=(False, True), optimiser=LBFGS,
                    steps=40, tol=1e-10, progress=False)  # fmt: skip
    return data, objective, result


def test_maximum_likelihood_fit_of_one_neuron(single):
    data, objective, result = single
    assert 60 <= int(jnp.sum(data.spikes.num_spikes)) <= 200  # (86)
    truth = (TRUE["threshold"], TRUE["delta"])
    # the estimate is at least as likely as the truth (it is the maximum), and the
    # likelihood rose along the way
    # (strongly typed values, as the fit's: its compiled loss is reused)
    truth_values = tuple(jnp.asarray(t, jnp.float64) for t in truth)
    at_truth = so.fit(eqx.tree_at(WHERE, objective, truth_values), data, WHERE, steps=0,
                      standard_errors=False, progress=False).final_loss  # fmt: skip
    assert float(result.final_loss) <= float(at_truth)
    assert float(result.final_loss) < float(result.losses[0]) - 1.0
    # a stationary point: the gradient of the mean loss is ~0 there
    grad = _mean_loss_grad(objective, data, jnp.stack(result.values))
    assert float(jnp.max(jnp.abs(grad))) < 1e-4
    # the truth lies within 4 standard errors (a correct estimator fails this for
    # fewer than 1e-4 of seeds)
    for v, s, t in zip(result.values, result.standard_errors, truth):
        assert 0 < float(s) < 0.2 * t
        assert abs(float(v) - t) < 4 * float(s), (float(v), float(s), t)
    (lo, hi), _ = result.intervals(0.95)
    assert float(hi - lo) == pytest.approx(2 * 1.959964 * float(result.standard_errors[0]))


def _mean_loss(objective, data, values):
    fitted = eqx.tree_at(WHERE, objective, tuple(values))
    per_trial = jax.vmap(fitted.trial_loss, in_axes=(0, None, None, None))
    return jnp.mean(per_trial(data.spikes, None, data.t0, data.t1))


# the reverse-mode gradient of the mean loss, compiled once for both tests that use it
_mean_loss_grad = eqx.filter_jit(jax.grad(_mean_loss, argnums=2))


def test_hessian_matches_finite_differences_of_the_gradient(single):
    # forward over forward (the fit's Hessian) against central differences of the
    # reverse-mode gradient, an independent way through the loop
    data, objective, result = single
    x = jnp.stack(result.values)
    grad = lambda v: _mean_loss_grad(objective, data, v) * data.num_trials  # noqa: E731
    h = 1e-6
    fd = np.stack([(grad(x + h * e) - grad(x - h * e)) / (2 * h) for e in jnp.eye(2)])
    np.testing.assert_allclose(result.hessian, fd, rtol=2e-6, atol=1e-6 * np.abs(fd).max())
    np.testing.assert_allclose(result.covariance @ result.hessian, np.eye(2), atol=1e-10)


def test_network_likelihood_factorises_over_neurons():
    # Given every neuron's recorded spikes, the network's log-likelihood is the sum of
    # single-neuron ones with the recorded spikes as inputs through the columns of
    # w_rec (what per-neuron fits of a connectivity rely on).
    n = 4
    w = jnp.asarray(np.random.default_rng(3).normal(0, 1.5, (n, n)))
    model = _neuron(1.0, 0.1, jax.random.key(2), n)
    spikes = eqx.filter_jit(so.simulate)(model, 1.0, w_rec=w, max_spikes=150, **TOL).spikes
    assert int(spikes.num_spikes) > 30  # (37)
    log_likelihood = eqx.filter_jit(so.log_likelihood)
    total = log_likelihood(model, spikes, 1.0, w_rec=w, **TOL)
    one = _neuron(1.0, 0.1, jax.random.key(0))
    parts = [log_likelihood(one, spikes.select([i]), 1.0, spikes, w[:, i : i + 1], **TOL)
             for i in range(n)]  # fmt: skip
    assert float(total) == pytest.approx(float(sum(parts)), rel=1e-9)


def test_spike_distance_fit_recovers_a_deterministic_neuron():
    # A deterministic LIF driven by input spikes: the van Rossum fit from a 10 % off
    # start recovers the time constant and threshold that made the recorded spikes.
    rng = np.random.default_rng(0)
    lists = [[np.sort(rng.uniform(0, 0.5, 12)) for _ in range(3)] for _ in range(2)]
    inputs = jax.tree_util.tree_map(
        lambda *x: jnp.stack(x), *[so.SpikeTrain.from_lists(x, capacity=40) for x in lists]
    )
    w_in = jnp.asarray([[3.0], [2.5], [-1.0]])
    lif = lambda tau, theta: so.LIF(1, tau_mem=tau, threshold=theta, bias=0.5)  # noqa: E731
    run = lambda inp: so.simulate(lif(0.02, 1.0), 0.5, inp, w_in, max_spikes=30).spikes
    data = so.Recording(jax.vmap(run)(inputs), 0.5, inputs)
    assert int(jnp.sum(data.spikes.num_spikes)) >= 10
    objective = so.SpikeDistanceObjective(lif(0.022, 0.92), w_in, max_spikes=30, tau=0.01)
    where = lambda o: (o.model.tau_mem, o.model.threshold)  # noqa: E731
    result = so.fit(objective, data, where, positive=True, optimiser=optax.adam(3e-3),
                    steps=300, progress=False)  # fmt: skip
    assert result.standard_errors is None
    np.testing.assert_allclose([float(v) for v in result.values], [0.02, 1.0], rtol=2e-4)  # (4e-5)
    # (Adam at a fixed rate ends oscillating about the minimum, where the distance is 0)
    assert float(result.final_loss) < 1e-3 * float(result.losses[0])


def test_fit_bad_input(single):
    data, objective, _ = single
    spikes = data.spikes
    with pytest.raises(ValueError, match="batched over one axis of trials"):
        so.Recording(jax.tree_util.tree_map(lambda x: x[0], spikes), 1.0)
    with pytest.raises(ValueError, match="one train per trial"):
        so.Recording(spikes, 1.0, so.SpikeTrain.empty(2, 5))
    with pytest.raises(ValueError, match="must be after"):
        so.Recording(spikes, 0.0)
    with pytest.raises(TypeError, match="must be a spikeode.EscapeNoise"):
        so.LogLikelihoodObjective(so.LIF(1))
    with pytest.raises(ValueError, match="either `tau`"):
        so.SpikeDistanceObjective(so.LIF(1), max_spikes=3)
    with pytest.raises(ValueError, match="`tau` must be positive"):
        so.SpikeDistanceObjective(so.LIF(1), max_spikes=3, tau=0.0)
    with pytest.raises(ValueError, match="parameter 0 selected by `where` is int"):
        so.fit(objective, data, lambda o: o.options["stepsize_controller"].dtmin or 0,
               steps=0, progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="declared positive but starts"):
        so.fit(eqx.tree_at(WHERE, objective, (jnp.asarray(-1.0), jnp.asarray(0.1))), data,
               WHERE, positive=True, steps=0, progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="2 entries for 1 parameters"):
        so.fit(objective, data, lambda o: o.model.hazard.delta, positive=(True, True),
               steps=0, progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="standard errors need a likelihood"):
        distance = so.SpikeDistanceObjective(so.LIF(1), max_spikes=3, tau=0.01)
        so.fit(distance, data, lambda o: o.model.tau_mem, standard_errors=True, steps=0,
               progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="no standard errors"):
        so.fit(objective, data, WHERE, steps=0, standard_errors=False,
               progress=False).intervals()  # fmt: skip
    with pytest.raises(ValueError, match="distinct ids"):
        spikes.select([0, 0])


def test_fit_reports_a_non_finite_loss(single):
    data, objective, _ = single
    # a refractory period longer than the observed intervals makes every trial
    # impossible (log-likelihood -inf): the fit stops with an error naming the step
    period = objective.model.neuron.refractory_period
    long_refractory = eqx.tree_at(lambda o: o.model.neuron.refractory_period, objective,
                                  jnp.full_like(period, 0.5))  # fmt: skip
    with pytest.raises(ValueError, match="the loss is inf at step 0"):
        so.fit(long_refractory, data, WHERE, positive=(False, True), optimiser=LBFGS, steps=2,
               progress=False)  # fmt: skip


@pytest.mark.slow
def test_single_neuron_parameter_recovery_and_coverage(load_example):
    # 20 independent data sets of 20 trials: the 95 % intervals of tau_mem, threshold
    # and delta hold the truth in at least 16 of 20 (a correct interval fails this
    # with probability 0.016 per parameter), and the error shrinks with more data.
    ex = load_example("fit_spike_trains")
    report, _, _ = ex.single_neuron_experiment(20, 20, [5, 20, 40])
    print(report)
    assert min(report["coverage_95"]) >= 0.8
    rmse = report["relative_rmse_by_trials"]
    assert all(a > b for a, b in zip(rmse["5"], rmse["40"]))


@pytest.mark.slow
def test_network_connectivity_recovery_and_coverage(load_example):
    # The 100 weights (self-weights included) of a 10-neuron network fitted on 5
    # independent data sets: 500 intervals hold the truth at a rate of at least 0.9
    # (five binomial standard deviations below 0.95).
    ex = load_example("fit_spike_trains")
    report, *_ = ex.network_experiment(5, 10, t1=2.0)
    print(report)
    assert report["coverage_95"] >= 0.9

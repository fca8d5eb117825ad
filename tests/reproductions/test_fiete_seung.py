"""The perturbation gradient estimators (Fiete & Seung 2006) and their example.

Statistical bounds: on a quadratic loss the estimators are exactly unbiased (the
second-order term of the loss change multiplies an odd moment of the Gaussian noise,
which vanishes), so the mean of `n` one-trial estimates differs from the gradient only
by noise of standard error `sd_i / sqrt(n)`, `sd_i` the per-trial standard deviation of
component `i` (measured from the same trials). By the central limit theorem each
component lies within 5 standard errors except with probability ~6e-7; with the fixed
keys below the tests are deterministic, and a biased estimator (e.g. a wrong factor
`1/sigma` vs `1/sigma^2`, or a baseline that correlates with the noise) fails them.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spikeode as so
from spikeode.baselines import perturbation as pert

# jitted (faster than op-by-op); `filter_jit` keeps functions and Python numbers static
weight_perturbation = eqx.filter_jit(pert.weight_perturbation)
node_perturbation = eqx.filter_jit(pert.node_perturbation)

A = jnp.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 3.0]])


def quadratic(p):
    """0.5 x^T A x + b.x + sum(W^2 c): known gradient."""
    x, w = p["x"], p["w"]
    return 0.5 * x @ A @ x + jnp.array([1.0, -2.0, 0.5]) @ x + jnp.sum(w**2 * p["c"])


PARAMS = {
    "x": jnp.array([0.3, -0.7, 1.1]),
    "w": jnp.array([[0.5, -1.0], [2.0, 0.1]]),
    "c": jnp.array([[1.0, 2.0], [0.5, 1.5]]),
    "n": 3,  # not an inexact array: held fixed, no estimate
}


KEYS = ("c", "w", "x")  # the inexact leaves, in pytree order
TRUTH = np.concatenate([
    np.ravel(v) for v in jax.tree.leaves(
        jax.grad(lambda p: quadratic({**p, "n": 3}))({k: PARAMS[k] for k in KEYS}))
])  # d/dc = w^2, d/dw = 2 w c, d/dx = A x + b


def _samples(g, n):
    return np.concatenate([np.asarray(g[k]).reshape(n, -1) for k in KEYS], 1)


def _flat(tree):
    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])


def _within_standard_errors(samples, truth, k=5.0):
    n = samples.shape[0]
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / np.sqrt(n)
    return np.abs(mean - truth) <= k * se, mean, se


def _cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("baseline", ["unperturbed", "mean"])
def test_weight_perturbation_unbiased_on_quadratic(baseline):
    n = 20000
    loss, g = weight_perturbation(
        quadratic, PARAMS, jax.random.PRNGKey(0), sigma=0.3, trials=n,
        baseline=baseline, per_trial=True,
    )
    assert g["n"] is None
    samples, truth = _samples(g, n), TRUTH
    ok, mean, se = _within_standard_errors(samples, truth)
    assert ok.all(), (mean, truth, se)
    if baseline == "unperturbed":
        assert float(loss) == pytest.approx(float(quadratic(PARAMS)), rel=1e-12)
    # the standard errors are small enough for the check to mean something
    assert np.all(se < 0.05 * np.linalg.norm(truth))


def test_weight_perturbation_cosine_goes_to_one_and_reductions_agree():
    key = jax.random.PRNGKey(1)
    kw = dict(sigma=0.1, trials=4096)
    _, g = weight_perturbation(quadratic, PARAMS, key, per_trial=True, **kw)
    samples, truth = _samples(g, 4096), TRUTH
    cums = np.cumsum(samples, axis=0)
    cos = {n: _cos(cums[n - 1] / n, truth) for n in (4, 64, 4096)}
    assert cos[4] < cos[64] < cos[4096]
    # 11 components, per-trial noise ~ sqrt(d + 1) |g|: cos ~ (1 + 12 / n)^-1/2
    assert cos[4096] > 0.99, cos
    # the reduced estimate (here chunked by lax.map) is the mean of the per-trial ones
    _, chunked = weight_perturbation(quadratic, PARAMS, key, chunk_size=1000, **kw)
    np.testing.assert_allclose(_flat(chunked), samples.mean(0), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("baseline", ["unperturbed", "mean", 3.0])
def test_node_perturbation_unbiased_on_linear_nodes(baseline):
    """Nodes y = W x + xi, loss 0.5 |y - t|^2: dL/dW = (y - t) x^T, eligibility
    e = xi x^T (Fiete & Seung's noise x presynaptic activity)."""
    x = jnp.array([1.0, -0.5, 2.0, 0.3])
    t = jnp.array([0.5, 1.0, -1.0])
    params = {"W": jnp.arange(12.0).reshape(3, 4) / 10.0}

    def loss_fn(p, xi):
        y = p["W"] @ x + xi
        return 0.5 * jnp.sum((y - t) ** 2), x

    def eligibility(x_pre, xi):
        return {"W": jnp.outer(xi, x_pre)}

    n = 20000
    _, g = node_perturbation(
        loss_fn, params, jax.random.PRNGKey(2), noise_shape=(3,), eligibility=eligibility,
        sigma=0.2, trials=n, baseline=baseline, per_trial=True,
    )
    truth = np.ravel(jnp.outer(params["W"] @ x - t, x))
    samples = np.asarray(g["W"]).reshape(n, -1)
    ok, mean, se = _within_standard_errors(samples, truth)
    assert ok.all(), (mean, truth, se)
    assert _cos(mean, truth) > 0.99


def test_bad_arguments():
    f = lambda p: quadratic(p)  # noqa: E731
    key = jax.random.PRNGKey(0)
    # (an argument of the wrong type: the library's ValueError, or first the TypeError of
    # the annotations' run-time check that the tests install, tests/conftest.py, which
    # names the argument)
    wrong = (ValueError, TypeError)
    for sigma in (0.0, -1.0, float("nan"), "a", None):
        with pytest.raises(wrong, match="sigma"):
            pert.weight_perturbation(f, PARAMS, key, sigma=sigma, trials=4)
    for trials in (0, -3, 2.5, True):
        with pytest.raises(wrong, match="trials"):
            pert.weight_perturbation(f, PARAMS, key, sigma=0.1, trials=trials)
    for baseline in ("running", None, jnp.ones(2), True):
        with pytest.raises(wrong, match="baseline"):
            pert.weight_perturbation(f, PARAMS, key, sigma=0.1, trials=4, baseline=baseline)
    with pytest.raises(ValueError, match="trials >= 2"):
        pert.weight_perturbation(f, PARAMS, key, sigma=0.1, trials=1, baseline="mean")
    with pytest.raises(ValueError, match="chunk_size"):
        pert.weight_perturbation(f, PARAMS, key, sigma=0.1, trials=4, chunk_size=0)
    with pytest.raises(ValueError, match="sigma"):
        pert.node_perturbation(lambda p, xi: (0.0, None), PARAMS, key, noise_shape=(2,),
                               eligibility=lambda a, xi: xi, sigma=-0.1, trials=2)
    layer = so.nn.RecurrentLayer(2, 3, max_spikes=8, key=key)
    inputs = so.SpikeTrain.from_lists([[0.01], [0.02]])
    loss = lambda sim: jnp.sum(sim.y_final)  # noqa: E731
    with pytest.raises(ValueError, match="num_bins"):
        pert.network_node_perturbation(loss, layer, inputs, 0.05, key, sigma=0.1,
                                       trials=2, num_bins=1)
    with pytest.raises(ValueError, match="trials"):
        pert.network_node_perturbation(loss, layer, inputs, 0.05, key, sigma=0.1,
                                       trials=0, num_bins=4)
    with pytest.raises(wrong, match="layer"):
        pert.network_node_perturbation(loss, so.LIF(3), inputs, 0.05, key, sigma=0.1,
                                       trials=2, num_bins=4)
    with pytest.raises(ValueError, match="inputs"):
        pert.network_node_perturbation(loss, layer, so.SpikeTrain.from_lists([[0.01]]),
                                       0.05, key, sigma=0.1, trials=2, num_bins=4)


def test_spread_on_grid_is_linear_interpolation():
    grid = jnp.array([0.0, 0.01, 0.02, 0.03])
    train = so.SpikeTrain.from_lists([[0.005, 0.03], [0.012], []], capacity=5)
    s = np.asarray(pert.spread_on_grid(train, grid))
    expected = np.array([[0.5, 0.5, 0.0, 1.0], [0.0, 0.8, 0.2, 0.0], [0.0] * 4])
    np.testing.assert_allclose(s, expected, atol=1e-12)


# ------------------------------------------------------------------ the example
@pytest.fixture(scope="module")
def fiete_seung(load_example):
    return load_example("fiete_seung").run(fast=True)


@pytest.mark.slow  # (the example's training runs, about 30 s)
def test_fiete_seung_cosine_increases_with_trials(fiete_seung):
    c = fiete_seung["cosine"]["node 0.005"]
    med = dict(zip(fiete_seung["trials"], c["median"]))
    assert med[64] > med[1] + 0.2, med
    assert med[64] > 0.3, med
    # every repeat's 64-trial estimate points the same way as the exact gradient
    assert min(row[-1] for row in c["all"]) > 0.2, c["all"]


@pytest.mark.slow  # (the example's training runs, about 30 s)
def test_fiete_seung_perturbation_learning_reduces_the_loss(fiete_seung):
    best = fiete_seung["learning"]["best"]
    for kind in ("exact", "node"):
        loss = best[kind]["loss"]
        assert best[kind]["final_mean10"] < 0.9 * loss[0], (kind, loss)

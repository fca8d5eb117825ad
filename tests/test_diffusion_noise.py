"""Diffusion noise (`DiffusionNoise`): a LIF with white-noise input against the Siegert
rate and the ISI coefficient of variation, convergence of the spike times of one fixed
Brownian path as the step shrinks, the noise-free limit, `vmap` over keys, pathwise
gradients (against finite differences with the same key, and of an expectation), bad
input.

The convention is Brunel's (2000): `tau dv = (mu - v) dt + s sqrt(tau) dW`, i.e.
`DiffusionNoise(LIF(bias=mu), sigma=s / sqrt(tau))`; `tau = 20 ms`, threshold 1,
reset 0, no refractory period (the cases of ../shared/NOISE.md).

The discretised model's rate is the Siegert rate with the threshold raised by the
continuity correction of discretely monitored diffusions, `beta s_v sqrt(dt)`
(`beta = -zeta(1/2) / sqrt(2 pi) = 0.5826`, Broadie, Glasserman & Kou 1997; `s_v =
s / sqrt(tau)`): crossings are only seen at step ends. It predicts NOISE.md's
Euler-Maruyama rates at dt = 2e-5 s (12.557 / 28.605 / 28.380 Hz predicted, 12.549 /
28.591 / 28.389 Hz measured with 80,000 neuron-seconds), and the tests compare with it
(and state the uncorrected bias).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import JitRuntimeErr
from scipy import integrate, special

import spikeode as so

TAU = 0.02
BETA = 0.5825971579390106  # -zeta(1/2) / sqrt(2 pi)
# NOISE.md: (mu, s) -> (rate in Hz, CV)
QUOTED = {(0.8, 0.3): (12.833, 0.6394), (1.2, 0.1): (28.742, 0.1771), (1.0, 0.5): (28.922, 0.6163)}


# ----------------------------------------------------------------- the references
def siegert_rate(mu, s, theta=1.0, v_reset=0.0):
    """1 / (tau sqrt(pi) int_{(v_r - mu)/s}^{(theta - mu)/s} e^{u^2} (1 + erf u) du)."""
    integral, _ = integrate.quad(lambda u: special.erfcx(-u), (v_reset - mu) / s,
                                 (theta - mu) / s, epsabs=0, epsrel=1e-12)  # fmt: skip
    return 1 / (TAU * np.sqrt(np.pi) * integral)


def siegert_cv(mu, s, theta=1.0, v_reset=0.0):
    """CV^2 = 2 pi (rate tau)^2 int_{y_r}^{y_theta} e^{x^2} int_{-inf}^x e^{y^2}
    (1 + erf y)^2 dy dx, with e^{y^2} (1 + erf y)^2 = erfcx(-y)^2 e^{-y^2}."""
    inner = lambda x: integrate.quad(lambda y: special.erfcx(-y) ** 2 * np.exp(-y * y),
                                     -np.inf, x, epsabs=0, epsrel=1e-12)[0]  # fmt: skip
    outer, _ = integrate.quad(lambda x: np.exp(x * x) * inner(x), (v_reset - mu) / s,
                              (theta - mu) / s, epsabs=0, epsrel=1e-10)  # fmt: skip
    return np.sqrt(2 * np.pi * (siegert_rate(mu, s, theta, v_reset) * TAU) ** 2 * outer)


def monitored_threshold(s, dt):
    """The threshold seen by crossings checked every `dt` (continuity correction)."""
    return 1.0 + BETA * s / np.sqrt(TAU) * np.sqrt(dt)


def test_reference_values():
    for (mu, s), (rate, cv) in QUOTED.items():
        assert siegert_rate(mu, s) == pytest.approx(rate, abs=1e-3)
        assert siegert_cv(mu, s) == pytest.approx(cv, abs=1e-4)
    # the correction reproduces NOISE.md's measured Euler-Maruyama rates at 2e-5 s
    measured = {(0.8, 0.3): 12.549, (1.2, 0.1): 28.591, (1.0, 0.5): 28.389}
    for (mu, s), rate in measured.items():
        assert siegert_rate(mu, s, monitored_threshold(s, 2e-5)) == pytest.approx(rate, rel=2e-3)


# ------------------------------------------------------------------ simulations
def noisy_lif(n, mu, s, seed=0, **lif):
    return so.DiffusionNoise(so.LIF(n, tau_mem=TAU, bias=mu, **lif), s / np.sqrt(TAU),
                             jax.random.key(seed))  # fmt: skip


def isi_sample(mu, s, *, n, k, t1, dt, seed=0):
    """The first `k` inter-spike intervals of each of `n` independent neurons (each
    starts at the reset, so all are renewal intervals: an i.i.d. sample)."""
    sim = so.simulate(noisy_lif(n, mu, s, seed), t1, max_spikes=n * k, dt0=dt,
                      max_steps=int(t1 / dt) + 16, loop=so.PerNeuronLoop(k),
                      throw=False)  # fmt: skip
    times, ids = np.asarray(sim.spikes.times), np.asarray(sim.spikes.neurons)
    per_neuron = [np.sort(times[ids == i]) for i in range(n)]
    assert min(len(t) for t in per_neuron) == k, "raise t1: a neuron had fewer than k spikes"
    return np.concatenate([np.diff(t, prepend=0.0) for t in per_neuron])


def rate_and_cv(isi):
    """Rate 1 / mean ISI and CV, each with its standard error (delta method, from the
    sample's moments)."""
    m, n = isi.mean(), isi.size
    c = isi - m
    var, mu3, mu4 = (c**2).mean(), (c**3).mean(), (c**4).mean()
    sd = np.sqrt(var)
    se_rate = sd / np.sqrt(n) / m**2
    se_cv = np.sqrt(((mu4 - var**2) / (4 * var * m**2) - mu3 / m**3 + var**2 / m**4) / n)
    return 1 / m, se_rate, sd / m, se_cv


def check_against_siegert(mu, s, *, n, k, t1, dt):
    rate, se_rate, cv, se_cv = rate_and_cv(isi_sample(mu, s, n=n, k=k, t1=t1, dt=dt))
    theta = monitored_threshold(s, dt)
    ref_rate, ref_cv = siegert_rate(mu, s, theta), siegert_cv(mu, s, theta)
    print(f"(mu, s) = ({mu}, {s}), {n} x {k} ISIs, dt = {dt:g}: rate {rate:.3f} +- "
          f"{se_rate:.3f} Hz (Siegert {siegert_rate(mu, s):.3f}, corrected {ref_rate:.3f}),"
          f" CV {cv:.4f} +- {se_cv:.4f} (Siegert {siegert_cv(mu, s):.4f}, corrected "
          f"{ref_cv:.4f})")  # fmt: skip
    assert abs(rate - ref_rate) < 3 * se_rate
    assert abs(cv - ref_cv) < 3 * se_cv


def test_siegert_rate_and_cv():
    # 16 x 20 ISIs at dt = 1e-4 s: standard errors about 1 % (rate) and 4 % (CV); the
    # uncorrected Siegert rate is 1.1 % above the discretised model's.
    check_against_siegert(1.2, 0.1, n=16, k=20, t1=1.2, dt=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize(("mu", "s", "t1"), [(0.8, 0.3, 8.0), (1.2, 0.1, 3.0), (1.0, 0.5, 4.0)])
def test_siegert_rate_and_cv_slow(mu, s, t1):
    # 64 x 50 ISIs at dt = 5e-5 s: standard errors 1.2 % (rate) and 1.5 % (CV); the
    # uncorrected bias is 0.7-3 %.
    check_against_siegert(mu, s, n=64, k=50, t1=t1, dt=5e-5)


def first_spikes(model, t1, dt, **kwargs):
    n = model.num_neurons
    sim = so.simulate(model, t1, max_spikes=n, dt0=dt, max_steps=int(t1 / dt) + 16,
                      loop=so.PerNeuronLoop(1), throw=False, **kwargs)  # fmt: skip
    assert int(sim.spikes.num_spikes) == n
    order = np.argsort(np.asarray(sim.spikes.neurons))
    return np.asarray(sim.spikes.times)[order]


def check_convergence(n, levels, ref_level):
    """The first spike of `n` neurons, (mu, s) = (1.2, 0.1), at dt = 2e-4 / 2^j for
    `j < levels`, against dt = 2e-4 / 2^ref_level with the same Brownian paths: the
    median error falls like dt (the crossing is located within the step that
    detects it); a path that crosses and returns within a step is detected later, so
    the largest errors fall more slowly."""
    model = noisy_lif(n, 1.2, 0.1, seed=3)
    steps = 2e-4 / 2.0 ** np.arange(levels)
    ref = first_spikes(model, 0.1, 2e-4 / 2**ref_level)
    err = np.array([np.abs(first_spikes(model, 0.1, dt) - ref) for dt in steps])
    median = np.median(err, axis=1)
    order = np.polyfit(np.log(steps), np.log(median), 1)[0]
    print("dt", steps, "median errors", median, "max errors", err.max(axis=1), "order", order)
    assert median[-1] < median[0] / 2 ** (levels - 2)
    return order


@pytest.mark.slow
def test_fixed_path_converges_slow():
    assert check_convergence(16, 5, 7) > 0.9


def test_noise_free_limit_is_the_deterministic_model():
    lif = so.LIF(3, tau_mem=TAU, bias=jnp.array([1.2, 1.5, 2.0]), refractory_period=2e-3)
    inputs = so.SpikeTrain(jnp.array([0.01, 0.02, 0.045]), jnp.array([0, 1, 0]), 2)
    w_in = jnp.array([[0.3, -0.2, 0.1], [0.5, 0.4, -0.3]])
    kw = dict(max_spikes=40)
    exact = so.simulate(lif, 0.1, inputs, w_in, **kw)
    noisy = so.simulate(so.DiffusionNoise(lif, 0.0, jax.random.key(0)), 0.1, inputs, w_in,
                        dt0=1e-5, max_steps=20000, **kw)  # fmt: skip
    k = int(exact.spikes.num_spikes)
    assert k > 10 and int(noisy.spikes.num_spikes) == k
    np.testing.assert_array_equal(noisy.spikes.neurons, exact.spikes.neurons)
    # (the crossing is found on the linear interpolation between steps: O(dt^2) errors)
    assert np.max(np.abs(np.asarray(noisy.spikes.times - exact.spikes.times)[:k])) < 5e-8


@pytest.mark.slow  # (about 25 s)
def test_vmap_over_keys():
    lif = so.LIF(2, tau_mem=TAU, bias=1.1)

    def run(key):
        model = so.DiffusionNoise(lif, 1.0, key)
        return so.simulate(model, 0.1, max_spikes=20, dt0=1e-4, max_steps=2000).spikes

    keys = jax.random.split(jax.random.key(1), 3)
    batched = jax.vmap(run)(keys)
    for j in range(3):
        alone = run(keys[j])
        np.testing.assert_array_equal(batched.neurons[j], alone.neurons)
        # Under vmap the root finder iterates until every element has converged, so
        # spike times differ by round-off (1e-11 s); after a reset the next steps
        # sample the path at times shifted by that much, where it is rough (its
        # resolution is 0.1 s 2^-32 = 2e-11 s): up to 1e-7 s later.
        np.testing.assert_allclose(batched.times[j], alone.times, rtol=0, atol=1e-6)
    assert not np.allclose(batched.times[0], batched.times[1])


@pytest.mark.slow  # (about 50 s: the gradient and five finite-difference steps)
def test_pathwise_gradient_matches_finite_differences():
    # For a fixed key, the first spike of each neuron (input kicks, per-neuron noise):
    # the gradient of the discretised model against central differences. (Later
    # spikes start from a reset at a spike time, where the path is sampled at times
    # that move with the parameters: see NeuronBrownianPaths.)
    inputs = so.SpikeTrain(jnp.array([0.005, 0.012]), jnp.array([0, 1]), 2)
    params = dict(w_in=jnp.array([[0.3, 0.2], [0.2, 0.4]]), sigma=jnp.array([2.0, 3.0]),
                  bias=jnp.array(1.3), tau_mem=jnp.array(TAU))  # fmt: skip
    key = jax.random.key(7)

    def fn(p):
        model = so.DiffusionNoise(so.LIF(2, tau_mem=p["tau_mem"], bias=p["bias"]),
                                  p["sigma"], key)  # fmt: skip
        sim = so.simulate(model, 0.08, inputs, p["w_in"], max_spikes=8, dt0=1e-4,
                          max_steps=1000, loop=so.PerNeuronLoop(4))  # fmt: skip
        t, i = sim.spikes.times, sim.spikes.neurons
        own = i[None, :] == jnp.arange(2, dtype=i.dtype)[:, None]
        first = jnp.min(jnp.where(own, t, jnp.inf), axis=1)
        return jnp.sum(first), sim

    loss, sim = fn(params)
    assert np.all(np.isfinite(loss)) and int(sim.spikes.num_spikes) >= 2
    report = so.check_grads(fn, params, rtol=1e-6, num_directions=1,
                            steps=[1e-3, 1e-4, 1e-5, 1e-6, 1e-7])  # fmt: skip
    print(report)
    assert report.passed, report


@pytest.mark.slow  # (about 40 s: 64 keys' gradients)
def test_gradient_of_an_expectation():
    # E[v(T)^2] of subthreshold OU paths (threshold out of reach): pathwise gradients
    # with respect to sigma, averaged over 64 keys, against the closed form
    # d/dsigma (mu_T^2 + sigma^2 tau (1 - e^{-2T/tau}) / 2) within 3 standard errors;
    # and the average gradient against central differences of the average with the
    # same keys (common random numbers).
    t_save, mu = 0.03, 0.5
    keys = jax.random.split(jax.random.key(2), 64)

    def second_moment(sigma, key):
        model = so.DiffusionNoise(so.LIF(1, tau_mem=TAU, bias=mu, threshold=50.0), sigma, key)
        sim = so.simulate(model, 0.04, max_spikes=1, dt0=2e-4, max_steps=400,
                          save_ts=jnp.array([t_save]))  # fmt: skip
        return sim.ys[0, 0, 0] ** 2

    sigma = jnp.array(2.0)
    grads = np.asarray(jax.vmap(jax.grad(second_moment), (None, 0))(sigma, keys))
    exact = float(sigma) * TAU * (1 - np.exp(-2 * t_save / TAU))
    assert abs(grads.mean() - exact) < 3 * grads.std(ddof=1) / np.sqrt(grads.size)
    mean = jax.jit(lambda s: jnp.mean(jax.vmap(second_moment, (None, 0))(s, keys)))
    h = 1e-4
    fd = (mean(sigma + h) - mean(sigma - h)) / (2 * h)
    assert float(fd) == pytest.approx(grads.mean(), rel=1e-7)


def test_bad_input():
    lif = so.LIF(2)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="sigma"):
        so.DiffusionNoise(lif, -0.1, key)
    with pytest.raises(TypeError):
        so.DiffusionNoise(lif, 0.1)  # no key
    with pytest.raises((ValueError, TypeError), match="key"):  # (TypeError: beartype's)
        so.DiffusionNoise(lif, 0.1, jnp.zeros(3, jnp.uint32))
    with pytest.raises(ValueError, match="`key` must be a JAX PRNG key"):
        so.DiffusionNoise(lif, 0.1, jax.random.split(key, 3))
    # neuron `i` gets `fold_in(key, i)` (its path does not depend on the population
    # size); one key per neuron, typed or legacy, is kept
    three = so.DiffusionNoise(so.LIF(3), 0.1, key).key
    for i in range(3):
        assert np.all(jax.random.key_data(three[i])
                      == jax.random.key_data(jax.random.fold_in(key, i)))  # fmt: skip
    assert np.all(jax.random.key_data(so.DiffusionNoise(lif, 0.1, key).key)
                  == jax.random.key_data(three[:2]))  # fmt: skip
    per = jax.random.split(key, 2)
    assert np.all(jax.random.key_data(so.DiffusionNoise(lif, 0.1, per).key)
                  == jax.random.key_data(per))  # fmt: skip
    assert so.DiffusionNoise(lif, 0.1, jax.random.PRNGKey(0)).key.shape == (2,)
    with pytest.raises(ValueError, match="column"):
        so.DiffusionNoise(lif, 0.1, key, column=2)
    model = so.DiffusionNoise(lif, 0.1, key)
    with pytest.raises(ValueError, match="ExactSolver"):
        so.simulate(model, 0.1, max_spikes=4, solver=so.ExactSolver(), dt0=1e-4)
    with pytest.raises(ValueError, match="dt0"):
        so.simulate(model, 0.1, max_spikes=4)
    with pytest.raises(ValueError, match="EventPropAdjoint"):
        so.simulate(model, 0.1, max_spikes=4, dt0=1e-4, adjoint=so.EventPropAdjoint())
    # a negative sigma reached inside jit (e.g. by training)
    bad = eqx.tree_at(lambda m: m.sigma, model, jnp.asarray(-1.0))
    with pytest.raises(JitRuntimeErr, match="sigma"):
        jax.jit(lambda m: so.simulate(m, 0.1, max_spikes=4, dt0=1e-4).spikes.times)(bad)

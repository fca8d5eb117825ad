"""The surrogate-gradient baseline (Zenke & Vogels 2021) and its comparison example."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import spikeode as so
from spikeode.baselines import surrogate as sg


# ---------------------------------------------------------------------- surrogates
def _formula(name, x, beta):
    """The published formulas, written out in NumPy."""
    if name == "superspike":
        return 1.0 / (beta * np.abs(x) + 1.0) ** 2
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-beta * x))
        return s * (1.0 - s)
    return np.maximum(0.0, 1.0 - beta * np.abs(x))


@pytest.mark.parametrize("name", sg.SURROGATES)
@pytest.mark.parametrize("beta", [0.5, 10.0, 100.0])
def test_spike_forward_is_heaviside_and_gradient_is_the_surrogate(name, beta):
    x = np.linspace(-0.3, 0.3, 61) + 1e-3  # avoid x == 0 exactly
    xj = jnp.asarray(x)
    out = sg.spike(xj, beta, name)
    np.testing.assert_array_equal(np.asarray(out), (x >= 0).astype(float))
    # reverse mode (vjp), elementwise
    grad = jax.vmap(jax.grad(lambda v: sg.spike(v, beta, name)))(xj)
    np.testing.assert_allclose(np.asarray(grad), _formula(name, x, beta), rtol=1e-12, atol=1e-15)
    # forward mode (jvp)
    _, tangent = jax.jvp(lambda v: sg.spike(v, beta, name), (xj,), (jnp.ones_like(xj),))
    np.testing.assert_allclose(np.asarray(tangent), _formula(name, x, beta), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        np.asarray(sg.surrogate_derivative(xj, beta, name)), _formula(name, x, beta), rtol=1e-12
    )


def test_spike_has_no_gradient_wrt_beta():
    g = jax.grad(lambda b: sg.spike(jnp.asarray(0.01), b, "superspike"))(jnp.asarray(10.0))
    assert float(g) == 0.0


# -------------------------------------------------------------------------- binning
def test_bin_spikes_counts_and_batches():
    train = so.SpikeTrain.from_lists([[0.0, 0.0025, 0.0029], [0.0099]], capacity=6)
    raster = np.asarray(sg.bin_spikes(train, 1e-3, 10))
    assert raster.shape == (10, 2)
    expected = np.zeros((10, 2))
    expected[0, 0] = 1
    expected[2, 0] = 2
    expected[9, 1] = 1
    np.testing.assert_array_equal(raster, expected)
    batch = jax.tree.map(lambda a, b: jnp.stack([a, b]), train, train)
    assert sg.bin_spikes(batch, 1e-3, 10).shape == (2, 10, 2)


def test_bin_spikes_rejects_times_outside_the_grid():
    late = so.SpikeTrain.from_lists([[0.0105]])
    with pytest.raises(ValueError, match="outside the time grid"):
        sg.bin_spikes(late, 1e-3, 10)
    early = so.SpikeTrain.from_lists([[0.001]])
    with pytest.raises(ValueError, match="outside the time grid"):
        sg.bin_spikes(early, 1e-3, 10, t0=0.002)
    # inside jit: equinox.error_if
    with pytest.raises(Exception, match="outside the time grid"):
        jax.jit(lambda t: sg.bin_spikes(t, 1e-3, 10))(late)
    with pytest.raises(ValueError, match="`dt`"):
        sg.bin_spikes(late, 0.0, 10)
    with pytest.raises(ValueError, match="`num_steps`"):
        sg.bin_spikes(late, 1e-3, 0)
    # (or, first, the TypeError of the annotations' run-time check that the tests
    # install, tests/conftest.py, which names the argument)
    with pytest.raises((ValueError, TypeError), match="`train`|parameter 'train'"):
        sg.bin_spikes(np.zeros(3), 1e-3, 10)


def test_bad_arguments_error():
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="`surrogate`"):
        sg.spike(jnp.zeros(3), 10.0, "tanh")
    with pytest.raises(ValueError, match="`beta`"):
        sg.spike(jnp.zeros(3), -1.0)
    with pytest.raises(ValueError, match="`sizes`"):
        sg.SurrogateNetwork((5,), key=key)
    with pytest.raises(ValueError, match="`readout`"):
        sg.SurrogateNetwork((5, 3), readout="last", key=key)
    with pytest.raises(ValueError, match="`tau_mem`"):
        sg.TimeSteppedLIF(tau_mem=0.0)
    with pytest.raises(ValueError, match="`v_reset`"):
        sg.TimeSteppedLIF(threshold=1.0, v_reset=1.0)
    with pytest.raises(ValueError, match="`integrator`"):
        sg.TimeSteppedLIF(integrator="rk4")
    net = sg.SurrogateNetwork((5, 4, 3), key=key)
    with pytest.raises(ValueError, match="`x`"):
        net(jnp.zeros((10, 6)))
    with pytest.raises(ValueError, match="`labels`"):
        sg.surrogate_loss(net, jnp.zeros((2, 10, 5)), jnp.zeros(3, jnp.int32))


# --------------------------------------------- forward pass against spikeode's exact LIF
def _hidden_spike_times(w, inputs, t1, dt, integrator="exact", bias=0.0):
    num_steps = int(round(t1 / dt))
    neuron = sg.TimeSteppedLIF(0.02, 0.005, bias=bias, dt=dt, integrator=integrator)
    net = sg.SurrogateNetwork((w.shape[0], w.shape[1], 1), neuron=neuron, key=jax.random.PRNGKey(0))
    net = eqx.tree_at(lambda m: m.weights[0], net, jnp.asarray(w))
    _, (s,), _ = net(sg.bin_spikes(inputs, dt, num_steps))
    s = np.asarray(s)
    return [np.nonzero(s[:, i])[0] * dt for i in range(w.shape[1])]


def _psp_voltage(times, w, ts, tau_m=0.02, tau_s=0.005):
    """Voltage of non-spiking LIF neurons at `ts` (closed form, NumPy): every input
    spike at `t_j` adds `w_j tau_s / (tau_s - tau_m) (exp(-s/tau_s) - exp(-s/tau_m))`,
    `s = t - t_j >= 0`."""
    s = ts[:, None] - np.asarray(times)[None, :]
    kernel = np.where(s >= 0, tau_s / (tau_s - tau_m)
                      * (np.exp(-np.maximum(s, 0) / tau_s)
                         - np.exp(-np.maximum(s, 0) / tau_m)), 0.0)
    return kernel @ w  # (len(ts), neurons)


def test_first_spikes_match_the_exact_lif_within_dt():
    """Input spikes on the grid (multiples of 1 ms): the grid model's voltage at the grid
    times is exact until the first spike, which is reported at the first grid time at or
    after spikeode's event-based (exact) spike time: late by less than dt."""
    rng = np.random.default_rng(3)
    n_in, n = 8, 30
    times = rng.integers(0, 30, n_in) * 1e-3
    inputs = so.SpikeTrain.from_lists([[t] for t in times])
    w = rng.uniform(0.0, 1.8, (n_in, n))
    exact = so.simulate(so.LIF(n, tau_mem=0.02, tau_syn=0.005), 0.06, inputs, jnp.asarray(w),
                        max_spikes=4 * n)
    exact_first = np.asarray(exact.spikes.first_spike_times())
    assert 5 <= np.sum(np.isfinite(exact_first)) <= n - 5  # some fire, some do not
    for dt in (1e-3, 5e-4):
        grid = _hidden_spike_times(w, inputs, 0.06, dt)
        grid_first = np.array([g[0] if len(g) else np.inf for g in grid])
        fires, grid_fires = np.isfinite(exact_first), np.isfinite(grid_first)
        assert not np.any(grid_fires & ~fires)  # a grid sample above threshold is real
        both = fires & grid_fires
        lag = grid_first[both] - exact_first[both]
        assert np.all(lag >= 0) and np.max(lag) < dt, (dt, lag)
        # A crossing can hide between two grid points (the time-stepped model's known
        # blind spot): then the exact voltage, sampled on the grid, stays just below
        # threshold at every grid point.
        missed = fires & ~grid_fires
        assert np.sum(missed) <= 2, (dt, np.nonzero(missed))
        if np.any(missed):
            v_max = np.max(_psp_voltage(times, w, np.arange(int(round(0.06 / dt))) * dt), axis=0)
            assert np.all((v_max[missed] < 1.0) & (v_max[missed] > 0.95)), (dt, v_max[missed])


def test_repeated_spikes_converge_to_the_exact_lif():
    """A bias above threshold makes repeated spikes with resets. With inputs on the
    grid, every spike is reported late; each reset comes up to dt late (and then the
    synaptic current has decayed further), so the lag grows by about dt per spike and
    shrinks linearly with dt."""
    w = np.array([[0.8, 1.5, 3.0]])
    inputs = so.SpikeTrain.from_lists([[0.005]])
    lif = so.LIF(3, tau_mem=0.02, tau_syn=0.005, bias=1.2)
    exact = so.simulate(lif, 0.1, inputs, jnp.asarray(w), max_spikes=64).spikes.to_lists()
    assert all(len(e) >= 2 for e in exact)
    worst = {}
    for dt in (1e-4, 1e-5):
        grid = _hidden_spike_times(w, inputs, 0.1, dt, bias=1.2)
        worst[dt] = 0.0
        for g, e in zip(grid, exact):
            assert len(g) == len(e)
            k = np.arange(1, len(e) + 1)
            lag = g - e
            assert lag[0] >= 0 and lag[0] < dt  # the first spike: within one step
            assert np.all(lag >= 0) and np.all(lag < 2 * k * dt), (dt, lag)
            worst[dt] = max(worst[dt], float(np.max(lag)))
    assert worst[1e-5] < 0.2 * worst[1e-4], worst  # first-order convergence
    # forward Euler converges too, more slowly
    grid = _hidden_spike_times(w, inputs, 0.1, 1e-5, integrator="euler", bias=1.2)
    for g, e in zip(grid, exact):
        assert len(g) == len(e) and np.max(np.abs(g - e)) < 1e-3


def test_reset_gradient_switch():
    """`detach_reset=False` differentiates through the reset as well: a different
    gradient once a neuron has spiked."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.poisson(0.3, (40, 6)).astype(float))
    key = jax.random.PRNGKey(1)
    nets = [sg.SurrogateNetwork((6, 5, 2), detach_reset=d, beta=5.0,
                                w_init=[(1.0, 0.5), (0.0, 1.0)], key=key) for d in (True, False)]
    f = lambda net: (jnp.sum(net(x)[0]), jnp.sum(net(x)[1][0]))
    out = [eqx.filter_jit(eqx.filter_value_and_grad(f, has_aux=True))(net) for net in nets]
    (v0, spikes), g0 = out[0]
    (v1, _), g1 = out[1]
    assert float(v0) == float(v1)  # same forward pass
    assert float(spikes) > 0  # neurons spike
    assert float(jnp.max(jnp.abs(g0.weights[0] - g1.weights[0]))) > 1e-6


def test_training_on_a_tiny_task_reduces_the_loss():
    # two classes of 4 input neurons firing once, in opposite orders, with jitter
    rng = np.random.default_rng(0)
    y = np.arange(64) % 2
    order = np.where(y[:, None] == 0, np.arange(4), 3 - np.arange(4))
    times = 0.002 + 0.007 * order + rng.uniform(0, 0.002, (64, 4))
    batch = so.SpikeTrain(jnp.sort(jnp.asarray(times), axis=1),
                          jnp.asarray(np.argsort(times, axis=1), jnp.int32), 4)
    xb = sg.bin_spikes(batch, 1e-3, 40)
    y = jnp.asarray(y, jnp.int32)
    net = sg.SurrogateNetwork((4, 20, 2), neuron=sg.TimeSteppedLIF(dt=1e-3), beta=10.0,
                              w_init=[(0.6, 0.4), (0.0, 1.0)], key=jax.random.PRNGKey(0))
    opt = optax.adam(5e-2)
    state = opt.init(net)
    reg = dict(lower=0.1, lower_weight=1.0, upper=2.0, upper_weight=0.1)

    @eqx.filter_jit
    def step(net, state):
        (loss, stats), g = eqx.filter_value_and_grad(sg.surrogate_loss, has_aux=True)(
            net, xb, y, **reg
        )
        # (Optax's Adam mixes its int32 step count with float parameters: standard
        # promotion under the tests' strict promotion)
        with jax.numpy_dtype_promotion("standard"):
            u, state = opt.update(g, state, net)
        return eqx.apply_updates(net, u), state, loss, stats

    losses = []
    for _ in range(40):
        net, state, loss, stats = step(net, state)
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0], losses
    assert float(sg.surrogate_loss(net, xb, y)[1]["accuracy"]) >= 0.9


def test_regularisers_push_activity_into_the_bounds():
    """The lower bound's gradient raises the input weights of silent neurons; the upper
    bound's lowers the weights of a population that fires too much (differentiated
    through the surrogate)."""
    x = jnp.zeros((4, 30, 3)).at[:, 2, :].set(1.0)
    labels = jnp.zeros(4, jnp.int32)

    @eqx.filter_jit
    def grad_and_counts(net, reg):
        g = eqx.filter_grad(lambda n: sg.surrogate_loss(n, x, labels, **reg)[0])(net)
        return g.weights[0], jnp.sum(net(x[0])[1][0], axis=0)

    off = dict(lower=jnp.asarray(0.0), lower_weight=jnp.asarray(0.0),
               upper=jnp.asarray(jnp.inf), upper_weight=jnp.asarray(0.0))

    def reg_grad(w_mean, **reg):
        net = sg.SurrogateNetwork((3, 5, 2), beta=1.0, w_init=[(w_mean, 0.0), (0.0, 1.0)],
                                  key=jax.random.PRNGKey(0))
        g0, counts = grad_and_counts(net, off)
        g1, _ = grad_and_counts(net, dict(off, **{k: jnp.asarray(v) for k, v in reg.items()}))
        return g1 - g0, counts

    g, counts = reg_grad(0.0, lower=1.0, lower_weight=1.0)
    assert float(jnp.max(counts)) == 0  # silent
    assert float(jnp.max(g)) < 0.0  # gradient descent raises every input weight
    g, counts = reg_grad(20.0, upper=1.0, upper_weight=1.0)
    assert float(jnp.min(counts)) > 1  # above the bound
    assert float(jnp.min(g)) > 0.0  # gradient descent lowers every input weight


# ------------------------------------------------------------------- the example
@pytest.fixture(scope="module")
def example(load_example):
    return load_example("zenke_vogels").run(fast=True, log=lambda *_: None)


@pytest.mark.slow  # (the example's training runs: about 40 s)
def test_example_fast_mode(example):
    assert "exact" not in example["yinyang"]  # fast mode: exact side on Randman only
    for task, side in (("randman", "exact"), ("randman", "surrogate"), ("yinyang", "surrogate")):
        r = example[task][side]
        assert 0.0 <= r["test_acc"] <= 1.0
        assert r["hidden_spikes_per_sample"] > 0
        assert r["time_per_epoch_s"] > 0 and math.isfinite(r["time_per_epoch_s"])
        loss = r["history"]["train_loss"]
        assert all(math.isfinite(v) for v in loss)
        if task == "randman":  # both sides learn
            assert loss[-1] < loss[0], (side, loss)
    # exact hidden spikes are capped by the capacity per neuron
    exact = example["randman"]["exact"]
    assert "error" not in exact["history"]
    hidden = example["sizes"]["randman"]["hidden"]
    assert exact["hidden_spikes_per_sample"] <= exact["hidden_spike_capacity_per_neuron"] * hidden
    sweep = example["beta_sweep"]["superspike"]
    assert set(sweep) == {"10", "100"}
    # the surrogate learns Randman (3 classes, chance 1/3) in three tiny epochs
    assert max(r["test_acc"] for r in sweep.values()) > 0.4

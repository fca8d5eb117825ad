"""Random smooth manifolds ("Randman", after Zenke and Vogels 2021), generated
procedurally."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ._encoding import _encode_with_bias

# Number of reference points used to normalise a map with a manifold of dimension > 1
# (a 1-d manifold uses a regular grid).
_NUM_REFERENCE = 16384
_GRID_1D = 4097


def _check_int(name: str, what: str, value, minimum: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < minimum
    ):
        raise ValueError(
            f"{name}: `{what}` must be an int >= {minimum}, got {value!r}."
        )
    return int(value)


def _eval_maps(u, amp, freq, phase):
    """Evaluate the maps of all classes at intrinsic points.

    `u`: (classes, points, dim); `amp`, `freq`, `phase`: (classes, outputs, dim,
    components). Returns (classes, points, outputs).
    """
    out = np.zeros(u.shape[:2] + amp.shape[1:2])
    for d in range(u.shape[-1]):  # the maps are sums over the intrinsic dimensions
        # arg[c, p, o, k] = 2 pi (freq * u_d + phase)
        arg = 2 * np.pi * (
            freq[:, None, :, d] * u[:, :, None, d, None] + phase[:, None, :, d]
        )
        out += np.sum(amp[:, None, :, d] * np.sin(arg), axis=-1)
    return out


def randman(
    num_classes: int = 10,
    num_inputs: int = 20,
    manifold_dim: int = 1,
    alpha: float = 2.0,
    samples_per_class: int = 1000,
    seed: int = 0,
    *,
    num_components: int = 3,
    sample_seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Random-manifold classification data (the idea of "Randman", Zenke and Vogels
    2021; this is an independent implementation).

    Every class `c` is a random smooth map `f_c` from intrinsic coordinates
    `u` in `[0, 1]^manifold_dim` to `num_inputs` outputs,

    $$f_{c,j}(u) = \\sum_{d=1}^{D}\\sum_{k=1}^{K} a_{jdk}\\, k^{-\\alpha}
    \\sin\\bigl(2\\pi (k\\, b_{jdk}\\, u_d + \\varphi_{jdk})\\bigr),$$

    with `a`, `b`, `phi` drawn uniformly from `[0, 1)` and `K = num_components`: a
    sum of random Fourier components whose amplitudes decay as `k^-alpha` (larger
    `alpha`: smoother manifolds). Each output of each map is then normalised to
    `[0, 1]` by its minimum and maximum over a dense reference set of the intrinsic
    space (a regular grid of 4097 points for a 1-d manifold, 16384 uniform points
    otherwise), clipping the rare sample that falls outside. Samples are drawn
    uniformly in intrinsic coordinates; the features are the map's outputs.

    The maps depend only on `seed` (and the sizes, `alpha`, `num_components`); the
    sample points depend on `sample_seed`, so e.g. a test set on the same manifolds
    is `randman(..., seed=s, sample_seed=other)`.

    **Arguments:**

    - `num_classes`: number of classes (manifolds).
    - `num_inputs`: embedding dimension (number of features / input neurons).
    - `manifold_dim`: intrinsic dimension of every manifold.
    - `alpha`: smoothness, the decay exponent of the Fourier amplitudes (>= 0).
    - `samples_per_class`: number of samples of each class.
    - `seed`: seed of the maps (`numpy.random.RandomState`).
    - `num_components`: number of Fourier components per output and intrinsic
        dimension.
    - `sample_seed`: seed of the sample points; by default they are drawn from the
        map generator's stream after the maps.

    **Returns:**

    A tuple `(features, labels)`: a `float64` NumPy array of shape
    `(num_classes * samples_per_class, num_inputs)` with entries in `[0, 1]`, and an
    `int64` NumPy array of labels; the samples are shuffled (every class has exactly
    `samples_per_class` of them).
    """
    name = "randman"
    num_classes = _check_int(name, "num_classes", num_classes, 1)
    num_inputs = _check_int(name, "num_inputs", num_inputs, 1)
    manifold_dim = _check_int(name, "manifold_dim", manifold_dim, 1)
    samples_per_class = _check_int(name, "samples_per_class", samples_per_class, 0)
    num_components = _check_int(name, "num_components", num_components, 1)
    alpha = float(alpha)
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(
            f"{name}: `alpha` must be a finite number >= 0, got {alpha!r}."
        )

    rng = np.random.RandomState(seed)
    shape = (num_classes, num_inputs, manifold_dim, num_components)
    k = np.arange(1, num_components + 1, dtype=np.float64)
    amp = rng.rand(*shape) * k**-alpha
    freq = rng.rand(*shape) * k
    phase = rng.rand(*shape)

    if manifold_dim == 1:
        ref = np.broadcast_to(
            np.linspace(0.0, 1.0, _GRID_1D)[None, :, None], (num_classes, _GRID_1D, 1)
        )
    else:
        ref = rng.rand(num_classes, _NUM_REFERENCE, manifold_dim)
    lo, hi = [], []
    for c in range(num_classes):  # one class at a time keeps the memory small
        sl = slice(c, c + 1)
        values = _eval_maps(ref[sl], amp[sl], freq[sl], phase[sl])[0]
        lo.append(values.min(axis=0))
        hi.append(values.max(axis=0))
    lo, hi = np.stack(lo), np.stack(hi)  # (classes, outputs)
    scale = np.where(hi > lo, hi - lo, 1.0)

    srng = rng if sample_seed is None else np.random.RandomState(sample_seed)
    u = srng.rand(num_classes, samples_per_class, manifold_dim)
    features = _eval_maps(u, amp, freq, phase)  # (classes, samples, outputs)
    features = np.clip((features - lo[:, None]) / scale[:, None], 0.0, 1.0)
    features = features.reshape(num_classes * samples_per_class, num_inputs)
    labels = np.repeat(np.arange(num_classes, dtype=np.int64), samples_per_class)
    order = srng.permutation(labels.size)
    return features[order], labels[order]


def randman_spikes(
    t_min: float | int,
    t_max: float | int,
    *,
    num_classes: int = 10,
    num_inputs: int = 20,
    manifold_dim: int = 1,
    alpha: float = 2.0,
    samples_per_class: int = 1000,
    seed: int = 0,
    num_components: int = 3,
    sample_seed: int | None = None,
    invert: bool = False,
    bias_time: float | int | None = None,
    dtype=None,
):
    """Randman data as latency-coded spikes: one spike per input neuron.

    Feature `j` of a sample (in `[0, 1]`, see [`spikeode.data.randman`][]) becomes a
    spike of input neuron `j` at `t_min + value * (t_max - t_min)`.

    **Arguments:**

    - `t_min`, `t_max`: the coding window.
    - `num_classes`, `num_inputs`, `manifold_dim`, `alpha`, `samples_per_class`,
        `seed`, `num_components`, `sample_seed`: as in [`spikeode.data.randman`][].
    - `invert`: if `True`, large values spike early.
    - `bias_time`: if given, an extra input neuron (id `num_inputs`) spikes at this
        time in every sample.
    - `dtype`: floating dtype of the spike times (default: JAX's default float).

    **Returns:**

    A tuple `(spikes, labels)`: a batched [`spikeode.SpikeTrain`][] with `num_inputs`
    input neurons (one more with bias), and the labels as an `int32` JAX array.
    """
    features, labels = randman(
        num_classes,
        num_inputs,
        manifold_dim,
        alpha,
        samples_per_class,
        seed,
        num_components=num_components,
        sample_seed=sample_seed,
    )
    dtype = jnp.result_type(float) if dtype is None else dtype
    spikes = _encode_with_bias(
        features, t_min, t_max, bias_time, invert=invert, dtype=dtype
    )
    return spikes, jnp.asarray(labels, jnp.int32)

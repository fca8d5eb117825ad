"""Mini-batches of a batched `SpikeTrain` and its labels."""

from __future__ import annotations

from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, PRNGKeyArray

from .._spikes import SpikeTrain


def iterate_batches(
    train: SpikeTrain,
    labels: ArrayLike,
    batch_size: int,
    *,
    key: PRNGKeyArray | None = None,
    seed: int | None = None,
    shuffle: bool = True,
    drop_last: bool = False,
) -> Iterator[tuple[SpikeTrain, ArrayLike]]:
    """Iterate once over a data set in mini-batches.

    **Arguments:**

    - `train`: a batched [`spikeode.SpikeTrain`][] (arrays of shape
        `(num_samples, capacity)`).
    - `labels`: array with leading axis `num_samples` (NumPy or JAX; the batches keep
        its type; other sequences are converted to NumPy).
    - `batch_size`: number of samples per batch (>= 1).
    - `key`: a JAX PRNG key for the shuffling order, or
    - `seed`: an int seed for it (`numpy.random.RandomState(seed).permutation`).
        Exactly one of the two is required when `shuffle=True`.
    - `shuffle`: visit the samples in a random order (else in order).
    - `drop_last`: drop the last batch if it is smaller than `batch_size`. Keep all
        batches the same shape under `jax.jit` to avoid a recompilation.

    **Returns:**

    An iterator of `(spikes, labels)` pairs: a batched `SpikeTrain` of at most
    `batch_size` samples (same `num_neurons` and capacity) and the matching labels.
    Argument errors raise `ValueError` immediately, not on the first `next`.
    """
    name = "iterate_batches"
    if train.times.ndim != 2:
        raise ValueError(
            f"{name}: `train` must be a batched SpikeTrain with arrays of shape "
            f"(num_samples, capacity), got shape {train.times.shape}."
        )
    num = train.times.shape[0]
    if not isinstance(labels, (np.ndarray, jax.Array)):
        labels = np.asarray(labels)
    if np.ndim(labels) == 0 or np.shape(labels)[0] != num:
        raise ValueError(
            f"{name}: `labels` must have leading axis {num} (the number of samples), "
            f"got shape {np.shape(labels)}."
        )
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(
            f"{name}: `batch_size` must be an int >= 1, got {batch_size!r}."
        )
    batch_size = int(batch_size)
    if shuffle:
        if (key is None) == (seed is None):
            raise ValueError(
                f"{name}: with shuffle=True pass exactly one of `key` (a JAX PRNG key) "
                "or `seed` (an int)."
            )
        if key is not None:
            order = np.asarray(jax.random.permutation(key, num))
        else:
            order = np.random.RandomState(seed).permutation(num)
    else:
        order = np.arange(num)
    stop = num - num % batch_size if drop_last else num

    def generate():
        # Slice on the host: no per-batch-shape compilation of a gather.
        times = np.asarray(train.times)
        neurons = np.asarray(train.neurons)
        jax_labels = isinstance(labels, jax.Array)
        host_labels = np.asarray(labels) if jax_labels else labels
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            lab = host_labels[idx]
            yield (
                SpikeTrain(
                    jnp.asarray(times[idx]),
                    jnp.asarray(neurons[idx]),
                    train.num_neurons,
                ),
                jnp.asarray(lab) if jax_labels else lab,
            )

    return generate()

"""XOR in spike times."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .._spikes import SpikeTrain
from ._encoding import _check_time, _check_window, add_bias_spike


def xor_spikes(
    t_early: float | int,
    t_late: float | int,
    bias_time: float | int | None = None,
    *,
    dtype=None,
):
    """The four XOR patterns coded in spike times.

    Each of the two inputs spikes once: a bit `1` spikes early (at `t_early`), a bit
    `0` spikes late (at `t_late`), as in SpikeProp (Bohte et al. 2002). The patterns
    come in the order `(0, 0), (0, 1), (1, 0), (1, 1)` (input 0 is the first bit) and
    the label is `bit0 XOR bit1`, i.e. `[0, 1, 1, 0]`.

    **Arguments:**

    - `t_early`, `t_late`: spike times of a `1` and of a `0`; `t_early < t_late`.
    - `bias_time`: if given, a third input neuron (id 2) spikes at this time in every
        pattern.
    - `dtype`: floating dtype of the spike times (default: JAX's default float).

    **Returns:**

    A tuple `(spikes, labels)`: a batched [`spikeode.SpikeTrain`][] of 4 trains with 2
    input neurons (3 with bias), and the labels as an `int32` JAX array of shape
    `(4,)`.

    **Raises:**

    `ValueError` unless `t_early < t_late` are finite, or if `bias_time` is not
    finite.
    """
    _check_window("xor_spikes", t_early, t_late)
    if bias_time is not None:
        _check_time("xor_spikes", "bias_time", bias_time)
    dtype = jnp.result_type(float) if dtype is None else dtype
    bits = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    times = np.where(bits == 1, float(t_early), float(t_late))
    # sort each pattern by time, ties by neuron id
    order = np.argsort(times, axis=-1, kind="stable")
    ids = np.broadcast_to(np.arange(2, dtype=np.int32), times.shape)
    spikes = SpikeTrain(
        jnp.asarray(np.take_along_axis(times, order, axis=-1), dtype),
        jnp.asarray(np.take_along_axis(ids, order, axis=-1), jnp.int32),
        2,
    )
    if bias_time is not None:
        spikes = add_bias_spike(spikes, bias_time)
    labels = jnp.asarray(bits[:, 0] ^ bits[:, 1], jnp.int32)
    return spikes, labels

"""Transmission delays: checks, and input spikes turned into delayed arrivals.

A delay array broadcasts (NumPy rules) against its weight matrix `w[pre, post]`: a
scalar is one delay for every connection, shape `(pre, 1)` one per presynaptic neuron,
shape `(post,)` one per postsynaptic neuron, shape `(pre, post)` one per connection.
An arrival at `t_spike + delay` is a scheduled event like an input spike: its time is
differentiable in the spike time and in the delay.
"""

from __future__ import annotations

import equinox as eqx
import jax.lax as lax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from ._spikes import SpikeTrain


def check_delays(
    delays: ArrayLike, shape: tuple[int, int], name: str, dtype
) -> Float[Array, "..."]:
    """`delays` as an array of `dtype` that broadcasts to `shape`, with a run-time
    check (eager, or inside `jit` via `equinox.error_if`) that every delay is finite
    and `>= 0`. Raises `ValueError` for a shape that does not broadcast."""
    d = jnp.asarray(delays)
    if not jnp.issubdtype(d.dtype, jnp.floating) and not jnp.issubdtype(d.dtype, jnp.integer):
        raise ValueError(f"simulate: `{name}` must be real numbers, got dtype {d.dtype}.")
    try:
        np.broadcast_shapes(d.shape, shape)
        ok = np.broadcast_shapes(d.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"simulate: `{name}` has shape {d.shape}, which does not broadcast to the "
            f"weights' shape {tuple(shape)} (scalar, ({shape[0]}, 1) per presynaptic "
            f"neuron, ({shape[1]},) per postsynaptic neuron, or {tuple(shape)})."
        )
    d = d.astype(dtype)
    return eqx.error_if(
        d,
        jnp.any(~(d >= 0)) | jnp.any(~jnp.isfinite(d)),
        f"simulate: `{name}` must be finite and >= 0 (a NaN, infinite or negative "
        "delay was given).",
    )


def per_presynaptic(delays: Array) -> bool:
    """Whether a checked delay array is the same for all postsynaptic neurons of a
    presynaptic one (a scalar or shape `(pre, 1)`): then a spike's arrivals at all its
    targets coincide."""
    return delays.ndim == 0 or (delays.ndim == 2 and delays.shape[1] == 1)


def delayed_inputs(
    inputs: SpikeTrain, input_delays: Array, n: int, dtype
) -> tuple[Float[Array, " arrivals"], Int[Array, " arrivals"], Int[Array, " arrivals"]]:
    """The input spikes as arrivals, sorted by time: `(times, sources, targets)`,
    where target `n` means every neuron (the delays do not depend on the target) and
    padding has time `+inf`. Arrivals at equal times keep the order of the input train,
    then of the target index. `inputs` must be validated."""
    valid = inputs.valid
    ids = jnp.where(valid, inputs.neurons, 0)
    width = 1 if per_presynaptic(input_delays) else n
    d = jnp.broadcast_to(input_delays, (inputs.num_neurons, width))
    t_in = inputs.times.astype(dtype)
    if d.shape[1] == 1:
        times = jnp.where(valid, t_in + d[ids, 0], jnp.inf)
        sources = inputs.neurons
        targets = jnp.full(times.shape, n, jnp.int32)
    else:
        times = jnp.where(valid[:, None], t_in[:, None] + d[ids], jnp.inf).reshape(-1)
        sources = jnp.repeat(inputs.neurons, n)
        targets = jnp.tile(jnp.arange(n, dtype=jnp.int32), inputs.capacity)
    order = jnp.argsort(lax.stop_gradient(times), stable=True)
    return times[order], sources[order], targets[order]

"""Transmission delays: checks, and input spikes turned into (delayed) arrivals, the
tables of scheduled times the event loops read.

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

from ._segment import _checked_w_in
from ._spikes import SpikeTrain


def check_delays(
    delays: ArrayLike, shape: tuple[int, int] | tuple[int], name: str, dtype
) -> Float[Array, "..."]:
    """`delays` as an array of `dtype` that broadcasts to `shape` (a weight matrix's
    `(pre, post)`, or `Synapses`' `(synapses,)`), with a run-time check (eager, or
    inside `jit` via `equinox.error_if`) that every delay is finite and `>= 0`. Raises
    `ValueError` for a shape that does not broadcast."""
    d = jnp.asarray(delays)
    if not jnp.issubdtype(d.dtype, jnp.floating) and not jnp.issubdtype(d.dtype, jnp.integer):
        raise ValueError(f"simulate: `{name}` must be real numbers, got dtype {d.dtype}.")
    try:
        np.broadcast_shapes(d.shape, shape)
        ok = np.broadcast_shapes(d.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        forms = (
            f" (scalar, ({shape[0]}, 1) per presynaptic neuron, ({shape[1]},) per "
            f"postsynaptic neuron, or {tuple(shape)})" if len(shape) == 2 else ""
        )
        raise ValueError(
            f"simulate: `{name}` has shape {d.shape}, which does not broadcast to the "
            f"weights' shape {tuple(shape)}{forms}."
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


def input_schedule(inputs: SpikeTrain | None, w_in, input_delays, n: int, dtype, t0):
    """The input spikes as the event loops' table of arrivals, each padded with one
    entry that never arrives: `(times, sources, targets, w_in)` with `times` sorted
    (`+inf` padding), `targets[k] == n` meaning every neuron, and `w_in` with an extra
    zero row (the padding's source). Checks the shapes and the train (sorted, none
    before `t0`)."""
    if inputs is None:
        return (jnp.full((1,), jnp.inf, dtype), jnp.zeros((1,), jnp.int32),
                jnp.full((1,), n, jnp.int32), jnp.zeros((1, n), dtype))  # fmt: skip
    if inputs.times.ndim != 1:
        raise ValueError(
            "simulate: `inputs` must be one unbatched SpikeTrain; use jax.vmap "
            f"for batches (got times of shape {inputs.times.shape})."
        )
    w_in = _checked_w_in(inputs, w_in, n)
    inputs = inputs.validate(t0=t0)
    if input_delays is None:
        times, sources = inputs.times.astype(dtype), inputs.neurons
        targets = jnp.full(times.shape, n, jnp.int32)
    else:
        d_in = check_delays(input_delays, (inputs.num_neurons, n), "input_delays", dtype)
        times, sources, targets = delayed_inputs(inputs, d_in, n, dtype)
    pad = lambda x, v: jnp.concatenate([x, jnp.full((1,) + x.shape[1:], v, x.dtype)])
    return (pad(times, jnp.inf), pad(sources, inputs.num_neurons), pad(targets, n),
            pad(w_in.astype(dtype), 0))  # fmt: skip


def save_schedule(save_ts, t0, t1, dtype) -> tuple[int, Array | None, Array]:
    """`(number of save times, the checked times, the times padded with +inf)`."""
    if save_ts is None:
        return 0, None, jnp.full((1,), jnp.inf, dtype)
    save_ts = jnp.asarray(save_ts, dtype)
    if save_ts.ndim != 1:
        raise ValueError(f"simulate: `save_ts` must be 1-d, got shape {save_ts.shape}.")
    save_ts = eqx.error_if(
        save_ts,
        jnp.any(save_ts[1:] < save_ts[:-1]) | jnp.any(save_ts < t0) | jnp.any(save_ts > t1),
        "simulate: `save_ts` must be sorted and lie in [t0, t1].",
    )
    return save_ts.shape[0], save_ts, jnp.concatenate([save_ts, jnp.full((1,), jnp.inf, dtype)])

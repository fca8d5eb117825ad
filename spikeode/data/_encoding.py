"""Encoders from real values to spike trains: latency coding and bias spikes."""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike

from .._spikes import SpikeTrain


def _is_traced(*xs) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in xs)


def _check_window(name: str, t_min, t_max) -> None:
    """Concrete checks on `t_min`, `t_max` (skipped for traced values)."""
    if _is_traced(t_min, t_max):
        return
    lo = np.asarray(t_min, dtype=np.float64)
    hi = np.asarray(t_max, dtype=np.float64)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ValueError(
            f"{name}: `t_min` and `t_max` must be finite numbers, got t_min={t_min!r}, "
            f"t_max={t_max!r}."
        )
    if np.any(hi <= lo):
        raise ValueError(
            f"{name}: need t_max > t_min, got t_min={t_min!r}, t_max={t_max!r}."
        )


def _check_time(name: str, what: str, t) -> None:
    if _is_traced(t):
        return
    if not np.all(np.isfinite(np.asarray(t, dtype=np.float64))):
        raise ValueError(f"{name}: `{what}` must be a finite number, got {t!r}.")


def latency_encode(
    values: ArrayLike,
    t_min: ArrayLike,
    t_max: ArrayLike,
    *,
    invert: bool = False,
    threshold: ArrayLike | None = None,
    dtype=None,
) -> SpikeTrain:
    """Latency code: one spike per feature, at a time linear in the feature's value.

    Feature `i` with value `v` spikes at `t_min + v * (t_max - t_min)`, or at
    `t_max - v * (t_max - t_min)` when `invert=True` (large values spike early).
    Features whose value lies below `threshold` emit no spike (their slot is
    padding). Feature `i` becomes input neuron `i`; within each sample the events are
    sorted by time (ties by neuron id), as `SpikeTrain` requires.

    The encoding is differentiable with respect to `values`, `t_min` and `t_max` and
    works under `jax.jit` and `jax.vmap`.

    **Arguments:**

    - `values`: array of shape `(*batch, features)` with entries in `[0, 1]`, e.g.
        `(batch, features)` or `(features,)`.
    - `t_min`, `t_max`: the coding window, `t_max > t_min` (scalars, or arrays that
        broadcast against `values`).
    - `invert`: if `True`, map `1` to `t_min` and `0` to `t_max`.
    - `threshold`: if given, features with `value < threshold` do not spike.
    - `dtype`: floating dtype of the times (default: the dtype of `values` if it is
        floating, else JAX's default float).

    **Returns:**

    A [`spikeode.SpikeTrain`][] with `num_neurons = features` and capacity
    `features`, whose arrays have the leading shape `batch` of `values` (a batch of
    trains for 2-d `values`, a single train for 1-d `values`).

    **Raises:**

    `ValueError` if `values` contain NaN or lie outside `[0, 1]`, if
    `t_max <= t_min`, if the window is not finite or if `threshold` is NaN. Under
    `jax.jit` the checks on traced values are made with `equinox.error_if` instead
    (an `equinox.EquinoxRuntimeError` at run time).
    """
    name = "latency_encode"
    if dtype is None:
        values = jnp.asarray(values)
        if not jnp.issubdtype(values.dtype, jnp.floating):
            values = values.astype(jnp.result_type(float))
    else:
        values = jnp.asarray(values, dtype)
    if values.ndim == 0 or values.shape[-1] == 0:
        raise ValueError(
            f"{name}: `values` must have shape (*batch, features) with at least one "
            f"feature, got shape {values.shape}."
        )
    _check_window(name, t_min, t_max)
    if threshold is not None and not _is_traced(threshold):
        if np.any(np.isnan(np.asarray(threshold, dtype=np.float64))):
            raise ValueError(f"{name}: `threshold` is NaN.")
    if _is_traced(values):
        values = eqx.error_if(
            values, jnp.any(jnp.isnan(values)), f"{name}: `values` contain NaN."
        )
        values = eqx.error_if(
            values,
            jnp.any((values < 0) | (values > 1)),
            f"{name}: `values` must lie in [0, 1].",
        )
    else:
        v = np.asarray(values)
        if np.any(np.isnan(v)):
            raise ValueError(f"{name}: `values` contain NaN.")
        if np.any((v < 0) | (v > 1)):
            raise ValueError(
                f"{name}: `values` must lie in [0, 1], got values in "
                f"[{float(v.min())!r}, {float(v.max())!r}]; rescale them first."
            )
    if _is_traced(t_min, t_max):
        t_max = eqx.error_if(
            jnp.asarray(t_max),
            jnp.any(jnp.asarray(t_max) <= jnp.asarray(t_min)),
            f"{name}: need t_max > t_min.",
        )

    return _latency_core(values, t_min, t_max, threshold, invert=bool(invert))


@functools.partial(jax.jit, static_argnames=("invert",))
def _latency_core(values, t_min, t_max, threshold, *, invert):
    # One compiled program per shape: much cheaper than op-by-op dispatch when called
    # outside `jit`.
    dt = values.dtype
    t_min = jnp.asarray(t_min, dt)
    t_max = jnp.asarray(t_max, dt)
    span = t_max - t_min
    times = t_max - values * span if invert else t_min + values * span
    times = jnp.broadcast_to(times, values.shape)
    n = values.shape[-1]
    if threshold is None:
        spike = jnp.ones(values.shape, bool)
    else:
        spike = values >= jnp.asarray(threshold, dt)
    ids = jnp.where(spike, jnp.arange(n, dtype=jnp.int32), n).astype(jnp.int32)
    times = jnp.where(spike, times, jnp.inf)
    order = jnp.argsort(times, axis=-1, stable=True)
    return SpikeTrain(
        jnp.take_along_axis(times, order, axis=-1),
        jnp.take_along_axis(ids, order, axis=-1),
        n,
    )


def add_bias_spike(train: SpikeTrain, time: ArrayLike) -> SpikeTrain:
    """Append a bias input: one extra neuron that spikes once at `time` in every
    sample.

    The new neuron gets the id `train.num_neurons`; the padding id moves to
    `train.num_neurons + 1`, and the capacity grows by one. The events stay sorted by
    time (at equal times the bias spike comes after the other spikes, i.e. ties are
    still ordered by neuron id). Differentiable with respect to `time` and works
    under `jax.jit`.

    **Arguments:**

    - `train`: a [`spikeode.SpikeTrain`][], single or batched.
    - `time`: the bias spike time; a scalar, or an array that broadcasts to the
        batch shape of `train` (one time per sample).

    **Returns:**

    A `SpikeTrain` with `num_neurons = train.num_neurons + 1` and the same batch
    shape.

    **Raises:**

    `ValueError` if `time` is not finite (checked when it is concrete).
    """
    _check_time("add_bias_spike", "time", time)
    batch = train.times.shape[:-1]
    t = jnp.asarray(time, train.times.dtype)
    try:
        t = jnp.broadcast_to(t, batch)
    except ValueError:
        raise ValueError(
            f"add_bias_spike: `time` of shape {t.shape} does not broadcast to the "
            f"batch shape {batch} of the train."
        ) from None
    return _bias_core(train, t)


@jax.jit
def _bias_core(train: SpikeTrain, t) -> SpikeTrain:
    n = train.num_neurons
    batch = train.times.shape[:-1]
    ids = jnp.where(train.neurons >= n, n + 1, train.neurons).astype(jnp.int32)
    times = jnp.concatenate([train.times, t[..., None]], axis=-1)
    ids = jnp.concatenate([ids, jnp.full(batch + (1,), n, jnp.int32)], axis=-1)
    return SpikeTrain(times, ids, n + 1).sorted()


def _encode_with_bias(
    values, t_min, t_max, bias_time, *, invert=False, threshold=None, dtype=None
) -> SpikeTrain:
    train = latency_encode(
        values, t_min, t_max, invert=invert, threshold=threshold, dtype=dtype
    )
    if bias_time is not None:
        train = add_bias_spike(train, bias_time)
    return train


def _check_split(name: str, split: str, allowed) -> None:
    if split not in allowed:
        raise ValueError(
            f"{name}: unknown split {split!r}; expected one of "
            f"{', '.join(repr(s) for s in allowed)}."
        )


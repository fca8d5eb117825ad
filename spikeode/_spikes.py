"""`SpikeTrain`: a padded, fixed-capacity list of spike events."""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Real, ScalarLike

from ._typing import RealScalarLike

# Spike times as NumPy reads them: an array (or a number), or a sequence of numbers;
# checked by the constructors themselves (dimensions, NaN, infinities).
TimesLike = Real[ArrayLike, "..."] | Sequence[ScalarLike]


class SpikeTrain(eqx.Module):
    """Spike events of a population of `num_neurons` neurons, as a padded event list.

    The events are stored in time order in two arrays of a fixed length `capacity`:
    `times` (padded with `+inf`) and `neurons` (padded with the out-of-range id
    `num_neurons`). Fixed shapes make a `SpikeTrain` a pytree that `jax.jit` and
    `jax.vmap` accept; a batch of trains is a `SpikeTrain` whose arrays have a leading
    batch axis. The times are differentiable leaves.

    Build one with [`spikeode.SpikeTrain.from_lists`][] or
    [`spikeode.SpikeTrain.from_per_neuron`][] (which sort and validate), or with the
    constructor, which checks only shapes: call `.validate()` to check the contents
    (`simulate` validates its inputs).

    **Arguments:**

    - `times`: spike times, shape `(capacity,)`, sorted, padded with `+inf`.
    - `neurons`: neuron ids in `[0, num_neurons)`, shape `(capacity,)`, padded with
        `num_neurons`.
    - `num_neurons`: size of the population (static).
    """

    times: Float[Array, "*batch capacity"]
    # (of the same shape as `times`: `__check_init__` checks it, with an error that
    # names both shapes)
    neurons: Int[Array, "..."]
    num_neurons: int = eqx.field(static=True)

    def __check_init__(self):
        if jnp.shape(self.times) != jnp.shape(self.neurons):
            raise ValueError(
                f"SpikeTrain: `times` has shape {jnp.shape(self.times)} but `neurons` "
                f"has shape {jnp.shape(self.neurons)}; expected equal shapes."
            )
        if not isinstance(self.num_neurons, int) or self.num_neurons < 1:
            raise ValueError(
                f"SpikeTrain: `num_neurons` must be a positive int, got "
                f"{self.num_neurons!r}."
            )

    # ------------------------------------------------------------------ properties
    @property
    def capacity(self) -> int:
        """Number of event slots (the last axis of `times`)."""
        return self.times.shape[-1]

    @property
    def valid(self) -> Bool[Array, "*batch capacity"]:
        """Mask of the slots that hold a spike (as opposed to padding)."""
        return self.neurons < self.num_neurons

    @property
    def num_spikes(self) -> Int[Array, "*batch"]:
        """Number of spikes held."""
        return jnp.sum(self.valid, axis=-1)

    # ---------------------------------------------------------------- constructors
    @classmethod
    def empty(cls, num_neurons: int, capacity: int, dtype=None) -> SpikeTrain:
        """A train with no spikes."""
        dtype = jnp.result_type(float) if dtype is None else dtype
        return cls(
            jnp.full((capacity,), jnp.inf, dtype),
            jnp.full((capacity,), num_neurons, jnp.int32),
            num_neurons,
        )

    @classmethod
    def from_lists(
        cls,
        spike_times: Sequence[TimesLike],
        capacity: int | None = None,
        dtype=None,
    ) -> SpikeTrain:
        """Build a train from one sequence of spike times per neuron.

        **Arguments:**

        - `spike_times`: `spike_times[i]` lists the spike times of neuron `i` (any
            order; they are sorted globally).
        - `capacity`: number of slots; defaults to the number of spikes.
        - `dtype`: floating dtype of the times (default: JAX's default float).

        **Returns:** a validated `SpikeTrain`. Raises `ValueError` for NaN or infinite
        times or when the spikes do not fit into `capacity`.
        """
        num_neurons = len(spike_times)
        if num_neurons == 0:
            raise ValueError("SpikeTrain.from_lists: need at least one neuron.")
        times, ids = [], []
        for i, ts in enumerate(spike_times):
            ts = np.asarray(ts, dtype=np.float64).reshape(-1)
            times.append(ts)
            ids.append(np.full(ts.shape, i, dtype=np.int32))
        return cls._from_events(
            np.concatenate(times), np.concatenate(ids), num_neurons, capacity, dtype
        )

    @classmethod
    def from_per_neuron(
        cls,
        times: TimesLike | Sequence[Sequence[ScalarLike]],
        capacity: int | None = None,
        dtype=None,
    ) -> SpikeTrain:
        """Build a train from an array `times[neuron, k]` padded with `+inf`.

        A 1-d array is read as one spike (or `+inf` for none) per neuron, e.g. a
        latency code.
        """
        times = np.asarray(times, dtype=np.float64)
        if times.ndim == 1:
            times = times[:, None]
        if times.ndim != 2:
            raise ValueError(
                f"SpikeTrain.from_per_neuron: expected shape (neurons,) or "
                f"(neurons, spikes), got {times.shape}."
            )
        if np.any(np.isnan(times)):
            raise ValueError("SpikeTrain.from_per_neuron: spike times contain NaN.")
        ids = np.broadcast_to(np.arange(times.shape[0])[:, None], times.shape)
        keep = np.isfinite(times)
        return cls._from_events(
            times[keep], ids[keep].astype(np.int32), times.shape[0], capacity, dtype
        )

    @classmethod
    def _from_events(cls, times, ids, num_neurons, capacity, dtype):
        if np.any(~np.isfinite(times)):
            raise ValueError(
                "SpikeTrain: spike times must be finite numbers; got NaN or inf."
            )
        n = times.shape[0]
        capacity = n if capacity is None else int(capacity)
        if n > capacity:
            raise ValueError(
                f"SpikeTrain: {n} spikes do not fit into capacity {capacity}; "
                "raise `capacity`."
            )
        order = np.lexsort((ids, times))
        pad = capacity - n
        dtype = jnp.result_type(float) if dtype is None else dtype
        t = np.concatenate([times[order], np.full(pad, np.inf)])
        i = np.concatenate([ids[order], np.full(pad, num_neurons, dtype=np.int32)])
        return cls(jnp.asarray(t, dtype), jnp.asarray(i, jnp.int32), num_neurons)

    # ----------------------------------------------------------------- validation
    def validate(self, t0: RealScalarLike | None = None) -> SpikeTrain:
        """Check the train's invariants; usable inside `jit` (raises via
        `equinox.error_if`).

        Checks: no NaN times; ids in `[0, num_neurons]`; valid spikes have finite
        times; times sorted (non-decreasing) along the last axis; padding only at the
        end (padding has +inf times, so sorted times put it last); and, when `t0` is given,
        no spike before `t0`.

        **Returns:** the train itself (so that the check is part of the data flow).
        """
        t, i = self.times, self.neurons
        valid = self.valid
        times = eqx.error_if(
            t, jnp.any(jnp.isnan(t)), "SpikeTrain: spike times contain NaN."
        )
        times = eqx.error_if(
            times,
            jnp.any((i < 0) | (i > self.num_neurons)),
            f"SpikeTrain: neuron ids must lie in [0, {self.num_neurons}) "
            f"({self.num_neurons} marks padding).",
        )
        times = eqx.error_if(
            times,
            jnp.any(~valid & jnp.isfinite(t)),
            f"SpikeTrain: a slot with the padding id {self.num_neurons} has a finite "
            f"time; neuron ids must lie in [0, {self.num_neurons}).",
        )
        times = eqx.error_if(
            times,
            jnp.any(valid & ~jnp.isfinite(t)),
            "SpikeTrain: a spike has an infinite time; use the padding id for "
            "empty slots.",
        )
        if t.shape[-1] > 1:
            unsorted = jnp.any(t[..., 1:] < t[..., :-1])
            times = eqx.error_if(
                times,
                unsorted,
                "SpikeTrain: spike times are not sorted; call `.sorted()` first.",
            )
        if t0 is not None:
            times = eqx.error_if(
                times,
                jnp.any(valid & (t < t0)),
                f"SpikeTrain: spike times must not precede the start time {t0}.",
            )
        return SpikeTrain(times, i, self.num_neurons)

    def sorted(self) -> SpikeTrain:
        """The same events sorted by time (padding last); differentiable."""
        key = jnp.where(self.valid, self.times, jnp.inf)
        order = jnp.argsort(key, axis=-1, stable=True)
        return SpikeTrain(
            jnp.take_along_axis(self.times, order, axis=-1),
            jnp.take_along_axis(self.neurons, order, axis=-1),
            self.num_neurons,
        )

    def select(self, neurons: Sequence[int]) -> SpikeTrain:
        """The spikes of the given neurons only, renumbered `0, 1, ...` in the order
        given (same capacity; differentiable in the times), e.g. one neuron's spikes
        as the data of a single-neuron fit.

        **Raises:** `ValueError` for ids outside `[0, num_neurons)` or repeated ids.
        """
        ids = [int(i) for i in neurons]
        if len(set(ids)) != len(ids) or any(not 0 <= i < self.num_neurons for i in ids):
            raise ValueError(
                f"SpikeTrain.select: `neurons` must be distinct ids in "
                f"[0, {self.num_neurons}); got {ids}."
            )
        new = jnp.full_like(self.neurons, len(ids))
        for k, i in enumerate(ids):
            new = jnp.where(self.neurons == i, k, new)
        kept = new < len(ids)
        times = jnp.where(kept, self.times, jnp.inf)
        return SpikeTrain(times, new, len(ids)).sorted()

    # ---------------------------------------------------------------- conversions
    def counts(self) -> Int[Array, "*batch num_neurons"]:
        """Number of spikes per neuron."""
        return self._per_neuron_sum(self.valid.astype(jnp.int32))

    def first_spike_times(self) -> Float[Array, "*batch num_neurons"]:
        """First spike time of each neuron (`+inf` for silent neurons); differentiable."""

        def one(times, ids):
            out = jnp.full((self.num_neurons + 1,), jnp.inf, times.dtype)
            return out.at[ids].min(times)[: self.num_neurons]

        return _batched(one, self.times, self.neurons)

    def to_per_neuron(self, max_spikes: int) -> Float[Array, "*batch num_neurons max_spikes"]:
        """Spike times as an array `[neuron, k]` (k-th spike of each neuron), padded
        with `+inf`. Raises (via `equinox.error_if`) if a neuron has more than
        `max_spikes` spikes.
        """

        def one(times, ids):
            n = self.num_neurons
            onehot = ids[:, None] == jnp.arange(n + 1, dtype=ids.dtype)[None, :]
            # rank of each event among the events of its neuron
            count = jnp.cumsum(onehot, axis=0)
            rank = jnp.sum(count * onehot.astype(count.dtype), axis=1) - 1
            too_many = jnp.any((ids < n) & (rank >= max_spikes))
            times = eqx.error_if(
                times,
                too_many,
                f"SpikeTrain.to_per_neuron: a neuron has more than {max_spikes} "
                "spikes; raise `max_spikes`.",
            )
            out = jnp.full((n + 1, max_spikes + 1), jnp.inf, times.dtype)
            rank = jnp.where(ids < n, jnp.minimum(rank, max_spikes), max_spikes)
            return out.at[ids, rank].set(times)[:n, :max_spikes]

        return _batched(one, self.times, self.neurons)

    def to_raster(
        self, t0: RealScalarLike, t1: RealScalarLike, num_bins: int
    ) -> Int[Array, "*batch num_bins num_neurons"]:
        """Dense raster: spike counts in `num_bins` equal bins of `[t0, t1)`."""
        dt = (t1 - t0) / num_bins
        return self._bin_counts(jnp.floor((self.times - t0) / dt), num_bins, jnp.int32)

    def _bin_counts(self, bins, num_bins: int, dtype) -> Array:
        """Spike counts `[bin, neuron]` from each event's bin index (same shape as
        `times`); padding and events whose bin lies outside `[0, num_bins)` are not
        counted."""

        def one(b, ids):
            inside = (b >= 0) & (b < num_bins) & (ids < self.num_neurons)
            b = jnp.where(inside, b, num_bins).astype(jnp.int32)
            raster = jnp.zeros((num_bins + 1, self.num_neurons + 1), dtype)
            return raster.at[b, ids].add(1)[:num_bins, : self.num_neurons]

        return _batched(one, bins, self.neurons)

    @classmethod
    def from_raster(
        cls,
        raster: Real[ArrayLike, "..."] | Bool[ArrayLike, "..."] | Sequence[Sequence[ScalarLike]],
        t0: float | int,
        dt: float | int,
        capacity: int | None = None,
    ) -> SpikeTrain:
        """Inverse of `to_raster` for 0/1 rasters `[bin, neuron]`: one spike at the
        start of every non-zero bin."""
        raster = np.asarray(raster)
        if raster.ndim != 2:
            raise ValueError(
                f"SpikeTrain.from_raster: expected a (bins, neurons) array, got "
                f"shape {raster.shape}."
            )
        if np.any(raster < 0) or np.any(raster > 1):
            raise ValueError("SpikeTrain.from_raster: raster entries must be 0 or 1.")
        b, i = np.nonzero(raster)
        return cls._from_events(
            t0 + b * float(dt), i.astype(np.int32), raster.shape[1], capacity, None
        )

    def to_lists(self) -> list[np.ndarray]:
        """Spike times per neuron as NumPy arrays (outside `jit`, unbatched only)."""
        if self.times.ndim != 1:
            raise ValueError("SpikeTrain.to_lists: only for an unbatched train.")
        t = np.asarray(self.times)
        i = np.asarray(self.neurons)
        return [t[i == k] for k in range(self.num_neurons)]

    def _per_neuron_sum(self, values):
        def one(v, ids):
            return jnp.zeros((self.num_neurons + 1,), v.dtype).at[ids].add(v)[
                : self.num_neurons
            ]

        return _batched(one, values, self.neurons)


def _batched(fn, *arrays):
    """Apply a function of 1-d event arrays over any leading batch axes."""
    batch = arrays[0].ndim - 1
    for _ in range(batch):
        fn = jax.vmap(fn)
    return fn(*arrays)

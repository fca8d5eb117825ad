"""`Synapses`: sparse connectivity with O(synapses) memory, and seeded builders."""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, Real


class Synapses(eqx.Module):
    """Connections from a population of `num_pre` neurons to one of `num_post`, one row
    per synapse: `pre[s] -> post[s]` with weight `weight[s]` and transmission delay
    `delay[s]`. Memory grows with the number of synapses, not `num_pre * num_post`.

    The rows are stored sorted by presynaptic neuron (stable), so the synapses of
    neuron `i` are the slice `offsets[i]:offsets[i + 1]`; `max_fan_out` is the largest
    such slice. The indices are fixed at construction (they must be concrete); the
    weights and delays are differentiable leaves. The same pair may appear more than
    once (e.g. with different delays).

    **Arguments:**

    - `pre`, `post`: integer arrays of shape `(synapses,)`.
    - `weight`: shape `(synapses,)`, or a scalar for every synapse.
    - `delay`: shape `(synapses,)`, or a scalar (default 0); finite and `>= 0`.
    - `num_pre`, `num_post`: population sizes (`num_post` defaults to `num_pre`).
    """

    pre: Int[Array, " synapses"]
    post: Int[Array, " synapses"]
    weight: Float[Array, " synapses"]
    delay: Float[Array, " synapses"]
    offsets: Int[Array, " num_pre_plus_1"]
    num_pre: int = eqx.field(static=True)
    num_post: int = eqx.field(static=True)
    max_fan_out: int = eqx.field(static=True)
    unique_pairs: bool = eqx.field(static=True)

    def __init__(
        self,
        # (shapes and index ranges checked below, with errors that name them)
        pre: Int[ArrayLike, "..."] | Sequence[int],
        post: Int[ArrayLike, "..."] | Sequence[int],
        weight: Real[ArrayLike, "..."],
        delay: Real[ArrayLike, "..."] = 0.0,
        *,
        num_pre: int,
        num_post: int | None = None,
    ):
        try:
            pre_np, post_np = np.asarray(pre), np.asarray(post)
        except Exception as e:  # a tracer
            raise ValueError(
                "Synapses: `pre` and `post` must be concrete integer arrays (build the "
                "connectivity outside `jax.jit`); the weights and delays may be traced."
            ) from e
        num_post = num_pre if num_post is None else num_post
        if pre_np.ndim != 1 or pre_np.shape != post_np.shape:
            raise ValueError(
                f"Synapses: `pre` and `post` must be 1-d of equal length, got shapes "
                f"{pre_np.shape} and {post_np.shape}."
            )
        if not (
            np.issubdtype(pre_np.dtype, np.integer) and np.issubdtype(post_np.dtype, np.integer)
        ):
            raise ValueError("Synapses: `pre` and `post` must be integer arrays.")
        for name, idx, size in (("pre", pre_np, num_pre), ("post", post_np, num_post)):
            if idx.size and (idx.min() < 0 or idx.max() >= size):
                raise ValueError(
                    f"Synapses: `{name}` indices must lie in [0, {size}); found "
                    f"[{idx.min()}, {idx.max()}]."
                )
        s = pre_np.shape[0]
        weight = jnp.asarray(weight)
        delay = jnp.asarray(delay)
        for name, x in (("weight", weight), ("delay", delay)):
            if x.shape not in ((), (s,)):
                raise ValueError(
                    f"Synapses: `{name}` has shape {x.shape}; expected () or ({s},)."
                )
        dtype = jnp.result_type(weight, delay, float)
        order = np.argsort(pre_np, kind="stable")
        self.pre = jnp.asarray(pre_np[order], jnp.int32)
        self.post = jnp.asarray(post_np[order], jnp.int32)
        self.weight = jnp.broadcast_to(weight.astype(dtype), (s,))[order]
        self.delay = jnp.broadcast_to(delay.astype(dtype), (s,))[order]
        counts = np.bincount(pre_np, minlength=num_pre)
        self.offsets = jnp.asarray(np.concatenate([[0], np.cumsum(counts)]), jnp.int32)
        self.num_pre = int(num_pre)
        self.num_post = int(num_post)
        self.max_fan_out = int(counts.max()) if s else 0
        key = pre_np.astype(np.int64) * num_post + post_np
        self.unique_pairs = bool(np.unique(key).size == key.size)

    @property
    def num_synapses(self) -> int:
        """Number of synapses (the length of `pre`, `post`, `weight` and `delay`)."""
        return self.pre.shape[0]

    @classmethod
    def from_dense(
        cls,
        weights: Real[ArrayLike, "..."],
        delays: Real[ArrayLike, "..."] = 0.0,
        *,
        mask: ArrayLike | None = None,
    ) -> Synapses:
        """The synapses of a dense weight matrix `weights[pre, post]` (every entry, or
        those where the concrete boolean `mask` is true), with `delays` broadcast to
        its shape. Differentiable in `weights` and `delays`."""
        w = jnp.asarray(weights)
        if w.ndim != 2:
            raise ValueError(f"Synapses.from_dense: `weights` must be 2-d, got {w.shape}.")
        d = jnp.broadcast_to(jnp.asarray(delays), w.shape)
        keep = np.ones(w.shape, bool) if mask is None else np.asarray(mask, bool)
        pre, post = np.nonzero(keep)
        return cls(pre, post, w[pre, post], d[pre, post], num_pre=w.shape[0], num_post=w.shape[1])

    def presynaptic_delays(self) -> np.ndarray | None:
        """One delay per presynaptic neuron (shape `(num_pre,)`; 0 for a neuron
        without synapses) if the delays are known now (concrete, not traced) and
        depend only on the presynaptic neuron; else `None`."""
        if isinstance(self.delay, jax.core.Tracer) or isinstance(self.pre, jax.core.Tracer):
            return None
        delay, pre = np.asarray(self.delay), np.asarray(self.pre)
        first = np.zeros(self.num_pre, delay.dtype)
        first[pre[::-1]] = delay[::-1]  # (each neuron's first synapse's delay)
        return first if np.all(delay == first[pre]) else None

    def to_dense(self) -> tuple[Float[Array, "pre post"], Float[Array, "pre post"]]:
        """`(weights, delays)` as dense matrices (absent pairs: weight 0, delay 0).
        Raises `ValueError` if a pair occurs twice (a dense matrix cannot hold it).
        Works inside `jit` too (the check was made at construction)."""
        if not self.unique_pairs:
            raise ValueError(
                "Synapses.to_dense: some (pre, post) pair occurs more than once; use the "
                "windowed loop, which takes the synapses as they are."
            )
        shape = (self.num_pre, self.num_post)
        w = jnp.zeros(shape, self.weight.dtype).at[self.pre, self.post].set(self.weight)
        d = jnp.zeros(shape, self.delay.dtype).at[self.pre, self.post].set(self.delay)
        return w, d

    # ------------------------------------------------------------------ builders
    @classmethod
    def fixed_probability(
        cls, seed: int, num_pre: int, num_post: int | None = None, *, p: float | int,
        weight: Real[ArrayLike, "..."], delay: Real[ArrayLike, "..."] = 0.0,
        self_connections: bool = False,
    ) -> Synapses:  # fmt: skip
        """Each pair `(pre, post)` connected independently with probability `p`
        (Bernoulli; without `pre == post` unless `self_connections`), from the NumPy
        generator seeded with `seed`. `weight` and `delay`: scalars, or arrays of
        shape `(num_pre,)` (one value per presynaptic neuron)."""
        num_post = num_pre if num_post is None else num_post
        if not 0 <= p <= 1:
            raise ValueError(f"Synapses.fixed_probability: `p` must lie in [0, 1], got {p}.")
        rng = np.random.default_rng(seed)
        pre, post = [], []
        for i in range(num_pre):  # row by row: memory O(synapses + num_post)
            targets = np.nonzero(rng.random(num_post) < p)[0]
            if not self_connections and num_post == num_pre:
                targets = targets[targets != i]
            pre.append(np.full(targets.size, i))
            post.append(targets)
        pre, post = np.concatenate(pre), np.concatenate(post)
        return cls(pre, post, _per_pre(weight, pre), _per_pre(delay, pre), num_pre=num_pre,
                   num_post=num_post)  # fmt: skip

    @classmethod
    def fixed_in_degree(
        cls, seed: int, num_pre: int, num_post: int | None = None, *, k: int,
        weight: Real[ArrayLike, "..."], delay: Real[ArrayLike, "..."] = 0.0,
        self_connections: bool = False,
        pre_range: tuple[int, int] | None = None,
    ) -> Synapses:  # fmt: skip
        """Each postsynaptic neuron receives exactly `k` synapses from distinct
        presynaptic neurons drawn uniformly from `pre_range` (default all; without
        itself unless `self_connections`), from the NumPy generator seeded with
        `seed`. `weight` and `delay` as in `fixed_probability`."""
        num_post = num_pre if num_post is None else num_post
        lo, hi = (0, num_pre) if pre_range is None else pre_range
        pool = hi - lo
        need = k + (0 if self_connections or num_post != num_pre else 1)
        if not 0 <= k or need > pool:
            raise ValueError(
                f"Synapses.fixed_in_degree: cannot draw k={k} distinct presynaptic "
                f"neurons from {pool}."
            )
        rng = np.random.default_rng(seed)
        exclude_self = need > k
        if pool >= 4 * k:
            # all rows at once, redrawing the (few) rows with a repeated or a self
            # connection: the same distribution as drawing each row without
            # replacement, in vectorised NumPy
            pre = lo + rng.integers(0, pool, size=(num_post, k))
            rows = np.arange(num_post)

            def bad(p, r):
                srt = np.sort(p, axis=1)
                dup = np.any(srt[:, 1:] == srt[:, :-1], axis=1)
                return dup | (np.any(p == r[:, None], axis=1) if exclude_self else False)

            redo = bad(pre, rows)
            while redo.any():
                pre[redo] = lo + rng.integers(0, pool, size=(int(redo.sum()), k))
                redo[redo] = bad(pre[redo], rows[redo])
        else:
            pre = np.empty((num_post, k), np.int64)
            for j in range(num_post):
                cand = lo + rng.choice(pool, size=need, replace=False)
                if exclude_self:
                    cand = cand[cand != j][:k]
                pre[j] = cand
        post = np.repeat(np.arange(num_post), k)
        pre = pre.reshape(-1)
        return cls(pre, post, _per_pre(weight, pre), _per_pre(delay, pre), num_pre=num_pre,
                   num_post=num_post)  # fmt: skip

    @classmethod
    def excitatory_inhibitory(
        cls, seed: int, num_neurons: int, *, k_exc: int, k_inh: int,
        w_exc: Real[ArrayLike, "..."], w_inh: Real[ArrayLike, "..."],
        delay: Real[ArrayLike, "..."] = 0.0, frac_exc: float | int = 0.8,
    ) -> Synapses:  # fmt: skip
        """A recurrent network whose first `round(frac_exc * num_neurons)` neurons are
        excitatory (outgoing weight `w_exc`) and the rest inhibitory (`w_inh`); every
        neuron receives exactly `k_exc` excitatory and `k_inh` inhibitory synapses (fixed
        in-degree, no self-connections), all with `delay`. Seeded: the same `seed` gives
        the same network."""
        n_exc = int(round(frac_exc * num_neurons))
        exc = cls.fixed_in_degree(
            seed, num_neurons, k=k_exc, weight=w_exc, delay=delay, pre_range=(0, n_exc)
        )
        inh = cls.fixed_in_degree(
            seed + 1, num_neurons, k=k_inh, weight=w_inh, delay=delay,
            pre_range=(n_exc, num_neurons),
        )  # fmt: skip
        return cls.concatenate([exc, inh])

    @staticmethod
    def concatenate(parts: Sequence[Synapses]) -> Synapses:
        """One `Synapses` holding the rows of all `parts` (same population sizes), e.g.
        the excitatory and inhibitory blocks of a network."""
        if not parts:
            raise ValueError("Synapses.concatenate: no parts.")
        sizes = {(p.num_pre, p.num_post) for p in parts}
        if len(sizes) != 1:
            raise ValueError(f"Synapses.concatenate: population sizes differ: {sizes}.")
        (num_pre, num_post), = sizes
        return Synapses(
            np.concatenate([np.asarray(p.pre) for p in parts]),
            np.concatenate([np.asarray(p.post) for p in parts]),
            jnp.concatenate([p.weight for p in parts]),
            jnp.concatenate([p.delay for p in parts]),
            num_pre=num_pre,
            num_post=num_post,
        )


def _per_pre(value: Real[ArrayLike, "..."], pre: np.ndarray) -> Array:
    """A scalar, or per-presynaptic values gathered for each synapse."""
    value = jnp.asarray(value)
    return value if value.ndim == 0 else value[pre]

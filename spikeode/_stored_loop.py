"""The event loop's driver: a while loop over segments, differentiable in reverse mode
by replaying stored steps, with tables read and buffers written in place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.lax as lax
import jax.numpy as jnp
from jaxtyping import Array, PyTree


class _Reader:
    """How a loop body reads its tables: `read(site, index)` is `tables[site][index]`.
    It records the index of every site (each site is read once per step), so that the
    reverse pass can hand the body the same rows as differentiable inputs and add their
    cotangents back at those indices, instead of a table-sized cotangent per step.

    `read.memo(name, fn)` is `stop_gradient(fn())`, recorded in the forward pass and
    handed back when the reverse pass replays the step (for work whose result carries
    no derivative of its own, such as a root finder's iterations)."""

    def __init__(self, tables, rows=None, memos=None):
        self.tables = tables
        self.rows = rows
        self.memos = memos
        self.used: dict[str, Array] = {}
        self.memoised: dict[str, Any] = {}

    def __call__(self, site: str, index):
        if site in self.used:
            raise ValueError(f"loop body: table site {site!r} read twice in one step.")
        self.used[site] = index
        if self.rows is not None:
            return self.rows[site]
        return self.tables[site][index]

    def memo(self, name: str, fn: Callable[[], Any]):
        if name in self.memoised:
            raise ValueError(f"loop body: memo {name!r} used twice in one step.")
        value = self.memos[name] if self.memos is not None else lax.stop_gradient(fn())
        self.memoised[name] = value
        return value


def _apply_writes(buffers: dict[str, Array], writes) -> dict[str, Array]:
    out = dict(buffers)
    for name, (index, value, pred) in writes.items():
        buf = out[name]
        out[name] = buf.at[index].set(jnp.where(pred, value, buf[index]))
    return out


Body = Callable[[Any, Any, _Reader], tuple[Any, dict[str, tuple[Array, Array, Array]]]]


def event_while_loop(
    body: Body,
    init: PyTree,
    buffers: dict[str, Array],
    tables: dict[str, Array],
    consts: PyTree,
    *,
    max_steps: int,
    kind: str,
    checkpoints: int | None = None,
    scalar_writes: bool = True,
):
    """Run `carry, writes = body(consts, carry, read)` until `carry.done`, at most
    `max_steps` times.

    **Arguments:**

    - `body`: one step. It reads rows of `tables` only through `read(site, index)`
      (each site once per step) and returns the new carry and its buffer writes
      `{name: (index, value, pred)}` (`buffers[name][index] = value` where `pred`);
      every buffer location is written at most once, and the body never reads the
      buffers. It must not close over traced arrays: those go in `consts` or `tables`.
    - `init`: the initial carry, with a boolean field `done`.
    - `buffers`: the initial (constant) output buffers.
    - `tables`: arrays the body reads a row of per step, by site.
    - `consts`: everything else the body depends on (differentiated as a whole).
    - `kind`: `"stored"` (reverse mode by replaying every stored step: one carry per
      step is kept; table cotangents are added in place at the rows read; buffer
      cotangents are read at the rows written), `"checkpointed"` (Equinox's
      checkpointed loop with `checkpoints` checkpoints: bounded memory, more
      recomputation, table-sized cotangents per step) or `"lax"` (a plain while loop:
      forward mode only).
    - `scalar_writes`: whether every write's `pred` is a scalar. Only then does the
      checkpointed kind hand the buffers to Equinox's loop as buffers (written in
      place, not checkpointed); with vector writes (several locations per step) they
      are carried and checkpointed like the carry.

    **Returns:** `(final carry, buffers)`.
    """
    if kind == "stored":
        carry, bufs = _stored((init, tables, consts), buffers, body, max_steps)
        # flags and counters carry no derivative
        nondiff = lambda x: x if eqx.is_inexact_array(x) else lax.stop_gradient(x)
        return jax.tree_util.tree_map(nondiff, (carry, bufs))

    def step(state):
        carry, bufs = state
        carry, writes = body(consts, carry, _Reader(tables))
        if kind == "checkpointed" and scalar_writes:
            bufs = dict(bufs)
            for name, (index, value, pred) in writes.items():
                bufs[name] = bufs[name].at[index].set(value, pred=pred)
            return carry, bufs
        return carry, _apply_writes(bufs, writes)

    return eqxi.while_loop(
        lambda s: ~s[0].done,
        step,
        (init, dict(buffers)),
        max_steps=max_steps,
        buffers=(lambda s: s[1]) if kind == "checkpointed" and scalar_writes else None,
        kind=kind,
        checkpoints=checkpoints,
    )


def step_bytes(carry: PyTree) -> int:
    """The bytes a stored loop keeps per step: the carry's arrays plus 64."""
    return 64 + sum(x.nbytes for x in jax.tree_util.tree_leaves(carry))


def _split(tree):
    return eqx.partition(tree, eqx.is_inexact_array)


@eqx.filter_custom_vjp
def _stored(diff, buffers, body, max_steps):
    init, tables, consts = diff
    carry, bufs, _ = _forward(init, buffers, tables, consts, body, max_steps, record=False)
    return carry, bufs


def _forward(init, buffers, tables, consts, body, max_steps, *, record):
    """The loop; with `record`, also each step's carry, the rows it read and the
    buffer locations it wrote, stacked over steps (the reverse pass's residuals).

    Under `vmap` the loop runs while any element is unfinished (an unbatched
    condition), and finished elements are masked by hand: a batched condition would
    make JAX select every carried array, the stored steps included, at every step."""

    def one(carry):
        reader = _Reader(tables)
        new, writes = body(consts, carry, reader)
        marks = {name: (i, p) for name, (i, _, p) in writes.items()}
        return new, writes, (carry, reader.used, marks, reader.memoised)

    def step(state):
        k, carry, bufs, store = state
        active = ~carry.done & (k < max_steps)
        new, writes, rec = one(carry)
        if record:
            store = jax.tree_util.tree_map(
                lambda s, x: s.at[k].set(jnp.where(active, x, s[k])), store, rec
            )
        writes = {n: (i, v, p & active) for n, (i, v, p) in writes.items()}
        new = jax.tree_util.tree_map(lambda a, b: jnp.where(active, a, b), new, carry)
        return k + active.astype(k.dtype), new, _apply_writes(bufs, writes), store

    store = None
    if record:
        shapes = eqx.filter_eval_shape(lambda c: one(c)[2], init)
        store = jax.tree_util.tree_map(
            lambda x: jnp.zeros((max_steps,) + x.shape, x.dtype), shapes
        )
    k, carry, bufs, store = lax.while_loop(
        lambda s: eqxi.unvmap_any(~s[1].done & (s[0] < max_steps)),
        step,
        _batched_like((jnp.array(0, jnp.int32), init, dict(buffers), store), init),
    )
    return carry, bufs, (k, store)


def _batched_like(tree, ref):
    """`tree` unchanged, but under `vmap` batched wherever a leaf of `ref` is.

    Only for tracing: `vmap` of a while loop finds which carried values are batched
    by batching the loop body again until that set stops growing; a carry that is
    batched from the start (as every value of these loops becomes after one step)
    saves a pass over the body, and over every loop inside it. `select(p, x, x)` is
    `x`, and XLA removes it."""
    arrays = [x for x in jax.tree_util.tree_leaves(ref) if eqx.is_array(x)]
    if not arrays:
        return tree
    same = jnp.all(jnp.stack([jnp.all(x == x) for x in arrays]))
    tie = lambda x: lax.select(jnp.broadcast_to(same, jnp.shape(x)), x, x)  # noqa: E731
    return jax.tree_util.tree_map(tie, tree)


@_stored.def_fwd
def _stored_fwd(perturbed, diff, buffers, body, max_steps):
    del perturbed
    init, tables, consts = diff
    carry, bufs, residuals = _forward(init, buffers, tables, consts, body, max_steps, record=True)
    return (carry, bufs), residuals


@_stored.def_bwd
def _stored_bwd(residuals, grad_obj, perturbed, diff, buffers, body, max_steps):
    del perturbed
    init, tables, consts = diff
    num_steps, (carries, used, marks, memos) = residuals
    g_final, g_bufs = grad_obj
    consts_f, consts_nf = _split(consts)
    zeros = lambda tree: jax.tree_util.tree_map(jnp.zeros_like, tree)
    # cotangents of the final carry's floating leaves (None: symbolic zero)
    g_leaves = jax.tree_util.tree_leaves(g_final, is_leaf=lambda x: x is None)
    i_leaves, treedef = jax.tree_util.tree_flatten(init, is_leaf=lambda x: x is None)
    g_carry0 = jax.tree_util.tree_unflatten(treedef, [
        (jnp.zeros_like(x) if g is None else g) if eqx.is_inexact_array(x) else None
        for g, x in zip(g_leaves, i_leaves)
    ])
    floats = [k for k in buffers if jnp.issubdtype(buffers[k].dtype, jnp.inexact)]
    g_bufs = {k: jnp.zeros_like(buffers[k]) if g_bufs.get(k) is None else g_bufs[k]
              for k in floats}

    def step_fn(carry_f, consts_f, rows, carry_nf, memos_k):
        carry = eqx.combine(carry_f, carry_nf)
        reader = _Reader(tables, rows, memos_k)
        new, writes = body(eqx.combine(consts_f, consts_nf), carry, reader)
        return _split(new)[0], {name: writes[name][1] for name in floats}

    def back(state):
        # `j` counts down over the longest element's steps (unbatched: see _forward);
        # an element takes part while `j` is within its own steps.
        j, g_carry, g_tables, g_consts = state
        j = j - 1
        active = j < num_steps
        at = lambda tree: jax.tree_util.tree_map(lambda s: s[j], tree)
        carry_k, used_k, marks_k, memos_k = at(carries), at(used), at(marks), at(memos)
        carry_f, carry_nf = _split(carry_k)
        rows = {site: tables[site][i] for site, i in used_k.items()}
        g_values = {
            name: jnp.where(marks_k[name][1], g_bufs[name][marks_k[name][0]], 0)
            for name in floats
        }
        _, vjp = jax.vjp(
            lambda cf, pf, r: step_fn(cf, pf, r, carry_nf, memos_k), carry_f, consts_f, rows
        )
        g_new, g_c, g_rows = vjp((g_carry, g_values))
        mask = lambda tree: jax.tree_util.tree_map(lambda x: jnp.where(active, x, 0), tree)
        g_carry = jax.tree_util.tree_map(
            lambda a, b: jnp.where(active, a, b), g_new, g_carry
        )
        g_tables = dict(g_tables)
        for site, i in used_k.items():
            g_tables[site] = g_tables[site].at[i].add(jnp.where(active, g_rows[site], 0))
        g_consts = jax.tree_util.tree_map(jnp.add, g_consts, mask(g_c))
        return j, g_carry, g_tables, g_consts

    _, g_init, g_tables, g_consts = lax.while_loop(
        lambda s: s[0] > 0,
        back,
        (eqxi.unvmap_max(num_steps),
         *_batched_like((g_carry0, zeros(tables), zeros(consts_f)), num_steps)),
    )
    return (g_init, g_tables, g_consts)

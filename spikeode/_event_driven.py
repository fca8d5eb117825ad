"""The event-driven loop: every neuron's state is kept at the time of its own last
event, with its next own event predicted exactly: its next threshold crossing, or the
time up to which its prediction is known to hold (the end of the model's safe step;
a refractory period is part of the prediction). An event changes only the neurons it
reaches: a spike its neuron and its targets, each advanced to the spike time by the
closed-form flow and given a new prediction; the next event is the earliest
prediction or scheduled arrival. The cost of an event is proportional to the
fan-out, not to the network size (the lazy updates of event-driven simulators:
Brette 2007, Morrison et al. 2007)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._segment import (
    earliest_pending,
    event_condition,
    fires_now,
    first_of,
    lane_models,
    output_buffers,
    receive,
)
from ._solver import find_crossing, flow_crossing
from ._stored_loop import event_while_loop, step_bytes
from ._synapses import Synapses


class _Net(eqx.Module):
    """The loop's carry: each neuron at the time of its last event."""

    t_last: Array  # (n,) time of each neuron's last event
    y: Array  # (n, state) its state then (after the event's jump)
    refr_until: Array  # (n,)
    pred: Array  # (n,) its next own event (+inf: none before t1)
    spike: Array  # (n,) whether that event is a threshold crossing (else a check)
    in_ptr: Array
    save_ptr: Array
    n_out: Array
    done: Array
    overflow: Array
    failed: Array
    events: Array
    pend_t: Array  # (P,) delayed arrivals: time (+inf: free slot)
    pend_pre: Array  # (P,) and presynaptic neuron
    pend_overflow: Array


class _Consts(eqx.Module):
    model: object  # the one-neuron model with per-neuron leaves of shape (n,)
    t1: Array
    t_ref: Array  # (n,)
    in_ids: Array
    in_post: Array
    syn_post: Array  # (E + 1,) targets of the synapses (sorted by pre), padded with n
    offsets: Array  # (n + 1,) synapses of pre i: offsets[i]:offsets[i + 1]


def event_connections(w_rec, delays, n: int, dtype):
    """Recurrent connections for the event-driven loop: `(synapses, d_pre)`, the
    synapses sorted by presynaptic neuron and `d_pre` the delay of each presynaptic
    neuron (`None`: no delays, kicks in the spike's jump). Needs unique (pre, post)
    pairs and delays that depend only on the presynaptic neuron (checked at run time
    where they are traced)."""
    if isinstance(w_rec, Synapses):
        if (w_rec.num_pre, w_rec.num_post) != (n, n):
            raise ValueError(
                f"simulate: the recurrent `Synapses` connect {w_rec.num_pre} -> "
                f"{w_rec.num_post} neurons; expected {n} -> {n}."
            )
        syn = w_rec
        if delays is not None:
            raise ValueError(
                "simulate: with `Synapses` the delays are the synapses' own `delay`; "
                "do not also pass `delays`."
            )
        delay = syn.delay
    else:
        w = jnp.asarray(w_rec)
        if w.shape != (n, n):
            raise ValueError(f"simulate: `w_rec` has shape {w.shape}; expected ({n}, {n}).")
        if delays is not None:
            d = jnp.asarray(delays)
            if not (d.ndim == 0 or d.shape == (n, 1)):
                raise ValueError(
                    "simulate: EventDrivenLoop needs delays that depend only on the "
                    f"presynaptic neuron (a scalar or shape ({n}, 1)); got shape "
                    f"{d.shape}. Use CoupledLoop or WindowedLoop."
                )
        syn = Synapses.from_dense(w, 0.0 if delays is None else jnp.broadcast_to(delays, (n, n)))
        delay = None if delays is None else syn.delay
    if not syn.unique_pairs:
        raise ValueError(
            "simulate: EventDrivenLoop needs at most one synapse per (pre, post) pair; "
            "merge parallel synapses (add their weights) or use CoupledLoop."
        )
    weight = syn.weight.astype(dtype)
    if delay is None:
        return eqx.tree_at(lambda s: s.weight, syn, weight), None
    d = jnp.asarray(delay, dtype)
    if not isinstance(d, jax.core.Tracer) and not np.any(np.asarray(d)):
        return eqx.tree_at(lambda s: s.weight, syn, weight), None  # all zero: no delays
    d = eqx.error_if(
        d, jnp.any(~(d >= 0)) | jnp.any(~jnp.isfinite(d)),
        "simulate: the recurrent delays must be finite and >= 0.",
    )  # fmt: skip
    first = presynaptic_delay_table(syn, d)
    d = eqx.error_if(
        d, jnp.any(d != first[syn.pre]),
        "simulate: EventDrivenLoop needs delays that depend only on the presynaptic "
        "neuron; use CoupledLoop or WindowedLoop.",
    )  # fmt: skip
    # (again from the checked delays, so that the check is part of the computation)
    return eqx.tree_at(lambda s: s.weight, syn, weight), presynaptic_delay_table(syn, d)


def presynaptic_delay_table(syn: Synapses, delay: Array) -> Array:
    """The delay of each presynaptic neuron: that of its first synapse (`delay` is per
    synapse, in `syn`'s order), 0 for a neuron without synapses. A gather at the
    synapses' offsets (they are sorted by presynaptic neuron), not a scatter of every
    synapse's delay: XLA leaves unspecified which of several writes to one index wins.
    Its derivative reaches only each neuron's first synapse."""
    n = syn.num_pre
    if syn.num_synapses == 0:
        return jnp.zeros((n,), delay.dtype)
    start, stop = syn.offsets[:-1], syn.offsets[1:]
    first = delay[jnp.minimum(start, syn.num_synapses - 1)]
    return jnp.where(stop > start, first, jnp.zeros((), delay.dtype))


def event_driven_run(
    neuron, t0, t1, schedule, saves, y0, *, syn, d_pre, max_spikes, max_pending, seg,
    adjoint, max_segments,
):  # fmt: skip
    """The event-driven loop (see the module docstring).

    **Arguments:** `schedule`: the input arrivals `(times, sources, targets, w_in)` of
    `_delays.input_schedule`; `saves`: `(num_save, save_ts, padded)` of
    `_delays.save_schedule`; `syn`, `d_pre`: `event_connections`; the rest as for
    `simulate`, with `seg` the closed-form segment (its root finder finds the
    crossings) and `adjoint` the gradient method (which decides the kind of loop).

    **Returns:** `(times, ids, slopes, ys, y_final, flags)`, `flags` a dict of booleans
    `overflow`, `pend_overflow`, `failed`, `unfinished`, the resolved `max_pending` and
    the number of events.
    """
    n = neuron.num_neurons
    dtype = y0.dtype
    in_times, in_ids, in_post, w_in_pad = schedule
    num_save, _, save_pad = saves
    delayed = d_pre is not None
    fan = max(syn.max_fan_out, 1)
    e = syn.num_synapses
    if delayed:
        if max_pending is None:
            max_pending = min(max_spikes, max(32, n // 8))
    else:
        max_pending = 0
    single, axes, lanes_of = lane_models(neuron)
    t_ref = jnp.broadcast_to(jnp.asarray(neuron.refractory_period, dtype), (n,))
    # (`single`'s leaves are the population's: per-neuron ones of shape (n,), gathered
    # per lane by `lanes_of`)

    cond = event_condition
    num_in = in_times.shape[0] - 1

    # ---------------------------------------------------------------- one lane
    # a lane's refractory flag, free or refractory: made where it is used, inside the
    # loop body's trace (an array made out here would be a traced constant closed over)
    free = lambda: jnp.zeros((1,), bool)
    refr = lambda: jnp.ones((1,), bool)

    def lane_flow(m, t_a, y, refr_until, t_b):
        """The lane's state at `t_b` from `(t_a, y)` without an event in between:
        refractory up to `refr_until`, free after it."""
        t_mid = jnp.clip(refr_until, t_a, t_b)
        y_mid = m.flow(t_a, y[None], t_mid, refr())
        return m.flow(t_mid, y_mid, t_b, free())[0]

    def lane_check(m, t, y, refr_until, t1):
        """Where the lane's prediction from `(t, y)` starts (after its refractory
        period) and ends (the model's safe step), and whether it fires at the start
        or crosses before the end."""
        t_s = jnp.where(refr_until > t, refr_until, t)
        y_s = lane_flow(m, t, y, refr_until, t_s)[None]
        fire_now = (t_s < t1) & fires_now(m, t_s, y_s, free())
        t_safe = lax.stop_gradient(m.safe_step_end(t_s, y_s, t1, free()))
        t_safe = jnp.minimum(t_safe, t1)
        crossed = (t_safe > t_s) & (cond(m, t_safe, m.flow(t_s, y_s, t_safe, free()), free()) > 0)
        return t_s, y_s[0], t_safe, fire_now, crossed & ~fire_now

    def lane_root(m, t_s, t_safe, y_s, crossed, guess):
        return find_crossing(
            cond, seg.root_finder, m, t_s, t_safe, y_s[None], free(), crossed, guess
        )  # fmt: skip

    def lane_pred(m, t_s, t_safe, y_s, fire_now, crossed, root, t1):
        t_hit = flow_crossing(m, t_s, t_safe, y_s[None], free(), crossed, root, condition=cond)
        pred = jnp.where(fire_now, t_s, jnp.where(crossed, t_hit, t_safe))
        spike = fire_now | crossed
        return jnp.where(pred < t1, pred, jnp.inf), spike

    def lane_slope(m, t, y):
        _, dc = jax.jvp(
            lambda tt, yy: m.condition(tt, yy), (t, y[None]),
            (jnp.ones_like(t), m.vector_field(t, y[None], free())),
        )  # fmt: skip
        return dc[0]

    v = lambda f, *ax: eqx.filter_vmap(f, in_axes=(axes,) + ax)
    v_flow = v(lane_flow, 0, 0, 0, None)
    v_check = v(lane_check, None, 0, 0, None)
    v_root = v(lane_root, 0, 0, 0, 0, 0)
    v_pred = v(lane_pred, 0, 0, 0, 0, 0, 0, None)

    def predict(m, t, y, refr_until, t1, guess, read=None, name=None):
        """Every lane's next own event from `(t, y)`: `(pred, spike, ok)`. `guess`:
        where each lane's root find starts (its previous prediction: an event moves a
        crossing only a little; used where inside the bracket)."""
        t_s, y_s, t_safe, fire_now, crossed = v_check(m, t, y, refr_until, t1)

        def find():
            args = lax.stop_gradient((m, t_s, t_safe, y_s))
            return lax.cond(
                jnp.any(crossed),
                lambda a: v_root(*a, crossed, lax.stop_gradient(guess)),
                lambda a: (a[2], jnp.ones(crossed.shape, bool)),
                args,
            )

        root, found = find() if read is None else read.memo(name, find)
        pred, spike = v_pred(m, t_s, t_safe, y_s, fire_now, crossed, root, t1)
        return pred, spike, jnp.all(found | ~crossed)

    v_reset = jax.vmap(lambda m, y: m.reset(y[None], jnp.ones((1,), bool))[0], in_axes=(axes, 0))
    v_receive = jax.vmap(
        lambda m, y, w, r: receive(m, y[None], w[None], r[None])[0], in_axes=(axes, 0, 0, 0)
    )

    def advance(k, c, idx, t):
        """The lanes `idx` (`n`: none) advanced to `t`: `(model, rows, live, y)`."""
        live = idx < n
        safe = jnp.minimum(idx, n - 1)
        m = lanes_of(k.model, safe)
        return m, safe, live, v_flow(m, c.t_last[safe], c.y[safe], c.refr_until[safe], t)

    def scatter(c, idx, live, t, y, refr, pred, spike):
        at = jnp.where(live, idx, n)
        return dict(
            t_last=c.t_last.at[at].set(jnp.broadcast_to(t, at.shape), mode="drop"),
            y=c.y.at[at].set(y, mode="drop"),
            refr_until=c.refr_until.at[at].set(refr, mode="drop"),
            pred=c.pred.at[at].set(pred, mode="drop"),
            spike=c.spike.at[at].set(spike, mode="drop"),
        )

    def body(k: _Consts, c: _Net, read):
        # ---- the next event: spikes, saves, input arrivals, recurrent arrivals,
        # checks (ends of safe steps), in this order at ties. The earliest prediction,
        # a crossing before a check at equal times (then the lowest index), by two
        # plain reductions: if it is a crossing, no check comes before it; if it is a
        # check, no crossing does.
        earliest = jnp.min(c.pred)
        lane = jnp.arange(n, dtype=jnp.int32)
        rank = jnp.where(c.pred == earliest, jnp.where(c.spike, 0, n) + lane, 2 * n)
        j = jnp.min(rank) % n
        t_next = c.pred[j]
        t_spk = jnp.where(c.spike[j], t_next, jnp.inf)
        t_chk = jnp.where(c.spike[j], jnp.inf, t_next)
        t_in = read("in_times", c.in_ptr)
        t_save = read("save", c.save_ptr)
        if delayed:
            slot, t_pend = earliest_pending(c.pend_t, c.pend_pre)
        else:
            t_pend = jnp.asarray(jnp.inf, dtype)
        t = first_of(t_spk, t_save, t_in, t_pend, t_chk, k.t1)
        before_end = t < k.t1
        is_spk = t_spk == t
        is_save = ~is_spk & (t_save == t)
        is_in = ~is_spk & ~is_save & (t_in == t) & before_end
        is_pend = ~is_spk & ~is_save & ~is_in & (t_pend == t) & before_end
        is_chk = ~is_spk & ~is_save & ~is_in & ~is_pend & (t_chk == t) & before_end
        is_end = ~(is_spk | is_save | is_in | is_pend | is_chk)

        # ---- one batch of lanes: the spiking (or checked) neuron, and the targets of
        # its spike (without delays) or of a delayed arrival; each advanced to `t`,
        # reset (the spiking neuron, also where it is its own target), kicked
        # (targets), and predicted again
        if delayed:
            pre = c.pend_pre[slot]
            reach = is_pend
        else:
            pre = j
            reach = is_spk
        pos = k.offsets[pre] + jnp.arange(fan, dtype=jnp.int32)
        valid = pos < k.offsets[pre + 1]
        pos = jnp.where(valid, pos, e)
        w = jnp.concatenate([jnp.zeros((1,), dtype), read("syn_w", pos)])
        targets = jnp.where(valid & reach, k.syn_post[pos], n)
        # (where the neuron is its own target, that lane alone carries its update)
        j_lane = jnp.where((is_spk | is_chk) & ~jnp.any(targets == j), j, n)
        idx = jnp.concatenate([j_lane[None], targets])
        m, safe, live, y_t = advance(k, c, idx, t)
        at_j = jnp.argmax(idx == j)
        slope = lax.stop_gradient(jax.vmap(lane_slope, in_axes=(axes, None, 0))(
            lanes_of(k.model, j[None]), t, y_t[at_j][None]
        ))[0]  # fmt: skip
        resets = is_spk & (safe == j)
        y_t = jnp.where(resets[:, None], v_reset(m, y_t), y_t)
        refr = jnp.where(resets, t + k.t_ref[safe], c.refr_until[safe])
        y_t = v_receive(m, y_t, w, refr > t)
        pred, spike, ok1 = predict(m, t, y_t, refr, k.t1, c.pred[safe], read, "root")
        c = eqx.tree_at(
            lambda x: (x.t_last, x.y, x.refr_until, x.pred, x.spike), c,
            tuple(scatter(c, idx, live, t, y_t, refr, pred, spike).values()),
        )  # fmt: skip

        # ---- an input arrival: every neuron it reaches (all, or one)

        def receive_input(args):
            c, w_row = args
            lanes = jnp.arange(n, dtype=jnp.int32)
            idx = jnp.where((post == n) | (lanes == post), lanes, n)
            m, safe, live, y_t = advance(k, c, idx, t)
            refr = c.refr_until[safe]
            y_t = v_receive(m, y_t, w_row, refr > t)
            pred, spike, ok = predict(m, t, y_t, refr, k.t1, c.pred[safe])
            new = scatter(c, idx, live, t, y_t, refr, pred, spike)
            return tuple(new.values()), ok

        def no_input(args):
            c, _ = args
            return (c.t_last, c.y, c.refr_until, c.pred, c.spike), jnp.array(True)

        if num_in:
            w_row = read("w_in", k.in_ids[c.in_ptr])
            post = k.in_post[c.in_ptr]
            arrays, ok3 = lax.cond(is_in, receive_input, no_input, (c, w_row))
            c = eqx.tree_at(lambda x: (x.t_last, x.y, x.refr_until, x.pred, x.spike), c, arrays)
        else:
            ok3 = True

        writes = {}
        if num_save:
            def snapshot(c):
                m = lanes_of(k.model, jnp.arange(n))
                return v_flow(m, c.t_last, c.y, c.refr_until, t)

            y_save = lax.cond(is_save, snapshot, lambda c: jnp.zeros_like(c.y), c)
            writes["ys"] = (jnp.minimum(c.save_ptr, num_save - 1), y_save, is_save)

        pend = {}
        if delayed:
            pend_t = jnp.where(is_pend & (jnp.arange(max_pending) == slot), jnp.inf, c.pend_t)
            t_arr = t + read("d_pre", j)
            push = is_spk & (t_arr < k.t1)
            vacant = pend_t == jnp.inf
            dest = jnp.where(push & jnp.any(vacant), jnp.argmax(vacant), max_pending)
            pend = dict(
                pend_t=pend_t.at[dest].set(t_arr, mode="drop"),
                pend_pre=c.pend_pre.at[dest].set(j.astype(jnp.int32), mode="drop"),
                pend_overflow=c.pend_overflow | (push & ~jnp.any(vacant)),
            )

        room = c.n_out < max_spikes
        write = is_spk & room
        out = jnp.minimum(c.n_out, max_spikes - 1)
        writes.update(
            out_t=(out, t, write),
            out_i=(out, j.astype(jnp.int32), write),
            out_slope=(out, slope, write),
        )
        ok = ok1 & ok3
        overflow = c.overflow | (is_spk & ~room) | pend.get("pend_overflow", False)
        carry = eqx.tree_at(
            lambda x: (x.in_ptr, x.save_ptr, x.n_out, x.done, x.overflow, x.failed,
                       x.events, x.pend_t, x.pend_pre, x.pend_overflow),
            c,
            (c.in_ptr + is_in.astype(jnp.int32), c.save_ptr + is_save.astype(jnp.int32),
             c.n_out + write.astype(jnp.int32), is_end | overflow | ~ok, overflow,
             c.failed | ~ok, c.events + 1, pend.get("pend_t", c.pend_t),
             pend.get("pend_pre", c.pend_pre), pend.get("pend_overflow", c.pend_overflow)),
        )  # fmt: skip
        return carry, writes

    # ---- start: every neuron's first prediction
    t_last0 = jnp.full((n,), t0, dtype)
    refr0 = jnp.full((n,), -jnp.inf, dtype)
    pred0, spike0, ok0 = predict(single, t0, y0, refr0, t1, jnp.full((n,), t1, dtype))
    if max_segments is None:
        max_segments = num_in + num_save + (3 + int(delayed)) * max_spikes + 2 * n + 4
    init = _Net(
        t_last=t_last0,
        y=y0,
        refr_until=refr0,
        pred=pred0,
        spike=spike0,
        in_ptr=jnp.array(0, jnp.int32),
        save_ptr=jnp.array(0, jnp.int32),
        n_out=jnp.array(0, jnp.int32),
        done=~ok0,
        overflow=jnp.array(False),
        failed=~ok0,
        events=jnp.array(0, jnp.int32),
        pend_t=jnp.full((max_pending,), jnp.inf, dtype),
        pend_pre=jnp.zeros((max_pending,), jnp.int32),
        pend_overflow=jnp.array(False),
    )
    buffers = output_buffers(max_spikes, n, num_save, neuron.state_size, dtype)
    syn_w = jnp.concatenate([syn.weight, jnp.zeros((1,), dtype)])
    syn_post = jnp.concatenate([syn.post, jnp.full((1,), n, syn.post.dtype)]).astype(jnp.int32)
    tables = dict(in_times=in_times, save=save_pad, w_in=w_in_pad, syn_w=syn_w)
    if delayed:
        tables["d_pre"] = d_pre
    consts = _Consts(
        model=single, t1=t1, t_ref=t_ref, in_ids=in_ids, in_post=in_post,
        syn_post=syn_post, offsets=jnp.asarray(syn.offsets, jnp.int32),
    )  # fmt: skip
    kind, checkpoints = adjoint.loop_kind(max_segments, step_bytes(init))
    final, bufs = event_while_loop(
        body, init, buffers, tables, consts, max_steps=max_segments, kind=kind,
        checkpoints=checkpoints,
    )  # fmt: skip
    m = lanes_of(single, jnp.arange(n))
    y_final = v_flow(m, final.t_last, final.y, final.refr_until, t1)
    flags = dict(
        overflow=final.overflow & ~final.pend_overflow,
        pend_overflow=final.pend_overflow,
        failed=final.failed,
        unfinished=~final.done,
        max_pending=max_pending,
        events=final.events,
    )
    return bufs["out_t"], bufs["out_i"], bufs["out_slope"], bufs.get("ys"), y_final, flags

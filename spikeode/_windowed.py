"""The windowed loop: with every delay at least `d_min > 0`, nothing a neuron emits in
a window `[T, T + L)` with `L <= d_min` can arrive before `T + L`, so within a window
each neuron evolves independently from arrivals already known. All neurons are then
advanced in parallel (one lane each), arrival by arrival, by the model's flow (or its
numerical solve) with exact crossings; the spikes of a window become arrivals of later
windows (Morrison et al. 2007; NEST's communication interval)."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._delays import check_delays
from ._segment import (
    _checked_w_in,
    event_condition,
    fires_now,
    first_of,
    lane_models,
    receive,
)
from ._solver import find_crossing, flow_crossing
from ._stored_loop import event_while_loop
from ._synapses import Synapses


class _Lanes(eqx.Module):
    """Every neuron's state inside a window (the inner loop's carry)."""

    t: Array  # (n,) time of each lane
    y: Array  # (n, state)
    refr_until: Array  # (n,)
    last_t: Array  # (n,) time and tie key of the last arrival taken
    last_tie: Array  # (n,)
    n_spk: Array  # () spikes of the window so far
    done: Array  # ()
    lane_done: Array  # (n,)
    overflow: Array  # () window spike capacity exceeded
    failed: Array  # ()


class _LaneConsts(eqx.Module):
    # (`None` for the per-window fields in the template `_WindowConsts.lane`)
    model: object  # the one-neuron model, vmapped over lanes
    t_ref: Array  # (n,)
    t_end: Array | None  # () window end
    span: Array  # () t1 - t0 (dummy lengths)
    start: Array | None  # (n,) each lane's arrivals: arr_*[start:end] (any order)
    end: Array | None  # (n,)
    tie: Array | None  # (P + 1,) the arrivals' tie keys


class _Window(eqx.Module):
    """The outer loop's carry: the network at a window start."""

    t: Array  # () window start
    y: Array
    refr_until: Array
    pend_t: Array  # (P,) pending arrival times, +inf free
    pend_w: Array  # (P,) their weights
    pend_post: Array  # (P,) targets
    pend_tie: Array  # (P,) order at equal times (inputs, then synapse index)
    n_out: Array
    done: Array
    overflow: Array  # output buffer
    window_overflow: Array  # window spike capacity
    events_overflow: Array  # a lane's events in a window
    pend_overflow: Array
    failed: Array
    windows: Array


class _WindowConsts(eqx.Module):
    lane: object  # _LaneConsts without t_end/end (filled per window)
    t0: Array
    t1: Array
    length: Array
    syn_post: Array
    offsets: Array


def synapse_table(w_rec, delays, n: int, dtype) -> tuple[Synapses, Array]:
    """Recurrent connections as `Synapses` (a dense `w_rec` becomes one synapse per
    entry, pre-major) and their checked delays."""
    if isinstance(w_rec, Synapses):
        if (w_rec.num_pre, w_rec.num_post) != (n, n):
            raise ValueError(
                f"simulate: the recurrent `Synapses` connect {w_rec.num_pre} -> "
                f"{w_rec.num_post} neurons; expected {n} -> {n}."
            )
        if delays is not None:
            raise ValueError(
                "simulate: with `Synapses` the delays are the synapses' own `delay`; "
                "do not also pass `delays`."
            )
        syn = w_rec
        d = check_delays(syn.delay, (syn.num_synapses,), "Synapses.delay", dtype)
        return eqx.tree_at(lambda s: (s.weight, s.delay), syn, (syn.weight.astype(dtype), d)), d
    w = jnp.asarray(w_rec)
    if w.shape != (n, n):
        raise ValueError(f"simulate: `w_rec` has shape {w.shape}; expected ({n}, {n}).")
    d = check_delays(delays, (n, n), "delays", dtype)
    syn = Synapses.from_dense(w.astype(dtype), jnp.broadcast_to(d, (n, n)))
    return syn, syn.delay


def windowed_run(
    neuron, t1, inputs, w_in, *, w_rec, delays, input_delays, window, t0, y0, max_spikes,
    max_pending, max_window_spikes, max_window_events, seg, adjoint,
):  # fmt: skip
    """The windowed loop (see the module docstring). Returns `(times, ids, slopes,
    y_final, flags)` with `flags` a dict of booleans: `overflow` (output buffer),
    `window_overflow`, `events_overflow`, `pend_overflow`, `failed`, `unfinished`,
    and the resolved
    capacities."""
    n = neuron.num_neurons
    dtype = y0.dtype
    for name, v in (("t0", t0), ("t1", t1), ("window", window)):
        if isinstance(v, jax.core.Tracer):
            raise ValueError(
                f"simulate: the windowed loop needs a concrete `{name}` (the number of "
                "windows is fixed when the loop is compiled)."
            )
    t0f, t1f, length = float(t0), float(t1), float(window)
    if not length > 0:
        raise ValueError(
            f"simulate: the windowed loop needs a window length > 0, got {length}; with "
            "a zero minimum delay use CoupledLoop."
        )
    if not t1f > t0f:
        raise ValueError("simulate: `t1` must be greater than `t0`.")
    num_windows = max(1, math.ceil((t1f - t0f) / length))
    t0a, t1a = jnp.asarray(t0f, dtype), jnp.asarray(t1f, dtype)
    span = t1a - t0a

    syn, d_syn = synapse_table(w_rec, delays, n, dtype)
    d_syn = eqx.error_if(
        d_syn,
        jnp.any(d_syn < length),
        f"simulate: the windowed loop's window ({length:g}) is longer than the "
        "smallest recurrent delay; every delay must be >= the window length.",
    )
    fan = max(syn.max_fan_out, 1)
    if max_window_spikes is None:
        max_window_spikes = min(n, max(64, n // 32))
    if max_window_events is None:
        max_window_events = 16

    # ---- external inputs: every (spike, target) pair an arrival, known in advance
    if inputs is not None:
        w_in = _checked_w_in(inputs, w_in, n).astype(dtype)
        inputs = inputs.validate(t0=t0a)
        d_in = jnp.zeros((), dtype) if input_delays is None else check_delays(
            input_delays, (inputs.num_neurons, n), "input_delays", dtype
        )
        # one arrival per (input spike, target), in time order (ties: the train's
        # order, then the target's), as the coupled loop processes them
        valid = inputs.valid
        src = jnp.where(valid, inputs.neurons, 0)
        d = jnp.broadcast_to(d_in, (inputs.num_neurons, n))
        a_t = jnp.where(valid[:, None], inputs.times.astype(dtype)[:, None] + d[src], jnp.inf)
        a_t = jnp.where(a_t < t1a, a_t, jnp.inf).reshape(-1)
        a_w = jnp.where(valid[:, None], w_in[src], 0).reshape(-1)
        a_post = jnp.tile(jnp.arange(n, dtype=jnp.int32), inputs.capacity)
        order = jnp.argsort(lax.stop_gradient(a_t), stable=True)
        in_t, in_w, in_post = a_t[order], a_w[order], a_post[order]
    else:
        in_t = jnp.zeros((0,), dtype)
        in_w = jnp.zeros((0,), dtype)
        in_post = jnp.zeros((0,), jnp.int32)
    num_in = in_t.shape[0]
    in_tie = jnp.arange(num_in, dtype=jnp.int32)
    if max_pending is None:
        max_pending = 2 * max_window_spikes * fan
    if not isinstance(max_pending, int) or max_pending < 1:
        raise ValueError(f"simulate: `max_pending` must be a positive int, got {max_pending!r}.")
    cap = max_pending + num_in

    single, axes, lanes_of = lane_models(neuron)
    t_ref = jnp.broadcast_to(jnp.asarray(neuron.refractory_period, dtype), (n,))
    state = neuron.state_size

    # ------------------------------------------------------------ one lane, one step
    # A step takes each lane to its next scheduled time (arrival, end of refractory
    # period, window end), or to its threshold crossing before that, as one segment of
    # the coupled loop does for the population. In three parts, so that the root find
    # (the costly part of a closed-form segment) runs only on lanes that crossed.
    def lane_start(model, t, y, refr_until, a, t_end, span_):
        # the segment's end, and the state there (closed form: no root find yet)
        y = y[None]
        refractory = refr_until > t
        release = jnp.where(refractory, refr_until, jnp.inf)
        t_sched = first_of(a, release, t_end)
        r = refractory[None]
        fire_now = fires_now(model, t, y, r)
        t_safe = lax.stop_gradient(model.safe_step_end(t, y, t_sched, r))
        t_stop = jnp.where(t_safe < t_sched, t_safe, t_sched)
        t_stop = jnp.where(fire_now, t, t_stop)
        has_length = t_stop > t
        t_start = jnp.where(has_length, t, lax.stop_gradient(t))
        t_stop_ = jnp.where(has_length, t_stop, t_start + 1e-4 * span_)
        return t_start, t_stop, t_stop_, r, fire_now, has_length

    def lane_solve(model, t_start, t_stop_, y, r):
        # the whole segment solve (numerical models)
        return seg.solve(model, t_start, t_stop_, y[None], r, None)

    def lane_flow(model, t_start, t_stop_, y, r):
        y_end = model.flow(t_start, y[None], t_stop_, r)
        return y_end, event_condition(model, t_stop_, y_end, r) > 0

    def lane_root(model, t_start, t_stop_, y, r):
        # the crossing in (t_start, t_stop_], which the caller knows exists
        y = y[None]
        crossed = jnp.array(True)
        root, found = find_crossing(
            event_condition, seg.root_finder, model, t_start, t_stop_, y, r, crossed
        )
        t_hit = flow_crossing(
            model, t_start, t_stop_, y, r, crossed, root, condition=event_condition
        )
        return t_hit, model.flow(t_start, y, t_hit, r), found

    def lane_finish(model, t, y, refr_until, a, w, t_ref_i, t_end, t_stop, r, fire_now,
                    has_length, t_sol, y_sol, crossed):  # fmt: skip
        y = y[None]
        crossed = crossed & has_length
        y_still = y + model.vector_field(t, y, r) * (t_stop - t)
        t_new = jnp.where(has_length, t_sol, t_stop)
        y_new = jnp.where(has_length, y_sol, y_still)
        spiked = fire_now | crossed
        _, dcond = jax.jvp(
            lambda tt, yy: model.condition(tt, yy),
            (t_new, y_new),
            (jnp.ones_like(t_new), model.vector_field(t_new, y_new, r)),
        )
        slope = lax.stop_gradient(dcond[0])
        y_spk = model.reset(y_new, jnp.ones((1,), bool))
        is_arr = ~spiked & (t_new == a) & (a < t_end)
        y_arr = receive(model, y_new, jnp.reshape(w, (1,)), refr_until[None] > t_new)
        y_next = jnp.where(spiked, y_spk, jnp.where(is_arr, y_arr, y_new))[0]
        refr = jnp.where(spiked, t_new + t_ref_i, refr_until)
        lane_done = ~spiked & (t_new >= t_end) & ~(a < t_end)
        return t_new, y_next, refr, spiked, is_arr, slope, lane_done

    v = lambda f, *ax: eqx.filter_vmap(f, in_axes=(axes,) + ax)
    v_start = v(lane_start, 0, 0, 0, 0, None, None)
    v_solve = v(lane_solve, 0, 0, 0, 0)
    v_flow = v(lane_flow, 0, 0, 0, 0)
    v_root = v(lane_root, 0, 0, 0, 0)
    v_finish = v(lane_finish, *([0] * 6), None, *([0] * 7))
    roots = min(n, max(32, max_window_spikes // 4))  # root finds per step, at most

    def lane_body(k: _LaneConsts, c: _Lanes, read):
        # the lane's next arrival: the earliest (then lowest tie key) of its group
        # after the last one it took
        pos = k.start[:, None] + jnp.arange(max_window_events, dtype=jnp.int32)[None, :]
        in_group = pos < k.end[:, None]
        pos = jnp.where(in_group, pos, cap)
        grid_t = read("arr_t", pos)
        grid_tie = k.tie[pos]
        later = (grid_t > c.last_t[:, None]) | (
            (grid_t == c.last_t[:, None]) & (grid_tie > c.last_tie[:, None])
        )
        cand = in_group & later
        t_min = lax.stop_gradient(jnp.min(jnp.where(cand, grid_t, jnp.inf), axis=1))
        cand = cand & (grid_t == t_min[:, None])
        tie_a = jnp.min(jnp.where(cand, grid_tie, jnp.iinfo(jnp.int32).max), axis=1)
        # Tie keys are unique, so exactly one entry is picked, and it alone carries
        # the gradient (a `min` would share it between equal times). Sums instead of
        # an argmax, which XLA's CPU backend reduces slowly.
        pick = cand & (grid_tie == tie_a[:, None])
        a = jnp.where(jnp.any(pick, axis=1), jnp.sum(jnp.where(pick, grid_t, 0), axis=1), jnp.inf)
        w = jnp.sum(jnp.where(pick, read("arr_w", pos), 0), axis=1)
        active = ~c.lane_done
        t_start, t_stop, t_stop_, r, fire_now, has_length = v_start(
            k.model, c.t, c.y, c.refr_until, a, k.t_end, k.span
        )
        if seg.closed_form:
            y_end, crossed = v_flow(k.model, t_start, t_stop_, c.y, r)
            crossed = crossed & has_length & active
            # root finds on at most `roots` crossing lanes; the others wait a step

            def find(args):
                t_start, t_stop_, y, r, model = args
                idx = jnp.nonzero(crossed, size=roots, fill_value=n)[0]
                safe = jnp.minimum(idx, n - 1)
                t_hit, y_hit, found = v_root(
                    lanes_of(model, safe), t_start[safe], t_stop_[safe], y[safe], r[safe]
                )
                return (
                    t_stop_.at[idx].set(t_hit, mode="drop"),
                    y_end.at[idx].set(y_hit, mode="drop"),
                    jnp.ones((n,), bool).at[idx].set(found, mode="drop"),
                    jnp.zeros((n,), bool).at[idx].set(True, mode="drop"),
                )

            def skip(args):
                return t_stop_, y_end, jnp.ones((n,), bool), jnp.zeros((n,), bool)

            t_sol, y_sol, ok, chosen = lax.cond(
                jnp.any(crossed), find, skip, (t_start, t_stop_, c.y, r, k.model)
            )
            y_sol = y_sol[:, 0]
            active = active & ~(crossed & ~chosen)
        else:
            t_sol, y_sol, crossed, ok = v_solve(k.model, t_start, t_stop_, c.y, r)
            y_sol = y_sol[:, 0]
        ok = ok | ~has_length
        t_new, y_new, refr, spiked, is_arr, slope, lane_done = v_finish(
            k.model, c.t, c.y, c.refr_until, a, w, k.t_ref, k.t_end, t_stop, r, fire_now,
            has_length, t_sol, y_sol[:, None], crossed,
        )  # fmt: skip
        spiked = spiked & active
        is_arr = is_arr & active
        keep = lambda new, old: jnp.where(
            jnp.reshape(active, active.shape + (1,) * (new.ndim - 1)), new, old
        )
        # append this step's spikes to the window's spike buffer
        rank = jnp.cumsum(spiked, dtype=jnp.int32) - 1
        out = jnp.where(spiked, c.n_spk + rank, max_window_spikes)
        n_spk = c.n_spk + jnp.sum(spiked, dtype=jnp.int32)
        over = c.overflow | (n_spk > max_window_spikes)
        failed = c.failed | jnp.any(active & ~ok)
        lane_done = c.lane_done | (active & lane_done)
        carry = _Lanes(
            t=keep(t_new, c.t),
            y=keep(y_new, c.y),
            refr_until=keep(refr, c.refr_until),
            last_t=jnp.where(is_arr, a, c.last_t),
            last_tie=jnp.where(is_arr, tie_a, c.last_tie),
            n_spk=n_spk,
            done=jnp.all(lane_done) | over | failed,
            lane_done=lane_done,
            overflow=over,
            failed=failed,
        )
        ids = jnp.arange(n, dtype=jnp.int32)
        writes = dict(
            w_t=(out, t_new, spiked), w_i=(out, ids, spiked), w_slope=(out, slope, spiked)
        )
        return carry, writes

    # ------------------------------------------------------------------ one window
    def window_body(k: _WindowConsts, c: _Window, read):
        # window edges from the count (no drift); the last one ends at t1
        last = c.windows + 1 >= num_windows
        t_end = jnp.where(last, k.t1, k.t0 + (c.windows + 1).astype(k.length.dtype) * k.length)
        # The window's arrivals first, grouped by target, then the rest: one sort of
        # integer keys `target * capacity + slot`, which XLA sorts much faster than
        # several arrays with a comparator. Within a group the order is the slots';
        # each lane takes its arrivals in time order itself.
        inside = c.pend_t < t_end
        group = jnp.where(inside, c.pend_post, n)
        slots = jnp.arange(cap, dtype=jnp.int32)
        if (n + 1) * cap < _KEY_LIMIT:
            order = lax.sort(group * cap + slots) % cap
        else:  # (the keys would overflow int32: a two-key sort, slower)
            order = lax.sort((group, slots), num_keys=2)[1]
        pend_t, pend_tie, pend_w, pend_post = (
            x[order] for x in (c.pend_t, c.pend_tie, c.pend_w, c.pend_post)
        )
        counts = jnp.zeros((n + 1,), jnp.int32).at[group].add(1)[:n]
        start = jnp.cumsum(counts) - counts
        lanes = _Lanes(
            t=jnp.full((n,), c.t),
            y=c.y,
            refr_until=c.refr_until,
            last_t=jnp.full((n,), -jnp.inf, dtype),
            last_tie=jnp.full((n,), -1, jnp.int32),
            n_spk=jnp.array(0, jnp.int32),
            done=jnp.array(False),
            lane_done=jnp.zeros((n,), bool),
            overflow=jnp.array(False),
            failed=jnp.array(False),
        )
        lconsts = _LaneConsts(
            model=k.lane.model, t_ref=k.lane.t_ref, t_end=t_end, span=k.lane.span,
            start=start, end=start + counts,
            tie=jnp.concatenate([pend_tie, jnp.zeros((1,), jnp.int32)]),
        )
        bufs = dict(
            w_t=jnp.full((max_window_spikes,), jnp.inf, dtype),
            w_i=jnp.full((max_window_spikes,), n, jnp.int32),
            w_slope=jnp.full((max_window_spikes,), jnp.inf, dtype),
        )
        tables = dict(
            arr_t=jnp.concatenate([pend_t, jnp.full((1,), jnp.inf, dtype)]),
            arr_w=jnp.concatenate([pend_w, jnp.zeros((1,), dtype)]),
        )
        lanes, bufs = event_while_loop(
            lane_body, lanes, bufs, tables, lconsts,
            max_steps=max_window_events, kind=inner_kind, scalar_writes=False,
        )  # fmt: skip
        # a lane that did not reach the window's end ran out of steps
        unfinished = ~jnp.all(lanes.lane_done) & ~lanes.failed
        # the window's spikes in time order (ties: lowest neuron first)
        s_t, s_i, s_slope = lax.sort((bufs["w_t"], bufs["w_i"], bufs["w_slope"]), num_keys=2)
        real = s_i < n
        out_pos = c.n_out + jnp.arange(max_window_spikes, dtype=jnp.int32)
        room = out_pos < max_spikes
        pos = jnp.where(real & room, out_pos, max_spikes)
        n_real = jnp.sum(real, dtype=jnp.int32)
        overflow = c.overflow | (c.n_out + n_real > max_spikes)
        writes = dict(out_t=(pos, s_t, real & room), out_i=(pos, s_i, real & room),
                      out_slope=(pos, s_slope, real & room))  # fmt: skip
        # their arrivals: synapses offsets[i] + j, j < fan
        pre = jnp.where(real, s_i, 0)
        syn_idx = k.offsets[pre][:, None] + jnp.arange(fan, dtype=jnp.int32)[None, :]
        has_syn = real[:, None] & (syn_idx < k.offsets[pre + 1][:, None])
        syn_idx = jnp.where(has_syn, syn_idx, 0)
        w_new = read("syn_w", syn_idx)
        t_new = s_t[:, None] + read("syn_d", syn_idx)
        push = (has_syn & (t_new < k.t1)).reshape(-1)
        # consumed arrivals free their slots; the new ones fill free slots
        n_inside = jnp.sum(inside)
        slots = jnp.arange(cap)
        pend_t = jnp.where(slots < n_inside, jnp.inf, pend_t)
        free = pend_t == jnp.inf
        free_slots = jnp.nonzero(free, size=push.shape[0], fill_value=cap)[0]
        rank = jnp.clip(jnp.cumsum(push) - 1, 0, push.shape[0] - 1)
        dest = jnp.where(push, free_slots[rank], cap)
        # (the input arrivals' slots, once delivered, are free too: count the
        # recurrent arrivals against `max_pending` itself)
        recurrent = (pend_t < jnp.inf) & (pend_tie >= num_in)
        pend_over = c.pend_overflow | (
            jnp.sum(recurrent) + jnp.sum(push) > max_pending
        )
        carry = _Window(
            t=t_end,
            y=lanes.y,
            refr_until=lanes.refr_until,
            pend_t=pend_t.at[dest].set(t_new.reshape(-1), mode="drop"),
            pend_w=pend_w.at[dest].set(w_new.reshape(-1), mode="drop"),
            pend_post=pend_post.at[dest].set(k.syn_post[syn_idx].reshape(-1), mode="drop"),
            pend_tie=pend_tie.at[dest].set(num_in + syn_idx.reshape(-1).astype(jnp.int32),
                                           mode="drop"),  # fmt: skip
            n_out=c.n_out + n_real,
            done=jnp.array(False),
            overflow=overflow,
            window_overflow=c.window_overflow | lanes.overflow,
            events_overflow=c.events_overflow | unfinished | jnp.any(counts > max_window_events),
            pend_overflow=pend_over,
            failed=c.failed | lanes.failed,
            windows=c.windows + 1,
        )
        stop = (
            overflow | carry.window_overflow | carry.events_overflow | pend_over
            | carry.failed | last
        )  # fmt: skip
        carry = eqx.tree_at(lambda q: q.done, carry, stop)
        return carry, writes

    carry_bytes = (n * (state + 1) + 2 * cap) * np.dtype(dtype).itemsize + 8 * cap
    outer_kind, checkpoints = adjoint.loop_kind(num_windows, carry_bytes, _STORE_LIMIT)
    # (a window's inner loop is short: stored, unless the loop runs in forward mode)
    inner_kind = "lax" if outer_kind == "lax" else "stored"
    pad = lambda x, v, dt: jnp.concatenate([x.astype(dt), jnp.full((max_pending,), v, dt)])
    init = _Window(
        t=t0a,
        y=y0.astype(dtype),
        refr_until=jnp.full((n,), -jnp.inf, dtype),
        pend_t=pad(in_t, jnp.inf, dtype),
        pend_w=pad(in_w, 0, dtype),
        pend_post=pad(in_post, 0, jnp.int32),
        pend_tie=pad(in_tie, 0, jnp.int32),
        n_out=jnp.array(0, jnp.int32),
        done=jnp.array(False),
        overflow=jnp.array(False),
        window_overflow=jnp.array(False),
        events_overflow=jnp.array(False),
        pend_overflow=jnp.array(False),
        failed=jnp.array(False),
        windows=jnp.array(0, jnp.int32),
    )
    lane_consts = _LaneConsts(
        model=single, t_ref=t_ref, t_end=None, span=span, start=None, end=None, tie=None
    )
    consts = _WindowConsts(
        lane=lane_consts, t0=t0a, t1=t1a, length=jnp.asarray(length, dtype),
        syn_post=syn.post, offsets=syn.offsets,
    )  # fmt: skip
    buffers = dict(
        out_t=jnp.full((max_spikes,), jnp.inf, dtype),
        out_i=jnp.full((max_spikes,), n, jnp.int32),
        out_slope=jnp.full((max_spikes,), jnp.inf, dtype),
    )
    tables = dict(syn_w=syn.weight, syn_d=d_syn)
    final, buffers = event_while_loop(
        window_body, init, buffers, tables, consts, max_steps=num_windows, kind=outer_kind,
        checkpoints=checkpoints, scalar_writes=False,
    )  # fmt: skip
    flags = dict(
        overflow=final.overflow,
        window_overflow=final.window_overflow,
        events_overflow=final.events_overflow,
        pend_overflow=final.pend_overflow,
        failed=final.failed,
        unfinished=~final.done,
        max_pending=max_pending,
        max_window_spikes=max_window_spikes,
        max_window_events=max_window_events,
        windows=final.windows,
    )
    return buffers["out_t"], buffers["out_i"], buffers["out_slope"], final.y, flags


_STORE_LIMIT = 256 * 2**20
# grouping keys `target * capacity + slot` must fit in int32
_KEY_LIMIT = 2**31

"""The coupled loop: the whole population advanced from event to event, one segment
at a time, with the jumps (reset, recurrent and input kicks, delayed arrivals) between
segments; and the per-neuron loop, one coupled loop per independent neuron
(vmapped)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Scalar

from ._delays import check_delays, input_schedule, per_presynaptic, save_schedule
from ._results import RESULTS
from ._segment import (
    _checked_w_in,
    _one_neuron_model,
    check_dtype,
    earliest_pending,
    fires_now,
    first_of,
    masked_condition,
    merge_buffers,
    output_buffers,
    receive,
    time_span,
)
from ._simulation import buffer_failures, Failure, Problem, segment_failures, Simulation
from ._spikes import SpikeTrain
from ._stored_loop import event_while_loop, step_bytes
from ._synapses import Synapses
from .neurons import AbstractNeuron


class _Carry(eqx.Module):
    t: Scalar
    y: Array
    in_ptr: Array
    save_ptr: Array
    refr_until: Array
    n_out: Array
    done: Array
    overflow: Array
    failed: Array
    segments: Array
    # delayed recurrent arrivals (empty arrays without delays): times (+inf: free
    # slot) and keys `pre * (n + 1) + post` (`post == n`: every target)
    pend_t: Array
    pend_key: Array
    pend_overflow: Array


class _Consts(eqx.Module):
    neuron: AbstractNeuron
    # the model from `t_switch` on (`Problem.switch`), or None
    after: AbstractNeuron | None
    t_switch: Scalar
    t0: Scalar
    t1: Scalar
    in_ids: Array
    in_post: Array


def _coupled_connections(syn: Synapses):
    """`(w_rec, delays)` for the coupled loop from `Synapses`. Known (concrete)
    delays that are all 0 become no delays, delays that depend only on the presynaptic
    neuron one per neuron (a spike then takes one arrival slot, not one per neuron);
    otherwise (e.g. traced, inside `jit`) one per connection."""
    w, d = syn.to_dense()
    first = syn.presynaptic_delays()
    if first is None:
        return w, d
    if not np.any(first):
        return w, None
    return w, jnp.asarray(first[:, None], d.dtype)


def per_neuron_run(p: Problem, k: int) -> tuple[Simulation, list[Failure]]:
    """Independent neurons, one coupled loop each with room for `k` spikes (vmapped
    over neurons); the spikes merged into one train of capacity `p.max_spikes`."""
    if p.w_rec is not None:
        raise ValueError(
            "simulate: PerNeuronLoop needs independent neurons; it cannot be combined "
            "with recurrent weights `w_rec`."
        )
    neuron, inputs, y0 = p.neuron, p.inputs, p.y0
    n = neuron.num_neurons
    if inputs is not None:
        w_cols = _checked_w_in(inputs, p.w_in, n).T[:, :, None]
    else:
        w_cols = jnp.zeros((n, 0, 1), y0.dtype)
    if p.input_delays is not None:
        # each neuron's loop sees its own column of delays, as delays per source
        d_in = check_delays(p.input_delays, (inputs.num_neurons, n), "input_delays", y0.dtype)
        d_cols = jnp.broadcast_to(d_in, (inputs.num_neurons, n)).T[:, :, None]
    else:
        d_cols = jnp.zeros((n, 0, 1), y0.dtype)
    single, axes = _one_neuron_model(neuron)
    after = after_axes = t_switch = None
    if p.switch is not None:
        t_switch, after = p.switch
        after, after_axes = _one_neuron_model(after)

    def one(model, after_model, w_col, d_col, y0_i):
        sim, failures = coupled_run(p.replace(
            neuron=model, w_in=None if inputs is None else w_col,
            input_delays=None if p.input_delays is None else d_col, y0=y0_i[None],
            max_spikes=k, switch=None if after is None else (t_switch, after_model),
        ), max_pending=None)  # fmt: skip
        return sim, [flag for flag, _, _ in failures]

    sims, flags = eqx.filter_vmap(one, in_axes=(axes, after_axes, 0, 0, 0))(
        single, after, w_cols, d_cols, y0
    )
    overflow, _, failed, unfinished = (jnp.any(f) for f in flags)
    # merge the n buffers of k spikes into one sorted train of capacity max_spikes
    real = sims.spikes.neurons.reshape(-1) == 0
    ids = jnp.where(real, jnp.repeat(jnp.arange(n, dtype=jnp.int32), k), n)
    times, ids, slopes = merge_buffers(
        sims.spikes.times.reshape(-1), ids, sims.slopes.reshape(-1), p.max_spikes, n
    )
    ys = None if sims.ys is None else jnp.moveaxis(sims.ys[:, :, 0], 0, 1)
    sim = Simulation(
        spikes=SpikeTrain(times, ids, n),
        t0=sims.t0[0],
        t1=sims.t1[0],
        ts=None if sims.ts is None else sims.ts[0],
        ys=ys,
        y_final=sims.y_final[:, 0],
        slopes=slopes,
        result=RESULTS.successful,
        num_segments=jnp.sum(sims.num_segments),
    )
    failures = [
        (overflow, RESULTS.max_spikes_per_neuron_reached, "simulate: a neuron fired "
         f"more than max_spikes_per_neuron={k} times. Raise PerNeuronLoop's "
         "`max_spikes_per_neuron`."),
        (jnp.sum(real) > p.max_spikes, RESULTS.max_spikes_reached, "simulate: more "
         f"than max_spikes={p.max_spikes} spikes in the population. Raise `max_spikes`."),
    ]  # fmt: skip
    return sim, failures + segment_failures(failed, unfinished, "per-neuron loop")


def coupled_run(p: Problem, max_pending: int | None) -> tuple[Simulation, list[Failure]]:
    """The coupled loop over problem `p` (see `CoupledLoop`); returns the simulation,
    its spike times not yet checked, and its failures."""
    neuron, y0, w_rec, max_spikes = p.neuron, p.y0, p.w_rec, p.max_spikes
    delays = p.delays
    if isinstance(w_rec, Synapses):
        w_rec, delays = _coupled_connections(w_rec)
    n = neuron.num_neurons
    dtype = y0.dtype
    check_dtype(dtype)
    t0, t1 = time_span(p.t0, p.t1, dtype)

    # ---- inputs: sorted arrivals, padded with one extra +inf; kick rows with a zero row
    in_times, in_ids, in_post, w_in_pad = input_schedule(
        p.inputs, p.w_in, p.input_delays, n, dtype, t0
    )
    if w_rec is not None:
        w_rec = jnp.asarray(w_rec)
        if w_rec.shape != (n, n):
            raise ValueError(
                f"simulate: `w_rec` has shape {w_rec.shape}; expected ({n}, {n})."
            )
        w_rec = w_rec.astype(dtype)
    # ---- recurrent delays: a spike puts `fan` arrivals into a buffer of `max_pending`
    delayed = delays is not None
    if delayed:
        d_rec = check_delays(delays, (n, n), "delays", dtype)
        fan = 1 if per_presynaptic(d_rec) else n
        d_rec = jnp.broadcast_to(d_rec, (n, fan))
        if max_pending is None:
            max_pending = fan * min(max_spikes, 32)
        pend_targets = np.arange(fan, dtype=np.int32) if fan > 1 else np.full(1, n, np.int32)
    else:
        fan = 0
        max_pending = 0

    num_save, save_ts, save_pad = save_schedule(p.save_ts, t0, t1, dtype)
    solve = p.segment.solve
    after, t_switch = None, jnp.asarray(jnp.inf, dtype)
    if p.switch is not None:
        t_switch, after = p.switch
        t_switch = jnp.asarray(t_switch, dtype)
        if jax.tree_util.tree_structure(after) != jax.tree_util.tree_structure(neuron):
            raise ValueError(
                f"simulate: the model after the switch ({type(after).__name__}) must "
                f"have the structure of the model before it ({type(neuron).__name__})."
            )

    def body(k: _Consts, c: _Carry, read):
        # Everything traced comes in through `k` (differentiated as a whole), the
        # carry `c`, or `read(site, index)` (one row of a table; see _stored_loop).
        if after is None:
            neuron, t_switch_next = k.neuron, jnp.asarray(jnp.inf, dtype)
        else:
            # the model in force from `c.t` on; a segment ends at the switch
            switched = c.t >= k.t_switch
            neuron = jax.tree_util.tree_map(
                lambda a, b: jnp.where(switched, b, a), k.neuron, k.after
            )
            t_switch_next = jnp.where(switched, jnp.inf, k.t_switch)
        t_ref = jnp.broadcast_to(jnp.asarray(neuron.refractory_period, dtype), (n,))
        refractory = c.refr_until > c.t
        t_in = read("in_times", c.in_ptr)
        t_save = read("save", c.save_ptr)
        # the earliest end of a refractory period (one neuron's alone carries the
        # gradient: a `min` would share it between equal times)
        releasing = jnp.where(refractory, c.refr_until, jnp.inf)
        t_release = releasing[jnp.argmin(releasing)]
        if delayed:
            # the earliest pending arrival; on ties the lowest key (pre, then post)
            slot, t_pend = earliest_pending(c.pend_t, c.pend_key)
        else:
            t_pend = jnp.asarray(jnp.inf, dtype)
        # in the order in which coinciding items are processed: saves, input arrivals,
        # recurrent arrivals, ends of refractory periods, the model switch
        t_sched = first_of(t_save, t_in, t_pend, t_release, t_switch_next, k.t1)
        # A neuron already at threshold (e.g. a jump put it there) fires now.
        fire_now = fires_now(neuron, c.t, c.y, refractory)
        # A segment ends at the next scheduled time (differentiable: input spike times
        # move it) or earlier where the model says a crossing could hide. That
        # breakpoint does not change the trajectory, so it carries no gradient.
        t_safe = lax.stop_gradient(neuron.safe_step_end(c.t, c.y, t_sched, refractory))
        t_end = jnp.where(t_safe < t_sched, t_safe, t_sched)
        t_end = jnp.where(fire_now, c.t, t_end)
        has_length = t_end > c.t
        # Segments without length (coinciding scheduled times, immediate spikes) need
        # no solve; it runs anyway (with a dummy positive length: Diffrax fills the
        # dense info of a zero-length solve with zeros, which a root find under vmap
        # would then evaluate) and its result is discarded, without gradient.
        t_start = jnp.where(has_length, c.t, lax.stop_gradient(c.t))
        t_stop = jnp.where(has_length, t_end, t_start + 1e-4 * (k.t1 - k.t0))
        t_sol, y_sol, spiked_solve, ok = solve(neuron, t_start, t_stop, c.y, refractory, read)
        spiked_solve = spiked_solve & has_length
        ok = ok | ~has_length
        # Without length, the end time still carries the gradient of the scheduled
        # time (e.g. the second of two coinciding input spikes), and the state its
        # first-order dependence on it: y + f(y) (t_end - t), which equals y.
        y_still = c.y + neuron.vector_field(c.t, c.y, refractory) * (t_end - c.t)
        t_new = jnp.where(has_length, t_sol, t_end)
        y_new = jnp.where(has_length, y_sol, y_still)
        spiked = fire_now | spiked_solve

        cond_new = masked_condition(neuron, t_new, y_new, refractory)
        # The spiking neuron: the lowest index at or above threshold (after a jump
        # several can be; the event-driven and windowed loops fire them in the same
        # order), else (a crossing reached from below) the largest condition.
        i = jnp.argmax(jnp.where(cond_new >= 0, jnp.inf, cond_new))
        fired = (jnp.arange(n) == i) & spiked
        _, dcond = jax.jvp(
            lambda tt, yy: neuron.condition(tt, yy),
            (t_new, y_new),
            (jnp.ones_like(t_new), neuron.vector_field(t_new, y_new, refractory)),
        )
        slope = lax.stop_gradient(dcond[i])
        room = c.n_out < max_spikes
        write = spiked & room
        overflow = c.overflow | (spiked & ~room)

        # jumps: spike (reset + recurrent kick, or arrivals scheduled), else scheduled
        # items at t_end; a kick reaches the neurons refractory then (after the spike)
        # unless the model says otherwise (`receive`)
        refr_until = jnp.where(fired, t_new + t_ref, c.refr_until)
        refractory_now = refr_until > t_new
        y_spk = neuron.reset(y_new, fired)
        if w_rec is not None and not delayed:
            y_spk = receive(neuron, y_spk, read("w_rec", i), refractory_now)
        is_save = ~spiked & (t_new == t_save) & (t_save <= t_in)
        is_input = ~spiked & ~is_save & (t_new == t_in) & (t_in < k.t1)
        targets = jnp.arange(n, dtype=jnp.int32)
        w_inp = read("w_in", k.in_ids[c.in_ptr])
        post = k.in_post[c.in_ptr]
        w_inp = jnp.where((post == n) | (targets == post), w_inp, 0)
        y_inp = receive(neuron, y_new, w_inp, refractory_now)
        y_next = jnp.where(spiked, y_spk, jnp.where(is_input, y_inp, y_new))
        pend = {}
        if delayed:
            is_pend = ~spiked & ~is_save & ~is_input & (t_new == t_pend) & (t_pend < k.t1)
            pre, post = c.pend_key[slot] // (n + 1), c.pend_key[slot] % (n + 1)
            w_pend = read("w_rec", pre)
            w_pend = jnp.where((post == n) | (targets == post), w_pend, 0)
            y_pend = receive(neuron, y_new, w_pend, refractory_now)
            y_next = jnp.where(is_pend, y_pend, y_next)
            # deliver (free the slot), or schedule the spike's arrivals before t1
            pend_t = jnp.where(is_pend & (jnp.arange(max_pending) == slot), jnp.inf, c.pend_t)
            t_arr = t_new + read("delays", i)
            push = spiked & (t_arr < k.t1)
            free = pend_t == jnp.inf
            free_slots = jnp.nonzero(free, size=fan, fill_value=max_pending)[0]
            rank = jnp.clip(jnp.cumsum(push) - 1, 0, fan - 1)
            dest = jnp.where(push, free_slots[rank], max_pending)
            pend = dict(
                pend_t=pend_t.at[dest].set(t_arr, mode="drop"),
                pend_key=c.pend_key.at[dest].set(
                    i.astype(jnp.int32) * (n + 1) + pend_targets, mode="drop"
                ),
                pend_overflow=c.pend_overflow | (jnp.sum(push) > jnp.sum(free)),
            )

        idx = jnp.minimum(c.n_out, max_spikes - 1)
        writes = dict(
            out_t=(idx, t_new, write),
            out_i=(idx, i.astype(jnp.int32), write),
            out_slope=(idx, slope, write),
        )
        if num_save:
            writes["ys"] = (jnp.minimum(c.save_ptr, num_save - 1), y_new, is_save)
        save_ptr = c.save_ptr + is_save.astype(jnp.int32)
        if delayed:
            overflow = overflow | pend["pend_overflow"]
        done = (
            overflow
            | ~ok
            | ((t_new >= k.t1) & ~spiked & (read("save_next", save_ptr) > k.t1))
        )
        carry = _Carry(
            t=t_new,
            y=y_next,
            in_ptr=c.in_ptr + is_input.astype(jnp.int32),
            save_ptr=save_ptr,
            refr_until=refr_until,
            n_out=c.n_out + write.astype(jnp.int32),
            done=done,
            overflow=overflow,
            failed=c.failed | ~ok,
            segments=c.segments + 1,
            pend_t=pend.get("pend_t", c.pend_t),
            pend_key=pend.get("pend_key", c.pend_key),
            pend_overflow=pend.get("pend_overflow", c.pend_overflow),
        )
        return carry, writes

    num_in = in_times.shape[0] - 1
    max_segments = p.max_segments
    if max_segments is None:
        max_segments = num_in + num_save + (2 + fan) * max_spikes + 4 + (after is not None)
    init = _Carry(
        t=t0,
        y=y0.astype(dtype),
        in_ptr=jnp.array(0, jnp.int32),
        save_ptr=jnp.array(0, jnp.int32),
        refr_until=jnp.full((n,), -jnp.inf, dtype),
        n_out=jnp.array(0, jnp.int32),
        done=jnp.array(False),
        overflow=jnp.array(False),
        failed=jnp.array(False),
        segments=jnp.array(0, jnp.int32),
        pend_t=jnp.full((max_pending,), jnp.inf, dtype),
        pend_key=jnp.zeros((max_pending,), jnp.int32),
        pend_overflow=jnp.array(False),
    )
    buffers = output_buffers(max_spikes, n, num_save, neuron.state_size, dtype)
    tables = dict(in_times=in_times, save=save_pad, save_next=save_pad, w_in=w_in_pad)
    if w_rec is not None:
        tables["w_rec"] = w_rec
    if delayed:
        tables["delays"] = d_rec
    consts = _Consts(
        neuron=neuron, after=after, t_switch=t_switch, t0=t0, t1=t1, in_ids=in_ids,
        in_post=in_post,
    )  # fmt: skip
    kind, checkpoints = p.adjoint.loop_kind(max_segments, step_bytes(init))
    final, buffers = event_while_loop(
        body, init, buffers, tables, consts, max_steps=max_segments, kind=kind,
        checkpoints=checkpoints,
    )  # fmt: skip
    ys = buffers.get("ys")
    spikes = SpikeTrain(buffers["out_t"], buffers["out_i"], n)
    sim = Simulation(
        spikes=spikes,
        t0=t0,
        t1=t1,
        ts=save_ts,
        ys=ys,
        y_final=final.y,
        slopes=buffers["out_slope"],
        result=RESULTS.successful,
        num_segments=final.segments,
    )
    failures = buffer_failures(
        final.overflow & ~final.pend_overflow, final.pend_overflow, max_spikes, max_pending
    )
    return sim, failures + segment_failures(final.failed, ~final.done, "coupled loop")


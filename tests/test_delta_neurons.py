"""Delta-synapse neurons (`DeltaLIF`, `DeltaIF`): an input moves the voltage at once,
and a neuron put at or above threshold by a jump fires at that very time.

References: spike times and final voltages against an event-by-event closed form in
NumPy written here (`_reference`, independent of the loops and of `spikeode._verify`)
and against values worked out by hand; gradients against finite differences with both
gradient methods, and against the derivatives by hand of a spike at a jump (the
arrival time's: 1 for its time, 0 for the weights) and of a flow crossing; the
event-driven, windowed and per-neuron loops and `first_spikes` against the coupled
loop (spikes, final states, gradients).
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import RuntimeErr

import spikeode as so

T1 = 0.06
KINDS = ("lif", "if")


# ------------------------------------------------------------------ the reference
def _reference(kind, neuron, t1, inputs=None, w_in=None, w_rec=None, delays=None):
    """`(times, neurons, v_final)` of a population of `DeltaLIF` (`kind == "lif"`) or
    `DeltaIF` neurons, event by event: between events the voltage in closed form
    (`b + (v - b) exp(-s / tau)` or `v + b s`) and the next flow crossing from its
    inverse; a neuron at or above threshold fires at once (several: lowest index
    first, each followed by its recurrent kicks); a refractory neuron is held at
    `v_reset` and ignores input; arrivals come one at a time, each followed by the
    spikes it causes: an input spike kicks every neuron at once, a delayed recurrent
    spike one target; at equal times inputs first, in the train's order, then by
    (presynaptic, postsynaptic neuron)."""
    n = neuron.num_neurons
    get = lambda name, default=1.0: np.broadcast_to(
        np.asarray(getattr(neuron, name, default), float), (n,)
    )
    tau, thr, v_reset, bias, t_ref = (
        get(k) for k in ("tau_mem", "threshold", "v_reset", "bias", "refractory_period")
    )
    v, refr = np.zeros(n), np.full(n, -np.inf)
    queue = []  # (time, 0: input / 1: recurrent, order, weights onto every neuron)
    if inputs is not None:
        valid = np.asarray(inputs.valid)
        times, ids = np.asarray(inputs.times)[valid], np.asarray(inputs.neurons)[valid]
        w_in = np.asarray(w_in, float)
        queue = [(ti, 0, m, w_in[j]) for m, (ti, j) in enumerate(zip(times, ids))]
    queue = [a for a in queue if a[0] < t1]
    t, out_t, out_i = 0.0, [], []
    while True:
        free = ~(refr > t)
        above = np.flatnonzero(free & (v >= thr))
        if above.size:
            j = above[0]
            out_t.append(t)
            out_i.append(j)
            v[j], refr[j] = v_reset[j], t + t_ref[j]
            if w_rec is not None and delays is None:
                v = v + np.where(refr > t, 0.0, w_rec[j])
            elif w_rec is not None:
                for post in range(n):
                    if t + delays[j, post] < t1:
                        kick = np.where(np.arange(n) == post, w_rec[j, post], 0.0)
                        queue.append((t + delays[j, post], 1, j * n + post, kick))
            continue
        queue.sort(key=lambda a: a[:3])
        with np.errstate(divide="ignore", invalid="ignore"):
            if kind == "lif":
                gap = np.where(bias > thr, tau * np.log((bias - v) / (bias - thr)), np.inf)
            else:
                gap = np.where(bias > 0, (thr - v) / bias, np.inf)
        t_cross = np.where(free, t + gap, np.inf)
        t_next = min(queue[0][0] if queue else np.inf, np.min(refr[refr > t], initial=np.inf),
                     np.min(t_cross), t1)  # fmt: skip
        s = t_next - t
        flowed = bias + (v - bias) * np.exp(-s / tau) if kind == "lif" else v + bias * s
        v = np.where(free, flowed, v)
        # a crossing reaches the threshold exactly (it fires next, before an arrival)
        crossing = t_cross == t_next
        v = np.where(crossing, np.maximum(v, thr), v)
        t = t_next
        if t >= t1:
            break
        if not crossing.any() and queue and queue[0][0] == t:  # one arrival at a time
            v = v + np.where(refr > t, 0.0, queue.pop(0)[3])
    return np.array(out_t), np.array(out_i, int), v


def _same_spikes(sim, ref, tol=1e-12, ordered=True):
    """The simulation's spikes are the reference's: the same neurons in the same order
    (else, `ordered=False`, in the same order once sorted by time and then neuron, for
    loops that list the spikes of one instant by neuron) and times within `tol`.
    Returns the largest time difference."""
    times, ids = ref[0], ref[1]
    k = int(sim.spikes.num_spikes)
    t, i = np.asarray(sim.spikes.times[:k]), np.asarray(sim.spikes.neurons[:k])
    assert k == len(times), (k, len(times))
    if not ordered:
        a, b = np.lexsort((i, t)), np.lexsort((ids, times))
        t, i, times, ids = t[a], i[a], times[b], ids[b]
    np.testing.assert_array_equal(i, ids)
    err = float(np.max(np.abs(t - times), initial=0.0))
    assert err <= tol, err
    return err


def _jumps(t, in_times):
    """Which spikes happened at a jump: at an input's time, or at the previous spike's
    time (a recurrent kick at one instant)."""
    return np.isin(t, in_times) | np.r_[False, t[1:] == t[:-1]]


# ------------------------------------------------------------------ networks
def _model(kind, n, rng, **kw):
    """A population with per-neuron parameters, refractory periods, and a bias that
    drives some neurons above threshold."""
    par = dict(
        threshold=rng.uniform(0.9, 1.1, n),
        v_reset=rng.uniform(-0.2, 0.1, n),
        refractory_period=rng.uniform(0.5e-3, 2e-3, n),
    )
    if kind == "lif":
        par |= dict(tau_mem=rng.uniform(0.01, 0.03, n), bias=rng.uniform(0.8, 2.5, n))
        return so.DeltaLIF(n, **(par | kw))
    return so.DeltaIF(n, **(par | dict(bias=rng.uniform(10.0, 40.0, n)) | kw))


def _network(kind, seed, n=12, n_in=4):
    rng = np.random.default_rng(seed)
    inputs = so.SpikeTrain.from_lists([np.sort(rng.uniform(0, 0.05, 4)) for _ in range(n_in)])
    w_in = jnp.asarray(rng.normal(0.25, 0.4, (n_in, n)))
    w_rec = jnp.asarray(rng.normal(0.0, 0.25, (n, n)))
    return _model(kind, n, rng), inputs, w_in, w_rec


def _loss(sim):
    """A smooth function of every spike time and the final state that does not
    depend on the order in which one instant's spikes are listed."""
    t = jnp.where(sim.spikes.valid, sim.spikes.times, 0.0)
    weight = 1.0 + 0.1 * sim.spikes.neurons.astype(t.dtype)
    return jnp.sum(jnp.sin(50.0 * t) * weight) + jnp.sum(sim.y_final**2)


def _loss_and_sim(p, inputs, loop, delays, syn):
    x = so.SpikeTrain(p["in_times"], inputs.neurons, inputs.num_neurons)
    # (sparse weights: `syn`, known when compiled, with the dense parameter's entries)
    w_rec = p["w_rec"] if syn is None else eqx.tree_at(lambda s: s.weight, syn,
                                                        p["w_rec"].reshape(-1))  # fmt: skip
    sim = so.simulate(p["neuron"], T1, x, p["w_in"], w_rec=w_rec, delays=delays,
                      max_spikes=300, loop=loop)  # fmt: skip
    return _loss(sim), sim


@eqx.filter_jit
def _dense_value_and_grad(params, inputs, loop, delays):
    return eqx.filter_value_and_grad(_loss_and_sim, has_aux=True)(
        params, inputs, loop, delays, None
    )


def _value_and_grad(params, inputs, loop, delays=None, syn=None):
    """The loss, the simulation and the gradient with respect to `params` (model,
    `w_in`, dense `w_rec`, input times); with `syn` (`Synapses` of every entry of
    `w_rec`, closed over: their zero delays must be known when compiled) through
    sparse connections. Dense runs are compiled once per network shape and loop."""
    if syn is None:
        return _dense_value_and_grad(params, inputs, loop, delays)
    fn = lambda p: _loss_and_sim(p, inputs, loop, delays, syn)
    return eqx.filter_jit(eqx.filter_value_and_grad(fn, has_aux=True))(params)


def _params(neuron, inputs, w_in, w_rec):
    return dict(neuron=neuron, w_in=w_in, w_rec=w_rec, in_times=inputs.times)


# ------------------------------------------------------------------ the models
def test_models_contract_and_closed_forms():
    lif = so.DeltaLIF(3, tau_mem=jnp.array([0.01, 0.02, 0.04]), bias=1.5, v_reset=-0.1)
    nif = so.DeltaIF(3, bias=jnp.array([0.0, 10.0, -5.0]), refractory_period=1e-3)
    for m in (lif, nif):
        assert m.state_size == 1 and m.init_state().shape == (3, 1)
        assert isinstance(m, so.AbstractFlowNeuron) and not m.receives_while_refractory
        np.testing.assert_array_equal(m.receive(m.init_state(), jnp.array([0.5, -1.0, 2.0])),
                                      [[0.5], [-1.0], [2.0]])  # fmt: skip
        again = dataclasses.replace(m)  # the fields are the constructor's arguments
        assert jax.tree_util.tree_structure(again) == jax.tree_util.tree_structure(m)
        one = m.one_neuron(2)
        assert type(one) is type(m) and one.num_neurons == 1
        # the flow solves the vector field, composes, and holds refractory neurons
        y0 = jnp.array([[0.3], [-0.2], [0.9]])
        free, refr = jnp.zeros(3, bool), jnp.array([False, True, False])
        _, dy = jax.jvp(lambda s: m.flow(0.01, y0, s, free), (0.01,), (1.0,))
        np.testing.assert_allclose(dy, m.vector_field(0.01, y0, free), rtol=1e-14)
        via = m.flow(0.015, m.flow(0.01, y0, 0.015, refr), 0.03, refr)
        np.testing.assert_allclose(via, m.flow(0.01, y0, 0.03, refr), rtol=1e-14, atol=1e-15)
        assert float(m.flow(0.01, y0, 0.03, refr)[1, 0]) == -0.2
    # closed forms: tau dv/dt = b - v and dv/dt = b
    s = 0.013
    v = lif.flow(0.0, jnp.full((3, 1), 0.2), s, jnp.zeros(3, bool))[:, 0]
    np.testing.assert_allclose(v, 1.5 - 1.3 * np.exp(-s / np.array([0.01, 0.02, 0.04])),
                               rtol=1e-15)  # fmt: skip
    v = nif.flow(0.0, jnp.full((3, 1), 0.2), s, jnp.zeros(3, bool))[:, 0]
    np.testing.assert_allclose(v, 0.2 + np.array([0.0, 10.0, -5.0]) * s, rtol=1e-15)
    # capabilities: DeltaLIF's free response is linear in exp(-t/tau_mem)
    assert isinstance(lif, so.AbstractFirstSpikeNeuron)
    assert not isinstance(nif, so.AbstractFirstSpikeNeuron)
    assert {f.name for f in dataclasses.fields(nif)} == {
        "num_neurons", "threshold", "v_reset", "refractory_period", "bias"
    }  # fmt: skip


def test_bad_parameters_raise_clear_errors():
    with pytest.raises(ValueError, match=r"`DeltaLIF tau_mem` must be positive"):
        so.DeltaLIF(2, tau_mem=0.0)
    with pytest.raises(ValueError, match=r"`DeltaLIF tau_mem` must be positive"):
        so.DeltaLIF(2, tau_mem=jnp.array([0.02, -0.01]))
    for cls in (so.DeltaLIF, so.DeltaIF):
        name = cls.__name__
        with pytest.raises(ValueError, match=f"{name}: `v_reset` must lie below `threshold`"):
            cls(2, v_reset=1.0)
        with pytest.raises(ValueError, match=f"{name}: `v_reset` must lie below `threshold`"):
            cls(2, threshold=jnp.array([1.0, 0.5]), v_reset=0.6)
        with pytest.raises(ValueError, match=f"`{name} refractory_period` must be non-negative"):
            cls(2, refractory_period=-1e-3)
        with pytest.raises(ValueError, match=r"parameter `bias` has shape \(3,\)"):
            cls(2, bias=jnp.zeros(3))
        with pytest.raises(ValueError, match="parameter `threshold` contains NaN"):
            cls(2, threshold=jnp.nan)
        with pytest.raises(ValueError, match="`num_neurons` must be a positive int"):
            cls(0)
    # values reached inside jit (e.g. by training) are checked by simulate
    inputs = so.SpikeTrain.from_lists([[0.01]])

    @eqx.filter_jit
    def run(m):
        return so.simulate(m, T1, inputs, jnp.ones((1, 2)), max_spikes=4)

    bad = eqx.tree_at(lambda m: m.tau_mem, so.DeltaLIF(2), jnp.asarray(-0.02))
    with pytest.raises(RuntimeErr, match=r"`DeltaLIF tau_mem` must be positive"):
        run(bad)
    bad = eqx.tree_at(lambda m: m.v_reset, so.DeltaIF(2), jnp.asarray(2.0))
    with pytest.raises(RuntimeErr, match=r"DeltaIF: `v_reset` must lie below `threshold`"):
        run(bad)


# ------------------------------------------------------------------ by hand
# Dyadic times and periods (exact in binary): an input at the end of a refractory
# period arrives exactly then.
T_A, T_REF, T_B = 2.0**-7, 2.0**-8, 2.0**-6


def _by_hand_run():
    """Neuron 0: kicked to 1.2 at T_A (fires), an input during its refractory period
    (ignored) and one at its end (fires again). Neuron 2: kicked exactly to threshold
    by the first of two inputs at T_B; neuron 1 only by the second (the order at one
    instant). Neuron 3: driven by its bias alone (flow crossings, periodic with its
    refractory period)."""
    lif = so.DeltaLIF(4, tau_mem=0.02, v_reset=-0.1, bias=jnp.array([0.0, 0.0, 0.0, 1.5]),
                      refractory_period=jnp.array([T_REF, 0.0, 0.0, 2e-3]))  # fmt: skip
    inputs = so.SpikeTrain.from_lists([[T_A, T_A + T_REF / 2, T_A + T_REF], [T_B], [T_B]])
    w_in = jnp.array([[1.2, 0.3, 0.0, 0.0], [0.0, 0.2, 1.0, 0.0], [0.0, 0.3, 0.0, 0.0]])

    def spikes(p):
        x = so.SpikeTrain(p["in_times"], inputs.neurons, 3)
        sim = so.simulate(p["neuron"], T1, x, p["w_in"], max_spikes=16,
                          save_ts=jnp.array([T_A + T_REF * 0.75]))  # fmt: skip
        return sim.spikes.times, sim

    p = dict(neuron=lif, w_in=w_in, in_times=inputs.times)
    jac, sim = eqx.filter_jit(eqx.filter_jacrev(spikes, has_aux=True))(p)
    return sim, lambda k: jax.tree_util.tree_map(lambda x: x[k], jac)


def test_jumps_fire_at_the_arrival_and_flow_crossings_by_hand():
    sim, d_spike = _by_hand_run()
    t_3 = 0.02 * np.log(1.5 / 0.5)  # from rest, then from v_reset after 2 ms
    t_3b = t_3 + 2e-3 + 0.02 * np.log(1.6 / 0.5)
    want = [(T_A, 0), (T_A + T_REF, 0), (T_B, 2), (T_B, 1), (t_3, 3), (t_3b, 3)]
    k = int(sim.spikes.num_spikes)
    assert k == len(want)
    np.testing.assert_array_equal(sim.spikes.neurons[:k], [i for _, i in want])
    # spikes at jumps at exactly the arrival time; flow crossings to round-off
    np.testing.assert_array_equal(sim.spikes.times[:4], [t for t, _ in want[:4]])
    np.testing.assert_allclose(sim.spikes.times[4:k], [t_3, t_3b], rtol=2e-15)
    # during the refractory period the voltage stays at v_reset (the input is ignored)
    assert float(sim.ys[0, 0, 0]) == -0.1
    # derivatives: a spike at a jump moves with its input's time only ...
    g = d_spike(2)  # neuron 2 at T_B, kicked by input spike 3 (the first at T_B)
    np.testing.assert_array_equal(g["in_times"], [0, 0, 0, 1.0, 0])
    np.testing.assert_array_equal(g["w_in"], 0.0)
    assert all(float(jnp.sum(jnp.abs(x))) == 0 for x in jax.tree_util.tree_leaves(g["neuron"]))
    g = d_spike(1)  # T_A + T_REF: the input at the end of the refractory period
    np.testing.assert_array_equal(g["in_times"], [0, 0, 1.0, 0, 0])
    # ... a flow crossing t = tau log(b / (b - threshold)) by the implicit function
    # theorem
    g = d_spike(4)
    tau, b = 0.02, 1.5
    np.testing.assert_allclose(g["neuron"].tau_mem, np.log(b / (b - 1.0)), rtol=1e-12)
    np.testing.assert_allclose(g["neuron"].bias[3], tau * (1 / b - 1 / (b - 1.0)), rtol=1e-12)
    np.testing.assert_allclose(g["neuron"].threshold, tau / (b - 1.0), rtol=1e-12)


def test_delta_if_fires_periodically_by_hand():
    # bias 64 and threshold 1: a spike every 1/64 after the refractory period
    nif = so.DeltaIF(2, bias=jnp.array([64.0, 0.0]), v_reset=jnp.array([0.0, -0.5]),
                     refractory_period=T_REF)  # fmt: skip
    inputs = so.SpikeTrain.from_lists([[0.01, 0.02]])
    sim = so.simulate(nif, T1, inputs, jnp.array([[0.0, 1.5]]), max_spikes=8)
    k = int(sim.spikes.num_spikes)
    periodic = (np.arange(1, 4) * (1 / 64 + T_REF) - T_REF).tolist()
    want = sorted([(t, 0) for t in periodic] + [(0.01, 1), (0.02, 1)])
    np.testing.assert_array_equal(sim.spikes.neurons[:k], [i for _, i in want])
    np.testing.assert_allclose(sim.spikes.times[:k], [t for t, _ in want], rtol=1e-15)


# ------------------------------------------------------------------ networks
@pytest.mark.parametrize("kind", KINDS)
def test_recurrent_network_matches_the_closed_form(kind):
    neuron, inputs, w_in, w_rec = _network(kind, 11)  # (as the event-driven loop's)
    params = _params(neuron, inputs, w_in, w_rec)
    (_, sim), _ = _value_and_grad(params, inputs, so.CoupledLoop(max_pending=2000))
    ref = _reference(kind, neuron, T1, inputs, np.asarray(w_in), np.asarray(w_rec))
    err = _same_spikes(sim, ref)
    np.testing.assert_allclose(sim.y_final[:, 0], ref[2], rtol=1e-12, atol=1e-13)
    # spikes at jumps (inputs, recurrent kicks at one instant) and by the flow
    t = ref[0]
    at_jump = _jumps(t, np.asarray(inputs.times))
    cascades = np.sum(np.r_[False, t[1:] == t[:-1]])
    assert len(t) > 30 and np.sum(~at_jump) >= 5 and cascades >= 3, (len(t), at_jump, cascades)
    assert err < 1e-13


def test_layers_match_the_closed_form_layer_by_layer():
    rng = np.random.default_rng(5)
    inputs = so.SpikeTrain.from_lists([np.sort(rng.uniform(0, 0.05, 4)) for _ in range(5)])
    first = so.nn.SpikingLayer(5, 8, max_spikes=100, neuron=_model("lif", 8, rng),
                               w_mean=0.3, w_std=0.4, key=jax.random.key(1))  # fmt: skip
    second = so.nn.SpikingLayer(8, 3, max_spikes=100, neuron=_model("if", 3, rng),
                                w_mean=0.3, w_std=0.4, key=jax.random.key(2))  # fmt: skip
    sims = so.nn.Sequential([first, second])(inputs, T1)
    ref1 = _reference("lif", first.neuron, T1, inputs, np.asarray(first.w_in))
    _same_spikes(sims[0], ref1)
    ref2 = _reference("if", second.neuron, T1, sims[0].spikes, np.asarray(second.w_in))
    _same_spikes(sims[1], ref2)
    assert len(ref1[0]) > 10 and len(ref2[0]) > 5
    # the per-neuron loop gives the same first layer
    per = so.simulate(first.neuron, T1, inputs, first.w_in, max_spikes=100,
                      loop=so.PerNeuronLoop(32))  # fmt: skip
    _same_spikes(per, ref1)


def _chain(n=4, w=1.2, loop_back=False, refractory_period=0.0):
    """A recurrent layer whose neuron i kicks neuron i + 1 over threshold (and, with
    `loop_back`, the last one the first): a cascade at one instant."""
    w_rec = jnp.zeros((n, n)).at[jnp.arange(n - 1), jnp.arange(1, n)].set(w)
    if loop_back:
        w_rec = w_rec.at[n - 1, 0].set(w)
    layer = so.nn.RecurrentLayer(1, n, max_spikes=8, neuron=so.DeltaLIF(
        n, bias=0.5, refractory_period=refractory_period), key=jax.random.key(0))  # fmt: skip
    return eqx.tree_at(lambda m: (m.w_in, m.w_rec), layer,
                       (jnp.zeros((1, n)).at[0, 0].set(1.1), w_rec))  # fmt: skip


@eqx.filter_jit
def _run_layer(layer, inputs, throw=True):
    return layer(inputs, T1, throw=throw)


def test_same_time_cascade_and_the_endless_one():
    inputs = so.SpikeTrain.from_lists([[0.01, 0.03]])
    layer = _chain()
    sim = _run_layer(layer, inputs)
    # the input at 0.01 fires neuron 0, whose kick fires 1, ... all at 0.01; at 0.03
    # neuron 0 again, and 1, ... (each had relaxed back below threshold)
    ref = _reference("lif", layer.neuron, T1, inputs, np.asarray(layer.w_in),
                     np.asarray(layer.w_rec))  # fmt: skip
    _same_spikes(sim, ref, tol=0.0)
    np.testing.assert_array_equal(sim.spikes.neurons, [0, 1, 2, 3] * 2)
    np.testing.assert_array_equal(sim.spikes.times, [0.01] * 4 + [0.03] * 4)
    same = so.simulate(layer.neuron, T1, inputs, layer.w_in, w_rec=so.Synapses.from_dense(
        layer.w_rec), max_spikes=8, loop=so.EventDrivenLoop())  # fmt: skip
    _same_spikes(same, ref, tol=0.0)
    # a loop of neurons kicking each other over threshold without refractory period
    # never ends: the spike buffer fills, at one instant
    endless = _chain(loop_back=True)
    with pytest.raises(RuntimeErr, match=r"more than max_spikes=8 spikes"):
        _run_layer(endless, inputs)
    sim = _run_layer(endless, inputs, throw=False)
    assert sim.result == so.RESULTS.max_spikes_reached
    np.testing.assert_array_equal(sim.spikes.times, 0.01)
    # a refractory period ends it: neuron 0 ignores the last kick
    sim = _run_layer(_chain(loop_back=True, refractory_period=1e-3), inputs)
    np.testing.assert_array_equal(sim.spikes.neurons, [0, 1, 2, 3] * 2)


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize(
    "kind,adjoint", [(k, a) for k in KINDS for a in ("direct", "eventprop")]
)  # fmt: skip
def test_gradients_match_finite_differences(kind, adjoint):
    # (networks with spikes at jumps and by the flow, several per neuron)
    neuron, inputs, w_in, w_rec = _network(kind, {"lif": 12, "if": 14}[kind], n=5, n_in=3)
    adj = so.DirectAdjoint() if adjoint == "direct" else so.EventPropAdjoint()

    def fn(p):
        x = so.SpikeTrain(p["in_times"], inputs.neurons, inputs.num_neurons)
        sim = so.simulate(p["neuron"], T1, x, p["w_in"], w_rec=p["w_rec"], max_spikes=100,
                          adjoint=adj)  # fmt: skip
        t = jnp.where(sim.spikes.valid, sim.spikes.times, 0.0)
        # the spike times themselves, and a smooth loss of times and final state
        return jnp.sum(t * jnp.cos(jnp.arange(t.shape[0]))) + _loss(sim), sim

    report = so.check_grads(fn, _params(neuron, inputs, w_in, w_rec), num_directions=1,
                            steps=np.logspace(-3, -8, 6))  # fmt: skip
    assert report.passed, str(report)
    assert report.num_spikes >= 20 and report.max_rel_error < 1e-8, str(report)
    t = np.asarray(report.aux.spikes.times[: report.num_spikes])
    at_jump = _jumps(t, np.asarray(inputs.times))
    assert np.sum(at_jump) >= 5 and np.sum(~at_jump) >= 5, t


# ------------------------------------------------------------------ the other loops
def _compare_loops(kind, seed, loop, delays=None, sparse=False, ordered=True):
    """`loop` against the coupled loop (spikes, final states, gradients), both against
    the closed form. `sparse`: `loop` gets the recurrent weights as `Synapses`.
    `ordered=False`: the spikes of one instant may be listed in another order."""
    neuron, inputs, w_in, w_rec = _network(kind, seed)
    params = _params(neuron, inputs, w_in, w_rec)
    (_, a), ga = _value_and_grad(params, inputs, so.CoupledLoop(max_pending=2000), delays)
    syn = so.Synapses.from_dense(w_rec) if sparse else None
    (_, b), gb = _value_and_grad(params, inputs, loop, delays, syn)
    d = None if delays is None else np.asarray(delays)
    ref = _reference(kind, neuron, T1, inputs, np.asarray(w_in), np.asarray(w_rec), d)
    _same_spikes(a, ref)
    _same_spikes(b, ref, ordered=ordered)
    np.testing.assert_allclose(b.y_final, a.y_final, rtol=1e-10, atol=1e-12)
    for x, y in zip(jax.tree_util.tree_leaves(ga), jax.tree_util.tree_leaves(gb)):
        scale = max(float(np.max(np.abs(x))), 1e-12)
        assert float(np.max(np.abs(x - y))) / scale < 1e-9
    assert len(ref[0]) > 30


@pytest.mark.parametrize("kind", KINDS)
def test_event_driven_loop_matches_coupled_loop(kind):
    _compare_loops(kind, 11, so.EventDrivenLoop(), sparse=True)


@pytest.mark.parametrize("kind", [pytest.param("lif", marks=pytest.mark.slow), "if"])
def test_windowed_loop_with_delays_matches_coupled_loop(kind):
    d = jnp.asarray(np.random.default_rng(12).uniform(1e-3, 3e-3, (12, 12)))
    loop = so.WindowedLoop(window=1e-3, max_pending=2000)
    _compare_loops(kind, 12, loop, delays=d, ordered=False)


def test_first_spikes_equal_the_event_loop():
    rng = np.random.default_rng(13)
    inputs = so.SpikeTrain.from_lists([np.sort(rng.uniform(0, 0.04, 3)) for _ in range(5)])
    w_in = jnp.asarray(rng.normal(0.4, 0.4, (5, 10)))
    bias = jnp.asarray(rng.uniform(0.0, 1.5, 10))

    def closed(w):
        sim = so.first_spikes(so.DeltaLIF(10, bias=bias, v_reset=-0.2), T1, inputs, w)
        return jnp.sum(jnp.where(sim.spikes.valid, sim.spikes.times, 0.0)), sim

    def loop(w):
        once = so.DeltaLIF(10, bias=bias, v_reset=-0.2, refractory_period=1.0)
        sim = so.simulate(once, T1, inputs, w, max_spikes=10)
        return jnp.sum(jnp.where(sim.spikes.valid, sim.spikes.times, 0.0)), sim

    (_, a), ga = eqx.filter_jit(eqx.filter_value_and_grad(closed, has_aux=True))(w_in)
    (_, b), gb = eqx.filter_jit(eqx.filter_value_and_grad(loop, has_aux=True))(w_in)
    k = int(b.spikes.num_spikes)
    assert k >= 6
    np.testing.assert_array_equal(a.spikes.neurons, b.spikes.neurons)
    np.testing.assert_allclose(a.spikes.times[:k], b.spikes.times[:k], rtol=1e-14)
    np.testing.assert_allclose(a.y_final, b.y_final, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(ga, gb, rtol=1e-10, atol=1e-14)

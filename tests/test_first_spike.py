"""Closed-form first spikes (`spikeode.first_spikes`, `nn.FirstSpikeLayer`): exact
against the NumPy closed forms and the event loop, gradients against finite
differences and the event loop, bad input."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spikeode as so
from spikeode._verify._formulas import lif_double_tau_first_spike, mostafa_first_spike

T1 = 0.05
NIN, N = 5, 40


def _inputs(seed=0, count=14, t_max=0.03, num_inputs=NIN):
    """Several spikes per input neuron, sorted."""
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(0.0, t_max, count))
    ids = rng.integers(0, num_inputs, count)
    return so.SpikeTrain(jnp.asarray(times), jnp.asarray(ids, jnp.int32), num_inputs)


def _weights(seed=1, mean=0.8, std=0.8, shape=(NIN, N)):
    # mixed signs: inhibition makes some crossings happen late or not at all
    return jnp.asarray(np.random.default_rng(seed).normal(mean, std, shape))


# compiled once per input shape (the module runs on one xdist worker)
_first_spikes = eqx.filter_jit(so.first_spikes)


def _by_neuron(spikes):
    ids, times = np.asarray(spikes.neurons), np.asarray(spikes.times)
    return {int(i): float(t) for i, t in zip(ids, times) if i < spikes.num_neurons}


def _event_loop(neuron, inputs, w, **kw):
    """The same model with a refractory period that outlasts the trial."""
    once = eqx.tree_at(
        lambda m: m.refractory_period, neuron, jnp.full_like(neuron.refractory_period, 10 * T1)
    )
    return so.simulate(once, T1, inputs, w, max_spikes=neuron.num_neurons, **kw)


def test_lif_spike_times_match_the_numpy_closed_form():
    inputs, w = _inputs(), _weights()
    sim = _first_spikes(so.LIF(N, tau_mem=0.02, tau_syn=0.01), T1, inputs, w)
    got = _by_neuron(sim.spikes)
    times, ids = np.asarray(inputs.times), np.asarray(inputs.neurons)
    fired = 0
    for j in range(N):
        want = lif_double_tau_first_spike(times, np.asarray(w)[ids, j], 0.02)
        if want < T1:
            fired += 1
            assert abs(got[j] - want) < 1e-12, (j, got[j], want)
        else:
            assert j not in got
    assert 10 < fired < N  # both cases are exercised
    assert np.all(np.diff(np.asarray(sim.spikes.times)[: len(got)]) >= 0)


def test_nonleaky_spike_times_match_mostafa():
    """Mostafa's setting: tau_syn = 1, threshold 1, times in units of tau_syn."""
    inputs = _inputs(count=10, t_max=1.5)
    w = _weights(mean=0.5, std=0.5)
    sim = _first_spikes(so.NonLeakyIF(N, tau_syn=1.0), 4.0, inputs, w)
    got = _by_neuron(sim.spikes)
    times, ids = np.asarray(inputs.times), np.asarray(inputs.neurons)
    fired = 0
    for j in range(N):
        want = mostafa_first_spike(times, np.asarray(w)[ids, j])
        if want < 4.0:
            fired += 1
            assert abs(got[j] - want) < 1e-12, (j, got[j], want)
        else:
            assert j not in got
    assert 10 < fired < N


@pytest.mark.parametrize(
    "neuron",
    [
        so.LIF(N, tau_mem=0.02, tau_syn=0.01, bias=jnp.linspace(-0.5, 1.2, N),
               threshold=jnp.linspace(0.8, 1.2, N), v_reset=-0.2),
        so.LIF(N, tau_mem=jnp.linspace(0.01, 0.03, N), tau_syn=jnp.linspace(0.005, 0.015, N)),
        so.NonLeakyIF(N, tau_syn=0.01, threshold=1.5),
    ],
    ids=["lif-bias", "lif-per-neuron-tau", "nonleaky"],
)
def test_matches_the_event_loop_with_gradients(neuron):
    """Spikes, slopes, final states and gradients (weights, input times, the model's
    parameters) equal the event loop's for neurons that fire at most once."""
    inputs, w = _inputs(), _weights()

    def loss(run):
        def fn(p):
            sim = run(eqx.combine(p, static))
            t = jnp.where(sim.spikes.valid, sim.spikes.times, 0.0)
            weight = 1 + sim.spikes.neurons.astype(t.dtype)
            value = jnp.sum(jnp.sin(100.0 * t) * weight) + jnp.sum(sim.y_final**2)
            return value, sim

        return fn

    tree = (neuron, w, inputs)
    p, static = eqx.partition(tree, eqx.is_inexact_array)
    closed_fn = loss(lambda t: so.first_spikes(t[0], T1, t[2], t[1]))
    loop_fn = loss(lambda t: _event_loop(t[0], t[2], t[1]))
    # each path's gradient and its simulation (the aux output): one compilation each
    g_closed, closed = jax.jit(jax.grad(closed_fn, has_aux=True))(p)
    g_loop, loop = jax.jit(jax.grad(loop_fn, has_aux=True))(p)
    a, b = _by_neuron(closed.spikes), _by_neuron(loop.spikes)
    assert a.keys() == b.keys() and len(a) > 5
    assert max(abs(a[k] - b[k]) for k in a) < 1e-12
    np.testing.assert_allclose(closed.y_final, loop.y_final, atol=1e-12)
    np.testing.assert_allclose(
        np.sort(np.asarray(closed.slopes)[: len(a)]), np.sort(np.asarray(loop.slopes)[: len(b)]),
        rtol=1e-9,
    )

    # the closed form is a function on its domain: the LIF's tau_syn follows
    # tau_mem / 2 (d/dtau_mem is the derivative along that tie, tau_syn gets none),
    # NonLeakyIF's bias stays 0 (none)
    if isinstance(neuron, so.LIF):
        assert not np.any(np.asarray(g_closed[0].tau_syn))
        g_loop = eqx.tree_at(
            lambda g: (g[0].tau_mem, g[0].tau_syn), g_loop,
            (g_loop[0].tau_mem + g_loop[0].tau_syn / 2, jnp.zeros_like(g_loop[0].tau_syn)),
        )
    else:
        assert not np.any(np.asarray(g_closed[0].bias)) and np.any(np.asarray(g_loop[0].bias))
        g_loop = eqx.tree_at(lambda g: g[0].bias, g_loop, jnp.zeros_like(g_loop[0].bias))
    leaves_c, leaves_l = jax.tree_util.tree_leaves(g_closed), jax.tree_util.tree_leaves(g_loop)
    assert len(leaves_c) == len(leaves_l)
    for gc, gl in zip(leaves_c, leaves_l):
        scale = max(float(jnp.max(jnp.abs(gl))), 1e-12)
        assert float(jnp.max(jnp.abs(gc - gl))) / scale < 1e-9


def test_gradients_match_finite_differences():
    inputs, w = _inputs(), _weights()
    neuron = so.LIF(N, tau_mem=0.02, tau_syn=0.01, bias=0.3)

    def fn(p):
        w, times, threshold = p
        model = eqx.tree_at(lambda m: m.threshold, neuron, threshold)
        sim = so.first_spikes(model, T1, so.SpikeTrain(times, inputs.neurons, NIN), w)
        t = jnp.where(sim.spikes.valid, sim.spikes.times, T1)
        return jnp.sum(t**2) + jnp.sum(sim.y_final[:, 0] ** 2), sim

    report = so.check_grads(fn, (w, inputs.times, jnp.asarray(1.0)), rtol=1e-6)
    assert report.passed, str(report)
    assert report.num_spikes > 10


def test_batched_jit_layer_and_sequential():
    """`FirstSpikeLayer`s in a `Sequential` under `jit` and `vmap` give each sample's
    unbatched result; the second layer reads the first one's sorted train."""
    key1, key2 = jax.random.split(jax.random.key(0))
    model = so.nn.Sequential([
        so.nn.FirstSpikeLayer(NIN, N, w_mean=1.0, w_std=0.5, key=key1),
        so.nn.FirstSpikeLayer(N, 3, w_mean=0.3, w_std=0.1, key=key2),
    ])  # fmt: skip
    batch = [_inputs(seed=s) for s in range(4)]
    stacked = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *batch)
    sims = eqx.filter_jit(jax.vmap(lambda x: model(x, T1)))(stacked)
    unbatched = eqx.filter_jit(lambda x: model(x, T1))
    for s, x in enumerate(batch):
        one = unbatched(x)
        for layer in range(2):
            np.testing.assert_array_equal(sims[layer].spikes.neurons[s], one[layer].spikes.neurons)
            np.testing.assert_allclose(sims[layer].spikes.times[s], one[layer].spikes.times)
    assert int(jnp.sum(sims[1].spikes.valid)) > 0


def test_inputs_at_or_after_t1_and_at_t0():
    """Input spikes at or after `t1` change nothing; one at `t0` counts."""
    neuron = so.LIF(N, tau_mem=0.02, tau_syn=0.01)
    w = _weights()
    base = _inputs(t_max=0.04)
    late = so.SpikeTrain(
        jnp.concatenate([base.times, jnp.asarray([T1, T1 + 0.01])]),
        jnp.concatenate([base.neurons, jnp.asarray([0, 1], jnp.int32)]), NIN,
    )  # fmt: skip
    a, b = _first_spikes(neuron, T1, base, w), _first_spikes(neuron, T1, late, w)
    assert _by_neuron(a.spikes) == _by_neuron(b.spikes)
    np.testing.assert_allclose(a.y_final, b.y_final, rtol=0, atol=1e-14)
    start = so.SpikeTrain(jnp.asarray([0.0, jnp.inf]), jnp.asarray([0, NIN], jnp.int32), NIN)
    closed = _first_spikes(neuron, T1, start, 5.0 * w)
    loop = eqx.filter_jit(_event_loop)(neuron, start, 5.0 * w)
    assert _by_neuron(closed.spikes) == pytest.approx(_by_neuron(loop.spikes), abs=1e-13)


def test_bad_input_is_reported():
    inputs, w = _inputs(), _weights()
    with pytest.raises(Exception, match=r"tau_mem == 2 \* tau_syn"):
        so.first_spikes(so.LIF(N, tau_mem=0.02, tau_syn=0.005), T1, inputs, w)
    with pytest.raises(Exception, match="need bias == 0"):
        so.first_spikes(so.NonLeakyIF(N, bias=0.1), T1, inputs, w)
    with pytest.raises(TypeError, match="QIF has no closed-form first spike"):
        so.nn.FirstSpikeLayer(NIN, N, neuron=so.QIF(N), key=jax.random.key(0))
    with pytest.raises(Exception, match=r"tau_mem == 2 \* tau_syn"):  # inside jit too
        eqx.filter_jit(so.first_spikes)(so.LIF(N), T1, inputs, w)
    with pytest.raises(ValueError, match=r"w_in has shape \(5, 3\), expected \(5, 40\)"):
        so.first_spikes(so.LIF(N, tau_syn=0.01), T1, inputs, w[:, :3])
    unsorted = so.SpikeTrain(inputs.times[::-1], inputs.neurons, NIN)
    with pytest.raises(Exception, match="not sorted"):
        so.first_spikes(so.LIF(N, tau_syn=0.01), T1, unsorted, w)
    negative = so.SpikeTrain(inputs.times - 0.01, inputs.neurons, NIN)
    with pytest.raises(Exception, match="must not precede the start time"):
        so.first_spikes(so.LIF(N, tau_syn=0.01), T1, negative, w)
    with pytest.raises(Exception, match="t1 must be later than t0"):
        so.first_spikes(so.LIF(N, tau_syn=0.01), 0.0, inputs, w)
    with pytest.raises(Exception, match="tau_mem must be positive|tau_mem.*positive"):
        so.first_spikes(so.LIF(N, tau_mem=-0.02, tau_syn=-0.01), T1, inputs, w)
    stacked = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), inputs)
    with pytest.raises(ValueError, match="unbatched"):
        so.first_spikes(so.LIF(N, tau_syn=0.01), T1, stacked, w)


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_a_crossing_exactly_at_an_input_spike_is_found(dtype):
    """An input arriving exactly at the crossing time (where one interval ends and
    the next begins) neither hides the spike nor moves it, in 1886 cases."""
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.uniform(0.8, 3.0, (2000, 4, 1)), dtype)
    lif = so.LIF(1, tau_mem=jnp.asarray(0.02, dtype), tau_syn=jnp.asarray(0.01, dtype))
    ids = jnp.asarray([0, 1, 2, 3], jnp.int32)

    @jax.jit
    @jax.vmap
    def first(w, times):
        return so.first_spikes(lif, jnp.asarray(T1, dtype), so.SpikeTrain(times, ids, 4), w)

    base = jnp.asarray([0.001, 0.003, 0.006, 0.04], dtype)  # the last input comes late
    t_spike = first(w, jnp.broadcast_to(base, (2000, 4))).spikes.times[:, 0]
    cases = np.asarray((t_spike > 0.006) & (t_spike < 0.04))
    assert cases.sum() == 1886
    last = jnp.where(cases, t_spike, 0.04).astype(dtype)
    at_spike = jnp.broadcast_to(base, (2000, 4)).at[:, 3].set(last)
    again = first(w, at_spike).spikes.times[:, 0]
    tol = 1e-15 if dtype == jnp.float64 else 1e-8
    np.testing.assert_allclose(
        np.asarray(again)[cases], np.asarray(t_spike)[cases], rtol=0, atol=tol
    )

"""The event-driven loop (`so.EventDrivenLoop`): each neuron advanced only at its own events.

References: the independent SciPy simulator (its own integration and arrival queue)
for spike times; the coupled loop for final states and gradients (itself checked
against finite differences and references elsewhere); finite differences for the
event loop's own gradients."""

from types import SimpleNamespace

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_same_runs

import spikeode as so
from spikeode._event_driven import presynaptic_delay_table
from spikeode._verify import reference_lif

T1 = 0.1
LOOPS = {"coupled": so.CoupledLoop(), "event": so.EventDrivenLoop()}


def _sparse_network(seed=0, n=30, n_in=4, p=0.2):
    rng = np.random.default_rng(seed)
    inputs = so.SpikeTrain.from_lists([np.sort(rng.uniform(0, 0.06, 5)) for _ in range(n_in)])
    mask = rng.uniform(size=(n, n)) < p
    w_rec = np.where(mask, rng.normal(0.1, 0.5, (n, n)), 0.0)
    syn = so.Synapses.from_dense(jnp.asarray(w_rec))
    neuron = so.LIF(n, tau_mem=20e-3, tau_syn=5e-3, bias=jnp.asarray(rng.uniform(0.9, 1.1, n)),
                    refractory_period=2e-3)  # fmt: skip
    w_in = jnp.asarray(rng.normal(0.6, 0.3, (n_in, n)))
    return neuron, inputs, w_in, syn, w_rec


def _loss_fn(inputs, syn, loop, **options):
    def fn(p):
        x = so.SpikeTrain(p["in_times"], inputs.neurons, inputs.num_neurons)
        w_rec = eqx.tree_at(lambda s: s.weight, syn, p["w_syn"]) if syn is not None else p["w_rec"]
        sim = so.simulate(p["neuron"], T1, x, p["w_in"], w_rec=w_rec, max_spikes=300,
                          loop=loop, **options)  # fmt: skip
        t = jnp.where(sim.spikes.valid, sim.spikes.times, 0.0)
        return jnp.sum(jnp.sin(50 * t)) + jnp.sum(sim.y_final**2), sim

    return fn


def _matches_reference(sim, neuron, inputs, w_in, w_rec, *, min_spikes, **delays):
    """The simulation's spikes are the SciPy reference's (same neurons in order, times
    within 1e-11 s)."""
    times, ids = reference_lif(neuron, T1, inputs, np.asarray(w_in), w_rec, **delays)
    k = int(sim.spikes.num_spikes)
    assert k == len(times) and k > min_spikes
    np.testing.assert_array_equal(np.asarray(sim.spikes.neurons[:k]), ids)
    assert np.max(np.abs(np.asarray(sim.spikes.times[:k]) - times)) < 1e-11


def _compare(neuron, inputs, w_in, syn, **options):
    params = dict(neuron=neuron, w_in=w_in, in_times=inputs.times, w_syn=syn.weight)
    out = {}
    for loop in ("coupled", "event"):
        fn = _loss_fn(inputs, syn, LOOPS[loop], **options)
        out[loop] = eqx.filter_jit(eqx.filter_value_and_grad(fn, has_aux=True))(params)
    (_, a), ga = out["coupled"]
    (_, b), gb = out["event"]
    assert_same_runs(a, ga, b, gb, min_spikes=20)
    return b


def test_event_loop_matches_scipy_reference_and_coupled_loop():
    neuron, inputs, w_in, syn, w_rec = _sparse_network()
    sim = _compare(neuron, inputs, w_in, syn)
    _matches_reference(sim, neuron, inputs, w_in, w_rec, min_spikes=20)


def test_event_loop_with_presynaptic_delays_matches_scipy_reference():
    neuron, inputs, w_in, _, w_rec = _sparse_network(1)
    d = np.random.default_rng(1).uniform(0.5e-3, 3e-3, (neuron.num_neurons, 1))
    sim = so.simulate(neuron, T1, inputs, w_in, w_rec=jnp.asarray(w_rec), delays=jnp.asarray(d),
                      loop=so.EventDrivenLoop(max_pending=64), max_spikes=300)  # fmt: skip
    _matches_reference(sim, neuron, inputs, w_in, w_rec, min_spikes=20, delays=d)


def test_event_loop_with_presynaptic_delays_matches_scipy_reference_unoptimised():
    # The same run compiled at XLA's backend optimisation level 0. XLA copies a cheap
    # value into each kernel that uses it, and there these copies need not round alike
    # (some contract FMAs, some not): the root finder, seeing the event condition as 0
    # where it tested for an exact zero and as -1e-16 where it stored it, returned the
    # bracket's far end and lost the crossing of a neuron re-predicted from its
    # unchanged previous one (spike 36, 1.5e-3 s late).
    neuron, inputs, w_in, _, w_rec = _sparse_network(1)
    d = np.random.default_rng(1).uniform(0.5e-3, 3e-3, (neuron.num_neurons, 1))

    def run(w_rec, d):
        return so.simulate(neuron, T1, inputs, w_in, w_rec=w_rec, delays=d, max_spikes=300,
                           loop=so.EventDrivenLoop(max_pending=64)).spikes  # fmt: skip

    args = (jnp.asarray(w_rec), jnp.asarray(d))
    options = {"xla_backend_optimization_level": 0}
    spikes = jax.jit(run).lower(*args).compile(compiler_options=options)(*args)
    sim = SimpleNamespace(spikes=spikes)
    _matches_reference(sim, neuron, inputs, w_in, w_rec, min_spikes=20, delays=d)


def test_presynaptic_delay_table_is_each_neurons_first_synapse():
    # synapses given out of order (stored sorted by presynaptic neuron, stably), several
    # per neuron, and neuron 3 without any: a gather at the offsets, no scatter with
    # repeated indices (whose winning write XLA leaves unspecified)
    pre = np.array([2, 0, 2, 0, 4, 1, 0])
    delay = jnp.asarray([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]) * 1e-3
    syn = so.Synapses(pre, np.arange(7) % 5, 0.1, delay, num_pre=5)
    table = eqx.filter_jit(presynaptic_delay_table)(syn, syn.delay)
    np.testing.assert_array_equal(table, np.array([2.0, 6.0, 1.0, 0.0, 5.0]) * 1e-3)
    # (its derivative reaches each neuron's first synapse only; synapses in stored order)
    grad = jax.grad(lambda d: jnp.sum(presynaptic_delay_table(syn, d) * jnp.arange(1.0, 6.0)))
    np.testing.assert_array_equal(grad(syn.delay), [1.0, 0.0, 0.0, 2.0, 3.0, 0.0, 5.0])
    empty = so.Synapses(np.zeros(0, int), np.zeros(0, int), 0.1, num_pre=3)
    np.testing.assert_array_equal(presynaptic_delay_table(empty, empty.delay), np.zeros(3))


@pytest.mark.slow  # (ExcInhLIF against SciPy: test_exc_inh_lif.py)
def test_event_loop_two_port_lif_matches_coupled_loop():
    # ExcInhLIF: a closed form whose safe steps end at voltage peaks (found by
    # bisection): predictions that end in checks
    _, inputs, w_in, syn, _ = _sparse_network(2)
    neuron = so.ExcInhLIF(30, tau_mem=10e-3, tau_exc=3e-3, tau_inh=15e-3, bias=0.95,
                          refractory_period=1e-3)  # fmt: skip
    _compare(neuron, inputs, w_in, syn)


@pytest.mark.slow  # (a minute; the default suite compares them with the coupled loop's)
def test_event_loop_gradients_match_finite_differences():
    neuron, inputs, w_in, syn, _ = _sparse_network(3, n=10, p=0.4)
    fn = _loss_fn(inputs, syn, so.EventDrivenLoop())
    params = dict(neuron=neuron, w_in=w_in, in_times=inputs.times, w_syn=syn.weight)
    report = so.check_grads(fn, params, rtol=1e-7)
    assert report.passed and report.num_spikes > 10, str(report)


def test_default_loop_is_the_event_loop_for_sparse_synapses(monkeypatch):
    calls = []
    real = so.EventDrivenLoop.run
    monkeypatch.setattr(so.EventDrivenLoop, "run",
                        lambda *a, **k: calls.append(1) or real(*a, **k))  # fmt: skip
    neuron, inputs, w_in, syn, w_rec = _sparse_network(4, n=12)
    ts = jnp.linspace(0.0, T1, 5)
    sim = so.simulate(neuron, T1, inputs, w_in, w_rec=syn, max_spikes=200, save_ts=ts)
    assert calls == [1]
    dense = so.simulate(neuron, T1, inputs, w_in, w_rec=jnp.asarray(w_rec), max_spikes=200,
                        save_ts=ts)  # fmt: skip
    assert calls == [1]  # (dense weights: the coupled loop)
    k = int(dense.spikes.num_spikes)
    assert k > 5
    np.testing.assert_array_equal(sim.spikes.neurons, dense.spikes.neurons)
    np.testing.assert_allclose(sim.spikes.times[:k], dense.spikes.times[:k], rtol=0, atol=1e-12)
    np.testing.assert_allclose(sim.ys, dense.ys, rtol=1e-10, atol=1e-12)


def test_event_loop_errors():
    neuron, inputs, w_in, syn, w_rec = _sparse_network(5, n=12)
    run = lambda **kw: so.simulate(neuron, T1, inputs, w_in, **({"max_spikes": 200} | kw))
    # (run-time checks: equinox.error_if)
    with pytest.raises(Exception, match="max_spikes=3 spikes"):
        run(w_rec=syn, loop=so.EventDrivenLoop(), max_spikes=3)
    with pytest.raises(ValueError, match="closed-form `flow`"):
        so.simulate(so.AdaptiveLIF(12), T1, inputs, w_in, w_rec=syn, loop=so.EventDrivenLoop(),
                    max_spikes=10)  # fmt: skip
    with pytest.raises(ValueError, match="depend only on the presynaptic neuron"):
        run(w_rec=jnp.asarray(w_rec), delays=jnp.full((12, 12), 1e-3), loop=so.EventDrivenLoop())
    per_synapse = eqx.tree_at(lambda s: s.delay, syn,
                              jnp.linspace(1e-3, 2e-3, syn.num_synapses))  # fmt: skip
    with pytest.raises(Exception, match="depend only on the presynaptic neuron"):
        run(w_rec=per_synapse, loop=so.EventDrivenLoop())
    with pytest.raises(Exception, match="max_pending=1 delayed"):
        run(w_rec=jnp.asarray(w_rec), delays=5e-3, loop=so.EventDrivenLoop(max_pending=1))
    with pytest.raises(ValueError, match="does not support EventPropAdjoint"):
        run(w_rec=syn, loop=so.EventDrivenLoop(), adjoint=so.EventPropAdjoint())
    twice = so.Synapses.concatenate([syn, syn])
    with pytest.raises(ValueError, match="one synapse per"):
        run(w_rec=twice, loop=so.EventDrivenLoop())


def test_event_loop_under_vmap_equals_one_run_each():
    neuron, inputs, w_in, syn, _ = _sparse_network(6, n=12, p=0.3)
    y0 = jnp.stack([jnp.stack([jnp.linspace(0.0, 0.9, 12), jnp.zeros(12)], axis=1),
                    jnp.stack([jnp.linspace(0.5, 0.0, 12), jnp.zeros(12)], axis=1)])  # fmt: skip
    run = eqx.filter_jit(lambda y0: so.simulate(neuron, T1, inputs, w_in, w_rec=syn, y0=y0,
                                                loop=LOOPS["event"], max_spikes=200))  # fmt: skip
    both = jax.vmap(run)(y0)
    for b in range(2):
        one = run(y0[b])
        assert int(one.spikes.num_spikes) > 10
        np.testing.assert_array_equal(both.spikes.neurons[b], one.spikes.neurons)
        np.testing.assert_allclose(both.spikes.times[b], one.spikes.times, rtol=0, atol=1e-14)


def test_event_loop_with_per_connection_input_delays_matches_scipy_reference():
    # an input spike then arrives at each neuron at its own time (one lane per arrival)
    neuron, inputs, w_in, syn, w_rec = _sparse_network(7, n=12, p=0.3)
    d_in = np.random.default_rng(7).uniform(0.0, 3e-3, (inputs.num_neurons, 12))
    sim = so.simulate(neuron, T1, inputs, w_in, w_rec=syn, input_delays=jnp.asarray(d_in),
                      loop=so.EventDrivenLoop(), max_spikes=300)  # fmt: skip
    _matches_reference(sim, neuron, inputs, w_in, w_rec, min_spikes=10, input_delays=d_in)


def test_event_loop_with_a_dense_matrix_equals_synapses():
    neuron, inputs, w_in, syn, w_rec = _sparse_network(8, n=12, p=0.3)
    run = lambda w: so.simulate(neuron, T1, inputs, w_in, w_rec=w, loop=so.EventDrivenLoop(),  # noqa: E731
                                max_spikes=200)
    a, b = run(syn), run(jnp.asarray(w_rec))  # (the dense one: every entry a synapse)
    k = int(a.spikes.num_spikes)
    assert k > 10
    np.testing.assert_array_equal(a.spikes.neurons, b.spikes.neurons)
    np.testing.assert_allclose(a.spikes.times[:k], b.spikes.times[:k], rtol=0, atol=1e-13)

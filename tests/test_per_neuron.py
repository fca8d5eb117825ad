"""One event loop per neuron (`so.PerNeuronLoop`) for populations without
recurrent weights: the same spikes, states and gradients as the coupled loop."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spikeode as so

T1 = 0.05


def _inputs(seed=0, num_inputs=4, count=12):
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(0.0, 0.04, count))
    ids = rng.integers(0, num_inputs, count)
    return so.SpikeTrain(jnp.asarray(times), jnp.asarray(ids, jnp.int32), num_inputs)


def _lif_layer(p):
    w_in, tau_mem = p
    return so.LIF(6, tau_mem=tau_mem, tau_syn=5e-3, bias=jnp.linspace(0.5, 1.4, 6)), w_in


def _theta_layer(p):
    w_in, tau = p
    return so.ThetaNeuron(6, tau=tau, bias=jnp.linspace(-0.1, 0.3, 6)), w_in


def _params(seed=1):
    rng = np.random.default_rng(seed)
    w_in = jnp.asarray(rng.uniform(0.5, 2.5, (4, 6)))
    return w_in, jnp.asarray(rng.uniform(0.012, 0.025, 6))


def _run(build, p, per_neuron, **kw):
    neuron, w_in = build(p)
    return so.simulate(
        neuron, T1, _inputs(), w_in, max_spikes=60,
        loop=so.PerNeuronLoop(10) if per_neuron else None, **kw,
    )  # fmt: skip


def _loss(build, per_neuron, **kw):
    def fn(p):
        sim = _run(build, p, per_neuron, **kw)
        t = jnp.where(sim.spikes.valid, sim.spikes.times, 0.0)
        return jnp.sum(jnp.sin(200.0 * t)) + jnp.sum(sim.y_final**2), sim

    return fn


@pytest.mark.parametrize(
    # (theta layers per neuron: also in test_per_neuron_pseudodynamics_matches_the_coupled_loop)
    "build", [_lif_layer, pytest.param(_theta_layer, marks=pytest.mark.slow)],
    ids=["lif", "theta"],
)
def test_per_neuron_loop_matches_the_coupled_loop(build):
    p = _params()
    save_ts = jnp.linspace(0.0, T1, 7)
    # the coupled loop's gradient and simulation (one compilation), and the per-neuron
    # loop's gradient against finite differences, with its simulation (`report.aux`)
    g_coupled, coupled = jax.jit(jax.grad(_loss(build, False, save_ts=save_ts), has_aux=True))(p)
    report = so.check_grads(_loss(build, True, save_ts=save_ts), p)
    single = report.aux
    counts = coupled.spikes.counts()
    assert int(coupled.spikes.num_spikes) >= 12 and int(jnp.max(counts)) >= 3
    np.testing.assert_array_equal(single.spikes.neurons, coupled.spikes.neurons)
    np.testing.assert_allclose(single.spikes.times, coupled.spikes.times, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(single.y_final, coupled.y_final, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(single.ys, coupled.ys, rtol=1e-10, atol=1e-12)
    assert not bool(single.overflow)
    assert report.passed, report
    for a, b in zip(report.grad, g_coupled):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12 * float(jnp.max(jnp.abs(b))))


def test_per_neuron_layers_in_a_sequential_network():
    key1, key2 = jax.random.split(jax.random.PRNGKey(0))

    def net(per_neuron):
        return so.nn.Sequential([
            so.nn.SpikingLayer(4, 8, max_spikes=40, w_mean=1.2, w_std=0.5, key=key1,
                               loop=so.PerNeuronLoop(5) if per_neuron else None),
            so.nn.SpikingLayer(8, 3, max_spikes=20, w_mean=0.8, w_std=0.3, key=key2,
                               loop=so.PerNeuronLoop(5) if per_neuron else None),
        ])  # fmt: skip

    run = eqx.filter_jit(lambda net, x: net(x, T1))  # one compilation per network
    out_a = run(net(False), _inputs())
    out_b = run(net(True), _inputs())
    assert int(out_a[-1].spikes.num_spikes) >= 3
    for a, b in zip(out_a, out_b):
        np.testing.assert_array_equal(a.spikes.neurons, b.spikes.neurons)
        np.testing.assert_allclose(a.spikes.times, b.spikes.times, rtol=1e-12)


def test_per_neuron_pseudodynamics_matches_the_coupled_loop():
    p = _params()
    pseudo = so.Pseudodynamics(trial_end=0.03, drive=1.0)
    run = jax.jit(lambda p, per_neuron: _run(_theta_layer, p, per_neuron, pseudodynamics=pseudo),
                  static_argnums=1)  # fmt: skip
    a, b = run(p, False), run(p, True)
    assert int(jnp.sum(a.spikes.times > 0.03)) >= 6
    np.testing.assert_array_equal(a.spikes.neurons, b.spikes.neurons)
    np.testing.assert_allclose(a.spikes.times, b.spikes.times, rtol=1e-12)


def test_per_neuron_bad_input():
    neuron, w_in = _lif_layer(_params())
    inputs = _inputs()
    per = so.PerNeuronLoop
    with pytest.raises(Exception, match="max_spikes_per_neuron=2"):
        so.simulate(neuron, T1, inputs, w_in, max_spikes=60, loop=per(2))
    with pytest.raises(Exception, match="more than max_spikes=10 spikes in the population"):
        so.simulate(neuron, T1, inputs, w_in, max_spikes=10, loop=per(10))
    sim = so.simulate(neuron, T1, inputs, w_in, max_spikes=60, loop=per(2), throw=False)
    assert bool(sim.overflow)
    with pytest.raises(ValueError, match="recurrent weights"):
        so.simulate(neuron, T1, inputs, w_in, w_rec=jnp.zeros((6, 6)), max_spikes=60,
                    loop=per(4))  # fmt: skip
    with pytest.raises(ValueError, match="positive int"):
        per(0)
    with pytest.raises(ValueError, match=r"`w_in` has shape \(4, 5\)"):
        so.simulate(neuron, T1, inputs, w_in[:, :5], max_spikes=60, loop=per(4))

"""Gradients against finite differences (float64), batching, float32, and the
gradient check itself."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spikeode as so
from spikeode._verify import CHECKS

# The rows that take longest, or whose models the default suite verifies by their own
# tests, run in the slow suite (`make test-slow`; all rows run in `make check`):
# tests/test_numerical_models.py (EIF, adaptive LIF against SciPy), test_qif.py
# (pseudodynamics, theta neurons against closed forms), test_smooth.py (gated
# networks), test_first_spike.py (closed-form first spikes, gradients against finite
# differences), test_lif_exactness.py (constant drive), test_adjoint.py (a recurrent
# LIF network and theta neurons: gradients against finite differences),
# test_escape_noise.py (escape noise: spike times, likelihood and gradients), the
# feed-forward LIF by the other rows.
SLOW_CHECKS = ("exp-if", "adaptive-lif", "qif-pseudo", "lif-feedforward", "smooth-gated",
               "first-spikes", "theta", "lif-recurrent", "lif-constant", "escape-noise")


@pytest.mark.parametrize(
    "name",
    [pytest.param(name, marks=pytest.mark.slow) if name in SLOW_CHECKS else name
     for name in CHECKS],
)  # fmt: skip
def test_builtin_checks(name):
    """Spike times against closed form / SciPy and gradients against finite
    differences, on the configurations `spikeode check` runs."""
    result = CHECKS[name]()
    assert result.spike_time_error <= result.spike_time_tol, result
    assert result.grad_error <= 1e-6, result
    assert result.passed
    if name == "lif-recurrent":
        assert result.min_spikes_per_neuron >= 5
        assert result.network.startswith("20 ")
    if name == "lif-feedforward":
        assert result.min_spikes_per_neuron >= 3
    if name in ("adaptive-lif", "exp-if"):
        # recurrent, several spikes per neuron; spike times at the default rtol 1e-10
        # against DOP853 at 1e-12 (measured: AdaptiveLIF 1e-12, ExpIF 2.7e-14 at 1e-13)
        assert result.spikes >= 16 and result.min_spikes_per_neuron >= 4, result
        assert result.spike_time_error <= 1e-9, result


@pytest.mark.slow  # (two processes compiling two checks each, about a minute)
def test_spikeode_check_in_worker_processes():
    """`run_checks(workers=2)` (`spikeode check --workers 2`) runs the rows in two
    processes and returns them in the order asked, with the numbers of a run in this
    process."""
    from spikeode._verify import run_checks

    names = ["alpha", "lif-constant", "nonleaky"]
    lines = []
    parallel = run_checks(names, progress=lines.append, workers=2)
    assert sorted(line.split()[1] for line in lines) == sorted(names), lines
    assert sorted(line.split()[2] for line in lines) == ["(1/3)", "(2/3)", "(3/3)"], lines
    serial = run_checks(names)
    assert [r.model for r in serial] == ["AlphaIF", "LIF", "NonLeakyIF"]
    for p, q in zip(parallel, serial):
        assert dataclasses.replace(p, seconds=0.0) == dataclasses.replace(q, seconds=0.0)
    with pytest.raises(ValueError, match="`workers` must be a positive int"):
        run_checks(names, workers=0)


def _two_layer(seed, dtype=jnp.float64):
    """A 6-8-3 LIF network with weights drawn by NumPy (same values in any dtype)."""
    rng = np.random.default_rng(seed)
    sizes = [(6, 8, 0.4, 80), (8, 3, 0.3, 40)]
    layers = []
    for n_in, n, w, cap in sizes:
        layer = so.nn.SpikingLayer(
            n_in, n, max_spikes=cap, dtype=dtype, key=jax.random.PRNGKey(0),
            neuron=so.LIF(n, tau_mem=jnp.asarray(0.01, dtype), tau_syn=jnp.asarray(0.005, dtype),
                          threshold=jnp.asarray(1.0, dtype), v_reset=jnp.asarray(0.0, dtype),
                          bias=jnp.asarray(0.9, dtype), refractory_period=jnp.asarray(0.0, dtype)),
        )
        weights = jnp.asarray(rng.normal(w, w, (n_in, n)), dtype)
        layers.append(eqx.tree_at(lambda layer: layer.w_in, layer, weights))
    return so.nn.Sequential(layers)


def _batch(rng, batch, num_inputs, dtype=np.float64):
    times = np.sort(rng.uniform(0.0, 0.04, (batch, num_inputs * 2)), axis=1)
    ids = rng.integers(0, num_inputs, (batch, num_inputs * 2)).astype(np.int32)
    return so.SpikeTrain(jnp.asarray(times, dtype), jnp.asarray(ids), num_inputs)


def _loss(net, inputs):
    out = net(inputs, 0.06)[-1].spikes
    return jnp.sum(jnp.where(out.valid, (out.times - 0.02) ** 2, 0.0))


def _loss_and_spikes(net, inputs):
    out = net(inputs, 0.06)[-1].spikes
    return jnp.sum(jnp.where(out.valid, (out.times - 0.02) ** 2, 0.0)), out


def _batch_loss_and_spikes(net, batch):
    losses, spikes = jax.vmap(lambda x: _loss_and_spikes(net, x))(batch)
    return jnp.sum(losses), spikes


# Gradient and output spikes of one sample, and of a batch under `vmap` (the spikes of
# the forward pass inside the gradient computation): the network is an argument, so
# both tests of the 6-8-3 network below share these compilations (they run on one xdist
# worker, tests/conftest.py).
_sample_grad = eqx.filter_jit(eqx.filter_grad(_loss_and_spikes, has_aux=True))
_batch_grad = eqx.filter_jit(eqx.filter_grad(_batch_loss_and_spikes, has_aux=True))


@pytest.mark.slow  # (about 40 s; vmap against single runs also in test_event_driven.py
# and test_bad_input.py)
def test_vmap_equals_per_sample():
    net = _two_layer(0)
    batch = _batch(np.random.default_rng(0), 5, 6)
    grads, batched = _batch_grad(net, batch)
    total = None
    counts = []
    for b in range(5):
        sample = jax.tree_util.tree_map(lambda x: x[b], batch)
        g, single = _sample_grad(net, sample)
        counts.append(int(single.num_spikes))
        np.testing.assert_array_equal(np.asarray(batched.neurons[b]), np.asarray(single.neurons))
        np.testing.assert_allclose(
            np.asarray(batched.times[b]), np.asarray(single.times), rtol=0, atol=1e-12
        )
        total = g if total is None else jax.tree_util.tree_map(jnp.add, total, g)
    assert sum(counts) > 10
    for a, b in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(total)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-12)


_FLOAT32_SCRIPT = """
import json, sys
import jax, jax.numpy as jnp, numpy as np
sys.path.insert(0, {tests!r})
from test_gradients import _two_layer, _batch, _loss
import equinox as eqx
net = _two_layer(1, dtype=jnp.float32)
batch = _batch(np.random.default_rng(1), 3, 6, dtype=np.float32)
out = eqx.filter_jit(lambda n, b: jax.vmap(lambda x: n(x, 0.06)[-1].spikes)(b))(net, batch)
g = eqx.filter_jit(eqx.filter_grad(_loss))(net, jax.tree_util.tree_map(lambda x: x[0], batch))
# A segment from a to b with a + (b - a) != b in float32 must still end exactly at b.
import spikeode as so
a, b = np.float32(0.0014159835), np.float32(0.0062141637)
assert a + (b - a) != b
inp = so.SpikeTrain(jnp.asarray([a, b], jnp.float32), jnp.asarray([0, 1], jnp.int32), 2)
one = so.simulate(so.LIF(1, tau_mem=0.01, tau_syn=0.005), 0.05, inp, jnp.full((2, 1), 5.0, jnp.float32), max_spikes=4)
assert int(one.spikes.num_spikes) >= 1
print(json.dumps(dict(dtype=str(out.times.dtype), gdtype=str(g.layers[0].w_in.dtype),
    times=np.asarray(out.times, np.float64).tolist(), neurons=np.asarray(out.neurons).tolist(),
    grad=np.asarray(g.layers[0].w_in, np.float64).tolist())))
"""  # noqa: E501


@pytest.mark.slow  # (about 30 s: the float32 and float64 programs and their gradients)
def test_float32_matches_float64():
    """float32 (JAX's default, x64 disabled: run in a subprocess) agrees with float64."""
    import json
    import os
    import subprocess
    import sys

    tests = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, JAX_ENABLE_X64="0")
    proc = subprocess.run(
        [sys.executable, "-c", _FLOAT32_SCRIPT.format(tests=tests)],
        capture_output=True, text=True, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["dtype"] == "float32" and res["gdtype"] == "float32"
    net64 = _two_layer(1)
    batch = _batch(np.random.default_rng(1), 3, 6)
    # float64, sample by sample (equal to the batched run: test_vmap_equals_per_sample),
    # through the compilations that test shares
    per_sample = [_sample_grad(net64, jax.tree_util.tree_map(lambda x: x[b], batch))
                  for b in range(3)]  # fmt: skip
    out64 = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *[s for _, s in per_sample])
    np.testing.assert_array_equal(np.asarray(res["neurons"]), np.asarray(out64.neurons))
    t32 = np.asarray(res["times"])
    np.testing.assert_allclose(t32, np.asarray(out64.times), rtol=0, atol=2e-6)
    g64 = per_sample[0][0]
    w64 = np.asarray(g64.layers[0].w_in)
    assert np.max(np.abs(w64 - np.asarray(res["grad"]))) <= 1e-4 * np.max(np.abs(w64))


def test_gradient_wrt_initial_state_and_refractory_and_reset():
    """Initial state, reset potential and a non-zero refractory period."""
    rng = np.random.default_rng(3)
    inputs = so.SpikeTrain.from_per_neuron(np.sort(rng.uniform(0, 0.05, (4, 3)), axis=1))
    w_in = jnp.asarray(rng.normal(0.5, 0.4, (4, 3)))
    neuron = so.LIF(3, tau_mem=0.01, tau_syn=0.004, bias=1.1, v_reset=-0.1, refractory_period=0.003)
    y0 = jnp.asarray(rng.uniform(-0.2, 0.5, (3, 2)))

    def fn(p):
        y, v_reset, refractory_period = p
        m = eqx.tree_at(
            lambda m: (m.v_reset, m.refractory_period), neuron, (v_reset, refractory_period)
        )
        sim = so.simulate(m, 0.08, inputs, w_in, y0=y, max_spikes=64)
        t = sim.spikes.times
        return jnp.sum(jnp.where(sim.spikes.valid, jnp.sin(60 * t), 0.0)), sim

    report = so.check_grads(fn, (y0, neuron.v_reset, neuron.refractory_period))
    assert report.num_spikes >= 9
    assert report.passed, str(report)


def test_check_grads_detects_a_wrong_gradient():
    """The check must fail when the gradient is wrong (here: scaled by 1.001)."""
    inputs = so.SpikeTrain.from_lists([[0.001, 0.004], [0.002]])
    neuron = so.LIF(2, tau_mem=0.01, tau_syn=0.005)

    @jax.custom_vjp
    def skew(x):
        return x

    skew.defvjp(lambda x: (x, None), lambda _, g: (1.001 * g,))

    def fn(w):
        sim = so.simulate(neuron, 0.05, inputs, skew(w), max_spikes=16)
        return jnp.sum(jnp.where(sim.spikes.valid, sim.spikes.times, 0.0)), sim

    w = jnp.array([[3.0, 2.0], [2.5, 3.5]])
    report = so.check_grads(fn, w)
    assert report.num_spikes >= 2
    assert not report.passed
    assert 5e-4 < report.max_rel_error < 2e-3


def test_check_grads_flags_full_buffer():
    neuron = so.LIF(1, tau_mem=0.02, bias=2.0)

    def fn(b):
        m = eqx.tree_at(lambda m: m.bias, neuron, b)
        sim = so.simulate(m, 0.5, max_spikes=3, throw=False)
        return jnp.sum(jnp.where(sim.spikes.valid, sim.spikes.times, 0.0)), sim

    report = so.check_grads(fn, neuron.bias)
    assert report.overflow
    assert not report.passed
    assert "full" in str(report)


def test_check_grads_needs_float64():
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(RuntimeError, match="float64"):
            so.check_grads(lambda p: (p, ()), 1.0)
    finally:
        jax.config.update("jax_enable_x64", True)


def test_gradient_wrt_coinciding_input_times():
    """Inputs at the same time: each input's time gets its own gradient (the later
    ones are applied in zero-length segments), against finite differences."""
    neuron = so.LIF(1, tau_mem=0.02, tau_syn=0.005)
    w = jnp.array([[1.0], [1.0], [6.0]])
    ids = jnp.array([0, 1, 2], jnp.int32)

    def fn(t_in):
        train = so.SpikeTrain(t_in, ids, 3).sorted()  # perturbations may reorder
        sim = so.simulate(neuron, 0.1, train, w, max_spikes=8)
        return jnp.sum(jnp.where(sim.spikes.valid, sim.spikes.times, 0.0)), sim

    t_in = jnp.array([0.01, 0.01, 0.01])
    value = jax.jit(lambda t: fn(t)[0])  # compiled once (not op by op for every call)
    grad = jax.jit(jax.grad(lambda t: fn(t)[0]))(t_in)
    h = 1e-7
    fd = [(value(t_in.at[k].add(h)) - value(t_in.at[k].add(-h))) / (2 * h) for k in range(3)]
    np.testing.assert_allclose(np.asarray(grad), np.asarray(fd), rtol=1e-6)
    # the weight-6 input dominates; the gradient is not all on the first input
    assert float(grad[2]) > 0.5 and float(grad[0]) < 0.5

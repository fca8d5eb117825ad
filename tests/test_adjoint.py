"""`EventPropAdjoint`: the continuous adjoint gives the gradients of differentiating
through the solver (1e-8 relative) and of finite differences (1e-6), in float64, for
feed-forward and recurrent networks with several spikes per neuron."""

from __future__ import annotations

import functools

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spikeode as so

T1 = 0.08
# finite-difference steps (relative): fewer than check_grads' default, to keep it fast
STEPS = np.logspace(-3, -7, 9)


def _inputs(seed, num_inputs, count, t_max=0.05):
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(0.0, t_max, count))
    ids = rng.integers(0, num_inputs, count)
    return so.SpikeTrain(jnp.asarray(times), jnp.asarray(ids, jnp.int32), num_inputs)


def _smooth_loss(sim):
    """A loss that weighs every spike time, saved state and final state."""
    s = sim.spikes
    t = jnp.where(s.valid, s.times, 0.0)
    weight = 1.0 + s.neurons.astype(t.dtype)
    loss = jnp.sum(jnp.sin(150.0 * t) * weight) + jnp.sum(sim.y_final[:, 0])
    if sim.ys is not None:
        loss = loss + jnp.sum(sim.ys**2)
    return loss


def _recurrent(build, **kw):
    """`params -> (loss, sim)` of a recurrent network; the input times are a parameter."""

    def fn(params, adjoint):
        neuron, w_in, w_rec, times = params
        inputs = so.SpikeTrain(times, INPUTS.neurons, INPUTS.num_neurons)
        sim = so.simulate(
            neuron, T1, inputs, w_in, w_rec=w_rec, max_spikes=120, adjoint=adjoint,
            save_ts=jnp.array([0.03, 0.06]), **kw,
        )  # fmt: skip
        return _smooth_loss(sim), sim

    return fn


INPUTS = _inputs(0, 3, 12)
RNG = np.random.default_rng(3)
W_IN = jnp.asarray(RNG.normal(0.6, 0.3, (3, 5)))
W_REC = jnp.asarray(RNG.normal(0.0, 0.25, (5, 5)))


def _lif():
    return so.LIF(5, tau_mem=jnp.asarray(0.01), tau_syn=jnp.asarray(0.005),
                  bias=jnp.linspace(1.1, 1.6, 5), threshold=jnp.asarray(1.0),
                  refractory_period=jnp.asarray(1e-3))  # fmt: skip


def _theta():
    return so.ThetaNeuron(5, tau=jnp.asarray(0.01), bias=jnp.linspace(1.5, 3.0, 5))


def _adaptive():
    return so.AdaptiveLIF(5, tau_mem=jnp.asarray(0.01), tau_syn=jnp.asarray(0.005),
                          tau_adapt=jnp.asarray(0.05), bias=jnp.linspace(1.3, 1.8, 5),
                          adapt_jump=jnp.asarray(0.2),
                          refractory_period=jnp.asarray(1e-3))  # fmt: skip


TIGHT = diffrax.PIDController(rtol=1e-12, atol=1e-12)
CASES = {
    # name: (model, simulate options, EventPropAdjoint)
    "lif": (_lif, {}, so.EventPropAdjoint()),
    "theta": (_theta, {}, so.EventPropAdjoint()),
    "adaptive-lif": (_adaptive, {"stepsize_controller": TIGHT},
                     so.EventPropAdjoint(stepsize_controller=TIGHT)),
}  # fmt: skip


def _rel_diff(a, b):
    out = 0.0
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        x, y = np.asarray(x), np.asarray(y)
        out = max(out, float(np.max(np.abs(x - y)) / max(np.max(np.abs(x)), 1e-300)))
    return out


def _filtered(tree):
    """The floating leaves of `tree` (None elsewhere), as `eqx.filter_grad` gives."""
    return eqx.filter(tree, eqx.is_inexact_array)


@functools.lru_cache(maxsize=None)
def _case(name):
    """Gradient by differentiating through the solver (with that run's simulation), and
    `check_grads` of `EventPropAdjoint` against finite differences; its `grad` is the
    adjoint's gradient (one compilation serves both comparisons). Cached: the "lif"
    case also serves `test_eventprop_with_few_checkpoints_gives_the_same_gradient` (the
    module's tests run on one xdist worker, tests/conftest.py)."""
    build, options, adjoint = CASES[name]
    fn = _recurrent(build, **options)
    params = (build(), W_IN, W_REC, INPUTS.times)
    g_solver, sim = eqx.filter_jit(eqx.filter_grad(fn, has_aux=True))(params, None)
    report = so.check_grads(lambda p: fn(p, adjoint), params, steps=STEPS)
    return g_solver, sim, report


# (the numerical model's case takes a minute: slow suite; its backward solve runs in
# test_eventprop_backward_failure_is_an_error, its row in `spikeode check`)
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n == "adaptive-lif" else n
             for n in CASES],
)  # fmt: skip
def test_eventprop_equals_solver_differentiation_and_finite_differences(name):
    g_solver, sim, report = _case(name)
    counts = np.bincount(np.asarray(sim.spikes.neurons), minlength=6)[:5]
    assert counts.min() >= 2, counts  # several spikes per neuron, all recurrent
    assert _rel_diff(g_solver, _filtered(report.grad)) <= 1e-8
    assert report.passed and report.max_rel_error <= 1e-6, str(report)


@pytest.mark.slow  # (a minute; EventProp through the coupled loop: the cases above)
def test_eventprop_through_a_feedforward_network_with_per_neuron_loops():
    layers = [
        so.nn.SpikingLayer(4, 8, max_spikes=80, loop=so.PerNeuronLoop(10),
                           neuron=so.LIF(8, tau_mem=0.01, tau_syn=0.005, bias=1.1,
                                         refractory_period=1e-3),
                           key=jax.random.PRNGKey(0)),
        so.nn.SpikingLayer(8, 3, max_spikes=40, loop=so.PerNeuronLoop(14),
                           neuron=so.LIF(3, tau_mem=0.01, tau_syn=0.005, bias=0.9,
                                         refractory_period=1e-3),
                           key=jax.random.PRNGKey(1)),
    ]  # fmt: skip
    rng = np.random.default_rng(5)
    layers = [
        eqx.tree_at(lambda layer: layer.w_in, layer,
                    jnp.asarray(rng.normal(0.4, 0.3, layer.w_in.shape)))
        for layer in layers
    ]
    net = so.nn.Sequential(layers)
    inputs = _inputs(2, 4, 10)

    def fn(net, adjoint):
        sims = net(inputs, T1, adjoint=adjoint)
        return _smooth_loss(sims[-1]) + 0.1 * _smooth_loss(sims[0]), sims

    g_solver, sims = eqx.filter_jit(eqx.filter_grad(fn, has_aux=True))(net, None)
    assert int(sims[0].spikes.num_spikes) >= 16 and int(sims[1].spikes.num_spikes) >= 6
    # EventPropAdjoint against finite differences on every parameter (weights and
    # neuron parameters of both layers), and against the solver's gradient; the
    # adjoint's gradient is the one `check_grads` computed (one compilation)
    report = so.check_grads(lambda n: fn(n, so.EventPropAdjoint()), net, steps=STEPS)
    assert report.passed and report.max_rel_error <= 1e-6, str(report)
    assert _rel_diff(g_solver, _filtered(report.grad)) <= 1e-8


def test_eventprop_with_few_checkpoints_gives_the_same_gradient():
    """With `EventPropAdjoint(checkpoints=4)` the loop keeps 4 states and recomputes
    the rest (compared with the "lif" case's EventProp gradient, all states kept)."""
    g_all = _filtered(_case("lif")[2].grad)
    params = (_lif(), W_IN, W_REC, INPUTS.times)
    adjoint = so.EventPropAdjoint(checkpoints=4)
    lean = _recurrent(_lif)
    g_lean = eqx.filter_jit(eqx.filter_grad(lambda p: lean(p, adjoint)[0]))(params)
    assert _rel_diff(g_all, g_lean) <= 1e-12


def test_eventprop_backward_failure_is_an_error():
    build, options, _ = CASES["adaptive-lif"]
    fn = _recurrent(build, **options)
    params = (build(), W_IN, W_REC, INPUTS.times)
    starved = so.EventPropAdjoint(stepsize_controller=TIGHT, max_steps=2)
    with pytest.raises(Exception, match="EventPropAdjoint: the backward adjoint solve"):
        # under `filter_jit`: one compilation (cheaper than op-by-op dispatch)
        jax.block_until_ready(eqx.filter_jit(eqx.filter_grad(lambda p: fn(p, starved)[0]))(params))


def test_eventprop_is_reverse_mode_only():
    fn = _recurrent(_lif)
    params = (_lif(), W_IN, W_REC, INPUTS.times)
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(lambda w: fn((params[0], w, W_REC, INPUTS.times), so.EventPropAdjoint())[0],
                (W_IN,), (jnp.ones_like(W_IN),))  # fmt: skip

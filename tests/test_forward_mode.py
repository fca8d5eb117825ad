"""Forward-mode sensitivities through a simulation: `jax.jvp`, `jax.jacfwd` and
Hessian-vector products, with `adjoint=spikeode.ForwardMode()`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import spikeode as so

INPUT_IDS = jnp.array([0, 1, 0, 1], jnp.int32)
W_IN = jnp.array([[1.5, 0.8, 2.0], [1.0, 2.0, 0.5]])
W_REC = jnp.array([[0.0, 0.4, -0.3], [0.2, 0.0, 0.5], [0.3, -0.2, 0.0]])


def spike_times(p, adjoint=None):
    """All spike times (0 for padding) of a 2-input, 3-neuron recurrent LIF network
    as a function of a handful of parameters."""
    tau_mem, threshold, input_times = p
    neuron = so.LIF(3, tau_mem=tau_mem, tau_syn=5e-3, threshold=threshold, bias=1.5)
    inputs = so.SpikeTrain(input_times, INPUT_IDS, 2)
    sim = so.simulate(neuron, 0.06, inputs, W_IN, w_rec=W_REC, max_spikes=24, adjoint=adjoint)
    return jnp.where(sim.spikes.valid, sim.spikes.times, 0.0), sim.spikes.num_spikes


P = (jnp.array([0.02, 0.015, 0.025]), jnp.array(1.0), jnp.array([0.001, 0.002, 0.004, 0.006]))
FORWARD = so.ForwardMode()


def _fd(fn, p, v, h):
    plus = jax.tree.map(lambda a, b: a + h * b, p, v)
    minus = jax.tree.map(lambda a, b: a - h * b, p, v)
    return (fn(plus) - fn(minus)) / (2 * h)


def _times_twice(p):
    times = spike_times(p)[0]
    return times, times  # (output, aux): each Jacobian evaluation also gives the values


# reverse mode (the default adjoint), compiled once for both tests (the module's tests
# run on one xdist worker, tests/conftest.py): the Jacobian of the spike times, and the
# times themselves (for finite differences)
_jacrev_and_times = jax.jit(jax.jacrev(_times_twice, has_aux=True))
V = (jnp.array([1e-3, -2e-3, 1e-3]), jnp.array(0.05), jnp.array([1e-4, -1e-4, 2e-4, 0.0]))


def test_jacfwd_matches_reverse_mode_and_finite_differences():
    # one directional derivative (jax.jvp), with the spike count of that run
    _, tangent, count = jax.jit(
        lambda p, v: jax.jvp(lambda q: spike_times(q, FORWARD), (p,), (v,), has_aux=True)
    )(P, V)
    assert int(count) >= 8
    jac_fwd = jax.jit(jax.jacfwd(lambda p: spike_times(p, FORWARD)[0]))(P)
    jac_rev, _ = _jacrev_and_times(P)
    for a, b in zip(jac_fwd, jac_rev):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    # the directional derivative against central differences (Richardson)
    f = lambda p: _jacrev_and_times(p)[1]  # noqa: E731
    h = 1e-3
    fd = (4 * _fd(f, P, V, h / 2) - _fd(f, P, V, h)) / 3
    scale = float(jnp.max(jnp.abs(tangent)))
    assert float(jnp.max(jnp.abs(tangent - fd))) <= 1e-6 * scale


def test_hessian_vector_product_matches_finite_differences_of_the_gradient():
    def loss_fwd(p):
        return jnp.sum(spike_times(p, FORWARD)[0] ** 2)

    v = V
    # forward over forward: the directional derivative of the (forward-mode) gradient
    _, hvp = jax.jit(lambda p, v: jax.jvp(jax.jacfwd(loss_fwd), (p,), (v,)))(P, v)

    def grad(p):
        """Reverse-mode gradient of sum(times^2): 2 J^T times (J by `jax.jacrev`)."""
        jac, times = _jacrev_and_times(p)
        return jax.tree.map(lambda j: jnp.tensordot(2 * times, j, axes=1), jac)

    h = 1e-3
    fd = jax.tree.map(
        lambda a, b: (4 * a - b) / 3,
        jax.tree.map(lambda x, y: (x - y) / h, grad(jax.tree.map(lambda a, b: a + h / 2 * b, P, v)),
                     grad(jax.tree.map(lambda a, b: a - h / 2 * b, P, v))),
        jax.tree.map(lambda x, y: (x - y) / (2 * h),
                     grad(jax.tree.map(lambda a, b: a + h * b, P, v)),
                     grad(jax.tree.map(lambda a, b: a - h * b, P, v))),
    )  # fmt: skip
    for a, b in zip(hvp, fd):
        scale = float(jnp.max(jnp.abs(b)))
        assert scale > 0
        assert float(jnp.max(jnp.abs(a - b))) <= 1e-6 * scale, (a, b)

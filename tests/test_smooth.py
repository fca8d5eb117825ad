"""The smooth gated network (Huh & Sejnowski 2018): gate normalisation, released
amount per zone crossing (full, stalled, grazing), spikes, gradients of Diffrax
adjoints against each other and finite differences, and input validation.

The released amount is measured from the simulated synaptic state alone: from
`tau_s ds/dt = -s + r`, `integral r dt = tau_s (s(t) - s(0)) + integral s dt`, with the
last integral carried as an extra ODE state. It is compared with closed forms: 1 per
full crossing, `Gamma(theta(t)) - Gamma(theta(0))` along any path.
"""

from __future__ import annotations

import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spikeode.smooth import (
    gate,
    gate_primitive,
    simulate_smooth,
    SmoothGatedNetwork,
    SmoothSolution,
    spike_times,
)

N = 4  # neurons in the release tests (one compiled solve serves all of them)
NUM_SAVE = 401


def _drive(t):
    """Four input channels: two oscillations, an inhibitory pulse around t = 0.8 and
    a sustained inhibition switched on around t = 0.7."""
    return jnp.stack(
        [
            jnp.sin(0.9 * t),
            jnp.cos(1.7 * t),
            -jnp.exp(-(((t - 0.8) / 0.3) ** 2)),
            -jax.nn.sigmoid((t - 0.7) / 0.05),
        ]
    )


@eqx.filter_jit
def _released(model, y0, ts):
    """States at `ts` and the amount released since `ts[0] = 0`, measured from `s`."""

    def f(t, z, args):
        y, _ = z
        return model.vector_field(t, y, _drive), y[:, 1]

    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(f),
        diffrax.Dopri8(),
        ts[0],
        ts[-1],
        None,
        (y0, jnp.zeros(model.num_neurons)),
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(
            rtol=1e-13, atol=1e-13, dtmax=model.max_step()
        ),
        max_steps=100_000,
    )
    y, integral_s = sol.ys
    tau_s = jnp.broadcast_to(model.tau_s, integral_s.shape)
    return y, tau_s * (y[:, :, 1] - y0[None, :, 1]) + integral_s


def _grid(t1, special=()):
    """`NUM_SAVE` save times on `[0, t1]` including the `special` ones."""
    special = np.sort(np.asarray(special, float))
    grid = np.linspace(0.0, t1, NUM_SAVE - len(special))
    return jnp.asarray(np.sort(np.concatenate([grid, special])))


def _per_neuron(x):
    """Per-neuron parameter arrays everywhere, so that `_released` compiles once."""
    return np.broadcast_to(np.asarray(x, float), (N,)).copy()


def _uncoupled(bias, *, delta=1.0, tau_v=1.0, tau_s=1.0, U=None):
    return SmoothGatedNetwork(
        4, N, 1, tau_v=_per_neuron(tau_v), tau_s=_per_neuron(tau_s), delta=delta,
        bias=_per_neuron(bias),
        U=jnp.zeros((N, 4)) if U is None else U, W=jnp.zeros((N, N)), O=jnp.ones((1, N)),
    )


# ------------------------------------------------------------------------------ gate
@pytest.mark.parametrize("delta", [0.3, 1.0, 2 * math.pi])
def test_gate_unit_integral_and_primitive(delta):
    # Gauss-Legendre quadrature over the zone (the bump is a trigonometric polynomial
    # there, vanishing with seven derivatives at the edges)
    nodes, weights = np.polynomial.legendre.leggauss(200)
    area = float(jnp.sum(weights * gate(math.pi + nodes * delta / 2, delta)) * delta / 2)
    assert abs(area - 1.0) < 1e-13
    # zero outside the zone (for delta < 2 pi), non-negative everywhere, periodic
    theta = np.linspace(-10.0, 10.0, 2001)
    g = np.asarray(gate(theta, delta))
    assert np.all(g >= 0)
    x = np.remainder(theta, 2 * np.pi) - np.pi
    assert np.all(g[np.abs(x) >= delta / 2] == 0)
    np.testing.assert_allclose(np.asarray(gate(theta + 2 * np.pi, delta)), g, atol=1e-12)
    # Gamma' = g, and Gamma grows by exactly 1 per cycle
    dgamma = jax.vmap(jax.grad(lambda t: gate_primitive(t, delta)))(jnp.asarray(theta))
    np.testing.assert_allclose(np.asarray(dgamma), g, rtol=0, atol=1e-12)
    gam = np.asarray(gate_primitive(theta, delta))
    shifted = np.asarray(gate_primitive(theta + 2 * np.pi, delta))
    np.testing.assert_allclose(shifted, gam + 1, atol=1e-13)
    assert float(gate_primitive(0.0, delta)) == 0.0
    assert float(gate_primitive(math.pi, delta)) == pytest.approx(0.5, abs=1e-15)


# ------------------------------------------------------------------- released amount
def test_full_crossing_releases_exactly_one():
    """Uncoupled neurons under constant current b > 0 from theta = 0: after k periods
    `pi tau_v / sqrt(b)` the phase is `2 pi k` and exactly k units were released,
    for any speed of crossing and any tau_s. With a long tau_s, s jumps by
    1/tau_s per crossing."""
    bias = np.array([0.3, 0.8, 2.0, 1.0])
    tau_v = np.array([1.0, 0.5, 2.0, 1.0])
    tau_s = np.array([0.1, 1.0, 5.0, 100.0])
    periods = np.pi * tau_v / np.sqrt(bias)
    t1 = 2 * periods.max()
    special = np.concatenate([periods, 2 * periods])
    model = _uncoupled(bias, tau_v=tau_v, tau_s=tau_s)
    ts = _grid(t1, special)
    y, released = _released(model, model.init_state(), ts)
    for i in range(N):
        for k in (1, 2):
            j = int(np.argmin(np.abs(np.asarray(ts) - k * periods[i])))
            assert abs(float(y[j, i, 0]) - 2 * np.pi * k) < 1e-9
            assert abs(float(released[j, i]) - k) < 1e-10, (i, k, float(released[j, i]))
    # long synaptic time constant: s jumped by 1/tau_s (up to its decay, T/tau_s)
    j = int(np.argmin(np.abs(np.asarray(ts) - periods[3])))
    assert abs(tau_s[3] * float(y[j, 3, 1]) - 1.0) < periods[3] / tau_s[3]


def test_release_follows_phase_in_recurrent_network():
    """In a driven recurrent network, the amount each neuron released up to any time
    equals `Gamma(theta(t)) - Gamma(theta(0))`: exactly one unit per full crossing plus
    the fraction of the zone it is in."""
    rng = np.random.default_rng(0)
    model = SmoothGatedNetwork(
        4, N, 1, tau_v=_per_neuron(0.5), tau_s=_per_neuron(0.3), delta=0.8,
        bias=rng.uniform(0.4, 1.0, N),
        U=np.concatenate([rng.normal(0, 0.3, (N, 2)), np.zeros((N, 2))], axis=1),
        W=rng.normal(0, 0.4, (N, N)), O=np.ones((1, N)),
    )
    y0 = jnp.stack([jnp.asarray(rng.uniform(-3, 3, N)), jnp.asarray(rng.uniform(0, 1, N))], 1)
    y, released = _released(model, y0, _grid(10.0))
    expected = gate_primitive(y[:, :, 0], model.delta) - gate_primitive(y0[None, :, 0], model.delta)
    assert float(jnp.max(jnp.abs(released - expected))) < 1e-10
    assert float(jnp.min(released[-1])) > 2.9  # several full crossings each
    # the source of the synaptic equation is the model's release rate g(theta) dtheta/dt
    t, state = 3.7, y[150]
    ds = model.vector_field(t, state, _drive)[:, 1]
    np.testing.assert_allclose(
        np.asarray(model.release_rate(t, state, _drive)),
        np.asarray(model.tau_s * ds + state[:, 1]), rtol=0, atol=1e-12,
    )


def test_stalled_crossing_releases_graded_amount():
    """A neuron that enters the zone and is stopped there by sustained inhibition
    (total current I = b - K) stalls at the stable phase `pi + x*`,
    `cos x* = -(1 + I)/(1 - I)`, and releases `Gamma(pi + x*) < 1`: graded, decreasing
    with K towards 1/2."""
    K = np.array([100.0, 500.0, 2000.0, 8000.0])
    model = _uncoupled(-0.5, U=jnp.zeros((N, 4)).at[:, 3].set(K))
    y0 = jnp.zeros((N, 2)).at[:, 0].set(np.pi - 0.7)
    ts = _grid(8.0)
    y, released = _released(model, y0, ts)
    current = -0.5 - K
    x_star = np.arccos(-(1 + current) / (1 - current))
    expected = np.asarray(gate_primitive(np.pi + x_star, 1.0)) - float(
        gate_primitive(np.pi - 0.7, 1.0)
    )
    np.testing.assert_allclose(np.asarray(y[-1, :, 0]), np.pi + x_star, rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.asarray(released[-1]), expected, rtol=0, atol=1e-10)
    assert np.all((expected > 0.5) & (expected < 0.98)) and np.all(np.diff(expected) < 0)
    path = gate_primitive(y[:, :, 0], 1.0) - gate_primitive(y0[None, :, 0], 1.0)
    assert float(jnp.max(jnp.abs(released - path))) < 1e-10


def test_grazing_excursion_releases_part_and_takes_it_back():
    """An excitable neuron heading for a spike is turned back by an inhibitory pulse
    after entering the outer part of the zone: while inside it has released a graded
    amount `Gamma(theta_max) < 1`; leaving on the side it came from takes it back, and
    it returns to rest without a spike. A weaker pulse lets it cross: exactly 1."""
    K = np.array([14.0, 20.0, 10.0, 5.0])
    model = _uncoupled(-0.5, delta=2.0, U=jnp.zeros((N, 4)).at[:, 2].set(K))
    theta0 = np.pi - 1.2  # just below the zone [pi - 1, pi + 1]
    y0 = jnp.zeros((N, 2)).at[:, 0].set(theta0)
    y, released = _released(model, y0, _grid(8.0))
    theta = np.asarray(y[:, :, 0])
    rest = -np.arccos((1 - 0.5) / (1 + 0.5))
    peak = np.asarray(released).max(axis=0)
    for i in (0, 1):  # turned back
        assert np.pi - 1.0 < theta[:, i].max() < np.pi  # entered, no spike
        assert 0 < peak[i] < 1
        assert abs(float(released[-1, i])) < 1e-10
        assert abs(theta[-1, i] - rest) < 1e-3
        assert peak[i] == pytest.approx(float(gate_primitive(theta[:, i].max(), 2.0)), abs=1e-9)
    assert peak[0] > peak[1]  # deeper excursion, more released
    for i in (2, 3):  # crossed
        assert abs(float(released[-1, i]) - 1.0) < 1e-10
        assert abs(theta[-1, i] - (rest + 2 * np.pi)) < 1e-3
    path = gate_primitive(y[:, :, 0], 2.0) - gate_primitive(theta0, 2.0)
    assert float(jnp.max(jnp.abs(released - path))) < 1e-10


# ------------------------------------------------------------------------ spikes
def test_spikes_closed_form_and_network_activity():
    """One network: neurons 0-2 receive nothing (zero rows of U and W) and fire
    periodically under their bias b, with spikes at (k + 1/2) pi tau_v / sqrt(b) from
    theta = 0; neurons 3-5 are driven by a sampled input (linearly interpolated) and
    by all neurons. Every neuron spikes, the phases wrap once per spike, and the
    readout is O s."""
    n, t1, tau_v = 6, 8.0, 0.5
    bias = np.array([0.3, 0.8, 2.0, 0.6, 0.6, 0.6])
    rng = np.random.default_rng(1)
    U = np.zeros((n, 2))
    U[3:] = rng.normal(0, 1, (3, 2))
    W = np.zeros((n, n))
    W[3:] = rng.normal(0, 0.5, (3, n))
    net = SmoothGatedNetwork(2, n, 2, tau_v=tau_v, tau_s=0.5, bias=bias, U=U, W=W,
                             O=rng.normal(0, 1, (2, n)))
    t_in = jnp.linspace(0.0, t1, 33)
    values = jnp.stack([jnp.sin(t_in), jnp.cos(0.5 * t_in)], axis=1)
    ts = jnp.linspace(0.0, t1, 81)
    out = net(
        (t_in, values), t1, ts=ts, solver=diffrax.Dopri8(), rtol=1e-12, atol=1e-12, dense=True
    )
    times = spike_times(out)

    period = np.pi * tau_v / np.sqrt(bias)
    for i in range(3):
        k = np.arange(int(np.floor(t1 / period[i] - 0.5)) + 1)
        assert len(times[i]) == len(k) >= 2
        np.testing.assert_allclose(times[i], (k + 0.5) * period[i], rtol=0, atol=1e-10)

    counts = np.array([len(t) for t in times])
    assert np.all(counts >= 2)
    wraps = np.floor((np.asarray(out.theta[-1]) - np.pi) / (2 * np.pi)) - np.floor(
        (np.asarray(out.theta[0]) - np.pi) / (2 * np.pi)
    )
    np.testing.assert_array_equal(wraps, counts)
    np.testing.assert_allclose(np.asarray(out.outputs), np.asarray(out.s @ net.O.T), atol=1e-14)
    assert float(jnp.max(jnp.abs(out.outputs))) > 0.1
    np.testing.assert_allclose(np.asarray(out.y1), np.stack([out.theta[-1], out.s[-1]], 1))
    np.testing.assert_allclose(
        np.asarray(out.evaluate(ts[40])), np.stack([out.theta[40], out.s[40]], 1), atol=1e-12
    )


# --------------------------------------------------------------------- gradients
G_T1 = 6.0
G_TIN = jnp.linspace(0.0, G_T1, 13)
G_TS = jnp.linspace(0.5, G_T1, 12)


def _grad_problem():
    rng = np.random.default_rng(3)
    model = SmoothGatedNetwork(
        2, 4, 2, tau_v=0.5, tau_s=0.4, delta=1.0, bias=rng.uniform(0.5, 1.0, 4),
        U=rng.normal(0, 0.5, (4, 2)), W=rng.normal(0, 0.4, (4, 4)), O=rng.normal(0, 1, (2, 4)),
    )
    values = jnp.asarray(rng.normal(0, 0.5, (13, 2)))
    y0 = jnp.stack([jnp.asarray(rng.uniform(-3, 3, 4)), jnp.zeros(4)], axis=1)
    w_out = jnp.asarray(rng.normal(size=(12, 2)))
    w_theta = jnp.asarray(rng.normal(size=(12, 4)))
    return (model, values), (y0, w_out, w_theta)


def _loss(params, fixed, adjoint):
    model, values = params
    y0, w_out, w_theta = fixed
    sol = simulate_smooth(
        model, (G_TIN, values), G_T1, y0=y0, ts=G_TS, solver=diffrax.Dopri8(),
        rtol=1e-12, atol=1e-12, adjoint=adjoint, max_steps=50_000,
    )
    return jnp.mean(w_out * sol.outputs) + jnp.mean(w_theta * jnp.cos(sol.theta))


def test_gradients_backsolve_recursive_and_finite_differences():
    params, fixed = _grad_problem()
    value = eqx.filter_jit(lambda p: _loss(p, fixed, diffrax.RecursiveCheckpointAdjoint()))
    g_bs = eqx.filter_jit(
        eqx.filter_grad(lambda p: _loss(p, fixed, diffrax.BacksolveAdjoint()))
    )(params)
    g_rc = eqx.filter_jit(
        eqx.filter_grad(lambda p: _loss(p, fixed, diffrax.RecursiveCheckpointAdjoint()))
    )(params)

    dyn, static = eqx.partition(params, eqx.is_inexact_array)
    leaves, treedef = jax.tree_util.tree_flatten(dyn)
    names = ["U", "W", "O", "bias", "tau_v", "tau_s", "delta", "input values"]
    assert len(leaves) == len(names)
    bs, rc = jax.tree_util.tree_leaves(g_bs), jax.tree_util.tree_leaves(g_rc)
    key = jax.random.PRNGKey(0)
    for k, (name, leaf, a, b) in enumerate(zip(names, leaves, bs, rc)):
        # the two adjoints agree elementwise, relative to the leaf's largest entry
        assert float(jnp.max(jnp.abs(a - b))) <= 1e-6 * float(jnp.max(jnp.abs(b))), name
        # and with finite differences along random directions
        scale = float(jnp.sqrt(jnp.mean(leaf**2))) or 1.0
        for j in range(1 if leaf.ndim == 0 else 2):
            d = jax.random.normal(jax.random.fold_in(key, 10 * k + j), leaf.shape)
            d = d / jnp.linalg.norm(d.ravel())

            def at(h):
                moved = [x + h * d if i == k else x for i, x in enumerate(leaves)]
                moved = jax.tree_util.tree_unflatten(treedef, moved)
                return float(value(eqx.combine(moved, static)))

            # Richardson-extrapolated central differences, at decreasing steps until
            # they agree: the loss is strongly curved in some directions (tau_v
            # rescales time); a wrong gradient agrees at no step
            ads = [float(jnp.sum(g * d)) for g in (a, b)]
            for h in (1e-3 * scale, 1e-4 * scale, 1e-5 * scale):
                fd1 = (at(h) - at(-h)) / (2 * h)
                fd2 = (at(h / 2) - at(-h / 2)) / h
                fd = (4 * fd2 - fd1) / 3
                err = max(abs(fd - ad) / max(abs(ad), abs(fd), 1e-8) for ad in ads)
                if err <= 1e-6:
                    break
            assert err <= 1e-6, (name, fd, ads)


# --------------------------------------------------------------------- bad input
def _net(**kw):
    kw.setdefault("key", jax.random.PRNGKey(0))
    return SmoothGatedNetwork(2, 3, 1, **kw)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(tau_v=0.0), "tau_v.*positive"),
        (dict(tau_v=np.array([1.0, -1.0, 1.0])), "tau_v.*positive"),
        (dict(tau_s=-1.0), "tau_s.*positive"),
        (dict(delta=0.0), r"delta.*\(0, 2 pi\]"),
        (dict(delta=7.0), r"delta.*\(0, 2 pi\]"),
        (dict(delta=float("nan")), "delta"),
        (dict(delta=np.ones(3)), "delta.*scalar"),
        (dict(bias=np.ones(2)), "bias.*shape"),
        (dict(U=np.ones((2, 3))), r"`U` has shape \(2, 3\); expected \(3, 2\)"),
        (dict(W=np.ones((3, 2))), r"`W` has shape"),
        (dict(O=np.ones((3, 1))), r"`O` has shape"),
        (dict(W=np.full((3, 3), np.nan)), "NaN"),
        (dict(key=None), "pass `key`"),
    ],
)
def test_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _net(**kwargs)


def test_bad_sizes():
    with pytest.raises(ValueError, match="num_neurons"):
        SmoothGatedNetwork(2, 0, 1, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="num_inputs"):
        SmoothGatedNetwork(-1, 2, 1, key=jax.random.PRNGKey(0))


def test_bad_simulation_arguments():
    net = _net()
    with pytest.raises(ValueError, match="t1.*greater than.*t0"):
        simulate_smooth(net, None, 0.0)
    with pytest.raises(ValueError, match=r"input at time t has shape \(3,\); expected \(2,\)"):
        simulate_smooth(net, lambda t: jnp.ones(3), 1.0)
    with pytest.raises(ValueError, match=r"input values have shape \(5, 3\)"):
        simulate_smooth(net, (jnp.linspace(0, 1, 5), jnp.ones((5, 3))), 1.0)
    with pytest.raises(ValueError, match="cover"):
        simulate_smooth(net, (jnp.linspace(0, 0.5, 5), jnp.ones((5, 2))), 1.0)
    with pytest.raises(ValueError, match="strictly increasing"):
        simulate_smooth(net, (jnp.array([0.0, 0.6, 0.5, 1.0]), jnp.ones((4, 2))), 1.0)
    with pytest.raises(TypeError, match="inputs"):
        simulate_smooth(net, 3.0, 1.0)
    with pytest.raises(ValueError, match="y0"):
        simulate_smooth(net, None, 1.0, y0=jnp.zeros((3,)))
    with pytest.raises(ValueError, match="ts.*sorted"):
        simulate_smooth(net, None, 1.0, ts=jnp.array([0.5, 0.2]))
    with pytest.raises(ValueError, match="ts.*inside"):
        simulate_smooth(net, None, 1.0, ts=jnp.array([0.5, 1.5]))
    with pytest.raises(ValueError, match="dense.*BacksolveAdjoint"):
        simulate_smooth(net, None, 1.0, dense=True, adjoint=diffrax.BacksolveAdjoint())
    no_dense = SmoothSolution(
        ts=jnp.ones(1), theta=jnp.zeros((1, 3)), s=jnp.zeros((1, 3)),
        outputs=jnp.zeros((1, 1)), y1=jnp.zeros((3, 2)), num_steps=jnp.array(1),
        result=diffrax.RESULTS.successful,
    )
    with pytest.raises(ValueError, match="dense=True"):
        spike_times(no_dense)
    with pytest.raises(ValueError, match="dense=True"):
        no_dense.evaluate(0.5)
    with pytest.raises(ValueError, match="num_inputs=0"):
        simulate_smooth(
            SmoothGatedNetwork(0, 2, 1, key=jax.random.PRNGKey(0)), lambda t: jnp.ones(0), 1.0
        )


def test_bad_values_inside_jit():
    """Values reached inside `jit` (e.g. by training) are checked with
    `equinox.error_if`."""
    net = _net()
    run = eqx.filter_jit(lambda m, t1, ts: simulate_smooth(m, None, t1, ts=ts).y1)
    ok = run(net, jnp.asarray(1.0), jnp.array([0.5]))
    assert np.all(np.isfinite(np.asarray(ok)))
    for field, value, match in [
        ("tau_v", -1.0, "tau_v.*positive"),
        ("tau_s", 0.0, "tau_s.*positive"),
        ("delta", 7.0, "delta"),
    ]:
        # same dtype and (strong) type as the original leaf: one compilation
        bad = eqx.tree_at(lambda m: getattr(m, field), net, jnp.array(value, jnp.float64))
        with pytest.raises(eqx.EquinoxRuntimeError, match=match):
            run(bad, jnp.asarray(1.0), jnp.array([0.5]))
    with pytest.raises(eqx.EquinoxRuntimeError, match="t1.*greater"):
        run(net, jnp.asarray(-1.0), jnp.array([-2.0]))
    with pytest.raises(eqx.EquinoxRuntimeError, match="ts.*sorted"):
        run(net, jnp.asarray(1.0), jnp.array([1.5]))


def test_model_closed_over_inside_jit():
    """A model captured as a constant by a jitted function (only some leaves traced)
    simulates: the concrete `delta` is checked with NumPy, not traced JAX ops."""
    net = _net()
    run = jax.jit(lambda W: simulate_smooth(eqx.tree_at(lambda m: m.W, net, W), None, 1.0).y1)
    assert np.all(np.isfinite(np.asarray(run(net.W))))

"""Transmission delays, sparse connectivity and the windowed loop.

References: the coupled loop against the independent SciPy simulator (which has its
own arrival queue); the windowed loop against the coupled loop (spike times, final
states, gradients); gradients with respect to delays against finite differences."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_same_runs

import spikeode as so
from spikeode._verify import reference_lif

T1 = 0.08


def _network(seed, n=6, n_in=3, per_connection=True):
    rng = np.random.default_rng(seed)
    inputs = so.SpikeTrain.from_lists([np.sort(rng.uniform(0, 0.05, 4)) for _ in range(n_in)])
    d_shape = (n, n) if per_connection else (n, 1)
    d_in_shape = (n_in, n) if per_connection else (n_in, 1)
    return dict(
        inputs=inputs,
        w_in=jnp.asarray(rng.normal(0.8, 0.3, (n_in, n))),
        # excitatory and inhibitory recurrent weights
        w_rec=jnp.asarray(rng.normal(0.0, 0.4, (n, n))),
        delays=jnp.asarray(rng.uniform(1e-3, 4e-3, d_shape)),
        input_delays=jnp.asarray(rng.uniform(0.0, 3e-3, d_in_shape)),
    )


def _lif(n=6, seed=0):
    rng = np.random.default_rng(100 + seed)
    return so.LIF(n, tau_mem=20e-3, tau_syn=5e-3, bias=0.9,
                  refractory_period=jnp.asarray(rng.uniform(1e-3, 3e-3, n)))  # fmt: skip


@pytest.mark.parametrize(
    # (per presynaptic neuron: slow; the default suite checks that path against no
    # delays, in test_zero_delays_are_no_delays)
    "per_connection", [True, pytest.param(False, marks=pytest.mark.slow)]
)
def test_coupled_loop_with_delays_matches_scipy_reference(per_connection):
    net = _network(1, n=8, n_in=4, per_connection=per_connection)
    neuron = _lif(8)
    sim = so.simulate(neuron, 0.12, max_spikes=200,
                      loop=so.CoupledLoop(max_pending=2000), **net)
    times, ids = reference_lif(neuron, 0.12, **{k: np.asarray(v) if k != "inputs" else v
                                              for k, v in net.items()})  # fmt: skip
    k = int(sim.spikes.num_spikes)
    assert k == len(times) and k > 20
    np.testing.assert_array_equal(np.asarray(sim.spikes.neurons[:k]), ids)
    assert np.max(np.abs(np.asarray(sim.spikes.times[:k]) - times)) < 1e-11


def test_zero_delays_are_no_delays():
    net = _network(2)
    neuron = _lif()

    def run(delays, input_delays):
        def loss(w_rec):
            sim = so.simulate(neuron, T1, net["inputs"], net["w_in"], w_rec=w_rec,
                              delays=delays, input_delays=input_delays, max_spikes=100,
                              loop=_loop("coupled"))  # fmt: skip
            return jnp.sum(jnp.where(sim.spikes.valid, sim.spikes.times, 0) ** 2), sim

        return eqx.filter_value_and_grad(loss, has_aux=True)(net["w_rec"])

    (_, base), g_base = run(None, None)
    (_, sim), g = run(0.0, jnp.zeros((3, 1)))
    np.testing.assert_allclose(g, g_base, rtol=1e-12, atol=1e-14)
    per_connection = so.simulate(neuron, T1, net["inputs"], net["w_in"], w_rec=net["w_rec"],
                                 delays=jnp.zeros((6, 6)), input_delays=jnp.zeros((3, 6)),
                                 max_spikes=100, loop=_loop("coupled"))  # fmt: skip
    # the same spikes in the same order, at the same times to round-off: the runs are
    # different XLA programs, whose machine code may round differently (with XLA's
    # legacy CPU fusion emitters, one time of this network differs by 3 ulp, 3.5e-16)
    for other in (sim, per_connection):
        np.testing.assert_array_equal(other.spikes.neurons, base.spikes.neurons)
        np.testing.assert_allclose(other.spikes.times, base.spikes.times, rtol=1e-15, atol=0)
    assert int(base.spikes.num_spikes) > 5


def _loop(kind: str, window: float | None = None) -> so.AbstractLoop:
    """The coupled or windowed loop, with room for 600 pending arrivals."""
    if kind == "coupled":
        return so.CoupledLoop(max_pending=600)
    return so.WindowedLoop(window=window, max_pending=600)


def _loss_fn(neuron, inputs, loop, **options):
    def fn(p):
        x = so.SpikeTrain(p["in_times"], inputs.neurons, inputs.num_neurons)
        sim = so.simulate(
            p["neuron"], T1, x, p["w_in"], w_rec=p["w_rec"], delays=p["delays"],
            input_delays=p["input_delays"], max_spikes=100, loop=loop, **options,
        )  # fmt: skip
        t = jnp.where(sim.spikes.valid, sim.spikes.times, 0.0)
        return jnp.sum(t**2) + jnp.sum(sim.y_final**2), sim

    return fn


def _params(net, neuron):
    p = {k: net[k] for k in ("w_in", "w_rec", "delays", "input_delays")}
    return p | dict(in_times=net["inputs"].times, neuron=neuron)


def test_delay_gradients_match_finite_differences():
    # (the other parameters' gradients: the coupled loop's are checked elsewhere, and
    # the windowed loop's equal them, below)
    net = _network(2)
    neuron = _lif()
    fn = _loss_fn(neuron, net["inputs"], _loop("windowed", 1e-3))
    params = _params(net, neuron)
    checked = {k: params[k] for k in ("delays", "input_delays", "w_rec")}
    report = so.check_grads(
        lambda p: fn(params | p), checked, rtol=1e-7, num_directions=1,
    )  # fmt: skip
    print(report)
    assert report.passed and report.num_spikes > 10


def _compare_loops(neuron, net, *, window=None, time_tol=1e-12, grad_tol=1e-9, **options):
    params = _params(net, neuron)
    out = {}
    for loop in ("coupled", "windowed"):
        fn = _loss_fn(neuron, net["inputs"], _loop(loop, window), **options)
        out[loop] = eqx.filter_jit(eqx.filter_value_and_grad(fn, has_aux=True))(params)
    (_, a), ga = out["coupled"]
    (_, b), gb = out["windowed"]
    assert_same_runs(a, ga, b, gb, min_spikes=8, time_tol=time_tol, grad_tol=grad_tol)
    return out


@pytest.mark.slow  # (about 45 s; windowed against coupled stays in the default suite with
# ties at window edges, below)
def test_windowed_loop_matches_coupled_loop_lif():
    # per-connection delays from 1 to 4 ms, window 1 ms (some delays equal it), mixed
    # signs, refractory periods
    net = _network(3)
    (_, a), ga = _compare_loops(_lif(), net, window=1e-3)["windowed"]
    # the checkpointed outer loop (4 checkpoints for 80 windows): the same gradients
    fn = _loss_fn(_lif(), net["inputs"], _loop("windowed", 1e-3),
                  adjoint=so.DirectAdjoint(checkpoints=4))  # fmt: skip
    (_, b), gb = eqx.filter_jit(eqx.filter_value_and_grad(fn, has_aux=True))(
        _params(net, _lif())
    )
    np.testing.assert_array_equal(a.spikes.times, b.spikes.times)
    for x, y in zip(jax.tree_util.tree_leaves(ga), jax.tree_util.tree_leaves(gb)):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12 * float(jnp.max(jnp.abs(x))))


def test_windowed_loop_matches_coupled_loop_with_ties_at_window_edges():
    # every delay equals the window (2 ms) and the inputs arrive exactly at window
    # edges (an arrival at an edge belongs to the window it starts)
    n = 5
    rng = np.random.default_rng(4)
    edges = [np.array([0.0, 2e-3, 4e-3, 10e-3]), np.array([2e-3, 6e-3, 8e-3])]
    net = dict(
        inputs=so.SpikeTrain.from_lists(edges),
        w_in=jnp.asarray(rng.uniform(0.8, 1.6, (2, n))),
        w_rec=jnp.asarray(rng.normal(0.1, 0.5, (n, n))),
        delays=jnp.full((n, n), 2e-3),
        input_delays=jnp.zeros((2, n)),
    )
    neuron = so.LIF(n, tau_mem=10e-3, tau_syn=2e-3, bias=1.2, refractory_period=1.5e-3)
    _compare_loops(neuron, net, window=2e-3)


@pytest.mark.slow  # (compiles two Tsit5 loops and their gradients: about a minute)
def test_windowed_loop_matches_coupled_loop_numerical_model():
    # AdaptiveLIF has no closed-form flow: Tsit5 segments on both sides (tight
    # tolerances: the loops break segments at different times)
    import diffrax

    _compare_loops(
        so.AdaptiveLIF(6, bias=1.1, refractory_period=1e-3), _network(5), window=1e-3,
        stepsize_controller=diffrax.PIDController(rtol=1e-12, atol=1e-12),
    )  # fmt: skip


def test_windowed_grouping_without_packed_keys(monkeypatch):
    # networks too large for int32 keys `target * capacity + slot` group the arrivals
    # by a two-key sort instead: forced here, the same spikes as the coupled loop
    import spikeode._windowed

    monkeypatch.setattr(spikeode._windowed, "_KEY_LIMIT", 1)
    net = _network(10)
    kw = dict(w_rec=net["w_rec"], delays=net["delays"], max_spikes=100)
    a = so.simulate(_lif(), T1, net["inputs"], net["w_in"], loop=_loop("windowed"), **kw)
    b = so.simulate(_lif(), T1, net["inputs"], net["w_in"], loop=_loop("coupled"), **kw)
    k = int(b.spikes.num_spikes)
    assert k > 8
    np.testing.assert_array_equal(a.spikes.neurons, b.spikes.neurons)
    np.testing.assert_allclose(a.spikes.times[:k], b.spikes.times[:k], rtol=0, atol=1e-12)


@pytest.mark.slow  # (about 35 s; synapses against a dense matrix stays in the default
# suite in test_event_driven.py)
def test_sparse_synapses_equal_dense():
    n = 6
    rng = np.random.default_rng(6)
    mask = rng.random((n, n)) < 0.5
    w = jnp.asarray(np.where(mask, rng.normal(0.2, 0.5, (n, n)), 0.0))
    d = jnp.asarray(rng.uniform(1e-3, 3e-3, (n, n)))
    net = _network(6)
    neuron = _lif()

    def loss(w, d, sparse, loop):
        rec = so.Synapses.from_dense(w, d, mask=mask) if sparse else w
        sim = so.simulate(neuron, T1, net["inputs"], net["w_in"], w_rec=rec,
                          delays=None if sparse else d, max_spikes=100,
                          loop=_loop(loop, 1e-3))  # fmt: skip
        return jnp.sum(jnp.where(sim.spikes.valid, sim.spikes.times, 0) ** 2), sim

    grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True), static_argnums=(2, 3))
    (_, dense), (gw, gd) = grad(w, d, False, "windowed")
    for loop in ("windowed", "coupled"):
        (_, sparse), (sw, sd) = grad(w, d, True, loop)
        np.testing.assert_array_equal(sparse.spikes.neurons, dense.spikes.neurons)
        np.testing.assert_allclose(sparse.spikes.times, dense.spikes.times, rtol=0, atol=1e-13)
        # gradients reach the stored weights and delays of the existing synapses only
        np.testing.assert_allclose(sw, np.where(mask, gw, 0), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(sd, np.where(mask, gd, 0), rtol=1e-9, atol=1e-12)
    assert int(dense.spikes.num_spikes) > 8


def test_per_neuron_loop_with_input_delays():
    net = _network(7)
    neuron = _lif()
    kw = dict(input_delays=net["input_delays"], max_spikes=100)
    a = so.simulate(neuron, T1, net["inputs"], net["w_in"], **kw)
    b = so.simulate(neuron, T1, net["inputs"], net["w_in"], loop=so.PerNeuronLoop(20), **kw)
    k = int(a.spikes.num_spikes)
    assert k > 5
    np.testing.assert_array_equal(a.spikes.neurons, b.spikes.neurons)
    np.testing.assert_allclose(a.spikes.times[:k], b.spikes.times[:k], rtol=0, atol=1e-14)


def test_synapse_builders():
    syn = so.Synapses.excitatory_inhibitory(0, 50, k_exc=8, k_inh=2, w_exc=0.1, w_inh=-0.5,
                                            delay=1e-3)  # fmt: skip
    pre, post, w = map(np.asarray, (syn.pre, syn.post, syn.weight))
    assert syn.num_synapses == 500
    np.testing.assert_array_equal(np.bincount(post, minlength=50), 10)
    assert np.all(pre != post)
    np.testing.assert_array_equal(w > 0, pre < 40)  # excitatory = the first 80 %
    for j in range(50):  # distinct presynaptic partners, 8 excitatory and 2 inhibitory
        src = pre[post == j]
        assert len(set(src)) == 10 and np.sum(src < 40) == 8
    again = so.Synapses.excitatory_inhibitory(0, 50, k_exc=8, k_inh=2, w_exc=0.1,
                                              w_inh=-0.5, delay=1e-3)  # fmt: skip
    np.testing.assert_array_equal(again.pre, syn.pre)
    np.testing.assert_array_equal(again.post, syn.post)
    # sorted by presynaptic neuron, with offsets to each one's slice
    offsets = np.asarray(syn.offsets)
    assert np.all(np.diff(pre) >= 0)
    for i in (0, 17, 49):
        assert np.all(pre[offsets[i] : offsets[i + 1]] == i)
    # one delay per presynaptic neuron where they depend only on it (else None)
    np.testing.assert_array_equal(syn.presynaptic_delays(), np.full(50, 1e-3))
    varied = so.Synapses([0, 0, 1], [1, 2, 0], 1.0, np.array([1e-3, 1e-3, 2e-3]), num_pre=3)
    np.testing.assert_array_equal(varied.presynaptic_delays(), [1e-3, 2e-3, 0.0])
    per_synapse = so.Synapses([0, 0], [1, 2], 1.0, np.array([1e-3, 2e-3]), num_pre=3)
    assert per_synapse.presynaptic_delays() is None
    p = so.Synapses.fixed_probability(1, 200, p=0.1, weight=1.0)
    assert abs(p.num_synapses / (200 * 199) - 0.1) < 0.01
    assert np.all(np.asarray(p.pre) != np.asarray(p.post))


def test_capacities_overflow_with_clear_errors():
    net = _network(8)
    neuron = _lif()
    base = dict(w_rec=net["w_rec"], delays=net["delays"], max_spikes=100)
    run = lambda loop, **kw: so.simulate(  # noqa: E731
        neuron, T1, net["inputs"], net["w_in"], loop=loop, **base, **kw
    )
    with pytest.raises(Exception, match="max_pending=3"):
        run(so.CoupledLoop(max_pending=3))
    with pytest.raises(Exception, match="max_pending=2 "):
        run(so.WindowedLoop(max_pending=2))
    with pytest.raises(Exception, match="max_window_spikes=1"):
        run(so.WindowedLoop(max_pending=600, max_window_spikes=1))
    with pytest.raises(Exception, match="max_window_events=2"):
        run(so.WindowedLoop(max_pending=600, max_window_events=2))
    sim = run(so.CoupledLoop(max_pending=3), throw=False)
    # like a full spike buffer: reported, the simulation stopped there
    assert bool(sim.overflow) and not np.isnan(np.asarray(sim.spikes.times)).any()
    assert 0 < int(sim.spikes.num_spikes) < 10


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(delays=-1e-3), "finite and >= 0"),
        (dict(delays=jnp.nan), "finite and >= 0"),
        (dict(delays=jnp.ones((3, 6)) * 1e-3), "does not broadcast"),
        (dict(input_delays=-1.0), "finite and >= 0"),
        (dict(input_delays=jnp.ones((6, 3))), "does not broadcast"),
        (dict(delays=0.0, loop=so.WindowedLoop()), "every recurrent delay > 0"),
        (dict(delays=2e-3, loop=so.WindowedLoop(window=3e-3)), "longer than the smallest"),
        (dict(delays=2e-3, loop=so.WindowedLoop(), save_ts=jnp.array([0.01])), "save_ts"),
        (dict(delays=2e-3, loop=so.WindowedLoop(), adjoint=so.EventPropAdjoint()),
         "WindowedLoop does not support EventPropAdjoint"),
    ],
)
def test_bad_delay_input(kwargs, match):
    net = _network(9)
    kw = dict(w_rec=net["w_rec"], max_spikes=100) | kwargs
    with pytest.raises(Exception, match=match):
        so.simulate(_lif(), T1, net["inputs"], net["w_in"], **kw)


def test_bad_delay_input_structure():
    net = _network(9)
    with pytest.raises(ValueError, match="without recurrent weights"):
        so.simulate(_lif(), T1, net["inputs"], net["w_in"], delays=1e-3, max_spikes=10)
    with pytest.raises(ValueError, match="without `inputs`"):
        so.simulate(_lif(), T1, input_delays=1e-3, max_spikes=10)
    with pytest.raises(ValueError, match="concrete"):
        jax.jit(lambda p: so.Synapses(p, jnp.array([0, 1]), 1.0, num_pre=2))(jnp.array([0, 1]))
    with pytest.raises(ValueError, match=r"must lie in \[0, 2\)"):
        so.Synapses([0, 2], [0, 1], 1.0, num_pre=2)


@pytest.mark.slow  # (a training run, about 30 s)
def test_learning_a_delay():
    # input -> neuron 0 -> (delay 1 ms + d) -> neuron 1: learn d so that neuron 1 fires
    # at 12 ms. Neuron 1's spike moves one-to-one with d, so plain gradient descent on
    # the squared error (in ms^2) shrinks the error fivefold every step.
    neuron = so.LIF(2, tau_mem=10e-3, tau_syn=2e-3)
    inputs = so.SpikeTrain.from_lists([[1e-3]])
    w_in = jnp.array([[10.0, 0.0]])
    w_rec = jnp.array([[0.0, 10.0], [0.0, 0.0]])
    target = 12e-3

    def spike_time(d):
        delays = jnp.zeros((2, 2)).at[0, 1].set(d) + 1e-3
        sim = so.simulate(neuron, 0.03, inputs, w_in, w_rec=w_rec, delays=delays,
                          max_spikes=8, loop=so.WindowedLoop(window=1e-3))  # fmt: skip
        return jnp.min(jnp.where(sim.spikes.neurons == 1, sim.spikes.times, jnp.inf))

    def loss(d):
        return ((spike_time(d) - target) / 1e-3) ** 2

    opt = optax.sgd(4e-7)
    d = jnp.asarray(2e-3)
    state = opt.init(d)
    step = jax.jit(jax.value_and_grad(loss))
    first, _ = step(d)
    t_first = float(spike_time(d))
    for _ in range(10):
        _, g = step(d)
        updates, state = opt.update(g, state)
        d = optax.apply_updates(d, updates)
    final, _ = step(d)
    assert first > 10.0 and final < 1e-12
    np.testing.assert_allclose(float(d), 2e-3 + target - t_first, rtol=1e-6)

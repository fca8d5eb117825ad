"""`ExcInhLIF` (LIF with separate excitatory and inhibitory currents, the CUBA model of
Vogels & Abbott 2005): closed-form flow against SciPy, a recurrent network against
the independent SciPy reference simulator, reduction to `LIF`, the no-hidden-crossing
step bound, gradients against finite differences, and bad input.

Every simulation goes through a few module-level jitted functions whose argument
shapes are shared between cases, so each is compiled once.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
from helpers import JitRuntimeErr

import spikeode as so
from spikeode._verify import reference_simulate


def _rhs_numpy(par):
    """The vector field in NumPy (independent of the model's code)."""

    def rhs(_, y, refractory):
        v, ie, ii = y[:, 0], y[:, 1], y[:, 2]
        dv = np.where(refractory, 0.0, (par["bias"] + ie + ii - v) / par["tau_mem"])
        return np.stack([dv, -ie / par["tau_exc"], -ii / par["tau_inh"]], axis=1)

    return rhs


def _params(model):
    n = model.num_neurons
    keys = ("tau_mem", "tau_exc", "tau_inh", "threshold", "v_reset", "bias", "refractory_period")
    return {k: np.broadcast_to(np.asarray(getattr(model, k), float), (n,)) for k in keys}


# --------------------------------------------------------------------------------------
# The jumps: routing by the sign of the weight.
# --------------------------------------------------------------------------------------


def test_receive_routes_by_sign_and_is_differentiable():
    model = so.ExcInhLIF(4)
    y = jnp.asarray([[0.1, 0.2, -0.3], [0.0, 0.0, 0.0], [0.5, 1.0, -1.0], [0.2, 0.0, 0.0]])
    w = jnp.asarray([1.5, -2.0, 0.0, 3.0])
    out = np.asarray(model.receive(y, w))
    np.testing.assert_array_equal(out[:, 0], np.asarray(y[:, 0]))
    np.testing.assert_array_equal(out[:, 1], [1.7, 0.0, 1.0, 3.0])
    np.testing.assert_array_equal(out[:, 2], [-0.3, -2.0, -1.0, 0.0])
    # d(out)/dw: each weight moves only its own port (w == 0: the excitatory one)
    jac = np.asarray(jax.jacobian(lambda w: model.receive(y, w))(w))  # (4, 3, 4)
    expected = np.zeros((4, 3, 4))
    expected[0, 1, 0] = expected[3, 1, 3] = expected[2, 1, 2] = 1.0
    expected[1, 2, 1] = 1.0
    np.testing.assert_array_equal(jac, expected)


# --------------------------------------------------------------------------------------
# The closed-form flow against a high-precision integration of the vector field.
# --------------------------------------------------------------------------------------

# (tau_mem, tau_exc, tau_inh) per case; the flow is checked for 6 neurons each
FLOW_CASES = {
    "generic": (0.02, 0.005, 0.01),
    "tau_exc_eq_tau_mem": (0.02, 0.02, 0.01),
    "tau_inh_eq_tau_mem": (0.01, 0.004, 0.01),
    "all_equal": (0.015, 0.015, 0.015),
    "nearly_equal": (0.02, 0.02 * (1 + 3e-9), 0.02 * (1 - 5e-7)),
    "slow_synapses": (0.005, 0.03, 0.012),
}
FLOW_DTS = (1e-5, 2e-3, 0.011, 0.05, 0.2)


def _flow_states(seed, n=6):
    rng = np.random.default_rng(seed)
    y0 = np.stack(
        [rng.uniform(-1, 1.5, n), rng.uniform(0, 4, n), rng.uniform(-4, 0, n)], axis=1
    )
    y0[0, 1:] = (3.0, 0.0)  # only excitation
    y0[1, 1:] = (0.0, -3.0)  # only inhibition
    return y0


@jax.jit
def _flows(model, y0, refractory):
    return jnp.stack([model.flow(0.0, y0, dt, refractory) for dt in FLOW_DTS])


@pytest.mark.parametrize("case", list(FLOW_CASES))
def test_flow_matches_dop853(case):
    tau_mem, tau_exc, tau_inh = FLOW_CASES[case]
    n = 6
    y0 = _flow_states(list(FLOW_CASES).index(case), n)
    bias = np.linspace(-0.5, 1.5, n)
    refractory = np.array([False, False, True, False, False, True])
    model = so.ExcInhLIF(n, tau_mem=tau_mem, tau_exc=tau_exc, tau_inh=tau_inh, bias=bias)
    got = np.asarray(_flows(model, jnp.asarray(y0), jnp.asarray(refractory)))
    rhs = _rhs_numpy(_params(model))
    sol = scipy.integrate.solve_ivp(
        lambda t, z: rhs(t, z.reshape(n, 3), refractory).reshape(-1),
        (0.0, FLOW_DTS[-1]), y0.reshape(-1), method="DOP853", rtol=1e-13, atol=1e-14,
        t_eval=FLOW_DTS,
    )  # fmt: skip
    assert sol.success
    ref = sol.y.T.reshape(len(FLOW_DTS), n, 3)
    err = np.max(np.abs(got - ref))
    print(f"\n{case}: max |flow - DOP853| = {err:.2e}")
    assert err <= 1e-11
    # refractory neurons hold v, their currents decay
    np.testing.assert_array_equal(got[:, refractory, 0], np.broadcast_to(y0[refractory, 0], (5, 2)))


def test_flow_is_exact_and_smooth_at_equal_time_constants():
    """At tau_exc == tau_inh == tau_mem the flow solves the ODE (d/dt flow == vector
    field), and its derivatives in the time constants there are those of the regular
    formula on either side (central differences across the degenerate point)."""
    y0 = jnp.asarray([[0.3, 2.0, -1.0]])
    refr = jnp.asarray([False])

    @jax.jit
    def v_at(taus, dt):
        model = so.ExcInhLIF(1, tau_mem=taus[0], tau_exc=taus[1], tau_inh=taus[2], bias=0.4)
        y = model.flow(0.0, y0, dt, refr)
        return y[0, 0], jax.jvp(lambda s: model.flow(0.0, y0, s, refr), (dt,), (1.0,))[1], (
            model.vector_field(dt, y, refr)
        )

    grad_v = jax.jit(jax.grad(lambda taus, dt: v_at(taus, dt)[0]))
    taus = jnp.asarray([0.02, 0.02, 0.02])
    h = 1e-6
    for dt in (1e-4, 0.013, 0.3):
        _, dy_dt, f = v_at(taus, dt)
        np.testing.assert_allclose(np.asarray(dy_dt), np.asarray(f), rtol=1e-12, atol=1e-14)
        g = np.asarray(grad_v(taus, dt))
        fd = [
            (v_at(taus.at[k].add(h), dt)[0] - v_at(taus.at[k].add(-h), dt)[0]) / (2 * h)
            for k in range(3)
        ]
        np.testing.assert_allclose(g, np.asarray(fd), rtol=1e-6)
        assert np.all(g[1:] != 0)  # the synaptic time constants matter
    # long steps: no overflow (only decaying exponentials are formed)
    slow = jnp.asarray([1e-3, 5e-3, 8e-3])
    v_far, _, _ = v_at(slow, 10.0)
    assert float(v_far) == pytest.approx(0.4, abs=1e-15)
    assert np.all(np.isfinite(np.asarray(grad_v(slow, 10.0))))


# --------------------------------------------------------------------------------------
# A recurrent network against the independent SciPy reference.
# --------------------------------------------------------------------------------------

N_NET, N_IN, SPIKES_PER_INPUT, T1_NET = 15, 5, 12, 0.15
N_EXC = 12  # recurrent neurons 0..11 excitatory, 12..14 inhibitory (Dale's law)


def _network(seed=8):
    rng = np.random.default_rng(seed)
    in_times = np.sort(rng.uniform(0.0, T1_NET, (N_IN, SPIKES_PER_INPUT)), axis=1)
    # inputs 0-2 excitatory, 3-4 inhibitory; recurrent rows by the presynaptic type
    w_in = np.concatenate([rng.uniform(0.5, 2.5, (3, N_NET)), rng.uniform(-1.25, -0.5, (2, N_NET))])
    w_rec = np.concatenate(
        [rng.uniform(0.0, 0.4, (N_EXC, N_NET)), rng.uniform(-0.75, 0.0, (N_NET - N_EXC, N_NET))]
    )
    np.fill_diagonal(w_rec, 0.0)  # w == 0: no kick
    tau_mem = rng.uniform(0.01, 0.03, N_NET)
    tau_exc = rng.uniform(0.003, 0.008, N_NET)
    tau_inh = rng.uniform(0.006, 0.015, N_NET)
    tau_exc[0] = tau_mem[0]  # degenerate rates, handled exactly
    tau_inh[1] = tau_mem[1]
    params = dict(
        tau_mem=tau_mem, tau_exc=tau_exc, tau_inh=tau_inh, threshold=1.0,
        v_reset=rng.uniform(-0.3, 0.0, N_NET), bias=rng.uniform(0.95, 1.15, N_NET),
        refractory_period=2e-3,
    )  # fmt: skip
    return in_times, w_in, w_rec, params


@jax.jit
def _simulate_net(model, inputs, w_in, w_rec, y0=None):
    # (one compilation per model class: ExcInhLIF's serves every test of the event
    # loop but the gradient check)
    sim = so.simulate(model, T1_NET, inputs, w_in, w_rec=w_rec, y0=y0, max_spikes=512)
    return sim.spikes, sim.num_segments, sim.overflow, sim.y_final


def _reference(model, inputs, w_in, w_rec):
    par = _params(model)

    def reset(y, j):
        y = y.copy()
        y[j, 0] = par["v_reset"][j]
        return y

    def receive(y, w):
        y = y.copy()
        y[:, 1] += np.where(w > 0, w, 0.0)
        y[:, 2] += np.where(w < 0, w, 0.0)
        return y

    times, ids = reference_simulate(
        _rhs_numpy(par), lambda y: y[:, 0] - par["threshold"], reset, receive,
        np.zeros((model.num_neurons, 3)), T1_NET, inputs, w_in, w_rec,
        refractory_period=par["refractory_period"], rtol=1e-12, atol=1e-12,
        max_step=min(par["tau_exc"].min(), par["tau_inh"].min(), par["tau_mem"].min()) / 50,
    )  # fmt: skip
    return [times[ids == j] for j in range(model.num_neurons)]


@functools.lru_cache(maxsize=None)
def _net_results():
    in_times, w_in, w_rec, params = _network()
    model = so.ExcInhLIF(N_NET, **params)
    inputs = so.SpikeTrain.from_per_neuron(in_times)
    spikes, segments, overflow, _ = _simulate_net(
        model, inputs, jnp.asarray(w_in), jnp.asarray(w_rec), jnp.zeros((N_NET, 3))
    )
    assert not bool(overflow)
    return spikes, int(segments), _reference(model, inputs, w_in, w_rec)


def test_network_spike_times_vs_reference():
    spikes, segments, ref = _net_results()
    got = spikes.to_lists()
    counts = [len(g) for g in got]
    assert counts == [len(r) for r in ref], (counts, [len(r) for r in ref])
    assert min(counts) >= 2 and sum(counts) >= 100, counts
    err = max(np.max(np.abs(g - r)) for g, r in zip(got, ref))
    print(f"\nExcInhLIF network: {sum(counts)} spikes {counts}, {segments} segments, "
          f"max spike-time error vs DOP853 {err:.2e}")
    assert err <= 1e-10


def test_network_inhibition_matters():
    """The inhibitory port is exercised: routing every weight to I_e changes the
    spikes (a guard against a test that would pass with broken routing)."""
    in_times, w_in, w_rec, params = _network()
    inputs = so.SpikeTrain.from_per_neuron(in_times)
    spikes, *_ = _simulate_net(
        so.ExcInhLIF(N_NET, **{**params, "tau_inh": params["tau_exc"]}), inputs,
        jnp.asarray(w_in), jnp.asarray(w_rec), jnp.zeros((N_NET, 3)),
    )  # fmt: skip
    base, _, _ = _net_results()
    assert [len(g) for g in spikes.to_lists()] != [len(g) for g in base.to_lists()]


# --------------------------------------------------------------------------------------
# With weights of one sign the model is a LIF.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["excitatory", "inhibitory"])
def test_reduces_to_lif_with_weights_of_one_sign(sign):
    in_times, w_in, w_rec, params = _network()
    if sign > 0:
        w_in, w_rec = np.abs(w_in), 0.5 * np.abs(w_rec)
    else:  # tonic firing shaped by inhibition
        w_in, w_rec = -0.1 * np.abs(w_in), -0.1 * np.abs(w_rec)
        params = {**params, "bias": params["bias"] + 1.5}
    inputs = so.SpikeTrain.from_per_neuron(in_times)
    model = so.ExcInhLIF(N_NET, **params)
    lif = so.LIF(
        N_NET, tau_syn=params["tau_exc"] if sign > 0 else params["tau_inh"],
        **{k: v for k, v in params.items() if k not in ("tau_exc", "tau_inh")},
    )  # fmt: skip
    args = (inputs, jnp.asarray(w_in), jnp.asarray(w_rec))
    s_exc, _, _, y_exc = _simulate_net(model, *args, jnp.zeros((N_NET, 3)))
    s_lif, _, _, y_lif = _simulate_net(lif, *args, jnp.zeros((N_NET, 2)))
    np.testing.assert_array_equal(np.asarray(s_exc.neurons), np.asarray(s_lif.neurons))
    assert int(s_exc.num_spikes) >= 60
    err = float(np.max(np.abs(np.asarray(s_exc.times - s_lif.times)[np.asarray(s_exc.valid)])))
    print(f"\n{'excitatory' if sign > 0 else 'inhibitory'} only: "
          f"{int(s_exc.num_spikes)} spikes, max |ExcInhLIF - LIF| = {err:.2e}")
    assert err <= 1e-12
    # the unused port stays at zero; the used one is LIF's I
    used, unused = (1, 2) if sign > 0 else (2, 1)
    np.testing.assert_array_equal(np.asarray(y_exc[:, unused]), 0.0)
    np.testing.assert_allclose(np.asarray(y_exc[:, [0, used]]), np.asarray(y_lif), atol=1e-12)


# --------------------------------------------------------------------------------------
# No hidden crossings: a voltage that rises above threshold and falls back between
# two events is found.
# --------------------------------------------------------------------------------------

H_T1 = T1_NET
H_MARGIN = 1e-4  # excluded: peaks within this of the threshold (grazing)


def _v_closed(s, y0, p, derivative=False):
    """v (or dv/dt) at delays s (rows) for states y0 (columns), by the textbook
    decomposition v = b + A e^{-s/tau_m} + B e^{-s/tau_e} + C e^{-s/tau_i} (distinct
    time constants): independent of the model's expm1 form."""
    tm, te, ti, b = p["tau_mem"], p["tau_exc"], p["tau_inh"], p["bias"]
    B = y0[:, 1] * te / (te - tm)
    C = y0[:, 2] * ti / (ti - tm)
    A = y0[:, 0] - b - B - C
    s = np.asarray(s, float)[:, None]
    if derivative:
        return -(A / tm * np.exp(-s / tm) + B / te * np.exp(-s / te) + C / ti * np.exp(-s / ti))
    return b + A * np.exp(-s / tm) + B * np.exp(-s / te) + C * np.exp(-s / ti)


def _first_crossing(y0, p, grid, v):
    """The first upward zero of v - 1 (v on `grid` given), refined by brentq."""
    k = np.argmax(v > 1.0)
    f = lambda s: _v_closed([s], y0, p)[0, 0] - 1.0
    return scipy.optimize.brentq(f, grid[k - 1], grid[k], xtol=1e-16)


@functools.lru_cache(maxsize=None)
def _hidden_problem(seed=0):
    """Random states and parameters whose voltage, from t0 = 0 without events, has a
    maximum above threshold inside [0, H_T1] and ends below it (hidden crossings),
    mixed with states that stay below. The truth: the peak on a fine grid, refined to
    the zero of dv/dt, and the crossing by brentq."""
    rng = np.random.default_rng(seed)
    m = 1500
    p = dict(
        tau_mem=rng.uniform(0.004, 0.03, m), tau_exc=rng.uniform(0.002, 0.03, m),
        tau_inh=rng.uniform(0.002, 0.03, m), bias=rng.uniform(-0.5, 0.8, m),
    )  # fmt: skip
    y0 = np.stack([rng.uniform(-0.5, 0.99, m), rng.uniform(0, 6, m), rng.uniform(-8, 0, m)], 1)
    grid = np.linspace(0.0, H_T1, 8001)
    v = _v_closed(grid, y0, p)
    peak = v.max(axis=0)
    for j in np.flatnonzero(np.abs(peak - 1.0) < 0.01):  # refine the peaks near 1
        k = int(np.argmax(v[:, j]))
        if 0 < k < len(grid) - 1:
            one = {q: x[j : j + 1] for q, x in p.items()}
            dv = lambda s: _v_closed([s], y0[j : j + 1], one, derivative=True)[0, 0]
            s_peak = scipy.optimize.brentq(dv, grid[k - 1], grid[k + 1], xtol=1e-16)
            peak[j] = _v_closed([s_peak], y0[j : j + 1], one)[0, 0]
    distinct = np.minimum(
        np.abs(p["tau_mem"] - p["tau_exc"]), np.abs(p["tau_mem"] - p["tau_inh"])
    ) > 1e-4
    ok = distinct & (np.abs(peak - 1.0) > H_MARGIN) & (v[-1] < 1.0 - H_MARGIN)
    crosses = peak > 1.0
    # dv/dt at 0 < 0: the voltage falls first (its maximum is the second extremum)
    falls_first = p["bias"] + y0[:, 1] + y0[:, 2] < y0[:, 0]
    hidden_rise = np.flatnonzero(ok & crosses & ~falls_first)[:80]
    hidden_fall = np.flatnonzero(ok & crosses & falls_first)[:60]
    quiet = np.flatnonzero(ok & ~crosses)[:60]
    assert len(hidden_fall) >= 40 and len(quiet) == 60, (len(hidden_fall), len(quiet))
    hidden = np.concatenate([hidden_rise, hidden_fall])
    truth = np.asarray([
        _first_crossing(y0[j : j + 1], {q: x[j : j + 1] for q, x in p.items()}, grid, v[:, j])
        for j in hidden
    ])  # fmt: skip
    return p, y0, hidden, quiet, truth, len(hidden_rise)


def test_hidden_crossings_are_found():
    """Each hidden crossing is simulated alongside 14 states that stay below threshold
    (no other spike can end its step), in the network's compiled function."""
    p, y0, hidden, quiet, truth, n_rise = _hidden_problem()
    # every voltage ends below threshold: a sign check at the ends of [0, t1] alone
    # would see none of these crossings (a single segment without the step bound)
    model = so.ExcInhLIF(len(y0), threshold=1.0, **p)
    v_end = np.asarray(model.flow(0.0, jnp.asarray(y0), H_T1, jnp.zeros(len(y0), bool)))[:, 0]
    assert np.all(v_end[hidden] < 1.0) and np.all(v_end[quiet] < 1.0)
    no_inputs = so.SpikeTrain.from_per_neuron(
        np.full((N_IN, SPIKES_PER_INPUT), np.inf), capacity=N_IN * SPIKES_PER_INPUT
    )
    zeros = jnp.zeros((N_IN, N_NET)), jnp.zeros((N_NET, N_NET))
    errors = []
    for g, (j, expected) in enumerate(zip(hidden, truth)):
        group = np.concatenate([[j], np.roll(quiet, -(N_NET - 1) * g)[: N_NET - 1]])
        model = so.ExcInhLIF(
            N_NET, **{k: x[group] for k, x in p.items()}, threshold=1.0,
            v_reset=np.full(N_NET, -1e4), refractory_period=2e-3,  # no second spike
        )  # fmt: skip
        spikes, segments, _, _ = _simulate_net(model, no_inputs, *zeros, jnp.asarray(y0[group]))
        got = spikes.to_lists()
        assert [len(x) for x in got] == [1] + [0] * (N_NET - 1), (g, got)
        errors.append(abs(got[0][0] - expected))
        # to the spike (the step ends near the maximum, past the crossing), to the end
        # of refractoriness, to t1: no segment without a spike was added
        assert int(segments) == 3, (g, int(segments))
    err = max(errors)
    print(f"\nhidden crossings: {n_rise} rise-fall, {len(hidden) - n_rise} fall-rise-fall, "
          f"each with 14 quiet neurons; max spike-time error {err:.2e}")
    assert err <= 1e-12


@jax.jit
def _step_end(model, y0):
    return model.safe_step_end(0.0, y0, H_T1, jnp.zeros(model.num_neurons, bool))


BIG = 600  # a population large enough for `safe_step_end` to gather candidates


def _big_population(states, where):
    """`BIG` neurons far below threshold (falling, no current: not candidates) with
    the hidden-crossing states `hidden[states]` at the positions `where`."""
    p, y0, hidden, _, _, _ = _hidden_problem()
    big_p = dict(tau_mem=np.full(BIG, 0.01), tau_exc=np.full(BIG, 0.01), tau_inh=np.full(BIG, 0.01))
    big_p["bias"] = np.full(BIG, -10.0)
    big_y = np.zeros((BIG, 3))
    big_y[:, 0] = -5.0
    for q in big_p:
        big_p[q][where] = p[q][hidden[states]]
    big_y[where] = y0[hidden[states]]
    return so.ExcInhLIF(BIG, threshold=1.0, **big_p), jnp.asarray(big_y)


@functools.lru_cache(maxsize=None)
def _single_step_ends():
    """The step end of each hidden-crossing state as the only candidate."""
    hidden = _hidden_problem()[2]
    ends = [_step_end(*_big_population([j], [BIG // 2])) for j in range(len(hidden))]
    return np.asarray(ends, float)


@pytest.mark.parametrize("k", [0, 1, 12, 17, 40, 100, 300])
def test_step_end_in_a_large_population(k):
    """In a large population the candidates (neurons that can reach the threshold
    within the step; here k hidden-crossing states among neurons far below threshold)
    are examined in a small batch (k <= 16) or all together: the step ends where it
    ends for the earliest of them alone (placed last, where a candidate left out would
    most likely be)."""
    ends = _single_step_ends()
    assert np.all(ends < H_T1)
    rng = np.random.default_rng(k)
    pick = rng.choice(len(ends), k)  # (repeats allowed)
    pick = pick[np.argsort(-ends[pick], kind="stable")]  # the earliest end last
    where = np.sort(rng.choice(BIG, k, replace=False))
    got = float(_step_end(*_big_population(pick, where)))
    expected = ends[pick].min() if k else H_T1
    assert got == pytest.approx(expected, rel=1e-15, abs=0)


def test_hidden_crossings_between_inputs():
    """Input pairs lift a voltage above threshold and let it fall back long before the
    next input: for neuron 0 a fast excitatory and a slower inhibitory current (rise,
    fall), for neuron 1 a fast inhibitory and a slower excitatory one (fall, rise,
    fall: the maximum is the second extremum). Run in the network's compiled function;
    the other neurons get no input and stay at rest."""
    cases = {  # neuron: (tau_mem, tau_exc, tau_inh, w_exc, w_inh, input time)
        0: (0.02, 0.002, 0.03, 35.0, -8.0, 0.01),
        1: (0.01, 0.008, 0.001, 8.0, -30.0, 0.05),
    }
    taus = np.full((3, N_NET), 0.01)
    in_times = np.full((N_IN, SPIKES_PER_INPUT), np.inf)
    w_in = np.zeros((N_IN, N_NET))
    in_times[4, 0] = 0.12  # a weak last input
    w_in[4, :2] = 0.1
    expected = {}
    for j, (tm, te, ti, we, wi, t_in) in cases.items():
        taus[:, j] = (tm, te, ti)
        in_times[2 * j : 2 * j + 2, 0] = t_in
        w_in[2 * j : 2 * j + 2, j] = (we, wi)
        # the truth by the independent decomposition
        y_kick = np.asarray([[0.0, we, wi]])
        p = dict(zip(("tau_mem", "tau_exc", "tau_inh"), taus[:, j : j + 1]), bias=np.zeros(1))
        grid = np.linspace(0, 0.12 - t_in - 0.005, 20001)
        v = _v_closed(grid, y_kick, p)[:, 0]
        assert v.max() > 1.2 and v[-1] < 0.5  # up, then far down before the next input
        assert (v[1] < v[0]) == (j == 1)  # neuron 1 falls first
        expected[j] = t_in + _first_crossing(y_kick, p, grid, v)
    inputs = so.SpikeTrain.from_per_neuron(in_times, capacity=N_IN * SPIKES_PER_INPUT)
    model = so.ExcInhLIF(
        N_NET, tau_mem=taus[0], tau_exc=taus[1], tau_inh=taus[2], threshold=1.0,
        v_reset=np.full(N_NET, -0.1), bias=np.zeros(N_NET), refractory_period=2e-3,
    )  # fmt: skip
    spikes, segments, _, _ = _simulate_net(
        model, inputs, jnp.asarray(w_in), jnp.zeros((N_NET, N_NET)), jnp.zeros((N_NET, 3))
    )
    got = spikes.to_lists()
    assert [len(g) for g in got] == [1, 1] + [0] * (N_NET - 2), got
    for j in cases:
        assert abs(got[j][0] - expected[j]) <= 1e-12, (j, got[j], expected[j])
    # per pair: to the pair (the second input without length), to the spike (inside
    # the step that ends near the maximum), to the end of refractoriness; then to the
    # last input and to t1: no segment without a spike was added
    assert int(segments) == 2 * 4 + 2, int(segments)


# --------------------------------------------------------------------------------------
# Gradients against finite differences.
# --------------------------------------------------------------------------------------


def test_gradients_vs_finite_differences():
    rng = np.random.default_rng(4)
    n, n_in, t1 = 4, 3, 0.06
    in_times = jnp.asarray(np.sort(rng.uniform(0.002, 0.05, 9)))
    in_ids = jnp.asarray(rng.permutation(np.arange(9) % n_in), jnp.int32)
    w_in = jnp.asarray(
        np.stack([rng.uniform(1.0, 3.0, n), rng.uniform(0.5, 2.0, n), rng.uniform(-2.5, -1.0, n)])
    )
    w_rec = jnp.asarray(rng.uniform(-0.8, 0.6, (n, n)))
    u = lambda lo, hi: jnp.asarray(rng.uniform(lo, hi, n))  # per-neuron parameters
    model = so.ExcInhLIF(
        n, tau_mem=u(0.01, 0.02), tau_exc=u(0.003, 0.006), tau_inh=u(0.006, 0.012),
        threshold=u(0.9, 1.1), v_reset=u(-0.3, 0.0), bias=u(1.05, 1.4),
        refractory_period=u(1e-3, 3e-3),
    )  # fmt: skip

    def fn(params):
        model, w_in, w_rec, times = params
        train = so.SpikeTrain(times, in_ids, n_in).sorted()
        sim = so.simulate(model, t1, train, w_in, w_rec=w_rec, max_spikes=64)
        t = sim.spikes.times
        weight = 1 + sim.spikes.neurons.astype(t.dtype)
        loss = jnp.sum(jnp.where(sim.spikes.valid, jnp.sin(80 * t) * weight, 0.0))
        return loss + jnp.sum(sim.y_final[:, 0] * jnp.arange(1, n + 1, dtype=t.dtype)), sim

    report = so.check_grads(fn, (model, w_in, w_rec, in_times), rtol=1e-7)
    print("\n" + str(report))
    assert report.num_spikes >= 12
    assert report.grazing == 0
    names = " ".join(leaf.name for leaf in report.leaves)
    for field in (
        "tau_mem", "tau_exc", "tau_inh", "threshold", "v_reset", "bias", "refractory_period"
    ):
        assert field in names, names
    assert report.passed, str(report)


# --------------------------------------------------------------------------------------
# Bad input.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tau_mem", "tau_exc", "tau_inh"])
@pytest.mark.parametrize("value", [0.0, -0.01])
def test_non_positive_time_constants(name, value):
    with pytest.raises(ValueError, match=rf"`ExcInhLIF {name}` must be positive"):
        so.ExcInhLIF(2, **{name: value})


def test_reset_not_below_threshold():
    with pytest.raises(ValueError, match=r"ExcInhLIF: `v_reset` must lie below `threshold`"):
        so.ExcInhLIF(2, threshold=1.0, v_reset=1.0)
    with pytest.raises(ValueError, match=r"`ExcInhLIF refractory_period` must be non-negative"):
        so.ExcInhLIF(2, refractory_period=-1e-3)


@pytest.mark.parametrize("name", ["tau_mem", "tau_exc", "tau_inh", "threshold", "v_reset", "bias"])
def test_wrong_parameter_shape(name):
    pattern = rf"`{name}` has shape \(2,\); expected a scalar or shape \(3,\)"
    with pytest.raises(ValueError, match=pattern):
        so.ExcInhLIF(3, **{name: jnp.full((2,), -1.0 if name == "v_reset" else 0.01)})


@pytest.mark.parametrize(
    "field, value, pattern",
    [
        ("tau_exc", -0.005, r"`ExcInhLIF tau_exc` must be positive"),
        ("tau_inh", 0.0, r"`ExcInhLIF tau_inh` must be positive"),
        ("tau_mem", np.nan, r"`ExcInhLIF tau_mem` must be positive"),
        ("v_reset", 2.0, r"`v_reset` must lie below `threshold`"),
    ],
)
def test_bad_parameters_inside_jit(field, value, pattern):
    """Invalid values reached inside jit (e.g. by training) are caught at run time, by
    `simulate` (here the network's compiled function) and by `check()` alone (which
    raises `ValueError` at once outside jit)."""
    in_times, w_in, w_rec, params = _network()
    model = so.ExcInhLIF(N_NET, **params)
    bad_value = getattr(model, field).at[3].set(value)
    bad = eqx.tree_at(lambda m: getattr(m, field), model, bad_value)
    args = (so.SpikeTrain.from_per_neuron(in_times), jnp.asarray(w_in), jnp.asarray(w_rec))
    with pytest.raises(JitRuntimeErr, match=pattern):
        jax.block_until_ready(_simulate_net(bad, *args, jnp.zeros((N_NET, 3))))
    with pytest.raises(JitRuntimeErr, match=pattern):
        jax.block_until_ready(jax.jit(lambda m: jax.tree_util.tree_leaves(m.check()))(bad))
    with pytest.raises(ValueError, match=pattern):  # eagerly
        bad.check()


def test_constructed_inside_jit():
    build = jax.jit(lambda tau: jax.tree_util.tree_leaves(so.ExcInhLIF(2, tau_inh=tau, bias=1.2)))
    assert np.isfinite(float(build(jnp.asarray(0.01))[0]))
    with pytest.raises(JitRuntimeErr, match=r"`ExcInhLIF tau_inh` must be positive"):
        jax.block_until_ready(build(jnp.asarray(-0.01)))

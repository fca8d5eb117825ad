"""Exactness of LIF spike times and states against closed forms and an independent
integrator (SciPy's `solve_ivp`, applied segment by segment with our own jumps).

Every simulation goes through a few module-level `jax.jit`-ed functions whose
argument shapes are shared between cases, so each is compiled once.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.optimize

import spikeode as so

# --------------------------------------------------------------------------------------
# Independent reference: SciPy integration of one LIF neuron, segment by segment.
# --------------------------------------------------------------------------------------

RTOL = ATOL = 1e-12


def reference_lif(
    *,
    tau_mem,
    tau_syn,
    threshold,
    v_reset,
    bias,
    t_ref,
    in_times,
    in_weights,
    t1,
    save_ts=(),
    y0=(0.0, 0.0),
    t0=0.0,
    max_step=None,
    method="DOP853",
):
    """Spike times of one LIF neuron and its states (before any jump) at `save_ts`.

    Between scheduled times (inputs, ends of refractory periods, save times, t1) the
    ODE is integrated by `solve_ivp` with a terminal, upward event `v = threshold`.
    Jumps are applied here: `I += w` at an input, `v = v_reset` at a spike (and `v` is
    held there, `dv/dt = 0`, for `t_ref`).
    """
    if max_step is None:
        max_step = min(tau_mem, tau_syn) / 20
    in_times = np.asarray(in_times, float)
    in_weights = np.asarray(in_weights, float)
    order = np.argsort(in_times, kind="stable")
    in_times, in_weights = in_times[order], in_weights[order]
    save_ts = np.asarray(save_ts, float)

    def rhs(t, y, refractory):
        v, i = y
        dv = 0.0 if refractory else (-v + i + bias) / tau_mem
        return [dv, -i / tau_syn]

    def crossing(t, y, refractory):
        return y[0] - threshold

    crossing.terminal = True
    crossing.direction = 1.0

    t = float(t0)
    y = np.array(y0, float)
    refr_until = -np.inf
    k_in = k_save = 0
    spikes, saved = [], np.full((len(save_ts), 2), np.nan)
    while True:
        refractory = refr_until > t
        t_next = min(
            in_times[k_in] if k_in < len(in_times) else np.inf,
            save_ts[k_save] if k_save < len(save_ts) else np.inf,
            refr_until if refractory else np.inf,
            t1,
        )
        if t_next > t:
            sol = scipy.integrate.solve_ivp(
                rhs,
                (t, t_next),
                y,
                method=method,
                rtol=RTOL,
                atol=ATOL,
                max_step=max_step,
                events=None if refractory else crossing,
                args=(refractory,),
            )
            assert sol.success, sol.message
            if sol.status == 1:  # threshold crossing
                t_spk = float(sol.t_events[0][0])
                y = np.array(sol.y_events[0][0], float)
                spikes.append(t_spk)
                y[0] = v_reset
                t = t_spk
                refr_until = t_spk + t_ref
                continue
            t, y = t_next, sol.y[:, -1].copy()
        # scheduled items at t (saves record the state before an input's jump)
        if k_save < len(save_ts) and save_ts[k_save] == t:
            saved[k_save] = y
            k_save += 1
            continue
        if k_in < len(in_times) and in_times[k_in] == t and t < t1:
            y[1] += in_weights[k_in]
            k_in += 1
            continue
        if t >= t1:
            break
    return np.array(spikes), saved


# --------------------------------------------------------------------------------------
# 1. Constant drive: closed-form spike times.
# --------------------------------------------------------------------------------------

TAU_CONST = 0.02
BIASES = np.array([1.5, 2.0, 3.0])  # all above threshold 1.0
T_PERIOD = TAU_CONST * np.log(BIASES / (BIASES - 1.0))
T1_CONST = 0.5
SAVE_CONST = np.linspace(0.0, T1_CONST, 41)[1:-1] + 1.234567e-4
SPIKE_CAP_CONST = 128


@jax.jit
def _simulate_constant(model):
    sim = so.simulate(model, T1_CONST, max_spikes=SPIKE_CAP_CONST, save_ts=SAVE_CONST)
    return sim.spikes, sim.ys


def _expected_constant(t_ref):
    """Closed-form spike times per neuron, and v at SAVE_CONST."""
    times, vs = [], []
    for bias, period, tr in zip(BIASES, T_PERIOD, t_ref):
        k = np.arange(1, 200)
        tk = k * period + (k - 1) * tr
        tk = tk[tk < T1_CONST]
        times.append(tk)
        v = np.empty_like(SAVE_CONST)
        for j, s in enumerate(SAVE_CONST):
            prev = tk[tk <= s]
            if len(prev) == 0:
                release = 0.0
            else:
                release = prev[-1] + tr
            # sanity: a save time is never ambiguous (next to a spike or release)
            assert np.min(np.abs(np.concatenate([tk, tk + tr]) - s)) > 1e-6
            v[j] = 0.0 if s < release else bias * -np.expm1(-(s - release) / TAU_CONST)
        vs.append(v)
    return times, np.stack(vs, axis=1)


@pytest.mark.parametrize(
    "t_ref", [np.zeros(3), np.array([1e-3, 5e-3, 1.3e-2])], ids=["no_refr", "refr"]
)
def test_constant_drive_spike_times(t_ref):
    model = so.LIF(
        3, tau_mem=TAU_CONST, tau_syn=0.005, threshold=1.0, v_reset=0.0,
        bias=jnp.asarray(BIASES), refractory_period=jnp.asarray(t_ref),
    )
    spikes, ys = _simulate_constant(model)
    got = spikes.to_lists()
    expected, v_expected = _expected_constant(t_ref)
    for i in range(3):
        assert len(expected[i]) >= 10
        assert len(got[i]) == len(expected[i]), (i, got[i], expected[i])
    err = max(np.max(np.abs(g - e)) for g, e in zip(got, expected))
    err_v = np.max(np.abs(np.asarray(ys[:, :, 0]) - v_expected))
    print(f"\nconstant drive: counts {[len(g) for g in got]}, max spike-time error "
          f"{err:.3e}, max v error at save times {err_v:.3e}")
    assert err <= 1e-10
    # voltages at the save times (held at reset while refractory), I stays 0
    assert err_v <= 1e-10
    np.testing.assert_array_equal(np.asarray(ys[:, :, 1]), 0.0)


# --------------------------------------------------------------------------------------
# 2 & 4. Exponential synapse, random input spikes, several output neurons.
# --------------------------------------------------------------------------------------

N_IN, N_OUT, SPIKES_PER_INPUT = 4, 5, 12
T1_SYN = 0.25
NUM_SAVE = 20
SPIKE_CAP_SYN = 128

# (tau_mem, tau_syn, threshold, v_reset, bias, t_ref, weight scale)
SYN_CASES = {
    "tau_mem_eq_tau_syn": (0.01, 0.01, 1.0, 0.0, 0.0, 0.0, 1.0),
    "tau_mem_2x_tau_syn": (0.02, 0.01, 1.0, 0.0, 0.0, 0.0, 1.0),
    "tau_syn_gt_tau_mem": (0.008, 0.012, 1.0, 0.0, 0.0, 0.0, 0.6),
    "bias_reset_refr": (0.02, 0.005, 1.0, -0.3, 0.4, 2e-3, 1.4),
}


@jax.jit
def _simulate_syn(model, inputs, w_in, save_ts):
    sim = so.simulate(
        model, T1_SYN, inputs, w_in, max_spikes=SPIKE_CAP_SYN, save_ts=save_ts
    )
    return sim.spikes, sim.ys, sim.overflow


def _syn_problem(seed):
    rng = np.random.default_rng(seed)
    in_times = np.sort(rng.uniform(0.0, T1_SYN, (N_IN, SPIKES_PER_INPUT)), axis=1)
    # input 0 is inhibitory, the others excitatory
    w_in = rng.uniform(0.8, 1.8, (N_IN, N_OUT))
    w_in[0, :] = rng.uniform(-2.0, -0.5, N_OUT)
    save_ts = np.sort(rng.uniform(0.0, T1_SYN, NUM_SAVE))
    return in_times, w_in, save_ts


@functools.lru_cache(maxsize=None)
def _syn_results(case, seed=0):
    tau_mem, tau_syn, threshold, v_reset, bias, t_ref, w_scale = SYN_CASES[case]
    in_times, w_in, save_ts = _syn_problem(seed)
    w_in = w_scale * w_in
    model = so.LIF(
        N_OUT, tau_mem=tau_mem, tau_syn=tau_syn, threshold=threshold,
        v_reset=v_reset, bias=bias, refractory_period=t_ref,
    )
    inputs = so.SpikeTrain.from_per_neuron(in_times)
    spikes, ys, overflow = _simulate_syn(
        model, inputs, jnp.asarray(w_in), jnp.asarray(save_ts)
    )
    assert not bool(overflow)
    got = spikes.to_lists()

    flat_t = in_times.reshape(-1)
    flat_src = np.repeat(np.arange(N_IN), SPIKES_PER_INPUT)
    ref_spikes, ref_states = [], []
    for j in range(N_OUT):
        s, st = reference_lif(
            tau_mem=tau_mem, tau_syn=tau_syn, threshold=threshold, v_reset=v_reset,
            bias=bias, t_ref=t_ref, in_times=flat_t, in_weights=w_in[flat_src, j],
            t1=T1_SYN, save_ts=save_ts,
        )
        ref_spikes.append(s)
        ref_states.append(st)
    return got, np.asarray(ys), ref_spikes, np.stack(ref_states, axis=1)


@pytest.mark.parametrize("case", list(SYN_CASES))
def test_synaptic_spike_times_vs_solve_ivp(case):
    got, _, ref, _ = _syn_results(case)
    counts = [len(g) for g in got]
    assert counts == [len(r) for r in ref], (counts, got, ref)
    # a meaningful test: several spikes in every output neuron
    assert min(counts) >= 3, counts
    err = max(np.max(np.abs(g - r)) for g, r in zip(got, ref))
    print(f"\n{case}: counts {counts}, max spike-time error {err:.3e}")
    assert err <= 1e-9


@pytest.mark.parametrize("case", list(SYN_CASES))
def test_states_at_save_times_vs_solve_ivp(case):
    _, ys, _, ref_states = _syn_results(case)
    assert ys.shape == ref_states.shape == (NUM_SAVE, N_OUT, 2)
    assert np.all(np.isfinite(ref_states))
    err_v = np.max(np.abs(ys[..., 0] - ref_states[..., 0]))
    err_i = np.max(np.abs(ys[..., 1] - ref_states[..., 1]))
    print(f"\n{case}: max state error v {err_v:.3e}, I {err_i:.3e}")
    assert err_v <= 1e-9
    assert err_i <= 1e-9
    # the states are not trivial (some currents non-zero, voltages vary)
    assert np.max(np.abs(ref_states[..., 1])) > 0.1
    assert np.ptp(ref_states[..., 0]) > 0.1


def test_reference_integrator_matches_closed_form():
    """Guard against a broken reference: constant drive has closed-form spikes."""
    bias = 1.5
    s, _ = reference_lif(
        tau_mem=0.02, tau_syn=0.005, threshold=1.0, v_reset=0.0, bias=bias, t_ref=0.0,
        in_times=[], in_weights=[], t1=0.1,
    )
    period = 0.02 * np.log(bias / (bias - 1.0))
    expected = period * np.arange(1, int(0.1 / period) + 1)
    assert len(s) == len(expected)
    assert np.max(np.abs(s - expected)) <= 1e-10


# --------------------------------------------------------------------------------------
# 3. A crossing that rises above threshold and falls back inside one long segment.
# --------------------------------------------------------------------------------------

H_TAU_MEM, H_TAU_SYN, H_T_IN, H_T1 = 0.02, 0.005, 0.01, 1.0
H_MARGIN = 1e-3  # the voltage peaks at threshold * (1 + H_MARGIN)


def _psp(s, w):
    """Voltage a time s after a kick w onto a resting neuron (closed form)."""
    a, b = H_TAU_MEM, H_TAU_SYN
    return w * b / (b - a) * (np.exp(-s / b) - np.exp(-s / a))


H_S_PEAK = np.log(H_TAU_MEM / H_TAU_SYN) / (1 / H_TAU_SYN - 1 / H_TAU_MEM)
H_W = (1 + H_MARGIN) / _psp(H_S_PEAK, 1.0)
H_T_SPIKE = H_T_IN + scipy.optimize.brentq(
    lambda s: _psp(s, H_W) - 1.0, 0.0, H_S_PEAK, xtol=1e-16, rtol=1e-15
)


class _NaiveStepLIF(so.LIF):
    """LIF without the no-hidden-crossing step bound (only to show the case bites)."""

    def safe_step_end(self, t0, y0, t_max, refractory):
        return t_max


@jax.jit
def _simulate_hidden(model):
    inputs = so.SpikeTrain.from_lists([[H_T_IN]])
    sim = so.simulate(model, H_T1, inputs, jnp.array([[H_W]]), max_spikes=4)
    return sim.spikes, sim.num_segments


def _hidden_model(cls=so.LIF):
    return cls(1, tau_mem=H_TAU_MEM, tau_syn=H_TAU_SYN, threshold=1.0)


def test_hidden_crossing_setup():
    # the voltage crosses the threshold once, then is far below it again at t1
    assert _psp(H_S_PEAK, H_W) == pytest.approx(1 + H_MARGIN)
    assert _psp(H_T1 - H_T_IN, H_W) < 1e-10
    # the independent integrator agrees with the closed-form crossing
    s, _ = reference_lif(
        tau_mem=H_TAU_MEM, tau_syn=H_TAU_SYN, threshold=1.0, v_reset=0.0, bias=0.0,
        t_ref=0.0, in_times=[H_T_IN], in_weights=[H_W], t1=H_T1,
        max_step=H_TAU_SYN / 100,
    )
    assert len(s) == 1
    assert abs(s[0] - H_T_SPIKE) <= 1e-10
    # and a solver that only checks the sign at the ends of [t_in, t1] misses it,
    # so the test below is meaningful
    spikes, _ = _simulate_hidden(_hidden_model(_NaiveStepLIF))
    assert int(spikes.num_spikes) == 0


def test_hidden_crossing_is_found():
    spikes, _ = _simulate_hidden(_hidden_model())
    got = spikes.to_lists()[0]
    assert len(got) == 1, got
    err = abs(got[0] - H_T_SPIKE)
    print(f"\nhidden crossing: spike {got[0]!r}, error {err:.3e}")
    assert err <= 1e-10

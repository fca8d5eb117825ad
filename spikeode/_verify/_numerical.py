"""`spikeode check` rows of the models integrated numerically (no closed form):
`AdaptiveLIF` and `ExpIF`. Spike times against SciPy's DOP853 (`reference_simulate`),
gradients against finite differences. Also `reference_adaptive_lif` and
`reference_exp_if`, the two populations by SciPy."""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._adjoint import EventPropAdjoint
from .._gradcheck import check_grads
from .._simulate import simulate
from ..neurons._adaptive import AdaptiveLIF
from ..neurons._eif import ExpIF
from ._reference import reference_simulate
from ._result import _loss_of_times, _random_inputs, _result, _spike_error, CheckResult

# Tolerance of the SciPy reference (DOP853, rtol = atol).
REFERENCE_RTOL = 1e-12
# Solver tolerances (Tsit5, PID rtol = atol) of the network checks, which take spike
# times and gradients from the same simulation. Diffrax's PID controller keeps step
# sizes out of the derivative (stop_gradient), so autodiff gives the derivative of the
# solution with the steps frozen, which converges to the true derivative like the
# discretisation error of the sensitivities, not of the state: for `AdaptiveLIF` ~1e-9
# at spikeode's default 1e-10; for `ExpIF`'s sharp upstroke ~1e-6 at 1e-10 (delta_T),
# ~1e-7 at 1e-12, ~1e-8 at 1e-13. (Spike times at the default 1e-10 are tested for
# both models in tests/test_numerical_models.py.)
ADAPTIVE_RTOL = 1e-10
EXP_IF_RTOL = 1e-13
# Spike-time bound: local errors of at most 1e-10 of an O(1) state accumulate to
# ~1e-9 over a window; divided by the slope of the condition at the crossing (>= 5 per
# second in these networks) that bounds spike-time errors by ~2e-10 s, under 1e-9
# (measured at rtol 1e-10: 1e-12 for AdaptiveLIF, 2e-11 for ExpIF).
SPIKE_TIME_TOL = 1e-9


def _params(neuron, names):
    n = neuron.num_neurons
    return [np.broadcast_to(np.asarray(getattr(neuron, k), float), (n,)).copy() for k in names]


def _reset_receive(v_reset, jump=None):
    def reset(y, j):
        y = y.copy()
        y[j, 0] = v_reset[j]
        if jump is not None:
            y[j, 2] += jump[j]
        return y

    def receive(y, w):
        y = y.copy()
        y[:, 1] += w
        return y

    return reset, receive


def reference_adaptive_lif(
    neuron: AdaptiveLIF, t1, inputs=None, w_in=None, w_rec=None, y0=None, rtol=REFERENCE_RTOL
):
    """`AdaptiveLIF` simulated by SciPy's DOP853 (equations written out in NumPy)."""
    tm, ts, ta, thr, vr, b, jump, tref = _params(
        neuron,
        ("tau_mem", "tau_syn", "tau_adapt", "threshold", "v_reset", "bias", "adapt_jump",
         "refractory_period"),
    )

    def rhs(t, y, refractory):
        v, i, a = y[:, 0], y[:, 1], y[:, 2]
        dv = np.where(refractory, 0.0, (b + i - a - v) / tm)
        return np.stack([dv, -i / ts, -a / ta], axis=1)

    reset, receive = _reset_receive(vr, jump)
    y0 = np.zeros((neuron.num_neurons, 3)) if y0 is None else np.asarray(y0, float)
    return reference_simulate(
        rhs, lambda y: y[:, 0] - thr, reset, receive, y0, t1, inputs, w_in, w_rec,
        refractory_period=tref, max_step=min(tm.min(), ts.min(), ta.min()) / 50,
        rtol=rtol, atol=rtol,
    )  # fmt: skip


def reference_exp_if(
    neuron: ExpIF, t1, inputs=None, w_in=None, w_rec=None, y0=None, rtol=REFERENCE_RTOL
):
    """`ExpIF` simulated by SciPy's DOP853 (equations written out in NumPy)."""
    tm, ts, v_rest, v_t, d_t, v_peak, vr, b, tref = _params(
        neuron,
        ("tau_mem", "tau_syn", "v_rest", "v_T", "delta_T", "v_peak", "v_reset", "bias",
         "refractory_period"),
    )

    def rhs(t, y, refractory):
        v, i = y[:, 0], y[:, 1]
        # SciPy may try stages far beyond v_peak; keep them finite (never used)
        x = np.minimum((v - v_t) / d_t, 600.0)
        dv = (-(v - v_rest) + d_t * np.exp(x) + i + b) / tm
        return np.stack([np.where(refractory, 0.0, dv), -i / ts], axis=1)

    reset, receive = _reset_receive(vr)
    y0 = np.zeros((neuron.num_neurons, 2)) if y0 is None else np.asarray(y0, float)
    return reference_simulate(
        rhs, lambda y: y[:, 0] - v_peak, reset, receive, y0, t1, inputs, w_in, w_rec,
        refractory_period=tref, max_step=min(tm.min(), ts.min()) / 50, rtol=rtol, atol=rtol,
    )  # fmt: skip


# ----------------------------------------------------------------------------------
def _network(seed, make_neuron):
    """4 random inputs -> 4 recurrent neurons built by `make_neuron(rng, n)` (drawn
    after the inputs and weights)."""
    rng = np.random.default_rng(seed)
    n, t1 = 4, 0.15
    inputs = _random_inputs(rng, 4, 3, 0.1)
    w_in = jnp.asarray(rng.normal(0.6, 0.4, (4, n)))
    w_rec = jnp.asarray(rng.normal(0.0, 0.3, (n, n)))
    return make_neuron(rng, n), t1, inputs, w_in, w_rec


def adaptive_network(seed: int = 7):
    """A small recurrent `AdaptiveLIF` network: 4 inputs -> 4 neurons."""
    return _network(seed, lambda rng, n: AdaptiveLIF(
        n, tau_mem=0.02, tau_syn=0.005, tau_adapt=jnp.asarray(rng.uniform(0.04, 0.1, n)),
        bias=jnp.asarray(rng.uniform(1.6, 2.2, n)), adapt_jump=0.4,
        refractory_period=0.002,
    ))  # fmt: skip


def exp_if_network(seed: int = 14):
    """A small recurrent `ExpIF` network: 4 inputs -> 4 neurons."""
    return _network(seed, lambda rng, n: ExpIF(
        n, tau_mem=0.02, tau_syn=0.005, delta_T=jnp.asarray(rng.uniform(0.15, 0.3, n)),
        bias=jnp.asarray(rng.uniform(1.3, 1.6, n)), v_reset=-0.2, refractory_period=0.002,
    ))  # fmt: skip


def _network_check(name, neuron, t1, inputs, w_in, w_rec, reference, fields, rtol):
    """Spike times and gradients of one simulation of a recurrent network, with Tsit5
    and a PID controller at `rtol = atol = rtol`."""
    controller = diffrax.PIDController(rtol=rtol, atol=rtol)
    params = (w_in, w_rec, *(getattr(neuron, f) for f in fields))

    def fn(p, adjoint=None):
        wi, wr, *values = p
        m = eqx.tree_at(lambda m: tuple(getattr(m, f) for f in fields), neuron, tuple(values))
        s = simulate(
            m, t1, inputs, wi, w_rec=wr, max_spikes=64, stepsize_controller=controller,
            adjoint=adjoint,
        )  # fmt: skip
        return _loss_of_times(s.spikes, t1), s

    rep = check_grads(fn, params, steps=np.logspace(-3, -7, 9))
    sim = rep.aux  # the unperturbed simulation (one compile less than a separate run)
    err = _spike_error(sim.spikes, reference(neuron, t1, inputs, w_in, w_rec))
    return _result(
        name, f"{inputs.num_neurons} inputs -> {neuron.num_neurons} recurrent", sim, err,
        f"SciPy DOP853 rtol {REFERENCE_RTOL:g}", SPIKE_TIME_TOL, rep,
        f"Tsit5 + PID rtol = atol = {rtol:g}; params: w_in, w_rec, " + ", ".join(fields),
        (fn, params), EventPropAdjoint(stepsize_controller=controller), adjoint_vs_fd=True,
    )


def check_adaptive_lif() -> CheckResult:
    """A recurrent `AdaptiveLIF` network (several spikes per neuron) integrated by
    Tsit5: spike times vs SciPy's DOP853, gradients (weights, time constants,
    adaptation parameters) vs finite differences."""
    neuron, t1, inputs, w_in, w_rec = adaptive_network()
    return _network_check(
        "AdaptiveLIF", neuron, t1, inputs, w_in, w_rec, reference_adaptive_lif,
        ("tau_mem", "tau_adapt", "adapt_jump"), ADAPTIVE_RTOL,
    )  # fmt: skip


def check_exp_if() -> CheckResult:
    """A recurrent `ExpIF` network (several spikes per neuron) integrated by Tsit5:
    spike times vs SciPy's DOP853, gradients (weights, `tau_mem`, `delta_T`, `v_T`)
    vs finite differences."""
    neuron, t1, inputs, w_in, w_rec = exp_if_network()
    return _network_check(
        "ExpIF", neuron, t1, inputs, w_in, w_rec, reference_exp_if,
        ("tau_mem", "delta_T", "v_T"), EXP_IF_RTOL,
    )  # fmt: skip

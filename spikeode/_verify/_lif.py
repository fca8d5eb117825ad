"""`spikeode check` rows of the LIF family with closed forms: `LIF` (constant drive,
input-driven, feed-forward, recurrent: against the closed-form period or SciPy's
DOP853; `tau_mem = tau_syn` and `tau_mem = 2 tau_syn`: first spikes against Lambert W
and a quadratic), the closed-form first-spike layers (`first_spikes`), `NonLeakyIF`
(Mostafa) and `AlphaIF` (Lambert W). Also `reference_lif`, the LIF population by
SciPy."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._first_spike import first_spikes
from .._gradcheck import check_grads
from .._simulate import simulate
from .._spikes import SpikeTrain
from ..neurons import AlphaIF, LIF, NonLeakyIF
from ._formulas import (
    alpha_first_spike,
    lif_double_tau_first_spike,
    lif_equal_tau_first_spike,
    mostafa_first_spike,
)
from ._reference import _add_column, _set, reference_simulate
from ._result import _loss_of_times, _random_inputs, _result, _spike_error, CheckResult


# ----------------------------------------------------------------------------------
# independent reference: SciPy's DOP853 with event location, segment by segment
def reference_lif(
    neuron: LIF,
    t1: float,
    inputs: SpikeTrain | None = None,
    w_in=None,
    w_rec=None,
    y0=None,
    rtol: float = 1e-12,
    delays=None,
    input_delays=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate a LIF population with SciPy's DOP853 (`reference_simulate`),
    independently of Diffrax and of spikeode's event loop, with a step bound of 1/50
    of the shortest time constant (so that no threshold crossing hides in a step);
    `delays` and `input_delays` as in `simulate`.

    **Returns:** `(times, neurons)` of the output spikes, in order.
    """
    n = neuron.num_neurons
    par = {
        k: np.broadcast_to(np.asarray(getattr(neuron, k), float), (n,))
        for k in ("tau_mem", "tau_syn", "threshold", "v_reset", "bias", "refractory_period")
    }

    def rhs(_, y, refractory):
        v, i = y[:, 0], y[:, 1]
        dv = np.where(refractory, 0.0, (par["bias"] + i - v) / par["tau_mem"])
        return np.stack([dv, -i / par["tau_syn"]], axis=1)

    return reference_simulate(
        rhs, lambda y: y[:, 0] - par["threshold"], lambda y, j: _set(y, j, par["v_reset"][j]),
        _add_column(1), np.zeros((n, 2)) if y0 is None else np.asarray(y0, float), t1,
        inputs, w_in, w_rec, refractory_period=par["refractory_period"], rtol=rtol, atol=rtol,
        max_step=min(par["tau_mem"].min(), par["tau_syn"].min()) / 50, delays=delays,
        input_delays=input_delays,
    )  # fmt: skip



# ----------------------------------------------------------------------------------
def check_lif_constant_drive() -> CheckResult:
    """One LIF neuron under constant drive: periodic spikes at multiples of
    `tau_mem * ln(b / (b - threshold))`."""
    t1 = 0.5
    neuron = LIF(1, tau_mem=0.02, tau_syn=0.005, threshold=1.0, bias=1.5)

    def fn(p, adjoint=None):
        m = eqx.tree_at(lambda m: (m.tau_mem, m.threshold, m.bias), neuron, p)
        s = simulate(m, t1, max_spikes=64, adjoint=adjoint)
        return _loss_of_times(s.spikes, t1), s

    params = (neuron.tau_mem, neuron.threshold, neuron.bias)
    rep = check_grads(fn, params)
    sim = rep.aux  # (the unperturbed simulation: check_grads ran it, compiled)
    t = np.asarray(sim.spikes.times)[np.asarray(sim.spikes.valid)]
    period = 0.02 * np.log(1.5 / 0.5)
    k = np.arange(1, int(np.floor(t1 / period)) + 1)
    err = float(np.max(np.abs(t - k * period))) if len(t) == len(k) else np.inf
    return _result(
        "LIF", "1 neuron, constant drive", sim, err, "closed form", 1e-10, rep,
        "params: tau_mem, threshold, bias", (fn, params),
    )


def check_lif_input_driven(seed: int = 0) -> CheckResult:
    """One LIF neuron with exponential synapse driven by 8 input neurons."""
    rng = np.random.default_rng(seed)
    t1 = 0.2
    inputs = _random_inputs(rng, 8, 4, 0.15)
    w_in = jnp.asarray(rng.normal(0.6, 0.5, (8, 1)))
    neuron = LIF(1, tau_mem=0.02, tau_syn=0.01, threshold=1.0, v_reset=-0.2)

    def fn(p, adjoint=None):
        w, tau_m, tau_s, thr, in_t = p
        m = eqx.tree_at(lambda m: (m.tau_mem, m.tau_syn, m.threshold), neuron, (tau_m, tau_s, thr))
        inp = SpikeTrain(in_t, inputs.neurons, inputs.num_neurons)
        s = simulate(m, t1, inp, w, max_spikes=64, adjoint=adjoint)
        return _loss_of_times(s.spikes, t1), s

    params = (w_in, neuron.tau_mem, neuron.tau_syn, neuron.threshold, inputs.times)
    rep = check_grads(fn, params)
    sim = rep.aux  # (the unperturbed simulation: check_grads ran it, compiled)
    err = _spike_error(sim.spikes, reference_lif(neuron, t1, inputs, w_in))
    return _result(
        "LIF", "8 inputs -> 1 neuron", sim, err, "SciPy DOP853 rtol 1e-12", 1e-9, rep,
        "params: w_in, tau_mem, tau_syn, threshold, input spike times", (fn, params),
    )


def check_lif_feedforward(seed: int = 1) -> CheckResult:
    """A two-layer feed-forward LIF network, several spikes per neuron."""
    rng = np.random.default_rng(seed)
    t1 = 0.1
    inputs = _random_inputs(rng, 10, 3, 0.06)
    w1 = jnp.asarray(rng.normal(0.35, 0.3, (10, 10)))
    w2 = jnp.asarray(rng.normal(0.25, 0.2, (10, 4)))
    n1 = LIF(10, tau_mem=0.01, tau_syn=0.005, threshold=1.0, bias=1.0)
    n2 = LIF(4, tau_mem=0.01, tau_syn=0.005, threshold=1.0, bias=1.0)

    def run(p, adjoint=None):
        w1_, w2_, tau1, tau2 = p
        m1 = eqx.tree_at(lambda m: m.tau_mem, n1, tau1)
        m2 = eqx.tree_at(lambda m: m.tau_mem, n2, tau2)
        s1 = simulate(m1, t1, inputs, w1_, max_spikes=200, adjoint=adjoint)
        s2 = simulate(m2, t1, s1.spikes, w2_, max_spikes=100, adjoint=adjoint)
        return s1, s2

    params = (w1, w2, n1.tau_mem, n2.tau_mem)
    s1, s2 = run(params)
    ref1 = reference_lif(n1, t1, inputs, w1)
    ref_train = SpikeTrain._from_events(ref1[0], ref1[1].astype(np.int32), 10, 200, None)
    ref2 = reference_lif(n2, t1, ref_train, w2)
    err = max(_spike_error(s1.spikes, ref1), _spike_error(s2.spikes, ref2))

    def fn(p, adjoint=None):
        a, b = run(p, adjoint)
        return _loss_of_times(b.spikes, t1) + 0.1 * _loss_of_times(a.spikes, t1), (a, b)

    rep = check_grads(fn, params)
    return _result(
        "LIF", "10 -> 10 -> 4 feed-forward", (s1, s2), err, "SciPy DOP853 rtol 1e-12",
        1e-9, rep, "params: w1, w2, tau_mem of both layers", (fn, params),
    )


def check_lif_recurrent(seed: int = 2) -> CheckResult:
    """A recurrent network of 20 LIF neurons with at least 5 spikes each."""
    rng = np.random.default_rng(seed)
    n, t1 = 20, 0.12
    inputs = _random_inputs(rng, 5, 4, 0.08)
    w_in = jnp.asarray(rng.normal(0.3, 0.3, (5, n)))
    w_rec = jnp.asarray(rng.normal(0.0, 0.15, (n, n)))
    bias = jnp.asarray(rng.uniform(1.8, 2.4, n))
    neuron = LIF(n, tau_mem=0.02, tau_syn=0.005, threshold=1.0, bias=bias)

    def fn(p, adjoint=None):
        wi, wr, tau_m, b = p
        m = eqx.tree_at(lambda m: (m.tau_mem, m.bias), neuron, (tau_m, b))
        s = simulate(m, t1, inputs, wi, w_rec=wr, max_spikes=400, adjoint=adjoint)
        return _loss_of_times(s.spikes, t1), s

    params = (w_in, w_rec, neuron.tau_mem, bias)
    rep = check_grads(fn, params)
    sim = rep.aux  # (the unperturbed simulation: check_grads ran it, compiled)
    err = _spike_error(sim.spikes, reference_lif(neuron, t1, inputs, w_in, w_rec))
    return _result(
        "LIF", f"{n} recurrent", sim, err, "SciPy DOP853 rtol 1e-12", 1e-9, rep,
        "params: w_in, w_rec, tau_mem, bias", (fn, params),
    )


def _first_spike_check(model_name, neuron, t1, times, weights, reference, ref_name, params_of):
    """One neuron, several inputs: first spike time against a closed form, and the
    gradient of all spike times with respect to weights, input times and the model's
    time constant."""
    ids = jnp.arange(times.shape[0], dtype=jnp.int32)

    def fn(p, adjoint=None):
        w, t_in, tau = p
        inp = SpikeTrain(t_in, ids, times.shape[0])
        s = simulate(
            params_of(neuron, tau), t1, inp, w[:, None], max_spikes=32, adjoint=adjoint
        )
        return _loss_of_times(s.spikes, t1), s

    params = (jnp.asarray(weights), jnp.asarray(times), params_of(neuron, None))
    rep = check_grads(fn, params)
    sim = rep.aux  # (the unperturbed simulation: check_grads ran it, compiled)
    err = abs(float(sim.spikes.times[0]) - reference(times, weights))
    return _result(
        model_name, f"{times.shape[0]} inputs -> 1 neuron", sim, err, ref_name, 1e-10,
        rep, "params: weights, input spike times, time constant", (fn, params),
    )


def check_nonleaky() -> CheckResult:
    """Mostafa's non-leaky neuron (tau_syn = 1): first spike vs the z = exp(t) form."""
    rng = np.random.default_rng(3)
    times, weights = np.sort(rng.uniform(0, 2, 6)), rng.normal(0.4, 0.3, 6)
    return _first_spike_check(
        "NonLeakyIF", NonLeakyIF(1, tau_syn=1.0), 6.0, times, weights,
        mostafa_first_spike, "Mostafa closed form",
        lambda m, tau: m.tau_syn if tau is None else eqx.tree_at(lambda m: m.tau_syn, m, tau),
    )


def check_alpha() -> CheckResult:
    """Alpha-synapse neuron (Comsa et al.): first spike vs Lambert W."""
    rng = np.random.default_rng(4)
    times, weights = np.sort(rng.uniform(0, 2, 6)), rng.normal(1.0, 0.5, 6)
    return _first_spike_check(
        "AlphaIF", AlphaIF(1, tau=1.0), 8.0, times, weights,
        lambda t, w: alpha_first_spike(t, w, 1.0), "Lambert W",
        lambda m, tau: m.tau if tau is None else eqx.tree_at(lambda m: m.tau, m, tau),
    )


def check_lif_lambert(ratio: float) -> CheckResult:
    """LIF with tau_mem = ratio * tau_syn (ratio 1: Lambert W, 2: quadratic),
    first spike vs the closed form of Goeltz et al. (2021)."""
    rng = np.random.default_rng(5)
    tau_mem = 0.02
    times, weights = np.sort(rng.uniform(0, 0.02, 6)), np.abs(rng.normal(1.0, 0.5, 6))
    solve = lif_equal_tau_first_spike if ratio == 1.0 else lif_double_tau_first_spike
    name = "Lambert W" if ratio == 1.0 else "closed form (quadratic)"
    return dataclasses.replace(
        _first_spike_check(
            "LIF", LIF(1, tau_mem=tau_mem, tau_syn=tau_mem / ratio), 0.05, times, weights,
            lambda t, w: solve(t, w, tau_mem), name,
            lambda m, tau: m.tau_mem if tau is None else eqx.tree_at(lambda m: m.tau_mem, m, tau),
        ),
        network=f"6 inputs -> 1, tau_m = {ratio:g} tau_s",
    )


def check_first_spikes(seed: int = 6) -> CheckResult:
    """Two closed-form first-spike layers (`first_spikes`, LIF with tau_m = 2 tau_s),
    inputs with several spikes each: every neuron's spike time against the NumPy
    closed form, layer by layer, and the gradient of all spike times with respect to
    both weight matrices, the input times and tau_mem against finite differences."""
    rng = np.random.default_rng(seed)
    t1, sizes = 0.05, (6, 20, 4)
    inputs = _random_inputs(rng, sizes[0], 3, 0.03)
    w1 = jnp.asarray(rng.normal(0.6, 0.6, sizes[:2]))
    w2 = jnp.asarray(rng.normal(0.5, 0.4, sizes[1:]))
    neurons = [LIF(n, tau_mem=0.02, tau_syn=0.01) for n in sizes[1:]]

    def run(p):
        w1, w2, in_t, tau = p
        m1, m2 = (eqx.tree_at(lambda m: (m.tau_mem, m.tau_syn), m, (tau, tau / 2)) for m in neurons)
        hidden = first_spikes(m1, t1, SpikeTrain(in_t, inputs.neurons, sizes[0]), w1)
        return hidden, first_spikes(m2, t1, hidden.spikes, w2)

    def fn(p):
        hidden, out = run(p)
        return _loss_of_times(hidden.spikes, t1) + _loss_of_times(out.spikes, t1), (hidden, out)

    params = (w1, w2, inputs.times, jnp.asarray(0.02))
    sims = run(params)
    err = 0.0
    for train, w, sim in ((inputs, w1, sims[0]), (sims[0].spikes, w2, sims[1])):
        times, ids = np.asarray(train.times), np.asarray(train.neurons)
        real = ids < train.num_neurons
        want = np.array([
            lif_double_tau_first_spike(times[real], np.asarray(w)[ids[real], j], 0.02)
            for j in range(w.shape[1])
        ])  # fmt: skip
        fired = np.flatnonzero(want < t1)
        err = max(err, _spike_error(sim.spikes, (want[fired], fired)))
    rep = check_grads(fn, params)
    return _result(
        "first_spikes", f"{sizes[0]} inputs x3 -> {sizes[1]} -> {sizes[2]}", sims, err,
        "closed form (NumPy)", 1e-10, rep,
        "closed-form layers (no event loop), tau_m = 2 tau_s; params: w_in of both layers, "
        "input spike times, tau_mem (tau_syn = tau_mem/2)",
    )

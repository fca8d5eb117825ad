"""Built-in verification: spike times against closed forms or an independent
integrator, gradients against finite differences. Behind `spikeode check`."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._adjoint import EventPropAdjoint
from ._first_spike import first_spikes
from ._gradcheck import check_grads
from ._loop import Pseudodynamics, simulate
from ._reference import reference_simulate
from ._spikes import SpikeTrain
from ._closed_forms import (
    alpha_first_spike,
    lif_double_tau_first_spike,
    lif_equal_tau_first_spike,
    mostafa_first_spike,
    theta_population,
)
from .neurons import LIF, QIF, AlphaIF, NonLeakyIF, ThetaNeuron
from .smooth import check_smooth_gated


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
        for k in ("tau_mem", "tau_syn", "threshold", "v_reset", "bias", "t_ref")
    }

    def rhs(_, y, refractory):
        v, i = y[:, 0], y[:, 1]
        dv = np.where(refractory, 0.0, (par["bias"] + i - v) / par["tau_mem"])
        return np.stack([dv, -i / par["tau_syn"]], axis=1)

    return reference_simulate(
        rhs, lambda y: y[:, 0] - par["threshold"], lambda y, j: _set(y, j, par["v_reset"][j]),
        _add_column(1), np.zeros((n, 2)) if y0 is None else np.asarray(y0, float), t1,
        inputs, w_in, w_rec, refractory_period=par["t_ref"], rtol=rtol, atol=rtol,
        max_step=min(par["tau_mem"].min(), par["tau_syn"].min()) / 50, delays=delays,
        input_delays=input_delays,
    )  # fmt: skip


def _set(y, j, value):
    """`y` with `v` (column 0) of neuron `j` set to `value`."""
    y = y.copy()
    y[j, 0] = value
    return y


def _add_column(column):
    def receive(y, w):
        y = y.copy()
        y[:, column] += w
        return y

    return receive


def reference_qif(
    tau_mem, t1, inputs=None, w_in=None, w_rec=None, *, tau_syn=None, bias=0.0,
    trial_end=None, drive=None, rtol: float = 1e-13,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Simulate a QIF population in the phase form
    (`tau_m dtheta/dt = 1 - cos theta + (1 + cos theta)(I + b - 1/4)`,
    `tau_s dI/dt = -I`) with SciPy's DOP853 (`reference_simulate`; events at
    `theta = pi`, reset to `-pi`), independently of Diffrax, spikeode's loop and its
    closed form. With `trial_end`, the drive `b` becomes `drive` from then on
    (pseudodynamics).

    **Returns:** `(times, neurons)` of the spikes in `[0, t1)`, in order.
    """
    n = np.shape(w_in if w_in is not None else w_rec)[1]
    tau_m = np.broadcast_to(np.asarray(tau_mem, float), (n,))
    tau_s = tau_m / 2 if tau_syn is None else np.broadcast_to(np.asarray(tau_syn, float), (n,))
    after = np.inf if trial_end is None else float(trial_end)

    def rhs(t, y, _):
        b = np.asarray(drive if t >= after else bias, float)
        c = np.cos(y[:, 0])
        return np.stack([(1 - c + (1 + c) * (y[:, 1] + b - 0.25)) / tau_m, -y[:, 1] / tau_s], 1)

    y0 = np.stack([np.full(n, 2 * np.arctan(-0.5)), np.zeros(n)], axis=1)
    return reference_simulate(
        rhs, lambda y: y[:, 0] - np.pi, lambda y, j: _set(y, j, -np.pi), _add_column(1),
        y0, t1, inputs, w_in, w_rec, rtol=rtol, atol=rtol, max_step=np.min(tau_s) / 20,
        breaks=() if trial_end is None else (after,),
    )  # fmt: skip


# ----------------------------------------------------------------------------------
# EventPropAdjoint against differentiating through the solver (relative, float64)
ADJOINT_TOL = 1e-8


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One row of `spikeode check`."""

    model: str
    network: str
    spikes: int
    min_spikes_per_neuron: int
    spike_time_error: float
    spike_time_reference: str
    spike_time_tol: float
    grad_error: float
    grad_tol: float
    seconds: float
    details: str
    # gradient by `EventPropAdjoint` vs through the solver, or vs finite differences
    # for numerically integrated models (see `details`); None: not applicable
    adjoint_error: float | None = None
    adjoint_tol: float = ADJOINT_TOL

    @property
    def passed(self) -> bool:
        return bool(
            self.spike_time_error <= self.spike_time_tol
            and self.grad_error <= self.grad_tol
            and (self.adjoint_error is None or self.adjoint_error <= self.adjoint_tol)
        )

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["passed"] = self.passed
        return d


def _spike_error(sim_spikes: SpikeTrain, ref: tuple[np.ndarray, np.ndarray]) -> float:
    valid = np.asarray(sim_spikes.valid)
    t = np.asarray(sim_spikes.times)[valid]
    i = np.asarray(sim_spikes.neurons)[valid]
    ref_t, ref_i = ref
    if len(t) != len(ref_t) or np.any(np.sort(i) != np.sort(ref_i)):
        return np.inf
    # compare per neuron (order of near-simultaneous spikes of different neurons may differ)
    err = 0.0
    for j in np.unique(i):
        a, b = np.sort(t[i == j]), np.sort(ref_t[ref_i == j])
        err = max(err, float(np.max(np.abs(a - b))))
    return err


def _random_inputs(rng, num_inputs, spikes_each, t_max):
    times = np.sort(rng.uniform(0.0, t_max, (num_inputs, spikes_each)), axis=1)
    return SpikeTrain.from_per_neuron(times)


def _loss_of_times(train: SpikeTrain, t1):
    # A smooth function of all spike times that weights each spike differently.
    k = jnp.arange(train.capacity, dtype=train.times.dtype)
    w = jnp.cos(0.7 * k + 0.3 * train.neurons)
    return jnp.sum(jnp.where(train.valid, w * train.times / t1, 0.0))


def check_lif_constant_drive() -> CheckResult:
    """One LIF neuron under constant drive: periodic spikes at multiples of
    `tau_mem * ln(b / (b - threshold))`."""
    t1 = 0.5
    neuron = LIF(1, tau_mem=0.02, tau_syn=0.005, threshold=1.0, bias=1.5)
    sim = simulate(neuron, t1, max_spikes=64)
    t = np.asarray(sim.spikes.times)[np.asarray(sim.spikes.valid)]
    period = 0.02 * np.log(1.5 / 0.5)
    k = np.arange(1, int(np.floor(t1 / period)) + 1)
    err = float(np.max(np.abs(t - k * period))) if len(t) == len(k) else np.inf

    def fn(p, adjoint=None):
        m = eqx.tree_at(lambda m: (m.tau_mem, m.threshold, m.bias), neuron, p)
        s = simulate(m, t1, max_spikes=64, adjoint=adjoint)
        return _loss_of_times(s.spikes, t1), s

    params = (neuron.tau_mem, neuron.threshold, neuron.bias)
    rep = check_grads(fn, params)
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
    sim = simulate(neuron, t1, inputs, w_in, max_spikes=64)
    err = _spike_error(sim.spikes, reference_lif(neuron, t1, inputs, w_in))

    def fn(p, adjoint=None):
        w, tau_m, tau_s, thr, in_t = p
        m = eqx.tree_at(lambda m: (m.tau_mem, m.tau_syn, m.threshold), neuron, (tau_m, tau_s, thr))
        inp = SpikeTrain(in_t, inputs.neurons, inputs.num_neurons)
        s = simulate(m, t1, inp, w, max_spikes=64, adjoint=adjoint)
        return _loss_of_times(s.spikes, t1), s

    params = (w_in, neuron.tau_mem, neuron.tau_syn, neuron.threshold, inputs.times)
    rep = check_grads(fn, params)
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
    sim = fn(params)[1]
    err = _spike_error(sim.spikes, reference_lif(neuron, t1, inputs, w_in, w_rec))
    rep = check_grads(fn, params)
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
    sim = fn(params)[1]
    err = abs(float(sim.spikes.times[0]) - reference(times, weights))
    rep = check_grads(fn, params)
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


def _phase_network(seed, num_inputs, n, t_max, count, w_mean, w_std, w_rec_mean, w_rec_std):
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(0, t_max, count))
    ids = rng.integers(0, num_inputs, count).astype(np.int32)
    w_in = jnp.asarray(rng.normal(w_mean, w_std, (num_inputs, n)))
    w_rec = jnp.asarray(rng.normal(w_rec_mean, w_rec_std, (n, n)))
    return jnp.asarray(times), jnp.asarray(ids), w_in, w_rec


def check_theta() -> CheckResult:
    """Recurrent theta neurons (tonic and excitable) against the event-by-event
    closed-form voltage (tan / tanh / coth forms)."""
    times, ids, w_in, w_rec = _phase_network(10, 3, 4, 15.0, 12, 0.8, 0.6, 0.3, 0.5)
    neuron = ThetaNeuron(4, tau=jnp.array([1.0, 0.8, 1.3, 0.6]), bias=jnp.array([0.5, 0.1, 0.3, -0.2]))
    t1 = 20.0

    def fn(p, adjoint=None):
        w, wr, tau, bias, t_in = p
        m = eqx.tree_at(lambda m: (m.tau, m.bias), neuron, (tau, bias))
        s = simulate(
            m, t1, SpikeTrain(t_in, ids, 3), w, w_rec=wr, max_spikes=64, adjoint=adjoint
        )
        return _loss_of_times(s.spikes, t1), s

    params = (w_in, w_rec, neuron.tau, neuron.bias, times)
    sim = fn(params)[1]
    ref = theta_population(
        neuron.tau, neuron.bias, t1, np.asarray(times), np.asarray(ids), w_in, w_rec
    )
    return _result(
        "ThetaNeuron", "3 inputs -> 4 recurrent", sim, _spike_error(sim.spikes, ref),
        "closed form (V)", 1e-10, check_grads(fn, params),
        "params: w_in, w_rec, tau, bias, input spike times", (fn, params),
    )


def _qif_check(pseudo: bool) -> CheckResult:
    times, ids, w_in, w_rec = _phase_network(11, 3, 4, 6.0, 10, 3.0, 2.0, 0.5, 1.0)
    if pseudo:  # neuron 3 silent in the trial; its pseudospikes carry its gradient
        w_in = w_in.at[:, 3].set(-1.0)
        w_rec = w_rec.at[:, 3].set(-0.5)
    neuron = QIF(4, tau_mem=jnp.array([1.0, 0.8, 1.2, 0.9]))
    t1, trial_end = (12.0, 8.0) if pseudo else (12.0, None)

    def fn(p, adjoint=None):
        w, wr, tau, t_in, drive = p
        m = eqx.tree_at(lambda m: m.tau_mem, neuron, tau)
        s = simulate(
            m, t1, SpikeTrain(t_in, ids, 3), w, w_rec=wr, max_spikes=64, adjoint=adjoint,
            pseudodynamics=Pseudodynamics(trial_end, drive) if pseudo else None,
        )  # fmt: skip
        return _loss_of_times(s.spikes, t1), s

    params = (w_in, w_rec, neuron.tau_mem, times, jnp.asarray(1.0))
    if not pseudo:
        params = params[:4] + (None,)
    sim = fn(params)[1]
    ref = reference_qif(
        neuron.tau_mem, t1, SpikeTrain(times, ids, 3), w_in, w_rec,
        trial_end=trial_end, drive=1.0,
    )  # fmt: skip
    return _result(
        "QIF", "3 inputs -> 4 recurrent" + (" + pseudo" if pseudo else ""), sim,
        _spike_error(sim.spikes, ref), "SciPy DOP853", 1e-8 if pseudo else 1e-10,
        check_grads(fn, params),
        "params: w_in, w_rec, tau_mem, input spike times"
        + (", drive; pseudo phase by Tsit5 (rtol 1e-10)" if pseudo else ""), (fn, params),
    )


def _adjoint_error(rep, problem, adjoint) -> float:
    """Largest relative difference, per parameter, between the gradient by
    `adjoint` (the continuous adjoint) and the one `check_grads` checked (through
    the solver). `problem` is `(fn, params)` with `fn(params, adjoint) -> (loss, aux)`."""
    fn, params = problem
    dyn, static = eqx.partition(params, eqx.is_inexact_array)
    grad = eqx.filter_jit(jax.grad(lambda d: fn(eqx.combine(d, static), adjoint)[0]))(dyn)
    solver = eqx.filter(rep.grad, eqx.is_inexact_array)
    err = 0.0
    for a, b in zip(jax.tree_util.tree_leaves(solver), jax.tree_util.tree_leaves(grad)):
        a, b = np.asarray(a), np.asarray(b)
        scale = float(np.max(np.abs(a)))
        if scale > 0 or np.any(b != 0):
            err = max(err, float(np.max(np.abs(a - b))) / max(scale, 1e-300))
    return err


def _result(model, network, sims, err, ref_name, tol, rep, details, problem=None,
            adjoint=None, adjoint_vs_fd=False):  # fmt: skip
    """A `CheckResult`; with `problem = (fn, params)` also the continuous adjoint's
    gradient (`adjoint`, default `EventPropAdjoint()`): against the checked gradient
    through the solver (bound `ADJOINT_TOL`) or, with `adjoint_vs_fd`, against finite
    differences (bound `rep.rtol`; for numerically integrated models, whose two
    gradients differ by the forward solver's discretisation)."""
    adjoint_error, adjoint_tol = None, ADJOINT_TOL
    if problem is not None and rep.grad is not None:
        adjoint = EventPropAdjoint() if adjoint is None else adjoint
        vs_solver = _adjoint_error(rep, problem, adjoint)
        adjoint_error = vs_solver
        if adjoint_vs_fd:
            fn, params = problem
            fd = check_grads(lambda p: fn(p, adjoint), params, steps=np.logspace(-3, -7, 9))
            adjoint_error, adjoint_tol = float(fd.max_rel_error), fd.rtol
            details += (
                f"; adjoint err: EventPropAdjoint vs finite differences (vs the "
                f"gradient through the solver: {vs_solver:.1e})"
            )
    sims = sims if isinstance(sims, tuple) else (sims,)
    spikes = sum(int(s.spikes.num_spikes) for s in sims)
    min_per = min(int(np.min(np.asarray(s.spikes.counts()))) for s in sims)
    messages = "; ".join(rep.messages)
    return CheckResult(
        model=model,
        network=network,
        spikes=spikes,
        min_spikes_per_neuron=min_per,
        spike_time_error=float(err),
        spike_time_reference=ref_name,
        spike_time_tol=tol,
        grad_error=float(rep.max_rel_error) if rep.passed or rep.leaves else np.inf,
        grad_tol=rep.rtol,
        seconds=0.0,
        details=details + (f"; {messages}" if messages else ""),
        adjoint_error=adjoint_error,
        adjoint_tol=adjoint_tol,
    )


CHECKS: dict[str, Callable[[], CheckResult]] = {
    "lif-constant": check_lif_constant_drive,
    "lif-input": check_lif_input_driven,
    "lif-feedforward": check_lif_feedforward,
    "lif-recurrent": check_lif_recurrent,
    "lif-equal-tau": lambda: check_lif_lambert(1.0),
    "lif-double-tau": lambda: check_lif_lambert(2.0),
    "nonleaky": check_nonleaky,
    "first-spikes": check_first_spikes,
    "alpha": check_alpha,
    "theta": check_theta,
    "qif": lambda: _qif_check(False),
    "qif-pseudo": lambda: _qif_check(True),
    "smooth-gated": check_smooth_gated,
    "adaptive-lif": lambda: _numerical("check_adaptive_lif"),
    "exp-if": lambda: _numerical("check_exp_if"),
}


def _numerical(name: str) -> CheckResult:
    # imported here: that module builds on this one's helpers
    from . import _verify_numerical

    return getattr(_verify_numerical, name)()


def run_checks(names=None, progress: Callable[[str], None] | None = None) -> list[CheckResult]:
    """Run the named built-in checks (all by default) in float64."""
    if not jax.config.jax_enable_x64:
        raise RuntimeError("run_checks needs float64: enable jax_enable_x64 first.")
    names = list(CHECKS) if names is None else list(names)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; choose from {list(CHECKS)}.")
    results = []
    for name in names:
        if progress:
            progress(name)
        start = time.perf_counter()
        res = CHECKS[name]()
        results.append(dataclasses.replace(res, seconds=time.perf_counter() - start))
    return results


def format_table(results: list[CheckResult]) -> str:
    head = (
        f"{'model':<12} {'network':<32} {'spikes':>6} {'min/neuron':>10} "
        f"{'spike-time err':>14} {'grad rel err':>12} {'adjoint err':>11}  result"
    )
    rows = [head, "-" * len(head)]
    for r in results:
        rows.append(
            f"{r.model:<12} {r.network:<32} {r.spikes:>6} {r.min_spikes_per_neuron:>10} "
            f"{r.spike_time_error:>14.2e} {r.grad_error:>12.2e} "
            f"{'n/a' if r.adjoint_error is None else f'{r.adjoint_error:.2e}':>11}  "
            f"{'pass' if r.passed else 'FAIL'}"
        )
    return "\n".join(rows)

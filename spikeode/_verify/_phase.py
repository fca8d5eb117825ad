"""`spikeode check` rows of the phase models: `ThetaNeuron` (against the event-by-event
closed-form voltage) and `QIF` (against SciPy's DOP853 on the phase form, with and
without pseudodynamics). Also `reference_qif`, the QIF population by SciPy."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._gradcheck import check_grads
from .._simulate import Pseudodynamics, simulate
from .._spikes import SpikeTrain
from ..neurons import QIF, ThetaNeuron
from ._formulas import theta_population
from ._reference import _add_column, _set, reference_simulate
from ._result import _loss_of_times, _result, _spike_error, CheckResult


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
    neuron = ThetaNeuron(
        4, tau=jnp.array([1.0, 0.8, 1.3, 0.6]), bias=jnp.array([0.5, 0.1, 0.3, -0.2])
    )
    t1 = 20.0

    def fn(p, adjoint=None):
        w, wr, tau, bias, t_in = p
        m = eqx.tree_at(lambda m: (m.tau, m.bias), neuron, (tau, bias))
        s = simulate(
            m, t1, SpikeTrain(t_in, ids, 3), w, w_rec=wr, max_spikes=64, adjoint=adjoint
        )
        return _loss_of_times(s.spikes, t1), s

    params = (w_in, w_rec, neuron.tau, neuron.bias, times)
    rep = check_grads(fn, params)
    sim = rep.aux  # (the unperturbed simulation: check_grads ran it, compiled)
    ref = theta_population(
        neuron.tau, neuron.bias, t1, np.asarray(times), np.asarray(ids), w_in, w_rec
    )
    return _result(
        "ThetaNeuron", "3 inputs -> 4 recurrent", sim, _spike_error(sim.spikes, ref),
        "closed form (V)", 1e-10, rep,
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
    rep = check_grads(fn, params)
    sim = rep.aux  # (the unperturbed simulation: check_grads ran it, compiled)
    ref = reference_qif(
        neuron.tau_mem, t1, SpikeTrain(times, ids, 3), w_in, w_rec,
        trial_end=trial_end, drive=1.0,
    )  # fmt: skip
    return _result(
        "QIF", "3 inputs -> 4 recurrent" + (" + pseudo" if pseudo else ""), sim,
        _spike_error(sim.spikes, ref), "SciPy DOP853", 1e-8 if pseudo else 1e-10, rep,
        "params: w_in, w_rec, tau_mem, input spike times"
        + (", drive; pseudo phase by Tsit5 (rtol 1e-10)" if pseudo else ""), (fn, params),
    )


def check_qif() -> CheckResult:
    """Recurrent QIF neurons against SciPy's DOP853 on the phase form."""
    return _qif_check(False)


def check_qif_pseudo() -> CheckResult:
    """As `check_qif`, with pseudodynamics after the trial (one neuron silent in the
    trial, whose pseudospikes carry its gradient)."""
    return _qif_check(True)

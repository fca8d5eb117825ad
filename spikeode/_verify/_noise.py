"""`spikeode check` row of escape noise (`EscapeNoise` around `LIF` with an
`ExponentialHazard`) and its references, in NumPy/SciPy:

- `lif_integrated_hazard`: the integrated exponential hazard after a reset under
  constant drive, in closed form (exponential integral), and `escape_spike_times`,
  the spike times of given Exp(1) draws by inverting it (`brentq`);
- `reference_log_likelihood`: the log-likelihood of a spike train of an `LIF`
  network with escape noise, event by event with the closed-form voltage and SciPy's
  `quad` for the integral of the hazard.
"""

from __future__ import annotations

import dataclasses

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.integrate
import scipy.optimize
import scipy.special

from .._adjoint import EventPropAdjoint
from .._gradcheck import check_grads
from .._likelihood import log_likelihood
from .._simulate import simulate
from ..neurons._escape import EscapeNoise, ExponentialHazard
from ..neurons._lif import LIF
from ._result import _loss_of_times, _random_inputs, _result, _spike_error, CheckResult

# Tolerance of `quad` in the likelihood reference (absolute, per piece).
QUAD_TOL = 1e-13
# Solver tolerance (Tsit5, PID rtol = atol) of the check's simulations.
RTOL = 1e-12
# Bounds: the sampled spike times (the crossing of Lambda = E, integrated at RTOL)
# against the closed-form inversion, and the log-likelihood against `quad`; both
# measured ~1e-12 (see tests/test_escape_noise.py).
SPIKE_TIME_TOL = 1e-9
LIKELIHOOD_TOL = 1e-8


def _scalar(x, i):
    """Neuron `i`'s value of a parameter (a scalar or one per neuron)."""
    x = np.asarray(x, float)
    return float(x if x.ndim == 0 else x[i])


def lif_integrated_hazard(s, *, tau_mem, bias, threshold, v_reset, rho0, delta):
    """`int_0^s rho(v(r) - threshold) dr` for an exponential hazard and the voltage
    `v(r) = bias + (v_reset - bias) e^{-r/tau_mem}` of an `LIF` after a reset without
    synaptic current (`bias > v_reset`): with `c = (bias - v_reset)/delta`,
    `rho0 e^{(bias - threshold)/delta} tau_mem (E1(c e^{-s/tau_mem}) - E1(c))`."""
    c = (bias - v_reset) / delta
    scale = rho0 * np.exp((bias - threshold) / delta) * tau_mem
    x = c * np.exp(-np.asarray(s) / tau_mem)
    return scale * (scipy.special.exp1(x) - scipy.special.exp1(c))


def escape_spike_times(draws, t1, refractory_period=0.0, **params):
    """The spike times of one `LIF` neuron with escape noise under constant drive,
    from rest at `v_reset`, given its Exp(1) draws (`draws[k]`: before spike `k`):
    each interval the refractory period (none before the first spike) plus the root
    of `lif_integrated_hazard(s) = draws[k]`. Spikes up to `t1`."""
    times, t = [], 0.0
    for k, e in enumerate(draws):
        hi = params["tau_mem"]
        while lif_integrated_hazard(hi, **params) < e:
            hi *= 2
        s = scipy.optimize.brentq(
            lambda s: lif_integrated_hazard(s, **params) - e, 0.0, hi, xtol=1e-15, rtol=1e-15
        )
        t = t + (refractory_period if k else 0.0) + s
        if t >= t1:
            break
        times.append(t)
    return np.asarray(times)


def reference_log_likelihood(model: EscapeNoise, spikes, t1, inputs=None, w_in=None, w_rec=None):
    """The log-likelihood of `spikes` (lists of times per neuron, within `[0, t1)`)
    under an `EscapeNoise(LIF, ExponentialHazard)` network from rest at `t = 0`,
    neuron by neuron (given the observed spikes the neurons are independent): the
    closed-form voltage between events (inputs, observed spikes of any neuron with
    their `w_rec` kicks, own resets and ends of refractory periods; all times
    distinct), `quad` of the hazard over each non-refractory piece, `log rho` at each
    own spike."""
    lif, hazard = model.neuron, model.hazard
    n = lif.num_neurons
    events = []  # (time, kind, source)
    if inputs is not None:
        for j, ts in enumerate(inputs):
            events += [(float(t), "in", j) for t in ts if t < t1]
    for p, ts in enumerate(spikes):
        events += [(float(t), "spike", p) for t in ts]
    events.sort()
    total = 0.0
    for i in range(n):
        tm, ts_, thr, vr, b, tref, rho0, delta = (
            _scalar(getattr(obj, k), i)
            for obj, k in [(lif, "tau_mem"), (lif, "tau_syn"), (lif, "threshold"),
                           (lif, "v_reset"), (lif, "bias"), (lif, "refractory_period"),
                           (hazard, "rho0"), (hazard, "delta")]
        )  # fmt: skip

        def voltage(v0, i0, dt):
            return (
                b
                + (v0 - b) * np.exp(-dt / tm)
                + i0 * ts_ / (ts_ - tm) * (np.exp(-dt / ts_) - np.exp(-dt / tm))
            )

        def piece(t, v, cur, t_next):
            """Advance from `t` to `t_next` (not refractory): the hazard's integral."""
            f = lambda r: rho0 * np.exp((voltage(v, cur, r - t) - thr) / delta)
            val, _ = scipy.integrate.quad(f, t, t_next, epsabs=QUAD_TOL, epsrel=QUAD_TOL, limit=500)
            return val, voltage(v, cur, t_next - t), cur * np.exp(-(t_next - t) / ts_)

        t, v, cur, refr_end = 0.0, 0.0, 0.0, -np.inf
        for te, kind, src in events + [(float(t1), "end", -1)]:
            if refr_end > t and refr_end < te:  # the refractory period ends first
                cur *= np.exp(-(refr_end - t) / ts_)
                t = refr_end
            if t >= refr_end:
                val, v, cur = piece(t, v, cur, te)
                total -= val
            else:
                cur *= np.exp(-(te - t) / ts_)
            t = te
            if kind == "in":
                cur += float(w_in[src, i])
            elif kind == "spike":
                if src == i:
                    total += np.log(rho0) + (v - thr) / delta
                    v, refr_end = vr, te + tref
                if w_rec is not None:
                    cur += float(w_rec[src, i])
    return total


# ----------------------------------------------------------------------------------
def constant_drive_model(key=0):
    """Three `LIF` neurons under constant drive (below, near and above threshold)
    with escape noise."""
    lif = LIF(3, tau_mem=0.02, tau_syn=0.005, bias=jnp.array([0.9, 1.1, 1.3]),
              refractory_period=0.002)  # fmt: skip
    return EscapeNoise(lif, ExponentialHazard(50.0, 0.1), jax.random.key(key))


def network(seed: int = 3):
    """A recurrent `LIF` network with escape noise: 3 random inputs -> 3 neurons,
    `t1 = 0.15`."""
    rng = np.random.default_rng(seed)
    n, t1 = 3, 0.15
    inputs = _random_inputs(rng, 3, 4, 0.12)
    w_in = jnp.asarray(rng.normal(0.5, 0.3, (3, n)))
    w_rec = jnp.asarray(rng.normal(0.0, 0.3, (n, n)))
    lif = LIF(n, tau_mem=0.02, tau_syn=0.005, bias=jnp.asarray(rng.uniform(0.8, 1.2, n)),
              refractory_period=0.002)  # fmt: skip
    hazard = ExponentialHazard(jnp.asarray(rng.uniform(30.0, 60.0, n)), 0.15)
    return EscapeNoise(lif, hazard, jax.random.key(seed)), t1, inputs, w_in, w_rec


def _values(model, fields):
    """The named fields (`neuron.x` or `hazard.x`) of `model` (an `EscapeNoise`)."""
    return tuple(getattr(getattr(model, f.split(".")[0]), f.split(".")[1]) for f in fields)


def _replace(model, fields, values):
    """`model` with the named fields replaced by `values`."""
    return eqx.tree_at(lambda m: _values(m, fields), model, tuple(values))


def check_escape_noise() -> CheckResult:
    """`EscapeNoise` around `LIF` with an `ExponentialHazard`: spike times under
    constant drive against the closed-form inversion of the integrated hazard (given
    the same Exp(1) draws), their pathwise gradient against finite differences (same
    key); the log-likelihood of a recurrent network's sampled train against
    `reference_log_likelihood` (`quad`), and its gradient against finite
    differences."""
    controller = diffrax.PIDController(rtol=RTOL, atol=RTOL)
    steps = np.logspace(-3, -7, 9)

    # spike times of the sampled trains under constant drive, and their gradients
    model, t1 = constant_drive_model(), 0.3
    fields = ("neuron.bias", "neuron.tau_mem", "hazard.rho0", "hazard.delta")

    def sample(p, adjoint=None):
        m = _replace(model, fields, p)
        s = simulate(m, t1, max_spikes=64, stepsize_controller=controller, adjoint=adjoint)
        return _loss_of_times(s.spikes, t1), s

    params = tuple(jnp.asarray(x) for x in _values(model, fields))
    rep = check_grads(sample, params, steps=steps)
    sim = rep.aux
    draws = np.asarray(jax.vmap(model.draws)(jnp.broadcast_to(jnp.arange(64.0)[:, None], (64, 3))))
    lif, haz = model.neuron, model.hazard
    ref_times, ref_ids = [], []
    for i in range(3):
        ts = escape_spike_times(
            draws[:, i], t1, _scalar(lif.refractory_period, i), tau_mem=_scalar(lif.tau_mem, i),
            bias=_scalar(lif.bias, i), threshold=_scalar(lif.threshold, i),
            v_reset=_scalar(lif.v_reset, i), rho0=_scalar(haz.rho0, i), delta=_scalar(haz.delta, i),
        )  # fmt: skip
        ref_times.append(ts)
        ref_ids.append(np.full(len(ts), i))
    err = _spike_error(sim.spikes, (np.concatenate(ref_times), np.concatenate(ref_ids)))

    # the log-likelihood of a recurrent network's sampled train, and its gradient
    net, t1n, inputs, w_in, w_rec = network()
    sampled = simulate(net, t1n, inputs, w_in, w_rec=w_rec, max_spikes=32)
    observed = sampled.spikes
    lfields = ("neuron.tau_mem", "neuron.bias", "hazard.rho0", "hazard.delta")

    def likelihood(p):
        wi, wr, *values = p
        m = _replace(net, lfields, values)
        ll = log_likelihood(m, observed, t1n, inputs, wi, w_rec=wr, stepsize_controller=controller)
        return ll, observed

    lparams = (w_in, w_rec, *(jnp.asarray(x) for x in _values(net, lfields)))
    lrep = check_grads(likelihood, lparams, steps=steps)
    ref = reference_log_likelihood(
        net, observed.to_lists(), t1n, inputs.to_lists(), np.asarray(w_in), np.asarray(w_rec)
    )
    ll_err = abs(float(lrep.loss) - ref)
    res = _result(
        "EscapeNoise", "3 const. drive; 3->3 recurrent", (sim, sampled), err,
        "closed-form inversion of the integrated hazard (E1, brentq)", SPIKE_TIME_TOL, rep,
        f"Tsit5 + PID rtol = atol = {RTOL:g}; pathwise gradients (fixed key) of the spike "
        f"times w.r.t. {', '.join(fields)}: {rep.max_rel_error:.1e}; value err: the "
        f"log-likelihood of a sampled train ({int(observed.num_spikes)} spikes) vs quad; "
        f"its gradient w.r.t. w_in, w_rec, {', '.join(lfields)}: {lrep.max_rel_error:.1e}; "
        "adjoint err: EventPropAdjoint vs the pathwise gradient through the solver",
        (sample, params), EventPropAdjoint(stepsize_controller=controller),
    )  # fmt: skip
    likelihood_grad = float(lrep.max_rel_error) if lrep.passed or lrep.leaves else np.inf
    return dataclasses.replace(
        res, grad_error=max(res.grad_error, likelihood_grad), value_error=ll_err,
        value_tol=LIKELIHOOD_TOL,
    )  # fmt: skip

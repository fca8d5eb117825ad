"""`spikeode check` rows of the delta-synapse neurons (`DeltaLIF`, `DeltaIF`):
recurrent networks with zero delays, whose spikes come both from jumps (an input or
recurrent kick at or above threshold, a spike at that very time, cascades at one
instant) and from the flow, against the closed form event by event
(`_formulas.delta_population`)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._gradcheck import check_grads
from .._simulate import simulate
from .._spikes import SpikeTrain
from ..neurons import DeltaIF, DeltaLIF
from ._formulas import delta_population
from ._result import _loss_of_times, _random_inputs, _result, CheckResult


def _delta_check(leaky: bool, seed: int) -> CheckResult:
    """A recurrent network of 10 delta-synapse neurons with per-neuron parameters
    (some driven above threshold by their bias), 4 input trains and refractory
    periods: every spike (neuron and order, time) against the closed form, and the
    gradient of all spike times with respect to the weights, the input times and
    every parameter against finite differences."""
    rng = np.random.default_rng(seed)
    n, n_in, t1 = 10, 4, 0.08
    inputs = _random_inputs(rng, n_in, 4, 0.07)
    w_in = jnp.asarray(rng.normal(0.2, 0.4, (n_in, n)))
    w_rec = jnp.asarray(rng.normal(0.0, 0.2, (n, n)))
    common = dict(
        threshold=rng.uniform(0.9, 1.1, n),
        v_reset=rng.uniform(-0.2, 0.1, n),
        refractory_period=rng.uniform(0.5e-3, 2e-3, n),
    )
    if leaky:
        neuron = DeltaLIF(n, tau_mem=rng.uniform(0.01, 0.03, n), bias=rng.uniform(0.8, 2.5, n),
                          **common)  # fmt: skip
        fields = ("tau_mem", "threshold", "v_reset", "bias", "refractory_period")
    else:
        neuron = DeltaIF(n, bias=rng.uniform(10.0, 40.0, n), **common)
        fields = ("threshold", "v_reset", "bias", "refractory_period")
    get = lambda m: tuple(getattr(m, f) for f in fields)

    def fn(p, adjoint=None):
        wi, wr, in_t, values = p
        m = eqx.tree_at(get, neuron, values)
        inp = SpikeTrain(in_t, inputs.neurons, inputs.num_neurons)
        s = simulate(m, t1, inp, wi, w_rec=wr, max_spikes=400, adjoint=adjoint)
        return _loss_of_times(s.spikes, t1), s

    params = (w_in, w_rec, inputs.times, get(neuron))
    rep = check_grads(fn, params)
    sim = rep.aux  # (the unperturbed simulation: check_grads ran it, compiled)

    valid = np.asarray(inputs.valid)
    in_times = np.asarray(inputs.times)[valid]
    par = {f: np.asarray(getattr(neuron, f)) for f in fields}
    ref_t, ref_i = delta_population(
        leaky, par.get("tau_mem", 1.0), par["threshold"], par["v_reset"], par["bias"],
        par["refractory_period"], t1, in_times, np.asarray(inputs.neurons)[valid],
        np.asarray(w_in), np.asarray(w_rec),
    )  # fmt: skip
    k = int(sim.spikes.num_spikes)
    t, i = np.asarray(sim.spikes.times[:k]), np.asarray(sim.spikes.neurons[:k])
    # the same neurons in the same order (at one instant the order matters), and times
    same = k == len(ref_t) and np.array_equal(i, ref_i)
    err = float(np.max(np.abs(t - ref_t), initial=0.0)) if same else np.inf
    # spikes at a jump: at an input's time, or at the time of the previous spike
    at_jump = int(np.sum(np.isin(t, in_times) | np.r_[False, t[1:] == t[:-1]]))
    return _result(
        type(neuron).__name__, f"{n} recurrent, {n_in} inputs, no delays", sim, err,
        "closed form, event by event", 1e-12, rep,
        f"params: w_in, w_rec, input spike times, {', '.join(fields)}; {at_jump} of {k} "
        "spikes at a jump (input or recurrent kick), the others by the flow",
        (fn, params),
    )  # fmt: skip


def check_delta_lif() -> CheckResult:
    """`DeltaLIF` (NEST's `iaf_psc_delta`): see `_delta_check`."""
    return _delta_check(True, 24)


def check_delta_if() -> CheckResult:
    """`DeltaIF` (non-leaky): see `_delta_check`."""
    return _delta_check(False, 25)

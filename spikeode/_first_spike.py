"""First spike times in closed form, without the event loop (Mostafa 2017; Goeltz et
al. 2021), for models whose free response is a quadratic in one decaying exponential
(`AbstractFirstSpikeNeuron.exp_polynomial`)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._results import RESULTS
from ._simulation import Simulation
from ._spikes import SpikeTrain
from ._typing import RealScalarLike
from .neurons import AbstractFirstSpikeNeuron, AbstractNeuron
from .neurons._base import require_capability


def _decayed_sums(decay, increment):
    """`c[k] = c[k-1] * decay[k] + increment[k]` along axis 0 (with `c[-1] = 0`).

    A sequential `lax.scan`: its reverse pass measured 1.2-1.6x faster than that of
    `lax.associative_scan` (Yin-Yang and digits layers)."""

    def step(c, decay_increment):
        d, inc = decay_increment
        c = c * d + inc
        return c, c

    return jax.lax.scan(step, jnp.zeros_like(increment[0]), (decay, increment))[1]


def _largest_root_in(c2, c1, c0, x_low):
    """The largest root of `c2 x^2 + c1 x + c0` in `[x_low, 1]` and whether there is
    one. A double root (a touch of the threshold, not a crossing) does not count."""
    disc = c1 * c1 - 4 * c2 * c0
    real = disc > 0
    # q = -(c1 + sign(c1) sqrt(disc))/2; the roots are q/c2 and c0/q (stable for any
    # c2, and c0/q is the linear equation's root when c2 = 0)
    sqrt = jnp.sqrt(jnp.where(real, disc, 1.0))
    q = -0.5 * (c1 + jnp.where(c1 < 0, -sqrt, sqrt))
    linear = (c2 == 0) & (c1 != 0)
    q_ok = (real | linear) & (q != 0)
    safe_q = jnp.where(q_ok, q, 1.0)
    r1 = jnp.where(q_ok & (c2 != 0), safe_q / jnp.where(c2 != 0, c2, 1.0), -jnp.inf)
    r2 = jnp.where(q_ok, c0 / safe_q, -jnp.inf)
    inside = lambda r: (r >= x_low) & (r <= 1)
    root = jnp.maximum(jnp.where(inside(r1), r1, -jnp.inf), jnp.where(inside(r2), r2, -jnp.inf))
    return root, root > -jnp.inf


def first_spikes(
    # (an AbstractFirstSpikeNeuron: `require_capability` checks it, with an error that
    # says what a model without the capability lacks)
    neuron: AbstractNeuron,
    t1: RealScalarLike,
    inputs: SpikeTrain,
    w_in: Float[Array, "inputs neurons"],
    *,
    t0: RealScalarLike = 0.0,
) -> Simulation:
    """The first spike of each neuron of a feed-forward population, in closed form.

    Each neuron starts at rest at `t0` and fires at most once: the result is that of
    [`spikeode.simulate`][] for the same model with a refractory period longer than
    the trial (the model's own `refractory_period` is not used). Between two input
    spikes the model's voltage is a quadratic `c0 + c1 x + c2 x^2` in
    `x = e^{-t/tau}` ([`spikeode.AbstractFirstSpikeNeuron.exp_polynomial`][]): for
    [`spikeode.LIF`][] with `tau_mem = 2 tau_syn` (Goeltz et al. 2021) and
    [`spikeode.NonLeakyIF`][] without bias (Mostafa 2017, where the quadratic is
    linear). The coefficients after every input come from one scan over the inputs,
    the first crossing in each interval between inputs from the quadratic's roots,
    and the first spike is the earliest of those: no event loop and no root finder,
    all intervals at once. Spike times are exact to round-off and differentiable
    (with respect to weights, input times and the model's parameters) by ordinary
    automatic differentiation, as a function on the closed form's domain: for the
    LIF only `tau_mem` enters (`tau_syn` follows it as `tau_mem / 2`, so the
    derivative with respect to `tau_mem` is the one along that tie and `tau_syn`'s
    is zero); NonLeakyIF's bias stays zero (its derivative is zero too, though the
    event loop's is not).

    **Arguments:**

    - `neuron`: the population's model, an [`spikeode.AbstractFirstSpikeNeuron`][]
      (else a `TypeError`).
    - `t1`: end time.
    - `inputs`: an unbatched input train (sorted, none before `t0`; any number of
      spikes per input neuron). Spikes at or after `t1` have no effect.
    - `w_in`: input weights, shape `(inputs.num_neurons, neuron.num_neurons)`.
    - `t0`: start time.

    Computed in the dtype of `w_in` and the input times (promoted); the model's
    parameters are cast to it.

    **Returns:** a [`spikeode.Simulation`][] whose `spikes` hold each neuron's first
    spike (capacity `num_neurons`, sorted by time), `slopes` the voltage's rate of
    change at each crossing, `y_final` the state at `t1` (the voltage held at
    `v_reset` after a spike, the synaptic current free), `overflow` false and
    `num_segments` the number of intervals between inputs (inputs before `t1`, plus
    one).
    """
    require_capability(neuron, AbstractFirstSpikeNeuron)
    n = neuron.num_neurons
    if w_in.shape != (inputs.num_neurons, n):
        raise ValueError(
            f"first_spikes: w_in has shape {w_in.shape}, expected "
            f"({inputs.num_neurons}, {n}) (input neurons, neurons)."
        )
    if inputs.times.ndim != 1:
        raise ValueError(
            "first_spikes: expected an unbatched input train (times of shape "
            f"(capacity,)), got times of shape {inputs.times.shape}; use jax.vmap."
        )
    # one dtype throughout: that of the weights and input times (the model's
    # parameters are cast to it)
    dtype = jnp.result_type(w_in, inputs.times)
    cast = lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x
    neuron = jax.tree_util.tree_map(cast, neuron).check()
    form = neuron.exp_polynomial()
    w_in = w_in.astype(dtype)
    t0 = jnp.asarray(t0, dtype)
    t1 = jnp.asarray(t1, dtype)
    t1 = eqx.error_if(t1, ~(t1 > t0), "first_spikes: t1 must be later than t0.")
    inputs = inputs.validate(t0=t0)

    tau = jnp.broadcast_to(jnp.asarray(form.tau, dtype), (n,))
    kernel = lambda k: jnp.broadcast_to(jnp.reshape(jnp.asarray(k, dtype), (3, -1)), (3, n))
    g, h = kernel(form.input_kernel), kernel(form.bias_kernel)
    theta = jnp.broadcast_to(jnp.asarray(neuron.threshold, dtype), (n,))

    # events: the start (which brings the drive) and every input spike; spikes at or
    # after t1 (and padding) move to t1 with no weight, which keeps times sorted
    late = ~(inputs.times < t1)
    times = jnp.concatenate([t0[None], jnp.where(late, t1, inputs.times)])
    w = jnp.concatenate([w_in, jnp.zeros((1, n), dtype)])[inputs.neurons]
    w = jnp.where(late[:, None], 0.0, w)
    increment = jnp.concatenate(
        [h[:, None, :], g[:, None, :] * w[None, :, :]], axis=1
    )  # (channel, event, neuron)

    # c_j just after event k: decayed by e^{-j (t_k - t_{k-1})/tau} from event k-1
    gap = jnp.diff(times, prepend=t0)[:, None]  # (event, 1)
    x_gap = jnp.exp(-gap / tau[None, :])  # (event, neuron)
    decay = jnp.stack([jnp.ones_like(x_gap), x_gap, x_gap * x_gap])
    c = _decayed_sums(jnp.moveaxis(decay, 1, 0), jnp.moveaxis(increment, 1, 0))
    c0, c1, c2 = c[:, 0], c[:, 1], c[:, 2]  # (event, neuron)

    # on [t_k, t_{k+1}] (t_{K+1} = t1), x = e^{-(t - t_k)/tau} runs from 1 to x_end
    ends = jnp.concatenate([times[1:], t1[None]])
    x_end = jnp.exp(-(ends - times)[:, None] / tau[None, :])
    root, found = _largest_root_in(c2, c1, c0 - theta[None, :], x_end)
    # a voltage at or above threshold at the start of an interval (reached exactly
    # at the end of the previous one) fires there
    at_start = c0 + c1 + c2 >= theta[None, :]
    x = jnp.where(at_start, 1.0, jnp.where(found, root, 1.0))
    t_cross = jnp.where(at_start | found, times[:, None] - tau[None, :] * jnp.log(x), jnp.inf)
    first = jnp.argmin(t_cross, axis=0)  # (neuron,)
    pick = lambda a: jnp.take_along_axis(a, first[None, :], axis=0)[0]
    t_spike = pick(t_cross)
    fired = jnp.isfinite(t_spike)
    x_spike = pick(x)
    slope = -(pick(c1) + 2 * pick(c2) * x_spike) * x_spike / tau
    slope = jnp.where(fired, slope, jnp.inf)

    # the state at t1: the channels decayed over the last interval, voltage reset
    # (and held) where the neuron fired
    x1 = x_end[-1]
    channels = jnp.stack([c0[-1], c1[-1] * x1, c2[-1] * x1 * x1])  # (3, neuron)
    y_free = (jnp.asarray(form.state_map, dtype) @ channels).T  # (neuron, state)
    y_final = neuron.reset(y_free, fired)

    order = jnp.argsort(t_spike, stable=True)
    spikes = SpikeTrain(
        t_spike[order], jnp.where(fired[order], order, n).astype(jnp.int32), n
    )
    return Simulation(
        spikes=spikes,
        t0=t0,
        t1=t1,
        ts=None,
        ys=None,
        y_final=y_final,
        slopes=slope[order],
        result=RESULTS.successful,
        num_segments=1 + jnp.sum(~late).astype(jnp.int32),
    )


"""Surrogate-gradient baseline: time-stepped LIF networks trained by backpropagation
through time with a surrogate derivative in place of the Heaviside's (Zenke & Vogels,
"The remarkable robustness of surrogate gradient learning", Neural Computation 2021).

This is the baseline that spikeode's exact gradients are compared with; it shares no
code with the event loop. The neuron is the one of [`spikeode.LIF`][] (current-based,
exponential synapse),

$$\\tau_m \\dot v = -v + I + b,\\qquad \\tau_s \\dot I = -I,\\qquad
I \\mathrel{+}= w \\text{ at an input spike},$$

spike when `v >= threshold`, then `v = v_reset`, but simulated on a time grid
`t_k = t0 + k dt`. One step `k` (a `jax.lax.scan` iteration):

1. spike check at `t_k`: `s_k = H(v_k - threshold)`; forward the Heaviside step,
   backward the chosen surrogate derivative (`superspike`, `sigmoid`, `esser`, scale
   `beta`, see [`spikeode.baselines.surrogate.surrogate_derivative`][]);
2. reset: `v_k <- v_k (1 - s_k) + v_reset s_k`; with `detach_reset=True` (the
   default, as Zenke & Vogels) no gradient flows through `s_k` in the reset, with
   `False` it does;
3. inputs at `t_k`: `I_k <- I_k + W^T x_k`, where `x_k` counts the input spikes of
   `[t_k, t_k + dt)` (input spikes arrive up to `dt` early) and, in deeper layers, the
   previous layer's spikes `s_k` at `t_k`;
4. propagate to `t_{k+1}`: `integrator="exact"` uses the exact solution of the linear
   ODE over `dt` (exponential Euler; the only discretisation error is the time grid),
   `integrator="euler"` one forward-Euler step.

With input spikes on the grid, the grid model's voltage at the grid times is the exact
model's up to the first spike, which is reported at the first grid time at or after
the exact one (late by less than `dt`); every later spike can add up to `dt` (its reset
comes late). Input spikes off the grid arrive up to `dt` early. The readout layer
is non-spiking (the same membrane dynamics without threshold); its membrane trace is
reduced over time by `max` (Zenke & Vogels' Randman readout) or `sum`.

Public API: [`spikeode.baselines.surrogate.surrogate_derivative`][],
[`spikeode.baselines.surrogate.spike`][], [`spikeode.baselines.surrogate.bin_spikes`][],
[`spikeode.baselines.surrogate.TimeSteppedLIF`][],
[`spikeode.baselines.surrogate.SurrogateNetwork`][],
[`spikeode.baselines.surrogate.surrogate_loss`][].
"""

from __future__ import annotations

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from .._spikes import SpikeTrain
from .._typing import RealScalarLike
from ..losses import activity_regulariser

SURROGATES = ("superspike", "sigmoid", "esser")
"""The surrogate derivatives that [`spikeode.baselines.surrogate.spike`][] and
[`spikeode.baselines.surrogate.SurrogateNetwork`][] accept (see
[`spikeode.baselines.surrogate.surrogate_derivative`][])."""
INTEGRATORS = ("exact", "euler")
READOUTS = ("max", "sum")

__all__ = [
    "SURROGATES",
    "bin_spikes",
    "spike",
    "surrogate_derivative",
    "surrogate_loss",
    "SurrogateNetwork",
    "TimeSteppedLIF",
]


def _check_choice(fn: str, arg: str, value, choices) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{fn}: `{arg}` must be one of {list(choices)}, got {value!r}.")


def _check_positive_number(fn: str, arg: str, value) -> float | Array:
    """`value` as a Python float, after checking that it is positive and finite; a
    traced value (inside `jit`) is returned as it is, unchecked."""
    if isinstance(value, jax.core.Tracer):
        return value
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: `{arg}` must be a positive number, got {value!r}.") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{fn}: `{arg}` must be a positive finite number, got {value!r}.")
    return v


# ----------------------------------------------------------------------- surrogates
def surrogate_derivative(
    x: Float[ArrayLike, "*shape"], beta: ArrayLike, surrogate: str = "superspike"
) -> Float[Array, "*shape"]:
    """The surrogate derivative of the spike nonlinearity `H(x)` at `x = v - threshold`.

    As in Zenke & Vogels (2021), none of them is multiplied by `beta`:

    - `"superspike"`: `1 / (beta |x| + 1)^2` (peak 1);
    - `"sigmoid"`: `sigma(beta x) (1 - sigma(beta x))`, the derivative of the logistic
      function `sigma` at `beta x` (peak 1/4);
    - `"esser"`: `max(0, 1 - beta |x|)` (peak 1, Esser et al. 2016).

    **Arguments:**

    - `x`: distance of the membrane potential from threshold.
    - `beta`: the scale (steepness) of the surrogate, > 0.
    - `surrogate`: `"superspike"`, `"sigmoid"` or `"esser"`.

    **Returns:** an array of the shape of `x`.
    """
    _check_choice("surrogate_derivative", "surrogate", surrogate, SURROGATES)
    _check_positive_number("surrogate_derivative", "beta", beta)
    x = jnp.asarray(x)
    if surrogate == "superspike":
        return 1.0 / (beta * jnp.abs(x) + 1.0) ** 2
    if surrogate == "sigmoid":
        s = jax.nn.sigmoid(beta * x)
        return s * (1.0 - s)
    return jnp.maximum(0.0, 1.0 - beta * jnp.abs(x))


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _spike(x, beta, surrogate):
    return (x >= 0).astype(x.dtype)


@_spike.defjvp
def _spike_jvp(surrogate, primals, tangents):
    x, beta = primals
    t_x, _ = tangents  # no derivative with respect to beta
    out = _spike(x, beta, surrogate)
    return out, surrogate_derivative(x, jax.lax.stop_gradient(beta), surrogate) * t_x


def spike(
    x: Float[ArrayLike, "*shape"], beta: ArrayLike, surrogate: str = "superspike"
) -> Float[Array, "*shape"]:
    """The spike nonlinearity with a surrogate gradient: forward the Heaviside step
    `H(x) = 1 if x >= 0 else 0`, derivative (forward and reverse mode, through a
    `jax.custom_jvp`) [`spikeode.baselines.surrogate.surrogate_derivative`][]`(x, beta,
    surrogate)`. No derivative flows to `beta`.

    **Arguments:**

    - `x`: `v - threshold` (floating).
    - `beta`: scale of the surrogate (> 0).
    - `surrogate`: `"superspike"`, `"sigmoid"` or `"esser"`.

    **Returns:** 0/1 spikes of the shape and dtype of `x`.
    """
    _check_choice("spike", "surrogate", surrogate, SURROGATES)
    _check_positive_number("spike", "beta", beta)
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"spike: `x` must be a floating array, got dtype {x.dtype}.")
    return _spike(x, jnp.asarray(beta, x.dtype), surrogate)


# --------------------------------------------------------------------- input binning
def bin_spikes(
    train: SpikeTrain,
    dt: RealScalarLike,
    num_steps: int,
    t0: RealScalarLike = 0.0,
    dtype=None,
) -> Float[Array, "*batch num_steps num_neurons"]:
    """Bin a (batched) [`spikeode.SpikeTrain`][] onto the time grid
    `t_k = t0 + k dt`, `k = 0, ..., num_steps - 1`.

    A spike at time `t` falls into bin `k = floor((t - t0) / dt)`, i.e. the interval
    `[t_k, t_k + dt)` (a time within `1e-4 dt` of a grid point, as from round-off in
    `t0 + k dt`, counts as that grid point); the result counts the spikes of each
    neuron in each bin. Every
    spike must lie on the grid, `t0 <= t < t0 + num_steps * dt` (computed as the bin
    index): spikes outside raise a `ValueError` (eagerly for concrete arrays, through
    `equinox.error_if` inside `jit`), as do NaN times. Padding slots are ignored.

    **Arguments:**

    - `train`: the input spikes (any leading batch axes).
    - `dt`: the time step (> 0).
    - `num_steps`: number of grid points (positive int).
    - `t0`: the first grid time.
    - `dtype`: floating dtype of the result (default: that of `train.times`).

    **Returns:** spike counts of shape `(*batch, num_steps, num_neurons)`.
    """
    name = "bin_spikes"
    if not isinstance(train, SpikeTrain):
        raise ValueError(
            f"{name}: `train` must be a spikeode.SpikeTrain, got {type(train).__name__}."
        )
    dt = _check_positive_number(name, "dt", dt)
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
        raise ValueError(f"{name}: `num_steps` must be a positive int, got {num_steps!r}.")
    num_steps = int(num_steps)
    dtype = train.times.dtype if dtype is None else dtype
    valid = train.valid
    times = jnp.where(valid, train.times, t0)
    q = (times - t0) / dt
    # a time within 1e-4 dt of a grid point (round-off of times computed as k dt)
    # belongs to that grid point
    k = jnp.where(jnp.abs(q - jnp.round(q)) <= 1e-4, jnp.round(q), jnp.floor(q))
    outside = valid & ((k < 0) | (k >= num_steps) | jnp.isnan(train.times))
    message = (
        f"{name}: `train` has spikes outside the time grid [t0, t0 + num_steps * dt) = "
        f"[{t0}, {t0} + {num_steps} * {dt}); expected every spike time on the grid."
    )
    if isinstance(train.times, jax.core.Tracer) or isinstance(t0, jax.core.Tracer):
        k = eqx.error_if(k, jnp.any(outside), message)
    elif bool(np.any(np.asarray(outside))):
        bad = np.asarray(train.times)[np.asarray(outside)]
        raise ValueError(message + f" Offending times: {bad[:5].tolist()}")
    return train._bin_counts(jnp.where(valid, k, num_steps), num_steps, dtype)


# ----------------------------------------------------------------------------- model
class TimeSteppedLIF(eqx.Module):
    """The constants of the time-stepped current-based LIF neuron (the model of
    [`spikeode.LIF`][]) and its time step. Nothing here is trained.

    **Arguments:**

    - `tau_mem`, `tau_syn`: membrane and synaptic time constants (> 0).
    - `threshold`: firing threshold.
    - `v_reset`: reset potential (below `threshold`).
    - `bias`: constant input current `b`.
    - `dt`: the time step (> 0).
    - `integrator`: `"exact"` (exact solution over one step of the linear ODE,
      exponential Euler) or `"euler"` (forward Euler).
    """

    tau_mem: float = eqx.field(static=True)
    tau_syn: float = eqx.field(static=True)
    threshold: float = eqx.field(static=True)
    v_reset: float = eqx.field(static=True)
    bias: float = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    integrator: str = eqx.field(static=True)

    def __init__(
        self,
        tau_mem: float | int = 20e-3,
        tau_syn: float | int = 5e-3,
        threshold: float | int = 1.0,
        v_reset: float | int = 0.0,
        bias: float | int = 0.0,
        dt: float | int = 1e-3,
        integrator: str = "exact",
    ):
        name = "TimeSteppedLIF"
        self.tau_mem = _check_positive_number(name, "tau_mem", tau_mem)
        self.tau_syn = _check_positive_number(name, "tau_syn", tau_syn)
        self.dt = _check_positive_number(name, "dt", dt)
        for arg, value in (("threshold", threshold), ("v_reset", v_reset), ("bias", bias)):
            if not (isinstance(value, (int, float, np.floating)) and math.isfinite(value)):
                raise ValueError(f"{name}: `{arg}` must be a finite number, got {value!r}.")
        if not v_reset < threshold:
            raise ValueError(
                f"{name}: `v_reset` must lie below `threshold`, got v_reset={v_reset!r}, "
                f"threshold={threshold!r}."
            )
        self.threshold, self.v_reset, self.bias = float(threshold), float(v_reset), float(bias)
        _check_choice(name, "integrator", integrator, INTEGRATORS)
        self.integrator = integrator

    def coefficients(self) -> tuple[float, float, float, float]:
        """`(a_vv, a_vi, a_vb, a_ii)` of one step: `v' = a_vv v + a_vi I + a_vb b`,
        `I' = a_ii I`."""
        dt, tm, ts = self.dt, self.tau_mem, self.tau_syn
        if self.integrator == "euler":
            return 1 - dt / tm, dt / tm, dt / tm, 1 - dt / ts
        em, es = math.exp(-dt / tm), math.exp(-dt / ts)
        # v driven by I0 exp(-t/ts): I0 ts/(ts - tm) (exp(-t/ts) - exp(-t/tm))
        if abs(ts - tm) <= 1e-12 * tm:
            a_vi = dt / tm * em
        else:
            a_vi = ts / (ts - tm) * (es - em)
        return em, a_vi, 1 - em, es

    def step(
        self, v: Float[Array, "*n"], i: Float[Array, "*n"]
    ) -> tuple[Float[Array, "*n"], Float[Array, "*n"]]:
        """Propagate `(v, I)` over one time step (no spikes, no inputs)."""
        a_vv, a_vi, a_vb, a_ii = self.coefficients()
        return a_vv * v + a_vi * i + a_vb * self.bias, a_ii * i


class SurrogateNetwork(eqx.Module):
    """A feed-forward network of time-stepped LIF layers with a non-spiking readout,
    trained through [`spikeode.baselines.surrogate.spike`][] (BPTT with a surrogate).

    `weights[l]` has shape `(inputs of layer l, neurons of layer l)`; the last entry is
    the readout layer. Only `weights` are arrays (trainable); everything else is static.

    **Arguments:**

    - `sizes`: `(num_inputs, hidden_1, ..., num_outputs)`, at least two entries.
    - `neuron`: a [`spikeode.baselines.surrogate.TimeSteppedLIF`][] (all layers; the
      readout ignores its threshold).
    - `surrogate`: `"superspike"`, `"sigmoid"` or `"esser"`.
    - `beta`: scale of the surrogate (> 0).
    - `detach_reset`: `True`: no gradient through the reset (Zenke & Vogels);
      `False`: the reset is differentiated through the surrogate as well.
    - `readout`: `"max"` (maximum over time of each output membrane potential, Zenke &
      Vogels' choice for Randman) or `"sum"` (sum over the time steps).
    - `w_init`: one `(mean, std)` per layer for normal initial weights; default
      `(0, 1 / sqrt(inputs))` everywhere.
    - `dtype`: floating dtype of the weights (default: JAX's default float).
    - `key`: a JAX PRNG key.
    """

    weights: tuple[Float[Array, "inputs neurons"], ...]
    neuron: TimeSteppedLIF
    surrogate: str = eqx.field(static=True)
    beta: float = eqx.field(static=True)
    detach_reset: bool = eqx.field(static=True)
    readout: str = eqx.field(static=True)

    def __init__(
        self,
        sizes,
        *,
        neuron: TimeSteppedLIF | None = None,
        surrogate: str = "superspike",
        beta: float | int = 100.0,
        detach_reset: bool = True,
        readout: str = "max",
        w_init=None,
        dtype=None,
        key: PRNGKeyArray,
    ):
        name = "SurrogateNetwork"
        sizes = tuple(sizes)
        if len(sizes) < 2 or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in sizes
        ):
            raise ValueError(
                f"{name}: `sizes` must be at least two positive ints (inputs, ..., outputs), "
                f"got {sizes!r}."
            )
        _check_choice(name, "surrogate", surrogate, SURROGATES)
        _check_choice(name, "readout", readout, READOUTS)
        self.beta = _check_positive_number(name, "beta", beta)
        if not isinstance(detach_reset, bool):
            raise ValueError(f"{name}: `detach_reset` must be a bool, got {detach_reset!r}.")
        neuron = TimeSteppedLIF() if neuron is None else neuron
        if not isinstance(neuron, TimeSteppedLIF):
            raise ValueError(
                f"{name}: `neuron` must be a TimeSteppedLIF, got {type(neuron).__name__}."
            )
        num_layers = len(sizes) - 1
        if w_init is None:
            w_init = [(0.0, 1.0 / math.sqrt(n)) for n in sizes[:-1]]
        w_init = list(w_init)
        if len(w_init) != num_layers:
            raise ValueError(
                f"{name}: `w_init` needs one (mean, std) per layer ({num_layers}), got "
                f"{len(w_init)}."
            )
        dtype = jnp.result_type(float) if dtype is None else dtype
        keys = jax.random.split(key, num_layers)
        self.weights = tuple(
            mean + std * jax.random.normal(k, (n_in, n_out), dtype)
            for k, n_in, n_out, (mean, std) in zip(keys, sizes[:-1], sizes[1:], w_init)
        )
        self.neuron = neuron
        self.surrogate = surrogate
        self.detach_reset = detach_reset
        self.readout = readout

    @property
    def sizes(self) -> tuple[int, ...]:
        """Layer sizes, inputs first: `(num_inputs, hidden..., num_outputs)`."""
        return (self.weights[0].shape[0],) + tuple(w.shape[1] for w in self.weights)

    def _spiking_layer(self, w, x):
        nrn = self.neuron

        def body(carry, x_k):
            v, i = carry
            s = spike(v - nrn.threshold, self.beta, self.surrogate)
            s_reset = jax.lax.stop_gradient(s) if self.detach_reset else s
            v = v * (1 - s_reset) + nrn.v_reset * s_reset
            i = i + x_k @ w
            v, i = nrn.step(v, i)
            return (v, i), s

        zeros = jnp.zeros(w.shape[1], w.dtype)
        _, spikes = jax.lax.scan(body, (zeros, zeros), x)
        return spikes

    def _readout_layer(self, w, x):
        nrn = self.neuron

        def body(carry, x_k):
            v, i = carry
            i = i + x_k @ w
            v, i = nrn.step(v, i)
            return (v, i), v  # the membrane at t_{k+1}

        zeros = jnp.zeros(w.shape[1], w.dtype)
        _, vs = jax.lax.scan(body, (zeros, zeros), x)
        return vs

    def __call__(
        self, x: Float[Array, "steps inputs"]
    ) -> tuple[
        Float[Array, " outputs"],
        tuple[Float[Array, "steps neurons"], ...],
        Float[Array, "steps outputs"],
    ]:
        """Run the network on one binned input (see
        [`spikeode.baselines.surrogate.bin_spikes`][]; use `jax.vmap` for batches).

        **Arguments:**

        - `x`: input spike counts per time step, shape `(steps, inputs)`.

        **Returns:** `(logits, hidden_spikes, v_out)`: the readout per output neuron
        (max or sum over time of its membrane potential), the 0/1 spikes of every
        hidden layer `(steps, neurons)` (spike at grid time `t_k` in row `k`), and the
        readout membrane trace `(steps, outputs)` (row `k` at `t_{k+1}`).
        """
        if x.ndim != 2 or x.shape[1] != self.weights[0].shape[0]:
            raise ValueError(
                f"SurrogateNetwork: `x` must have shape (steps, {self.weights[0].shape[0]}), "
                f"got {x.shape}; batch with jax.vmap."
            )
        x = x.astype(self.weights[0].dtype)
        hidden = []
        for w in self.weights[:-1]:
            x = self._spiking_layer(w, x)
            hidden.append(x)
        v_out = self._readout_layer(self.weights[-1], x)
        logits = jnp.max(v_out, axis=0) if self.readout == "max" else jnp.sum(v_out, axis=0)
        return logits, tuple(hidden), v_out


def surrogate_loss(
    net: SurrogateNetwork,
    x: Float[Array, "batch steps inputs"],
    labels: Int[ArrayLike, "..."],  # (batch,): checked below
    *,
    lower: RealScalarLike = 0.0,
    lower_weight: RealScalarLike = 0.0,
    upper: RealScalarLike = float("inf"),
    upper_weight: RealScalarLike = 0.0,
) -> tuple[Float[Array, ""], dict]:
    """Mean cross-entropy of `softmax(logits)` over a batch plus Zenke & Vogels'
    activity regularisers on every hidden layer (through
    [`spikeode.losses.activity_regulariser`][]).

    For each hidden layer, `zeta_i` is neuron `i`'s spike count per sample averaged
    over the batch; the per-neuron lower bound adds
    `lower_weight * mean_i max(0, lower - zeta_i)^2` (revives neurons silent for the
    whole batch), the population upper bound `upper_weight * max(0, mean_i zeta_i -
    upper)`. Spike counts are differentiated through the surrogate.

    **Arguments:**

    - `net`: the network.
    - `x`: binned inputs `(batch, steps, inputs)`.
    - `labels`: integer class labels `(batch,)`.
    - `lower`, `lower_weight`, `upper`, `upper_weight`: the regularisers' bounds and
      weights (default: off).

    **Returns:** `(loss, stats)` with `stats` a dict of `accuracy` (argmax of the
    logits), `cross_entropy`, `regulariser` and `hidden_spikes` (mean number of
    spikes per sample, all hidden layers together).
    """
    if x.ndim != 3:
        raise ValueError(
            f"surrogate_loss: `x` must have shape (batch, steps, inputs), got {x.shape}."
        )
    labels = jnp.asarray(labels)
    if labels.shape != x.shape[:1] or not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(
            f"surrogate_loss: `labels` must be integers of shape ({x.shape[0]},), got "
            f"{labels.dtype} {labels.shape}."
        )
    logits, hidden, _ = jax.vmap(net)(x)
    logp = jax.nn.log_softmax(logits, axis=-1)
    ce = -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))
    reg = jnp.zeros((), logits.dtype)
    spikes = jnp.zeros((), logits.dtype)
    for s in hidden:
        counts = jnp.sum(s, axis=1)  # (batch, neurons)
        reg = reg + activity_regulariser(
            jnp.mean(counts, axis=0), lower=lower, lower_weight=lower_weight,
            upper=upper, upper_weight=upper_weight,
        )
        spikes = spikes + jnp.mean(jnp.sum(counts, axis=1))
    preds = jnp.argmax(logits, axis=-1)
    acc = jnp.mean(preds == jnp.asarray(labels).astype(preds.dtype))
    stats = dict(accuracy=acc, cross_entropy=ce, regulariser=reg, hidden_spikes=spikes)
    return ce + reg, stats

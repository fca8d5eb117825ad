"""[`spikeode.log_likelihood`][]: the exact log-likelihood of an observed spike train
under an [`spikeode.EscapeNoise`][] model, computed by `simulate` on the model with
its spikes clamped to the observed times (`_Clamped`)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Scalar

from ._loops import CoupledLoop
from ._simulate import simulate
from ._spikes import SpikeTrain
from ._typing import RealScalarLike
from .neurons import AbstractNeuron
from .neurons._escape import EscapeNoise


class _Clamped(AbstractNeuron):
    """The escape-noise model with its spikes clamped to observed times: neuron `i`
    fires exactly at its observed spike times (the condition `t - T_i`, `T_i` its next
    observed spike), with the wrapped model's reset, refractory period and the loop's
    recurrent kicks, so the network is driven by the recorded spikes. State: the
    wrapped model's columns, then the integrated hazard over the trial `Lambda`, the
    sum of `log rho` at the spikes so far, the number of spikes so far `k` and `T`.

    `times[i, k]`: neuron `i`'s `k`-th observed spike (one extra column), every slot
    without a spike in the trial at `beyond`, a time after `t1`."""

    escape: EscapeNoise
    times: Float[Array, "neurons slots"]

    @property
    def num_neurons(self) -> int:
        return self.escape.num_neurons

    @property
    def refractory_period(self) -> Float[Array, "..."]:
        return self.escape.refractory_period

    @property
    def receives_while_refractory(self) -> bool:
        return self.escape.receives_while_refractory

    @property
    def state_size(self) -> int:
        return self.escape.neuron.state_size + 4

    def init_state(self):
        # (not used: `log_likelihood` builds the initial state from the wrapped one)
        inner = self.escape.neuron.init_state()
        return self.initial(inner)

    def initial(self, inner: Float[Array, "neurons inner"]) -> Float[Array, "neurons state"]:
        """The initial state from the wrapped model's."""
        zero = jnp.zeros((self.num_neurons,), inner.dtype)
        rest = jnp.stack([zero, zero, zero, self.times[:, 0].astype(inner.dtype)], 1)
        return jnp.concatenate([inner, rest], 1)

    def vector_field(self, t, y, refractory):
        m = self.escape.neuron.state_size
        d_inner = self.escape.neuron.vector_field(t, y[:, :m], refractory)
        zero = jnp.zeros_like(y[:, m])
        rest = jnp.stack([self.escape.rate(t, y[:, :m], refractory), zero, zero, zero], 1)
        return jnp.concatenate([d_inner, rest], 1)

    def condition(self, t, y):
        return t - y[:, -1]

    def reset(self, y, fired):
        m = self.escape.neuron.state_size
        # the spike time: the fired neuron's observed time, at which the loop stopped
        t = jnp.max(jnp.where(fired, y[:, -1], -jnp.inf))
        log_rho = self.escape.hazard.log_rate(self.escape.neuron.condition(t, y[:, :m]))
        log_sum = y[:, m + 1] + jnp.where(fired, log_rho, jnp.zeros((), y.dtype))
        count = y[:, m + 2] + fired.astype(y.dtype)
        slot = jnp.minimum(count.astype(jnp.int32), self.times.shape[1] - 1)
        nxt = jnp.take_along_axis(self.times, slot[:, None], 1)[:, 0].astype(y.dtype)
        rest = jnp.stack([y[:, m], log_sum, count, jnp.where(fired, nxt, y[:, -1])], 1)
        return jnp.concatenate([self.escape.neuron.reset(y[:, :m], fired), rest], 1)

    def receive(self, y, weights):
        m = self.escape.neuron.state_size
        return jnp.concatenate([self.escape.neuron.receive(y[:, :m], weights), y[:, m:]], 1)

    def check(self):
        return eqx.tree_at(lambda c: c.escape, self, self.escape.check())


def log_likelihood(
    # (any model, so that the check below names what is needed)
    model: AbstractNeuron,
    spikes: SpikeTrain,
    t1: RealScalarLike,
    inputs: SpikeTrain | None = None,
    w_in: Float[ArrayLike, "..."] | None = None,
    *,
    t0: RealScalarLike = 0.0,
    y0: Float[ArrayLike, "..."] | None = None,
    **options,
) -> Scalar:
    r"""The exact log-likelihood of the spike train `spikes` of `model`'s neurons
    over `[t0, t1)`, given the inputs:

    $$\log L = \sum_k \log \rho_{i_k}\bigl(u_{i_k}(t_k^-)\bigr)
      - \sum_i \int_{t_0}^{t_1} \rho_i\bigl(u_i(t)\bigr)\,dt,$$

    with the hazard `rho` of `model` ([`spikeode.EscapeNoise`][]) and `u` its wrapped
    model's condition (e.g. `v - threshold`), zero during refractory periods.
    Conditioned on the observed spikes: each neuron is reset at its observed spike
    times (and is refractory after them), and the network is driven by the recorded
    spikes, the inputs through `w_in` and the observed spikes of the population
    through `w_rec` (with `delays` if given). `model.key` is not used.

    Computed by [`spikeode.simulate`][] of the model with its spikes clamped to the
    observed times (a condition `t - T` on the next observed spike `T`, so the same
    loop, jumps and solver; the integral of the hazard is a state variable, integrated
    to the solver's tolerance: `diffrax.Tsit5` with `PIDController(rtol=1e-10,
    atol=1e-10)` by default). Differentiable (forward and reverse mode) in the
    parameters of the hazard and the wrapped model, the weights, the delays and the
    input times; the observed spike times are data.

    **Arguments:**

    - `model`: an [`spikeode.EscapeNoise`][] model.
    - `spikes`: the observed spikes, a [`spikeode.SpikeTrain`][] of
      `model.num_neurons` neurons (unbatched; `jax.vmap` over trains); spikes at or
      after `t1` are ignored.
    - `t1`: end of the trial.
    - `inputs`, `w_in`: input spikes and weights, as in [`spikeode.simulate`][].
    - `t0`: start of the trial (no observed spike before it).
    - `y0`: the wrapped model's initial state (default its `init_state()`).
    - `**options`: other keyword arguments of [`spikeode.simulate`][]: `w_rec`,
      `delays`, `input_delays`, `solver`, `stepsize_controller`, `adjoint`,
      `max_steps`, ... (not `max_spikes`: the capacity of `spikes`); `loop` defaults
      to [`spikeode.CoupledLoop`][] (the clamped model's table of observed times is
      not a per-neuron parameter the lane loops can split).

    **Returns:** the log-likelihood, a scalar; `-inf` if a neuron's observed spikes
    are closer than its refractory period.

    **Raises:** `TypeError` if `model` is not an `EscapeNoise`; `ValueError` if
    `spikes` has the wrong number of neurons or is batched, for a `y0` of the wrong
    shape, or for `max_spikes` among the options; the errors of `simulate` otherwise
    (e.g. `equinox.EquinoxRuntimeError` for unsorted spikes or spikes before `t0`).
    """
    if not isinstance(model, EscapeNoise):
        raise TypeError(
            f"log_likelihood: `model` must be a spikeode.EscapeNoise (a model with a "
            f"hazard), got {type(model).__name__}."
        )
    n = model.num_neurons
    if spikes.num_neurons != n or spikes.times.ndim != 1:
        raise ValueError(
            f"log_likelihood: `spikes` must be one train of {n} neurons (the model's); "
            f"got {spikes.num_neurons} neurons and times of shape {spikes.times.shape}."
        )
    if "max_spikes" in options:
        raise ValueError("log_likelihood: `max_spikes` is the capacity of `spikes`.")
    inner = model.neuron.init_state() if y0 is None else jnp.asarray(y0)
    if inner.shape != (n, model.neuron.state_size):
        raise ValueError(
            f"log_likelihood: `y0` has shape {inner.shape}; expected "
            f"({n}, {model.neuron.state_size}) (the wrapped model's state)."
        )
    dtype = inner.dtype
    t0_, t1_ = jnp.asarray(t0, dtype), jnp.asarray(t1, dtype)
    spikes = spikes.validate(t0=t0)
    capacity = spikes.capacity
    table = spikes.to_per_neuron(capacity).astype(dtype)
    table = jnp.concatenate([table, jnp.full((n, 1), jnp.inf, dtype)], 1)
    inside = table < t1_
    # (a finite time after t1 for empty slots: the state stays finite)
    table = jnp.where(inside, table, t1_ + (t1_ - t0_))
    clamped = _Clamped(model, table)
    options.setdefault("loop", CoupledLoop())
    sim = simulate(
        clamped, t1, inputs, w_in, t0=t0, y0=clamped.initial(inner), max_spikes=capacity,
        **options,
    )  # fmt: skip
    m = model.neuron.state_size
    value = jnp.sum(sim.y_final[:, m + 1]) - jnp.sum(sim.y_final[:, m])
    # observed intervals shorter than the refractory period are impossible
    gaps = table[:, 1:] - table[:, :-1]
    refractory = jnp.broadcast_to(model.refractory_period, (n,))[:, None]
    possible = jnp.all(~inside[:, 1:] | (gaps >= refractory))
    return jnp.where(possible, value, -jnp.inf)

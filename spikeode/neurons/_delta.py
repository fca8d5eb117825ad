"""Integrate-and-fire neurons with delta synapses: an input spike moves the voltage at
once (NEST's `iaf_psc_delta`, Brian2's `v += w`, NIR's `LIF` and `IF` nodes)."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._base import AbstractFirstSpikeNeuron, AbstractFlowNeuron, ExpPolynomial
from ._params import as_param, ParamLike
from ._two_state import AbstractIF


class AbstractDeltaIF(AbstractIF):
    """Integrate-and-fire models whose state is the voltage alone, `(v,)`: a
    presynaptic spike of weight `w` adds `w` to `v` (a delta synapse), a spike resets
    `v` to `v_reset`, held there while refractory.

    A jump can put `v` at or above threshold; the neuron then fires at that very
    time, before anything else happens then (the loops fire every non-refractory
    neuron whose condition is `>= 0` at the start of a segment; several at one
    instant in the order of their indices). Its spike time is then the input's
    arrival time, and its derivative that time's (not the weights').

    The voltage is held at `v_reset` for the whole refractory period: input spikes
    arriving then are ignored (`receives_while_refractory` is false), as in NEST's
    `iaf_psc_delta` (Brian2 with `(unless refractory)` would add them to the held
    voltage). The period is `[t_spike, t_spike + refractory_period)`: an input at its
    end counts.
    """

    # (an input would move the held voltage)
    receives_while_refractory: ClassVar[bool] = False

    @property
    def state_size(self) -> int:
        return 1

    def receive(self, y, weights):
        return y.at[:, 0].add(weights)


class DeltaLIF(AbstractDeltaIF, AbstractFlowNeuron, AbstractFirstSpikeNeuron):
    r"""Leaky integrate-and-fire neurons with delta synapses:

    $$\tau_m \dot v = b - v,$$

    and a presynaptic spike of weight `w` adds `w` to `v`. A neuron spikes when `v`
    reaches `threshold`: by the flow (only if `bias > threshold`), or by a jump, and
    then at the jump's time (several neurons at one instant in the order of their
    indices, each followed by its recurrent kicks), so that the spike time's
    derivative is the input's time's, not the weights'. Then `v = v_reset`, held for
    `refractory_period` (inputs arriving meanwhile are ignored). State columns:
    `(v,)`.

    This is NEST's `iaf_psc_delta` (`tau_m = tau_mem`, `E_L + I_e tau_m / C_m = bias`,
    `V_th = threshold`, `V_reset = v_reset`, `t_ref = refractory_period`, a weight in
    mV), Brian2's `tau dv/dt = v_rest - v` with `on_pre="v += w"`, and NIR's `LIF`
    node `tau dv/dt = v_leak - v + r I` (`bias = v_leak`; an input spike of weight
    `w`, a delta current, moves `v` by `r w / tau`).

    **Arguments** (each a scalar or an array of shape `(num_neurons,)`, all
    differentiable):

    - `num_neurons`: population size.
    - `tau_mem`: membrane time constant (> 0).
    - `threshold`: firing threshold.
    - `v_reset`: reset potential (must lie below `threshold`).
    - `bias`: the potential `v` relaxes to (the leak or resting potential; a constant
      input current times the membrane resistance). The neuron fires by itself,
      periodically, when `bias > threshold`.
    - `refractory_period`: absolute refractory period (>= 0).
    """

    num_neurons: int = eqx.field(static=True)
    threshold: Float[Array, "..."]
    v_reset: Float[Array, "..."]
    refractory_period: Float[Array, "..."]
    tau_mem: Float[Array, "..."]
    bias: Float[Array, "..."]
    positive_fields: ClassVar[tuple[str, ...]] = ("tau_mem",)

    def __init__(
        self,
        num_neurons: int,
        tau_mem: ParamLike = 20e-3,
        threshold: ParamLike = 1.0,
        v_reset: ParamLike = 0.0,
        bias: ParamLike = 0.0,
        refractory_period: ParamLike = 0.0,
    ):
        n = self._init_common(num_neurons, threshold, v_reset, refractory_period, tau_mem=tau_mem)
        self.bias = as_param("bias", bias, n)

    def vector_field(self, t, y, refractory):
        dv = jnp.where(refractory, 0.0, (self.bias - y[:, 0]) / self.tau_mem)
        return dv[:, None]

    def flow(self, t0, y0, t1, refractory):
        # v relaxes exponentially towards the bias: monotone between events, so a
        # condition negative at a segment's start crosses zero at most once, upwards,
        # and stays positive (the default `safe_step_end` is exact)
        v0 = y0[:, 0]
        v = self.bias + (v0 - self.bias) * jnp.exp(-(t1 - t0) / self.tau_mem)
        return jnp.where(refractory, v0, v)[:, None]

    def exp_polynomial(self) -> ExpPolynomial:
        # in x = e^{-(t - s)/tau_mem}: an input gives w x, the bias b (1 - x)
        one, zero = jnp.ones_like(self.bias), jnp.zeros_like(self.bias)
        return ExpPolynomial(
            tau=self.tau_mem,
            input_kernel=jnp.stack([zero, one, zero]),
            bias_kernel=jnp.stack([self.bias, -self.bias, zero]),
            state_map=jnp.ones((1, 3), self.bias.dtype),
        )


class DeltaIF(AbstractDeltaIF, AbstractFlowNeuron):
    r"""Non-leaky integrate-and-fire neurons with delta synapses:

    $$\dot v = b,$$

    and a presynaptic spike of weight `w` adds `w` to `v`. Threshold, reset, jumps
    above threshold and refractory period as in [`spikeode.DeltaLIF`][]. State
    columns: `(v,)`.

    This is NIR's `IF` node `dv/dt = r I` (an input spike of weight `w` moves `v` by
    `r w`; `bias` is a constant `r I`) and Brian2's `dv/dt = b` with `on_pre="v += w"`.

    **Arguments** (each a scalar or an array of shape `(num_neurons,)`, all
    differentiable):

    - `num_neurons`: population size.
    - `threshold`: firing threshold.
    - `v_reset`: reset potential (must lie below `threshold`).
    - `bias`: constant drive, the voltage's rate of change between events (voltage
      per unit time). The neuron fires by itself, periodically, when `bias > 0`.
    - `refractory_period`: absolute refractory period (>= 0).
    """

    num_neurons: int = eqx.field(static=True)
    threshold: Float[Array, "..."]
    v_reset: Float[Array, "..."]
    refractory_period: Float[Array, "..."]
    bias: Float[Array, "..."]

    def __init__(
        self,
        num_neurons: int,
        threshold: ParamLike = 1.0,
        v_reset: ParamLike = 0.0,
        bias: ParamLike = 0.0,
        refractory_period: ParamLike = 0.0,
    ):
        n = self._init_common(num_neurons, threshold, v_reset, refractory_period)
        self.bias = as_param("bias", bias, n)

    def vector_field(self, t, y, refractory):
        dv = jnp.where(refractory, 0.0, jnp.broadcast_to(self.bias, y[:, 0].shape))
        return dv[:, None]

    def flow(self, t0, y0, t1, refractory):
        # linear between events (monotone: the default `safe_step_end` is exact)
        v0 = y0[:, 0]
        return jnp.where(refractory, v0, v0 + self.bias * (t1 - t0))[:, None]

"""Further integrate-and-fire models with closed-form flows: the non-leaky neuron of
Mostafa (2017) and the alpha-synapse neuron of Comsa et al. (2020)."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._base import AbstractFirstSpikeNeuron, AbstractFlowNeuron, ExpPolynomial
from ._params import as_param, ParamLike
from ._two_state import AbstractIF, peak_step_end


class NonLeakyIF(AbstractIF, AbstractFlowNeuron, AbstractFirstSpikeNeuron):
    r"""Non-leaky integrate-and-fire neurons with exponentially decaying synaptic
    current (Mostafa 2017):

    $$\tau_s \dot v = I + b,\qquad \tau_s \dot I = -I,$$

    so that an input of weight `w` at `t_i` alone gives
    `v(t) = w (1 - exp(-(t - t_i)/tau_syn))`. With `tau_syn = 1` and threshold 1 the
    first spike time obeys Mostafa's closed form
    `exp(t_out) = sum_C w_i exp(t_i) / (sum_C w_i - 1)` over the causal set `C`.

    **Arguments** (scalars or per-neuron arrays, all differentiable): `num_neurons`,
    `tau_syn` (> 0), `threshold`, `v_reset` (< threshold), `bias` (constant current
    `b`), `refractory_period` (>= 0). State columns `(v, I)`.
    """

    num_neurons: int = eqx.field(static=True)
    threshold: Float[Array, "..."]
    v_reset: Float[Array, "..."]
    refractory_period: Float[Array, "..."]
    tau_syn: Float[Array, "..."]
    bias: Float[Array, "..."]
    positive_fields: ClassVar[tuple[str, ...]] = ("tau_syn",)

    def __init__(
        self,
        num_neurons: int,
        tau_syn: ParamLike = 1.0,
        threshold: ParamLike = 1.0,
        v_reset: ParamLike = 0.0,
        bias: ParamLike = 0.0,
        refractory_period: ParamLike = 0.0,
    ):
        n = self._init_common(
            num_neurons, threshold, v_reset, refractory_period, tau_syn=tau_syn
        )
        self.bias = as_param("bias", bias, n)

    def vector_field(self, t, y, refractory):
        i = y[:, 1]
        dv = jnp.where(refractory, 0.0, (i + self.bias) / self.tau_syn)
        return jnp.stack([dv, -i / self.tau_syn], axis=1)

    def flow(self, t0, y0, t1, refractory):
        s = (t1 - t0) / self.tau_syn
        v0, i0 = y0[:, 0], y0[:, 1]
        v = v0 - i0 * jnp.expm1(-s) + self.bias * s
        return jnp.stack([jnp.where(refractory, v0, v), i0 * jnp.exp(-s)], axis=1)

    def exp_polynomial(self) -> ExpPolynomial:
        # an input gives w (1 - x) in x = e^{-(t-t_i)/tau_syn}, and I = w x is minus
        # channel 1; a bias would add the linear term b (t - t0)/tau_syn
        bias = eqx.error_if(
            self.bias,
            jnp.any(self.bias != 0),
            "NonLeakyIF: first spike times in closed form need bias == 0 (a bias adds "
            "a term linear in t).",
        )
        one, zero = jnp.ones_like(bias), jnp.zeros_like(bias)
        return ExpPolynomial(
            tau=self.tau_syn,
            input_kernel=jnp.stack([one, -one, zero]),
            bias_kernel=jnp.stack([zero, zero, zero]),
            state_map=jnp.asarray([[1.0, 1.0, 1.0], [0.0, -1.0, 0.0]], bias.dtype),
        )

    def safe_step_end(self, t0, y0, t_max, refractory):
        # dv/dt = (I0 e^{-s} + b)/tau: a maximum only if I0 > 0 > b, at e^{-s} = -b/I0.
        i0 = y0[:, 1]
        has_max = (i0 > 0) & (self.bias < 0) & (i0 > -self.bias)
        ratio = jnp.where(has_max, i0 / jnp.where(has_max, -self.bias, 1.0), 1.0)
        delay = jnp.where(has_max, self.tau_syn * jnp.log(ratio), jnp.inf)
        return peak_step_end(self, t0, y0, t_max, refractory, delay)


class AlphaIF(AbstractIF, AbstractFlowNeuron):
    r"""Neurons with alpha-shaped postsynaptic potentials (Comsa et al. 2020):

    $$\dot v = -v/\tau + I,\qquad \dot I = -I/\tau,$$

    so that an input of weight `w` at `t_i` alone gives
    `v(t) = w (t - t_i) exp(-(t - t_i)/tau)`, and the first spike time on a causal set
    has a closed form in Lambert's W function. (This is `LIF` with
    `tau_mem = tau_syn = tau` and weights scaled by `1/tau`.)

    **Arguments** (scalars or per-neuron arrays, all differentiable): `num_neurons`,
    `tau` (> 0), `threshold`, `v_reset` (< threshold), `refractory_period` (>= 0).
    State columns `(v, I)`.
    """

    num_neurons: int = eqx.field(static=True)
    threshold: Float[Array, "..."]
    v_reset: Float[Array, "..."]
    refractory_period: Float[Array, "..."]
    tau: Float[Array, "..."]
    positive_fields: ClassVar[tuple[str, ...]] = ("tau",)

    def __init__(
        self,
        num_neurons: int,
        tau: ParamLike = 1.0,
        threshold: ParamLike = 1.0,
        v_reset: ParamLike = 0.0,
        refractory_period: ParamLike = 0.0,
    ):
        self._init_common(num_neurons, threshold, v_reset, refractory_period, tau=tau)

    def vector_field(self, t, y, refractory):
        v, i = y[:, 0], y[:, 1]
        dv = jnp.where(refractory, 0.0, i - v / self.tau)
        return jnp.stack([dv, -i / self.tau], axis=1)

    def flow(self, t0, y0, t1, refractory):
        dt = t1 - t0
        decay = jnp.exp(-dt / self.tau)
        v0, i0 = y0[:, 0], y0[:, 1]
        v = (v0 + i0 * dt) * decay
        return jnp.stack([jnp.where(refractory, v0, v), i0 * decay], axis=1)

    def safe_step_end(self, t0, y0, t_max, refractory):
        # v = (v0 + I0 s) e^{-s/tau}: a maximum where I0 - (v0 + I0 s)/tau = 0,
        # i.e. s = tau - v0/I0, if I0 > 0 and that is positive.
        v0, i0 = y0[:, 0], y0[:, 1]
        safe_i0 = jnp.where(i0 > 0, i0, 1.0)
        s = self.tau - v0 / safe_i0
        delay = jnp.where((i0 > 0) & (s > 0), s, jnp.inf)
        return peak_step_end(self, t0, y0, t_max, refractory, delay)

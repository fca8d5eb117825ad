"""Exponential integrate-and-fire neuron: a non-linear model without a closed-form
solution, integrated by a numerical Diffrax solver."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.lax as lax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._params import as_param, ParamLike
from ._two_state import AbstractIF

# Beyond this many `delta_T` above `v_peak` the exponential is continued linearly
# (C^1). A trajectory never gets there before it spikes at `v_peak`; only trial stages
# of a solver step that overshoots the spike do, and they then cannot overflow.
_EXP_CONTINUATION = 10.0


class ExpIF(AbstractIF):
    r"""Exponential integrate-and-fire neurons (Fourcaud-Trocmé et al. 2003) with an
    exponentially decaying synaptic current:

    $$\tau_m \dot v = -(v - v_{rest}) + \Delta_T \exp\left(\frac{v - v_T}{\Delta_T}
    \right) + I + b,\qquad \tau_s \dot I = -I,$$

    spike when `v` reaches `v_peak`; then `v = v_reset`, held there for
    `refractory_period`. A presynaptic spike of weight `w` adds `w` to `I`. State
    columns: `(v, I)`.

    Non-linear, with no closed-form solution: [`spikeode.simulate`][] integrates it
    with `diffrax.Tsit5` and a `PIDController` (or any Diffrax solver passed to it).
    `safe_step_end` ends a segment wherever a crossing could otherwise go up and back
    down inside one solver step (see its docstring).

    **Arguments** (each a scalar or an array of shape `(num_neurons,)`, all
    differentiable):

    - `num_neurons`: population size.
    - `tau_mem`: membrane time constant (> 0).
    - `tau_syn`: synaptic time constant (> 0).
    - `v_rest`: resting potential.
    - `v_T`: soft threshold, where the exponential term takes over.
    - `delta_T`: slope factor (> 0): the sharpness of the spike initiation.
    - `v_peak`: spike cut-off: a spike is emitted when `v` reaches it (the model's
      event threshold: the property `threshold` returns it).
    - `v_reset`: reset potential (must lie below `v_peak`).
    - `bias`: constant input current `b`.
    - `refractory_period`: absolute refractory period (>= 0).
    """

    num_neurons: int = eqx.field(static=True)
    v_peak: Float[Array, "..."]
    v_reset: Float[Array, "..."]
    refractory_period: Float[Array, "..."]
    tau_mem: Float[Array, "..."]
    tau_syn: Float[Array, "..."]
    v_rest: Float[Array, "..."]
    v_T: Float[Array, "..."]
    delta_T: Float[Array, "..."]
    bias: Float[Array, "..."]
    positive_fields: ClassVar[tuple[str, ...]] = ("tau_mem", "tau_syn", "delta_T")
    threshold_name: ClassVar[str] = "v_peak"

    def __init__(
        self,
        num_neurons: int,
        tau_mem: ParamLike = 20e-3,
        tau_syn: ParamLike = 5e-3,
        v_rest: ParamLike = 0.0,
        v_T: ParamLike = 1.0,
        delta_T: ParamLike = 0.2,
        v_peak: ParamLike = 2.0,
        v_reset: ParamLike = 0.0,
        bias: ParamLike = 0.0,
        refractory_period: ParamLike = 0.0,
    ):
        n = self._init_common(
            num_neurons, v_peak, v_reset, refractory_period,
            tau_mem=tau_mem, tau_syn=tau_syn, delta_T=delta_T,
        )  # fmt: skip
        self.v_rest = as_param("v_rest", v_rest, n)
        self.v_T = as_param("v_T", v_T, n)
        self.bias = as_param("bias", bias, n)

    @property
    def threshold(self) -> Float[Array, "..."]:
        """The event threshold: `v_peak`."""
        return self.v_peak

    def membrane_current(self, v: Float[Array, " neurons"]) -> Float[Array, " neurons"]:
        """`F(v) = -(v - v_rest) + delta_T exp((v - v_T)/delta_T)` (the exponential
        continued linearly far above `v_peak`, where no trajectory goes)."""
        x = (v - self.v_T) / self.delta_T
        cap = (self.v_peak - self.v_T) / self.delta_T + _EXP_CONTINUATION
        exp_x = jnp.exp(jnp.minimum(x, cap)) * (1 + jnp.maximum(x - cap, 0.0))
        return -(v - self.v_rest) + self.delta_T * exp_x

    def vector_field(self, t, y, refractory):
        v, i = y[:, 0], y[:, 1]
        dv = (self.membrane_current(v) + i + self.bias) / self.tau_mem
        return jnp.stack([jnp.where(refractory, 0.0, dv), -i / self.tau_syn], axis=1)

    def safe_step_end(self, t0, y0, t_max, refractory):
        r"""End the segment before the drive at `v_peak` turns negative.

        `tau_m dv/dt = F(v) + J(t)` with `J = I + b` independent of `v`, so a neuron at
        `v = v_peak` has slope `g(s) = F(v_peak) + b + I0 exp(-s/tau_syn)` (times
        `tau_m`). By the comparison theorem for the scalar ODE in `v`: while `g >= 0`
        the set `v >= v_peak` is forward invariant (a crossing cannot come back), and
        while `g <= 0` it cannot be entered from below. `g` is monotone, so the only
        danger is a downward zero, which exists iff `I0 > 0`, `F(v_peak) + b < 0` and
        `g(0) > 0`, at `s = tau_syn log(I0 / -(F(v_peak) + b))` in closed form; the
        segment ends there. (With the usual `v_peak` a few `delta_T` above `v_T`,
        `F(v_peak)` is large and positive and this never happens unless the bias is
        strongly negative.)

        A break is skipped when the neuron cannot reach `v_peak` before the zero: up to
        it `J <= J(0)`, so `v` stays below the solution of `tau_m w' = F(w) + J(0)`,
        which needs at least `tau_m (v_peak - v0) / (max(F(v0), F(v_peak)) + J(0))`
        to get from `v0` to `v_peak` (`F` is convex, so that max bounds it between),
        and never gets there if the denominator is not positive. After the zero no
        crossing can start. Also ignored: a start drive `g(0)` within round-off of 0,
        or a zero so close to `t0` that `t0 + s` rounds to `t0`: what remains of a
        previous break (its window is below the integration error). Breaks without a
        spike count towards `simulate`'s `max_segments` (at most one per neuron per
        jump).
        """
        model, t0, y0 = lax.stop_gradient((self, t0, y0))
        dtype = y0.dtype
        v0, i0 = y0[:, 0], y0[:, 1]
        v_peak = jnp.broadcast_to(model.v_peak, v0.shape)
        f_peak = model.membrane_current(v_peak)
        c = f_peak + model.bias
        tol = 64 * jnp.finfo(dtype).eps * (jnp.abs(c) + jnp.abs(i0))
        hazard = (i0 > 0) & (c < 0) & (c + i0 > tol) & ~refractory
        safe_ratio = jnp.where(hazard, i0 / jnp.where(hazard, -c, 1.0), 1.0)
        delay = model.tau_syn * jnp.log(safe_ratio)
        # can the neuron reach v_peak before the zero at all?
        rate = jnp.maximum(model.membrane_current(v0), f_peak) + model.bias + i0
        safe_rate = jnp.where(rate > 0, rate, 1.0)
        reach = jnp.where(rate > 0, model.tau_mem * (v_peak - v0) / safe_rate, jnp.inf)
        t_break = t0 + delay
        need = hazard & (reach <= delay) & (t_break > t0) & (t_break < t_max)
        return jnp.min(jnp.where(need, t_break, t_max))

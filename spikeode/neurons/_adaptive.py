"""Adaptive leaky integrate-and-fire neuron (spike-triggered adaptation current),
integrated by a numerical Diffrax solver."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.lax as lax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._params import as_param, ParamLike
from ._two_state import AbstractIF

# Bisection steps that locate a zero of the boundary drive (enough to reach adjacent
# floats on any bracket in float64).
_BISECTION_STEPS = 64


class AdaptiveLIF(AbstractIF):
    r"""Leaky integrate-and-fire neurons with exponential synaptic current and a
    spike-triggered adaptation current:

    $$\tau_m \dot v = -v + I - a + b,\qquad \tau_s \dot I = -I,\qquad
    \tau_a \dot a = -a,$$

    spike when `v` reaches `threshold`; then `v = v_reset` (held there for
    `refractory_period`) and `a += adapt_jump`. A presynaptic spike of weight `w`
    adds `w` to `I`. State columns: `(v, I, a)`.

    The model has no closed-form `flow` here: [`spikeode.simulate`][] integrates it
    with `diffrax.Tsit5` and a `PIDController` (or any Diffrax solver passed to it).
    `safe_step_end` ends a segment wherever a crossing could otherwise go up and back
    down inside one solver step, so no step-size bound is needed (see its docstring).

    **Arguments** (each a scalar or an array of shape `(num_neurons,)`, all
    differentiable):

    - `num_neurons`: population size.
    - `tau_mem`: membrane time constant (> 0).
    - `tau_syn`: synaptic time constant (> 0).
    - `tau_adapt`: adaptation time constant (> 0).
    - `threshold`: firing threshold.
    - `v_reset`: reset potential (must lie below `threshold`).
    - `bias`: constant input current `b`.
    - `adapt_jump`: increment of the adaptation current `a` at each own spike
      (positive: spike-frequency adaptation; negative values are allowed).
    - `refractory_period`: absolute refractory period (>= 0).
    """

    num_neurons: int = eqx.field(static=True)
    threshold: Float[Array, "..."]
    v_reset: Float[Array, "..."]
    refractory_period: Float[Array, "..."]
    tau_mem: Float[Array, "..."]
    tau_syn: Float[Array, "..."]
    tau_adapt: Float[Array, "..."]
    bias: Float[Array, "..."]
    adapt_jump: Float[Array, "..."]
    positive_fields: ClassVar[tuple[str, ...]] = ("tau_mem", "tau_syn", "tau_adapt")

    def __init__(
        self,
        num_neurons: int,
        tau_mem: ParamLike = 20e-3,
        tau_syn: ParamLike = 5e-3,
        tau_adapt: ParamLike = 100e-3,
        threshold: ParamLike = 1.0,
        v_reset: ParamLike = 0.0,
        bias: ParamLike = 0.0,
        adapt_jump: ParamLike = 0.2,
        refractory_period: ParamLike = 0.0,
    ):
        n = self._init_common(
            num_neurons, threshold, v_reset, refractory_period,
            tau_mem=tau_mem, tau_syn=tau_syn, tau_adapt=tau_adapt,
        )  # fmt: skip
        self.bias = as_param("bias", bias, n)
        self.adapt_jump = as_param("adapt_jump", adapt_jump, n)

    @property
    def state_size(self) -> int:
        return 3

    def vector_field(self, t, y, refractory):
        v, i, a = y[:, 0], y[:, 1], y[:, 2]
        dv = jnp.where(refractory, 0.0, (self.bias + i - a - v) / self.tau_mem)
        return jnp.stack([dv, -i / self.tau_syn, -a / self.tau_adapt], axis=1)

    def reset(self, y, fired):
        y = super().reset(y, fired)
        return y.at[:, 2].add(jnp.where(fired, self.adapt_jump, 0.0))

    # ------------------------------------------------------- no hidden crossings
    def boundary_drive(
        self, y0: Float[Array, "neurons 3"], s: Float[Array, "..."]
    ) -> Float[Array, " neurons"]:
        """`tau_mem * dv/dt` of a neuron sitting at `v = threshold`, a delay `s` after
        the state `y0` if no event intervenes:
        `g(s) = b - threshold + I0 exp(-s/tau_syn) - a0 exp(-s/tau_adapt)`.
        It does not depend on `v`, since `I` and `a` evolve independently of it."""
        i0, a0 = y0[:, 1], y0[:, 2]
        return (
            self.bias
            - self.threshold
            + i0 * jnp.exp(-s / self.tau_syn)
            - a0 * jnp.exp(-s / self.tau_adapt)
        )

    def safe_step_end(self, t0, y0, t_max, refractory):
        r"""End the segment before the drive at the threshold turns negative.

        With `u(t) = b + I(t) - a(t)`, `tau_m dv/dt = u - v`, and `g = u - threshold`
        is the slope (times `tau_m`) of a neuron at the threshold. By the comparison
        theorem for the scalar ODE in `v`: while `g >= 0` the set `v >= threshold` is
        forward invariant (a crossing cannot come back), and while `g <= 0` it cannot
        be entered from below. So a crossing can hide inside a step only if `g` has a
        downward zero after the crossing. `g` is a constant plus two exponentials, so
        `g'` has at most one zero: `g` is monotone on `[0, s_e]` and `[s_e, inf)` (its
        extremum `s_e` is in closed form) and has at most one downward zero, which is
        bracketed on the decreasing piece and located by bisection from below (the
        segment ends at the lower end of the bracket, never after the zero).

        A break is skipped when it cannot matter: on `[0, s]`, `u <= U = threshold +
        max g`, so `v(s) <= U + (v0 - U) exp(-s/tau_m)` (comparison again); if that is
        below the threshold at the end of the bracket, no crossing happened before the
        zero, none can start while `g < 0`, and one that starts after a later upward
        zero of `g` persists. Also skipped: a zero so close to `t0` that `t0 + s`
        rounds to `t0`, and a start drive `g(0)` within round-off of 0 (what remains
        of a previous break): the window such a zero leaves is at the level of the
        integration error. Breaks without a spike count towards `simulate`'s
        `max_segments` (at most one per neuron per jump).
        """
        model, t0, y0 = lax.stop_gradient((self, t0, y0))
        n = model.num_neurons
        dtype = y0.dtype
        bc = lambda x: jnp.broadcast_to(jnp.asarray(x, dtype), (n,))
        tau_m, tau_s, tau_a = bc(model.tau_mem), bc(model.tau_syn), bc(model.tau_adapt)
        thr = bc(model.threshold)
        v0, i0, a0 = y0[:, 0], y0[:, 1], y0[:, 2]
        span = t_max - t0
        g = lambda s: model.boundary_drive(y0, s)

        # interior extremum of g: (I0/tau_s) e^{-s/tau_s} = (a0/tau_a) e^{-s/tau_a}
        k = (tau_a - tau_s) / (tau_s * tau_a)  # 1/tau_s - 1/tau_a
        has_ext = (i0 * a0 > 0) & (k != 0)
        ratio = jnp.where(has_ext, (i0 * tau_a) / jnp.where(has_ext, a0 * tau_s, 1.0), 1.0)
        s_ext = jnp.log(ratio) / jnp.where(has_ext, k, 1.0)
        m = jnp.where(has_ext & (s_ext > 0) & (s_ext < span), s_ext, span)

        g0, gm, g_end = g(jnp.zeros((), dtype)), g(m), g(span)
        scale = jnp.abs(model.bias - model.threshold) + jnp.abs(i0) + jnp.abs(a0)
        tol = 64 * jnp.finfo(dtype).eps * scale
        down1 = (g0 > tol) & (gm < 0)  # decreasing first piece
        down2 = ~down1 & (m < span) & (gm > 0) & (g_end < 0)  # decreasing second piece
        hazard = (down1 | down2) & ~refractory
        lo = jnp.where(down1, 0.0, m).astype(dtype)
        hi = jnp.where(down1, m, span).astype(dtype)

        def bisect(_, bracket):
            lo, hi = bracket
            mid = lo + 0.5 * (hi - lo)
            pos = g(mid) > 0
            return jnp.where(pos, mid, lo), jnp.where(pos, hi, mid)

        lo, hi = lax.fori_loop(0, _BISECTION_STEPS, bisect, (lo, hi))

        # can the neuron reach the threshold before the zero at all?
        g_max = jnp.maximum(jnp.maximum(g0, g(lo)), jnp.where(m < hi, gm, -jnp.inf))
        u_max = thr + g_max
        v_bound = u_max + (v0 - u_max) * jnp.exp(-hi / tau_m)
        t_break = t0 + lo
        need = hazard & (v_bound >= thr) & (t_break > t0) & (t_break < t_max)
        return jnp.min(jnp.where(need, t_break, t_max))

"""Current-based leaky integrate-and-fire neuron with exponential synaptic current."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._base import AbstractFirstSpikeNeuron, AbstractFlowNeuron, ExpPolynomial
from ._params import as_param, ParamLike
from ._two_state import AbstractIF, peak_step_end


def expm1_ratio(c, dt):
    """`expm1(c*dt)/c`, accurate (value and derivatives) for any `c`, including 0."""
    x = c * dt
    small = jnp.abs(x) < 1e-4
    safe_c = jnp.where(small, 1.0, c)
    series = dt * (1 + x / 2 * (1 + x / 3 * (1 + x / 4)))
    return jnp.where(small, series, jnp.expm1(safe_c * dt) / safe_c)


def log1p_ratio(c, q):
    """`log1p(c*q)/c` (the inverse of `expm1_ratio` in `dt`), accurate for small `c`.
    Returns `+inf` where `1 + c*q <= 0`."""
    x = c * q
    small = jnp.abs(x) < 1e-4
    safe_c = jnp.where(small, 1.0, c)
    safe_arg = jnp.where(x > -1, safe_c * q, 0.0)
    series = q * (1 - x / 2 * (1 - x * 2 / 3 * (1 - x * 3 / 4)))
    out = jnp.where(small, series, jnp.log1p(safe_arg) / safe_c)
    return jnp.where(x > -1, out, jnp.inf)


def two_exp_kernel(c, dt, decay_a, decay_b):
    """`(exp(-b dt) - exp(-a dt)) / (a - b)` for rates `a, b > 0`, `c = a - b` and
    `dt >= 0`, given `decay_a = exp(-a dt)` and `decay_b = exp(-b dt)`: the voltage (per
    unit `a`) that a unit current decaying at rate `b` drives into a membrane leaking
    at rate `a`.

    Written as `exp(-b dt) expm1_ratio(-c, dt)` for `c >= 0` and
    `exp(-a dt) expm1_ratio(c, dt)` for `c < 0`: both are identities, analytic in
    `(a, b)`, and only non-positive rates enter `expm1_ratio` (no overflow for long
    `dt`, and no inf or NaN in either branch's derivatives). Values and derivatives
    are exact at and near `a == b` (where the kernel is `dt exp(-a dt)`); at the tie
    the derivatives are those of the first form, which holds on both sides."""
    ge = c >= 0
    return jnp.where(ge, decay_b, decay_a) * expm1_ratio(jnp.where(ge, -c, c), dt)


class LIF(AbstractIF, AbstractFlowNeuron, AbstractFirstSpikeNeuron):
    r"""Current-based leaky integrate-and-fire neurons with exponential synapses.

    $$\tau_m \dot v = -v + I + b,\qquad \tau_s \dot I = -I,$$

    spike when `v` reaches `threshold`; then `v = v_reset` and `v` is held there for
    `refractory_period`. A presynaptic spike of weight `w` adds `w` to `I`. State
    columns: `(v, I)`.

    **Arguments** (each a scalar or an array of shape `(num_neurons,)`, all
    differentiable):

    - `num_neurons`: population size.
    - `tau_mem`: membrane time constant (> 0).
    - `tau_syn`: synaptic time constant (> 0); `tau_syn == tau_mem` is handled exactly.
    - `threshold`: firing threshold.
    - `v_reset`: reset potential (must lie below `threshold`).
    - `bias`: constant input current `b`.
    - `refractory_period`: absolute refractory period (>= 0).
    """

    num_neurons: int = eqx.field(static=True)
    threshold: Float[Array, "..."]
    v_reset: Float[Array, "..."]
    refractory_period: Float[Array, "..."]
    tau_mem: Float[Array, "..."]
    tau_syn: Float[Array, "..."]
    bias: Float[Array, "..."]
    positive_fields: ClassVar[tuple[str, ...]] = ("tau_mem", "tau_syn")

    def __init__(
        self,
        num_neurons: int,
        tau_mem: ParamLike = 20e-3,
        tau_syn: ParamLike = 5e-3,
        threshold: ParamLike = 1.0,
        v_reset: ParamLike = 0.0,
        bias: ParamLike = 0.0,
        refractory_period: ParamLike = 0.0,
    ):
        n = self._init_common(
            num_neurons, threshold, v_reset, refractory_period, tau_mem=tau_mem, tau_syn=tau_syn
        )
        self.bias = as_param("bias", bias, n)

    def vector_field(self, t, y, refractory):
        v, i = y[:, 0], y[:, 1]
        dv = jnp.where(refractory, 0.0, (self.bias + i - v) / self.tau_mem)
        di = -i / self.tau_syn
        return jnp.stack([dv, di], axis=1)

    # -------------------------------------------------------------- closed form
    def _rates(self):
        a = 1 / self.tau_mem
        b = 1 / self.tau_syn
        c = (self.tau_syn - self.tau_mem) / (self.tau_mem * self.tau_syn)  # a - b
        return a, b, c

    def flow(self, t0, y0, t1, refractory):
        dt = t1 - t0
        a, b, c = self._rates()
        v0, i0 = y0[:, 0], y0[:, 1]
        decay_m = jnp.exp(-a * dt)
        decay_s = jnp.exp(-b * dt)
        # (the kernel in a form with decaying exponentials only: no overflow for long
        # segments when tau_syn > tau_mem)
        kernel = two_exp_kernel(c, dt, decay_m, decay_s)
        v = self.bias + (v0 - self.bias) * decay_m + a * i0 * kernel
        v = jnp.where(refractory, v0, v)
        i = i0 * decay_s
        return jnp.stack([v, i], axis=1)

    def exp_polynomial(self) -> ExpPolynomial:
        # With tau_mem = 2 tau_syn an input gives w (x - x^2) in x = e^{-(t-t_i)/tau_mem}
        # (Goeltz et al. 2021) and the bias b (1 - x); I = w x^2 is minus channel 2.
        # Only tau_mem enters: tau_syn is tied to it, so derivatives with respect to
        # the time constants are along the tie (tau_syn's is zero).
        eps = jnp.finfo(jnp.result_type(self.tau_mem)).eps
        tau = eqx.error_if(
            self.tau_mem,
            jnp.abs(self.tau_mem - 2 * self.tau_syn) > 8 * eps * self.tau_mem,
            "LIF: first spike times in closed form need tau_mem == 2 * tau_syn.",
        )
        one, zero = jnp.ones_like(self.bias), jnp.zeros_like(self.bias)
        return ExpPolynomial(
            tau=tau,
            input_kernel=jnp.stack([zero, one, -one]),
            bias_kernel=jnp.stack([self.bias, -self.bias, zero]),
            state_map=jnp.asarray([[1.0, 1.0, 1.0], [0.0, 0.0, -1.0]], self.bias.dtype),
        )

    def peak_delay(
        self, y0: Float[Array, "neurons 2"]
    ) -> Float[Array, " neurons"]:
        """Delay after which each neuron's voltage reaches its maximum when no event
        intervenes (`+inf` if it rises forever or has no interior maximum).

        With `u = b + I` the voltage moves towards `u`; `dv/dt = 0` at the delay `s`
        with `expm1_ratio(a - b, s) = (u0 - v0) / (b I0)`, which has a positive
        solution only for `I0 > 0` and `v0 < u0`.
        """
        a, b, c = self._rates()
        v0, i0 = y0[:, 0], y0[:, 1]
        rising = (i0 > 0) & (v0 < self.bias + i0)
        safe_i0 = jnp.where(rising, i0, 1.0)
        q = jnp.where(rising, (self.bias + i0 - v0) / (b * safe_i0), 0.0)
        return jnp.where(rising, log1p_ratio(c, q), jnp.inf)

    def safe_step_end(self, t0, y0, t_max, refractory):
        # Between events v = b + A e^{-t/tau_m} + B e^{-t/tau_s} has at most one
        # interior extremum. If that is a maximum above threshold inside the step, the
        # step must end there: up to it the condition crosses zero at most once.
        return peak_step_end(self, t0, y0, t_max, refractory, self.peak_delay(y0))

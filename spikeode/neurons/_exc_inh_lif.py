"""Current-based leaky integrate-and-fire neuron with separate excitatory and
inhibitory synaptic currents (the CUBA model of Vogels & Abbott 2005)."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.lax as lax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._base import AbstractFlowNeuron
from ._lif import two_exp_kernel
from ._params import as_param, ParamLike
from ._two_state import AbstractIF

# `safe_step_end` locates a voltage maximum by bisection, stopped per neuron as soon as
# the answer is known (most neurons need no step); 80 steps reach adjacent floats from
# any bracket in float64.
_MAX_BISECTIONS = 80
# In a population larger than twice this, when at most this many neurons can reach
# the threshold within the step, `safe_step_end` gathers and examines only those.
_GATHER = 16


class ExcInhLIF(AbstractIF, AbstractFlowNeuron):
    r"""Current-based leaky integrate-and-fire neurons with an excitatory and an
    inhibitory exponential synapse, each with its own time constant (the CUBA network
    of Vogels & Abbott 2005, Brian2's CUBA example):

    $$\tau_m \dot v = -v + I_e + I_i + b,\qquad \tau_e \dot I_e = -I_e,\qquad
    \tau_i \dot I_i = -I_i,$$

    spike when `v` reaches `threshold`; then `v = v_reset` and `v` is held there
    (`dv/dt = 0`) for `refractory_period` while both currents keep decaying and
    receiving. State columns: `(v, I_e, I_i)`.

    A presynaptic spike of weight `w` is routed by its sign: `w > 0` adds `w` to
    `I_e`, `w < 0` adds `w` to `I_i` (which is then negative), `w == 0` adds nothing
    (as in Brian2, where excitatory synapses do `ge += we` and inhibitory ones
    `gi += wi` with `wi < 0`). The derivative with respect to a weight is that of its
    own port (the time constant its current decays with); a weight that changes sign
    during training switches port, so the loss is continuous there but its slope
    jumps. At exactly `w == 0` the derivative is the excitatory port's (the derivative
    from above), so an absent connection of a dense weight matrix still gets a
    gradient.

    The flow is in closed form (exact also when `tau_exc` or `tau_inh` equals
    `tau_mem`), so [`spikeode.simulate`][] uses [`spikeode.ExactSolver`][]; with two
    currents of opposite sign a voltage can rise above threshold and fall back between
    two events, and `safe_step_end` ends a segment at such an excursion (see there).

    **Arguments** (each a scalar or an array of shape `(num_neurons,)`, all
    differentiable):

    - `num_neurons`: population size.
    - `tau_mem`: membrane time constant (> 0).
    - `tau_exc`: excitatory synaptic time constant (> 0).
    - `tau_inh`: inhibitory synaptic time constant (> 0).
    - `threshold`: firing threshold.
    - `v_reset`: reset potential (must lie below `threshold`).
    - `bias`: constant input current `b` (the resting potential; above `threshold`
      the neuron fires tonically).
    - `refractory_period`: absolute refractory period (>= 0).
    """

    num_neurons: int = eqx.field(static=True)
    threshold: Float[Array, "..."]
    v_reset: Float[Array, "..."]
    refractory_period: Float[Array, "..."]
    tau_mem: Float[Array, "..."]
    tau_exc: Float[Array, "..."]
    tau_inh: Float[Array, "..."]
    bias: Float[Array, "..."]
    positive_fields: ClassVar[tuple[str, ...]] = ("tau_mem", "tau_exc", "tau_inh")

    def __init__(
        self,
        num_neurons: int,
        tau_mem: ParamLike = 20e-3,
        tau_exc: ParamLike = 5e-3,
        tau_inh: ParamLike = 10e-3,
        threshold: ParamLike = 1.0,
        v_reset: ParamLike = 0.0,
        bias: ParamLike = 0.0,
        refractory_period: ParamLike = 0.0,
    ):
        n = self._init_common(
            num_neurons, threshold, v_reset, refractory_period,
            tau_mem=tau_mem, tau_exc=tau_exc, tau_inh=tau_inh,
        )  # fmt: skip
        self.bias = as_param("bias", bias, n)

    @property
    def state_size(self) -> int:
        return 3

    def init_state(self):
        dtype = jnp.result_type(self.threshold, self.v_reset)
        return jnp.zeros((self.num_neurons, 3), dtype)

    def receive(self, y, weights):
        # Routing by sign, differentiably: each port gets the weight where it is its
        # own (derivative 1 there, 0 for the other port).
        # (w == 0 counts as excitatory: its derivative is the excitatory port's, the
        # one-sided derivative from above, not 0)
        exc = jnp.where(weights >= 0, weights, 0.0)
        inh = jnp.where(weights < 0, weights, 0.0)
        return y.at[:, 1].add(exc).at[:, 2].add(inh)

    def vector_field(self, t, y, refractory):
        v, ie, ii = y[:, 0], y[:, 1], y[:, 2]
        dv = jnp.where(refractory, 0.0, (self.bias + ie + ii - v) / self.tau_mem)
        return jnp.stack([dv, -ie / self.tau_exc, -ii / self.tau_inh], axis=1)

    # -------------------------------------------------------------- closed form
    def _rates(self):
        """`(1/tau_mem, 1/tau_exc, 1/tau_inh, bias)`, the arguments of `_advance`."""
        return 1 / self.tau_mem, 1 / self.tau_exc, 1 / self.tau_inh, self.bias

    def flow(self, t0, y0, t1, refractory):
        v, ie, ii = _advance(self._rates(), y0, t1 - t0)
        return jnp.stack([jnp.where(refractory, y0[:, 0], v), ie, ii], axis=1)

    def safe_step_end(self, t0, y0, t_max, refractory):
        r"""End the segment at the neurons' voltage maximum if it lies above threshold.

        Between events, with `u(s) = b + I_e(s) + I_i(s)` the voltage obeys
        `tau_m v' = u - v`, and `W(s) = (u(s) - v(s)) e^{s/tau_m}` (the sign of `v'`)
        has `W'(s) = u'(s) e^{s/tau_m}` (differentiate: the `v'` terms cancel). `u` is
        a constant plus two exponentials, so `u'` has at most one zero, `s_u` (closed
        form; only if `I_e I_i < 0` and `tau_exc != tau_inh`). Hence `W` is monotone on
        `[0, s_u]` and on `[s_u, inf)` and `v'` changes sign at most once on each:
        `v` has at most two interior extrema and at most ONE interior local maximum
        `s_p`, the zero of `W` on the piece where `W` falls from `> 0` to `< 0`.
        (Patterns: rise, rise-fall, fall-rise, rise-fall-rise, fall-rise-fall.)

        If `s_p` lies inside the step with `v(s_p) > threshold`, the segment ends at a
        point of `(t0, t_max)` near `s_p`, on the same monotone piece, where
        `v > threshold`; otherwise at `t_max`. Then on `[t0, t_end]` the voltage
        (starting below threshold) has no interior maximum above threshold: it may
        fall, rise to a maximum below threshold and fall again, and otherwise only
        rise, or (at an early end) rise to the maximum and, past it, fall but not
        below the threshold. In every case it crosses the threshold at most once,
        upwards, and stays above it to `t_end`. An early end has
        `v(t_end) > threshold`, so the crossing is bracketed and found at once: these
        breaks never cost a segment without a spike.

        Locating `s_p`: bisection of the sign of `u - v` on the monotone piece (exact,
        no grid), per neuron, stopped as soon as the answer is known. At the maximum
        `v(s_p) = u(s_p)`, `u` is monotone on the bracket `[lo, hi]` and `v'` falls on
        `[lo, s_p]` (`W` and `e^{-s/tau_m}` both fall), so
        `max v(points) <= v(s_p) <= min(max(u(lo), u(hi)), v(lo) + v'(lo) (hi - lo))`:
        above threshold as soon as an evaluated point is above (the segment ends
        there), below once the bound is (most neurons, decided before any step). Only
        a maximum within round-off of the threshold (a touch) can exhaust the bracket;
        it counts as no crossing. Only neurons that can reach the threshold within the
        step at all are examined (a comparison bound, below); in a large population,
        when they are few, they are gathered and examined alone.
        """
        model, t0, y0, t_max = lax.stop_gradient((self, t0, y0, t_max))
        n = model.num_neurons
        dtype = y0.dtype
        bc = lambda x: jnp.broadcast_to(jnp.asarray(x, dtype), (n,))
        a, be, bi, bias = (bc(x) for x in model._rates())
        thr = bc(model.threshold)
        v0, ie0, ii0 = y0[:, 0], y0[:, 1], y0[:, 2]
        t_max = jnp.asarray(t_max, dtype)
        # Which neurons can reach the threshold in the step at all: u <= u_max (each
        # current decays towards 0), so by comparison v(s) <= max(v0, u_max + (v0 -
        # u_max) e^{-s/tau_m}) <= reach for s in [0, span]. Only these candidates are
        # examined: in a large network the few next to threshold, gathered into a
        # small batch.
        u_max = bias + jnp.maximum(ie0, 0.0) + jnp.maximum(ii0, 0.0)
        decay = jnp.exp(-(t_max - t0) * a)
        reach = jnp.where(u_max > v0, u_max + (v0 - u_max) * decay, v0)
        candidate = ~refractory & (reach >= thr)
        count = jnp.sum(candidate)
        params = (a, be, bi, bias, thr)

        def all_neurons():
            return _peak_break(params, t0, y0, t_max, candidate)

        def gathered():
            idx = jnp.nonzero(candidate, size=_GATHER, fill_value=0)[0]
            valid = jnp.arange(_GATHER) < count
            return _peak_break(tuple(x[idx] for x in params), t0, y0[idx], t_max, valid)

        if n <= 2 * _GATHER:
            return lax.cond(count > 0, all_neurons, lambda: t_max)
        index = jnp.where(count == 0, 0, jnp.where(count <= _GATHER, 1, 2))
        return lax.switch(index, [lambda: t_max, gathered, all_neurons])


def _advance(params, y0, dt):
    """`(v, I_e, I_i)` a delay `dt` (>= 0; scalar, or per neuron with the neurons on
    the last axis) after the states `y0`, with no event and no refractoriness;
    `params = (1/tau_mem, 1/tau_exc, 1/tau_inh, bias, ...)`."""
    a, be, bi, bias = params[:4]
    v0, ie0, ii0 = y0[:, 0], y0[:, 1], y0[:, 2]
    decay_m, decay_e, decay_i = jnp.exp(-a * dt), jnp.exp(-be * dt), jnp.exp(-bi * dt)
    drive = ie0 * two_exp_kernel(a - be, dt, decay_m, decay_e) + ii0 * two_exp_kernel(
        a - bi, dt, decay_m, decay_i
    )
    v = bias + (v0 - bias) * decay_m + a * drive
    return v, ie0 * decay_e, ii0 * decay_i


def _peak_break(params, t0, y0, t_max, candidate):
    """`ExcInhLIF.safe_step_end` for the neurons in `candidate`, with
    `params = (1/tau_mem, 1/tau_exc, 1/tau_inh, bias, threshold)`, each of shape
    `(neurons,)`."""
    a, be, bi, bias, thr = params
    n = y0.shape[0]
    dtype = y0.dtype
    v0, ie0, ii0 = y0[:, 0], y0[:, 1], y0[:, 2]
    span = t_max - t0
    zero = jnp.zeros((n,), dtype)
    inf = jnp.full((n,), jnp.inf, dtype)
    eps = jnp.finfo(dtype).eps

    def at(s):  # (v, u) at delays s of shape (..., n) after t0
        v, ie, ii = _advance(params, y0, s)
        return v, bias + ie + ii

    # the extremum of u: ie0 be e^{-be s} = -ii0 bi e^{-bi s}
    k = be - bi
    has_ext = (ie0 * ii0 < 0) & (k != 0)
    safe_den = jnp.where(has_ext, -ii0 * bi, 1.0)
    ratio = jnp.where(has_ext, ie0 * be / safe_den, 1.0)
    s_u = jnp.log(ratio) / jnp.where(has_ext, k, 1.0)
    m = jnp.where(has_ext & (s_u > 0) & (s_u < span), s_u, span)

    v_m, u_m = at(m)
    v_e, u_e = at(jnp.broadcast_to(span, (n,)))
    u0 = bias + ie0 + ii0
    down1 = (u0 > v0) & (u_m < v_m)  # W falls from > 0 to < 0 on [0, m]
    down2 = ~down1 & (m < span) & (u_m > v_m) & (u_e < v_e)  # ... on [m, span]
    hazard = (down1 | down2) & candidate
    lo = jnp.where(down1, zero, m)
    hi = jnp.where(down1, m, span)
    v_lo, u_lo = jnp.where(down1, v0, v_m), jnp.where(down1, u0, u_m)
    u_hi = jnp.where(down1, u_m, u_e)
    v_hi = jnp.where(down1, v_m, v_e)
    # a point of the bracket above threshold (the step may end there), or inf
    s_hit = jnp.where(v_lo > thr, lo, jnp.where(v_hi > thr, hi, inf))

    def active(lo, hi, v_lo, u_lo, u_hi, s_hit):
        bound = jnp.minimum(jnp.maximum(u_lo, u_hi), v_lo + (u_lo - v_lo) * a * (hi - lo))
        below = bound <= thr
        mid = lo + 0.5 * (hi - lo)
        exhausted = (mid <= lo) | (mid >= hi) | (hi - lo <= 4 * eps * (jnp.abs(t0) + hi))
        return hazard & (s_hit == jnp.inf) & ~below & ~exhausted

    def cond(carry):
        i, *state = carry
        return (i < _MAX_BISECTIONS) & jnp.any(active(*state))

    def body(carry):
        i, lo, hi, v_lo, u_lo, u_hi, s_hit = carry
        go = active(lo, hi, v_lo, u_lo, u_hi, s_hit)
        mid = lo + 0.5 * (hi - lo)
        v_mid, u_mid = at(mid)
        up = go & (u_mid > v_mid)  # before the maximum: the lower end moves
        down = go & ~(u_mid > v_mid)
        return (
            i + 1,
            jnp.where(up, mid, lo),
            jnp.where(down, mid, hi),
            jnp.where(up, v_mid, v_lo),
            jnp.where(up, u_mid, u_lo),
            jnp.where(down, u_mid, u_hi),
            jnp.where(go & (v_mid > thr), mid, s_hit),
        )

    init = (jnp.array(0), lo, hi, v_lo, u_lo, u_hi, s_hit)
    s_hit = lax.while_loop(cond, body, init)[-1]
    t_break = t0 + s_hit
    need = hazard & (t_break > t0) & (t_break < t_max)
    return jnp.min(jnp.where(need, t_break, t_max))

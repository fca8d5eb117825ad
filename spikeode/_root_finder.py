"""A bracketing root finder for event times."""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
import optimistix as optx
from jaxtyping import Array, Bool, Scalar


class _State(eqx.Module):
    lower: Scalar
    upper: Scalar
    f_lower: Scalar
    f_upper: Scalar
    last_side: Array  # 0: none yet, -1: lower moved, +1: upper moved
    bisect_next: Bool[Array, ""]
    width: Scalar
    found: Bool[Array, ""]
    bracketed: Bool[Array, ""]


class Illinois(optx.AbstractRootFinder):
    """Safeguarded Illinois (modified regula falsi) root finder on a bracket.

    Needs `options={"lower": ..., "upper": ...}` with a sign change between them
    (which Diffrax's event handling provides). The bracket is kept at every step, so
    the method cannot cycle or fail on kinks (such as those of a `max` over neurons);
    when a secant step does not halve the bracket, the next step bisects, so it never
    needs more than twice the steps of bisection, and usually converges
    superlinearly. It stops when the bracket is narrower than `atol + rtol*|t|` or
    than a few units in the last place of the floating dtype, whichever is larger,
    so the same instance works in float32 and float64.

    **Arguments:**

    - `rtol`, `atol`: tolerances on the root location.
    """

    rtol: float = 1e-13
    atol: float = 1e-13
    norm: ClassVar = jnp.abs

    def init(self, fn, y, args, options: dict[str, Any], f_struct, aux_struct, tags):
        lower = jnp.asarray(options["lower"], f_struct.dtype)
        upper = jnp.asarray(options["upper"], f_struct.dtype)
        if jnp.shape(y) != () or f_struct.shape != ():
            raise ValueError("Illinois root finder: scalar functions of a scalar only.")
        f_lower, _ = fn(lower, args)
        f_upper, _ = fn(upper, args)
        found = (f_lower == 0) | (f_upper == 0)
        bracketed = found | (jnp.sign(f_lower) != jnp.sign(f_upper))
        return _State(
            lower=lower,
            upper=upper,
            f_lower=f_lower,
            f_upper=f_upper,
            last_side=jnp.array(0),
            bisect_next=jnp.array(False),
            width=upper - lower,
            found=found,
            bracketed=bracketed,
        )

    def step(self, fn, y, args, options, state: _State, tags):
        lo, up, fl, fu = state.lower, state.upper, state.f_lower, state.f_upper
        denom = fu - fl
        safe_denom = jnp.where(denom == 0, 1.0, denom)
        secant = (lo * fu - up * fl) / safe_denom
        mid = lo + 0.5 * (up - lo)
        inside = (secant > lo) & (secant < up) & (denom != 0)
        y_new = jnp.where(inside & ~state.bisect_next, secant, mid)
        f_new, aux = fn(y_new, args)
        same_as_upper = jnp.sign(f_new) == jnp.sign(fu)
        # Illinois: halve the stale end's value when the same end moves twice.
        fl = jnp.where(same_as_upper & (state.last_side == 1), fl / 2, fl)
        fu = jnp.where(~same_as_upper & (state.last_side == -1), fu / 2, fu)
        new_lo = jnp.where(same_as_upper, lo, y_new)
        new_up = jnp.where(same_as_upper, y_new, up)
        new_fl = jnp.where(same_as_upper, fl, f_new)
        new_fu = jnp.where(same_as_upper, f_new, fu)
        width = new_up - new_lo
        found = state.found | (f_new == 0)
        new_lo = jnp.where(f_new == 0, y_new, new_lo)
        new_up = jnp.where(f_new == 0, y_new, new_up)
        new_state = _State(
            lower=new_lo,
            upper=new_up,
            f_lower=new_fl,
            f_upper=new_fu,
            last_side=jnp.where(same_as_upper, 1, -1),
            bisect_next=width > 0.5 * state.width,
            width=width,
            found=found,
            bracketed=state.bracketed,
        )
        return self._best(new_state), new_state, aux

    @staticmethod
    def _best(state: _State):
        # On the upper side of the crossing when we must choose: the condition has
        # then reached zero, which is what an event means.
        exact_lower = state.f_lower == 0
        return jnp.where(exact_lower, state.lower, state.upper)

    def terminate(self, fn, y, args, options, state: _State, tags):
        width = jnp.abs(state.upper - state.lower)
        mag = jnp.maximum(jnp.abs(state.lower), jnp.abs(state.upper))
        eps = jnp.finfo(state.lower.dtype).eps
        tol = jnp.maximum(self.atol + self.rtol * mag, 4 * eps * mag)
        done = state.found | (width <= tol) | ~state.bracketed
        result = optx.RESULTS.where(
            state.bracketed, optx.RESULTS.successful, optx.RESULTS.nonlinear_divergence
        )
        return done, result

    def postprocess(self, fn, y, aux, args, options, state: _State, tags, result):
        del fn, y, args, options, tags, result
        return self._best(state), aux, {}

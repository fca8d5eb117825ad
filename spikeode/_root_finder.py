"""A bracketing root finder for event times."""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import optimistix as optx
from jaxtyping import Array, Bool, Scalar


class _State(eqx.Module):
    lower: Scalar
    upper: Scalar
    f_lower: Scalar
    f_upper: Scalar
    x: Scalar  # last evaluated point
    f_x: Scalar
    df_x: Scalar
    step: Scalar  # size of the last step
    found: Bool[Array, ""]
    bracketed: Bool[Array, ""]


class BracketedNewton(optx.AbstractRootFinder):
    """Newton's method safeguarded by a bracket, for event times.

    Needs `options={"lower": ..., "upper": ...}` with a sign change between them
    (Diffrax's event handling provides them). Each step evaluates the function and its
    derivative (by forward-mode autodiff) at one point and shrinks the bracket. The
    next point is the Newton step if it falls inside the bracket and the previous
    Newton step converged fast (the "rtsafe" rule); otherwise a bisection. The
    bracket is kept throughout, so the method cannot diverge, cycle, or fail on kinks
    (such as those of a `max` over neurons), and it converges quadratically near a
    simple root.

    It stops when the bracket is narrower than the tolerance, or when a Newton step is
    smaller than the tolerance, where the tolerance is `atol + rtol*|t|` or
    `16 * eps * |t|` of the dtype, whichever is larger (so the same instance works in
    float32 and float64). The floor is what round-off allows: a condition of order
    one is computed to about `eps`, so near a crossing of slope `s` the computed
    function is noise within `eps / s` of the root, and a Newton step can only be
    seen to converge if the tolerance exceeds that. With `16 * eps * |t|` this holds
    down to slopes of about `1 / (8 |t|)`; grazing crossings below that fall back to
    bisection (and, under `vmap`, every lane waits for the slowest).

    **Arguments:**

    - `rtol`, `atol`: tolerances on the root location.
    """

    rtol: float = 1e-14
    atol: float = 1e-14
    norm: ClassVar = jnp.abs

    def _tol(self, x):
        mag = jnp.abs(x)
        eps = jnp.finfo(jnp.result_type(x)).eps
        return jnp.maximum(self.atol + self.rtol * mag, 16 * eps * mag)

    def init(self, fn, y, args, options: dict[str, Any], f_struct, aux_struct, tags):
        lower = jnp.asarray(options["lower"], f_struct.dtype)
        upper = jnp.asarray(options["upper"], f_struct.dtype)
        if jnp.shape(y) != () or f_struct.shape != ():
            raise ValueError("BracketedNewton: scalar functions of a scalar only.")
        f_lower, _ = fn(lower, args)
        f_upper, _ = fn(upper, args)
        found = (f_lower == 0) | (f_upper == 0)
        bracketed = found | (jnp.sign(f_lower) != jnp.sign(f_upper))
        # Start with a Newton step from the initial guess `y` where it lies strictly
        # inside the bracket (which it first shrinks), else from the lower end (an
        # event's condition rises there, and the crossing is usually much nearer than
        # the bracket's far end); where that leaves the bracket, at the regula-falsi
        # point.
        y = jnp.asarray(y, f_struct.dtype)
        start = jnp.where((y > lower) & (y < upper), y, lower)
        f_start, df_start = jax.jvp(lambda t: fn(t, args)[0], (start,), (jnp.ones_like(start),))
        same_as_upper = (jnp.sign(f_start) == jnp.sign(f_upper)) & (start > lower)
        lower, f_lower = (jnp.where(same_as_upper, lower, start),
                          jnp.where(same_as_upper, f_lower, f_start))
        upper, f_upper = (jnp.where(same_as_upper, start, upper),
                          jnp.where(same_as_upper, f_start, f_upper))
        found = found | (f_start == 0)
        safe_df = jnp.where(df_start == 0, 1.0, df_start)
        newton = start - f_start / safe_df
        denom = jnp.where(f_upper == f_lower, 1.0, f_upper - f_lower)
        falsi = jnp.clip((lower * f_upper - upper * f_lower) / denom, lower, upper)
        use_newton = (df_start != 0) & (newton > lower) & (newton < upper)
        x = jnp.where(use_newton, newton, falsi)
        x = jnp.where(jnp.isfinite(x), x, lower + 0.5 * (upper - lower))
        return _State(
            lower=lower,
            upper=upper,
            f_lower=f_lower,
            f_upper=f_upper,
            x=x,
            f_x=jnp.array(jnp.nan, f_struct.dtype),
            df_x=jnp.array(jnp.nan, f_struct.dtype),
            step=upper - lower,
            found=found,
            bracketed=bracketed,
        )

    def step(self, fn, y, args, options, state: _State, tags):
        lo, up = state.lower, state.upper
        mid = lo + 0.5 * (up - lo)
        # Propose: Newton from the last point, if it has one that is usable.
        has_x = jnp.isfinite(state.f_x) & (state.df_x != 0) & jnp.isfinite(state.df_x)
        safe_df = jnp.where(has_x, state.df_x, 1.0)
        newton_step = jnp.where(has_x, state.f_x / safe_df, 0.0)
        newton = state.x - newton_step
        fast = jnp.abs(newton_step) <= 0.5 * jnp.abs(state.step)
        use_newton = has_x & (newton > lo) & (newton < up) & fast
        first = ~jnp.isfinite(state.f_x)
        x = jnp.where(use_newton, newton, jnp.where(first, state.x, mid))
        step = jnp.where(use_newton, newton_step, x - state.x)

        f_new, df_new, aux = jax.jvp(
            lambda t: fn(t, args), (x,), (jnp.ones_like(x),), has_aux=True
        )
        same_as_upper = jnp.sign(f_new) == jnp.sign(state.f_upper)
        new_lo = jnp.where(same_as_upper, lo, x)
        new_up = jnp.where(same_as_upper, x, up)
        new_fl = jnp.where(same_as_upper, state.f_lower, f_new)
        new_fu = jnp.where(same_as_upper, f_new, state.f_upper)
        new_state = _State(
            lower=new_lo,
            upper=new_up,
            f_lower=new_fl,
            f_upper=new_fu,
            x=x,
            f_x=f_new,
            df_x=df_new,
            step=jnp.where(first, up - lo, step),
            found=state.found | (f_new == 0),
            bracketed=state.bracketed,
        )
        return self._best(new_state), new_state, aux

    @staticmethod
    def _best(state: _State):
        # Where an evaluation was exactly zero, that point: the evaluated point whose
        # stored value is nearest zero. (Not a second test for an exact zero: XLA may
        # copy the cheap computation of a value into each kernel that uses it, and the
        # copies need not round alike, e.g. at backend optimisation level 0 some
        # contract multiply-adds into FMAs and others not, so `found` may have seen 0
        # where the stored value is -1e-16.) Otherwise the upper side of the
        # crossing: the condition has reached zero there, which is what an event
        # means.
        points = jnp.stack([state.x, state.lower, state.upper])
        size = jnp.abs(jnp.stack([state.f_x, state.f_lower, state.f_upper]))
        nearest = points[jnp.argmin(jnp.where(jnp.isnan(size), jnp.inf, size))]
        return jnp.where(state.found, nearest, state.upper)

    def _newton_converged(self, state: _State):
        """Whether the last Newton step from `x` is below tolerance (the root is then
        within `|f/f'|` of `x`), and the step's denominator."""
        has_x = jnp.isfinite(state.f_x) & (state.df_x != 0)
        safe_df = jnp.where(has_x, state.df_x, 1.0)
        tol = self._tol(jnp.maximum(jnp.abs(state.lower), jnp.abs(state.upper)))
        return has_x & (jnp.abs(state.f_x) <= 0.5 * tol * jnp.abs(safe_df)), safe_df, tol

    def terminate(self, fn, y, args, options, state: _State, tags):
        converged, _, tol = self._newton_converged(state)
        narrow = jnp.abs(state.upper - state.lower) <= tol
        done = state.found | narrow | converged | ~state.bracketed
        result = optx.RESULTS.where(
            state.bracketed, optx.RESULTS.successful, optx.RESULTS.nonlinear_divergence
        )
        return done, result

    def postprocess(self, fn, y, aux, args, options, state: _State, tags, result):
        del fn, y, args, options, tags, result
        converged, safe_df, _ = self._newton_converged(state)
        # A final Newton correction from x when that converged; else the bracket end.
        polished = state.x - jnp.where(converged, state.f_x / safe_df, 0.0)
        return jnp.where(converged & ~state.found, polished, self._best(state)), aux, {}


def find_root(
    solver: optx.AbstractRootFinder, fn, y0: Scalar, options: dict[str, Any], max_steps: int = 256
) -> tuple[Scalar, Bool[Array, ""]]:
    """What `optx.root_find(fn, solver, y0, options=options, max_steps=max_steps,
    throw=False)` computes (the solver's `init`, then `step` until `terminate`, then
    `postprocess`), as one plain while loop: about a third of the operations per
    iteration, which matters where a loop finds a root at every event. No derivatives
    (the event loops differentiate crossings by the implicit function theorem).

    **Returns:** `(root, ok)`, `ok` false where the solver reported a failure or ran
    out of steps.
    """
    f = lambda y, args: (fn(y, args), None)  # noqa: E731  (the solvers expect aux)
    tags = frozenset()
    f_struct = jax.eval_shape(lambda: fn(y0, None))
    state = solver.init(f, y0, None, options, f_struct, None, tags)
    done, result = solver.terminate(f, y0, None, options, state, tags)

    def body(carry):
        k, y, state, _, _ = carry
        y, state, _ = solver.step(f, y, None, options, state, tags)
        done, result = solver.terminate(f, y, None, options, state, tags)
        return k + 1, y, state, done, result

    _, y, state, done, result = lax.while_loop(
        lambda c: ~c[3] & (c[0] < max_steps), body, (jnp.array(0), y0, state, done, result)
    )
    y, _, _ = solver.postprocess(f, y, None, None, options, state, tags, result)
    return y, done & (result == optx.RESULTS.successful)

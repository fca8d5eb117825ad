"""`EventPropAdjoint`: the continuous adjoint of the event loop (EventProp-style)."""

from __future__ import annotations

from typing import ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx
from jaxtyping import Array, Bool, Float, Scalar

from ._gradients import _check_checkpoints, _FULL_STORE_BYTES, _reverse_kind, AbstractAdjoint
from ._segment import AbstractSegment, event_condition
from .neurons import AbstractNeuron


class EventPropAdjoint(AbstractAdjoint):
    """Gradients by the continuous adjoint method with jumps at events, as in EventProp
    (Wunderlich & Pehle 2021), for every model of [`spikeode.simulate`][]: pass
    `adjoint=spikeode.EventPropAdjoint()` to `simulate` (or a layer).

    The backward pass visits the segments of the event loop in reverse. On a segment
    `[t_k, T]` it carries the adjoint state `lambda` (the cotangent of the state) from
    `T` back to `t_k` by the adjoint equation

        d lambda / dt = -(df/dy)^T lambda,   d theta_bar / dt = -(df/dtheta)^T lambda,

    and at its end it applies the jump condition of the event found there. If the
    segment ended at a threshold crossing `c(T, y(T)) = 0`, the cotangent `tau` of the
    spike time (plus `lambda . f` from the state's dependence on it) enters as

        lambda(T^-) = lambda_out - tau / c_dot * dc/dy,   theta_bar += -tau / c_dot * dc/dtheta,

    with `c_dot = dc/dt + dc/dy . f` the crossing's slope (the implicit function
    theorem); the jumps themselves (reset, recurrent and input kicks) are small maps
    differentiated by JAX. The solver's steps and the root finder's iterations are
    never differentiated or stored.

    How the adjoint equation is solved on a segment:

    - models with a closed-form `flow` (integrated by [`spikeode.ExactSolver`][]):
      by the vector-Jacobian product of the flow, which is the exact solution of the
      adjoint equation over the segment (no discretisation error, as in the forward);
    - other models: by `diffrax.diffeqsolve` backwards in time from `T` to `t_k` on
      the augmented state `(y, lambda, theta_bar)`, the state `y` being recomputed
      backwards from its value at `T` (segments are short: they end at every event
      and at the model's `safe_step_end`).

    Memory: the loop over segments keeps only what the event loop's checkpoints hold
    (time, state and refractory ends at a checkpointed event; with `checkpoints=K`, at
    most `K` of them, so memory does not grow with the trial length), never per
    solver step.

    Reverse mode only (`jax.grad`, `jax.vjp`); for forward mode use
    [`spikeode.ForwardMode`][]. Runs in the coupled and per-neuron loops (each
    segment is differentiated by its own rule, one at a time).

    **Arguments:**

    - `checkpoints`: checkpoints of the loop over segments, as for
      [`spikeode.DirectAdjoint`][].
    - `solver`: solver of the backward adjoint equation (default `diffrax.Tsit5()`;
      used only for models without a closed-form flow).
    - `stepsize_controller`: its step size controller (default
      `diffrax.PIDController(rtol=1e-10, atol=1e-10)`).
    - `max_steps`: maximum steps of one backward segment.
    """

    checkpoints: int | None = eqx.field(default=None, static=True)
    solver: diffrax.AbstractSolver = diffrax.Tsit5()
    stepsize_controller: diffrax.AbstractStepSizeController = diffrax.PIDController(
        rtol=1e-10, atol=1e-10
    )
    max_steps: int = eqx.field(default=4096, static=True)
    per_segment: ClassVar[bool] = True

    def __check_init__(self):
        _check_checkpoints(type(self).__name__, self.checkpoints)

    @property
    def solver_adjoint(self) -> diffrax.AbstractAdjoint:
        """`diffrax.RecursiveCheckpointAdjoint()`: unused, since the forward solve of a
        numerical segment is never differentiated (the adjoint is solved instead)."""
        return diffrax.RecursiveCheckpointAdjoint()

    def loop_kind(self, num_steps, step_bytes, store_limit=_FULL_STORE_BYTES):
        return _reverse_kind(self.checkpoints, num_steps, step_bytes, store_limit)

    def segment(self, seg: AbstractSegment) -> AbstractSegment:
        return _EventPropSegment(seg, self)


class _EventPropSegment(AbstractSegment):
    """A segment differentiated by the continuous adjoint (`segment`'s custom VJP)."""

    inner: AbstractSegment
    adjoint: EventPropAdjoint
    closed_form: ClassVar[bool] = False

    @property
    def root_finder(self) -> optx.AbstractRootFinder:
        return self.inner.root_finder

    def solve(self, model, t, t_end, y, refractory, read=None):
        del read  # the adjoint's segment keeps its own residuals
        return segment((model, t, t_end, y), refractory, self)


@eqx.filter_custom_vjp
def segment(
    diff: tuple[AbstractNeuron, Scalar, Scalar, Float[Array, "neurons state"]],
    refractory: Bool[Array, " neurons"],
    seg: _EventPropSegment,
):
    """One segment of the event loop, from `t` to the first event or `t_end`.

    **Arguments:**

    - `diff`: `(neuron, t, t_end, y)`, the differentiable inputs.
    - `refractory`: the refractory mask of the segment.
    - `seg`: the forward solve and the event function.

    **Returns:** `(t_stop, y_stop, event, ok)` as from the forward solve.
    """
    neuron, t, t_end, y = diff
    return seg.inner.solve(neuron, t, t_end, y, refractory)


@segment.def_fwd
def _segment_fwd(perturbed, diff, refractory, seg):
    del perturbed
    neuron, t, t_end, y = diff
    out = seg.inner.solve(neuron, t, t_end, y, refractory)
    t_stop, y_stop, event, _ = out
    return out, (t_stop, y_stop, event)


@segment.def_bwd
def _segment_bwd(residuals, grad_obj, perturbed, diff, refractory, seg):
    del perturbed
    neuron, t, t_end, y = diff
    t_stop, y_stop, event = residuals
    g_t, g_y = grad_obj[0], grad_obj[1]
    g_t = jnp.zeros_like(t_stop) if g_t is None else g_t
    g_y = jnp.zeros_like(y_stop) if g_y is None else g_y
    params, static = eqx.partition(neuron, eqx.is_inexact_array)

    # The end time's cotangent: directly, and through y(T) moving along f.
    f_stop = neuron.vector_field(t_stop, y_stop, refractory)
    tau = g_t + jnp.sum(g_y * f_stop)
    # Jump condition of a threshold crossing (implicit function theorem).
    c_t, c_y, c_p = jax.grad(
        lambda tt, yy, pp: event_condition(eqx.combine(pp, static), tt, yy, refractory),
        argnums=(0, 1, 2),
    )(t_stop, y_stop, params)
    c_dot = c_t + jnp.sum(c_y * f_stop)
    # (A segment's cotangent is zero when the loop discards its result.)
    active = event & (tau != 0)
    mu = jnp.where(active, -tau / jnp.where(active, c_dot, 1), 0)
    lam = g_y + mu * c_y
    p_bar = jax.tree_util.tree_map(lambda c: mu * c, c_p)
    t_end_bar = jnp.where(event, jnp.zeros_like(tau), tau)

    if seg.inner.closed_form:
        # The flow's VJP solves the adjoint equation over [t, T] exactly.
        _, vjp = jax.vjp(
            lambda tt, yy, pp: eqx.combine(pp, static).flow(
                tt, yy, t_stop, refractory
            ),
            t,
            y,
            params,
        )
        t_bar, y_bar, p_flow = vjp(lam)
    else:
        y_bar, p_flow = _backward_solve(
            seg.adjoint, params, static, refractory, t, t_stop, y_stop, lam
        )
        # Moving the start along the flow leaves y(T) unchanged.
        t_bar = -jnp.sum(y_bar * neuron.vector_field(t, y, refractory))
    p_bar = jax.tree_util.tree_map(jnp.add, p_bar, p_flow)
    return (eqx.combine(p_bar, static), t_bar, t_end_bar, y_bar)


def _backward_solve(adjoint, params, static, refractory, t, t_stop, y_stop, lam):
    """`(lambda(t), theta_bar)` by integrating the augmented adjoint system from
    `t_stop` back to `t`, with the state recomputed backwards from `y_stop`."""

    def field(s, state, args):
        yy, a, _ = state
        f, vjp = jax.vjp(
            lambda y_, p_: eqx.combine(p_, static).vector_field(s, y_, refractory),
            yy,
            params,
        )
        a_y, a_p = vjp(a)
        return f, -a_y, jax.tree_util.tree_map(jnp.negative, a_p)

    p0 = jax.tree_util.tree_map(jnp.zeros_like, params)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(field),
        adjoint.solver,
        t_stop,
        t,
        None,
        (y_stop, lam, p0),
        saveat=diffrax.SaveAt(t1=True),
        stepsize_controller=adjoint.stepsize_controller,
        max_steps=adjoint.max_steps,
        throw=False,
    )
    _, a, p_bar = jax.tree_util.tree_map(lambda x: x[-1], sol.ys)
    a = eqx.error_if(
        a,
        ~diffrax.is_okay(sol.result),
        "EventPropAdjoint: the backward adjoint solve of a segment failed (it hit "
        "`max_steps` or the step size controller failed); raise "
        "EventPropAdjoint(max_steps=...) or loosen its tolerances.",
    )
    return a, p_bar

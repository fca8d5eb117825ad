"""`ExactSolver`: a Diffrax solver that advances a neuron model by its closed form."""

from __future__ import annotations

from typing import ClassVar

import diffrax
import equinox as eqx
from jaxtyping import Array, Bool

from .neurons import AbstractNeuron


class SegmentArgs(eqx.Module):
    """The `args` the event loop passes to Diffrax: the neuron model and which neurons
    are refractory (constant within a segment)."""

    neuron: AbstractNeuron
    refractory: Bool[Array, " neurons"]


def neuron_vector_field(t, y, args: SegmentArgs):
    """The jump-free vector field of the model in `args`, as a Diffrax `ODETerm`
    function."""
    return args.neuron.vector_field(t, y, args.refractory)


class _FlowInterpolation(diffrax.AbstractLocalInterpolation):
    t0: Array
    t1: Array
    y0: Array
    args: SegmentArgs

    def evaluate(self, t0, t1=None, left=True):
        del left
        flow = self.args.neuron.flow
        y_a = flow(self.t0, self.y0, t0, self.args.refractory)
        if t1 is None:
            return y_a
        return flow(self.t0, self.y0, t1, self.args.refractory) - y_a


class ExactSolver(diffrax.AbstractSolver):
    """Advances the state by the neuron model's closed-form `flow`, and interpolates
    inside a step by the same flow, so spike times found by Diffrax's event root
    finder are exact to round-off.

    Works with any model whose `flow` is implemented, given `args=SegmentArgs(model,
    refractory)` and `diffrax.ODETerm(neuron_vector_field)`; the step size is free.
    Passed to [`spikeode.simulate`][] (its default for models with a `flow`), it
    selects the closed-form segment: the loop then advances each segment by the flow
    and finds crossings by the root finder on the flow itself, which is what Diffrax
    does with this solver's single step, without Diffrax's per-solve bookkeeping.
    """

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar = _FlowInterpolation

    def order(self, terms):
        return None

    def init(self, terms, t0, t1, y0, args):
        return None

    def step(self, terms, t0, t1, y0, args: SegmentArgs, solver_state, made_jump):
        del terms, solver_state, made_jump
        y1 = args.neuron.flow(t0, y0, t1, args.refractory)
        dense_info = dict(y0=y0, args=args)
        return y1, None, dense_info, None, diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

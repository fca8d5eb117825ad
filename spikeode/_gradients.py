"""How [`spikeode.simulate`][] is differentiated: the gradient methods' contract and
the two methods that differentiate the loop itself (reverse mode through the
solver, forward mode). The continuous adjoint, [`spikeode.EventPropAdjoint`][], is in
`_adjoint.py`."""

import abc
from typing import ClassVar

import diffrax
import equinox as eqx
from equinox import AbstractVar

from ._segment import AbstractSegment

# Store every step of a loop for the reverse pass when that takes at most this much.
_FULL_STORE_BYTES = 64 * 2**20


class AbstractAdjoint(eqx.Module):
    """How the results of [`spikeode.simulate`][] are differentiated (its `adjoint`
    argument).

    A gradient method decides three things for the loop:

    - `segment(seg)`: how one segment is differentiated: `seg` itself (its operations
      differentiated as they run, the default) or `seg` wrapped in a rule of its own.
    - `loop_kind(num_steps, step_bytes)`: how the loop over segments runs, as a
      `(kind, checkpoints)` pair: `"stored"` (reverse mode, every step's carry kept
      and each step replayed once), `"checkpointed"` (reverse mode with `checkpoints`
      checkpoints: bounded memory, more recomputation) or `"lax"` (a plain while loop:
      forward mode only).
    - `solver_adjoint`: the Diffrax adjoint of a numerical solver's solve inside a
      segment.

    `per_segment` says whether the method differentiates each segment by a rule of
    its own (then every segment must go through `segment(...).solve` one at a time:
    loops that advance many neurons as independent lanes refuse such methods).
    """

    per_segment: ClassVar[bool] = False
    solver_adjoint: AbstractVar[diffrax.AbstractAdjoint]

    @abc.abstractmethod
    def loop_kind(
        self, num_steps: int, step_bytes: int, store_limit: int = _FULL_STORE_BYTES
    ) -> tuple[str, int | None]:
        """`(kind, checkpoints)` of a loop of at most `num_steps` steps that stores
        `step_bytes` bytes per step in reverse mode; without `checkpoints`, every
        step is stored if that takes at most `store_limit` bytes."""

    def segment(self, seg: AbstractSegment) -> AbstractSegment:
        """The segment as the loop runs it."""
        return seg


def _reverse_kind(checkpoints: int | None, num_steps: int, step_bytes: int, store_limit: int):
    if checkpoints is not None:
        return ("stored" if checkpoints >= num_steps else "checkpointed"), checkpoints
    full = num_steps * step_bytes <= store_limit
    return ("stored" if full else "checkpointed"), None


class DirectAdjoint(AbstractAdjoint):
    """Reverse mode through the loop: the default of [`spikeode.simulate`][].

    Spike times are differentiated through the root find (the implicit function
    theorem), states through the solver and the jumps. Memory grows with the number
    of segments (spikes, input arrivals, saves), never with solver steps.

    **Arguments:**

    - `checkpoints`: checkpoints of the loop over segments. Default: every segment
      if that takes at most 64 MB (the fastest reverse pass), else Equinox's
      automatic scheme (about `sqrt(2 * max_segments)` checkpoints, more
      recomputation). With `checkpoints=K` memory is bounded by `K` stored steps.
    - `solver_adjoint`: for numerical solvers, the Diffrax adjoint of each segment's
      solve (default `diffrax.RecursiveCheckpointAdjoint()`); closed-form
      (`ExactSolver`) segments have no solver steps and are differentiated directly.
    """

    checkpoints: int | None = eqx.field(default=None, static=True)
    solver_adjoint: diffrax.AbstractAdjoint = diffrax.RecursiveCheckpointAdjoint()

    def __check_init__(self):
        _check_checkpoints(type(self).__name__, self.checkpoints)

    def loop_kind(self, num_steps, step_bytes, store_limit=_FULL_STORE_BYTES):
        return _reverse_kind(self.checkpoints, num_steps, step_bytes, store_limit)


class ForwardMode(AbstractAdjoint):
    """Forward-mode sensitivities (`jax.jvp`, `jax.jacfwd`, Hessian-vector products by
    forward over forward), for every model: the loop over segments runs as a plain
    `lax.while_loop` and numerical segments use `diffrax.ForwardMode()`. Supports
    forward mode only (no `jax.grad`)."""

    @property
    def solver_adjoint(self) -> diffrax.AbstractAdjoint:
        """`diffrax.ForwardMode()`, for the solves of numerical segments."""
        return diffrax.ForwardMode()

    def loop_kind(self, num_steps, step_bytes, store_limit=_FULL_STORE_BYTES):
        del num_steps, step_bytes, store_limit
        return "lax", None


def _check_checkpoints(name: str, checkpoints) -> None:
    if checkpoints is not None and (not isinstance(checkpoints, int) or checkpoints < 1):
        raise ValueError(f"{name}: `checkpoints` must be a positive int or None, got "
                         f"{checkpoints!r}.")  # fmt: skip

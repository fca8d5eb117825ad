"""Shared parts of integrate-and-fire models whose state starts with `(v, I)`."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._base import AbstractFlowNeuron, AbstractNeuron
from ._params import as_param, check_num_neurons, check_positive, ParamLike


class AbstractIF(AbstractNeuron):
    """Shared parts of integrate-and-fire models whose state columns start with
    `(v, I)`: a presynaptic spike adds its weight to `I`, a spike resets `v` (held there
    while refractory).

    Subclasses with further state columns (e.g. an adaptation current) override
    `state_size` and extend `reset`; the delta-synapse models (`_delta.AbstractDeltaIF`:
    state `(v,)`, an input adds to `v`) override `state_size` and `receive`. The event
    threshold is the field named by `threshold_name` (a constructor argument:
    `threshold`, or e.g. `v_peak`), read as `threshold` (a model whose field has another
    name provides `threshold` as a property). Concrete models declare the threshold,
    `v_reset` and `refractory_period` fields first: their pytree leaves come in that
    order (which saved checkpoints and gradient-check reports follow).
    """

    num_neurons: eqx.AbstractVar[int]
    threshold: eqx.AbstractVar[Float[Array, "..."]]
    v_reset: eqx.AbstractVar[Float[Array, "..."]]
    refractory_period: eqx.AbstractVar[Float[Array, "..."]]
    # names of the fields that must be positive (time constants)
    positive_fields: ClassVar[tuple[str, ...]] = ()
    # the field (and constructor argument) that holds the threshold
    threshold_name: ClassVar[str] = "threshold"

    def _init_common(
        self,
        num_neurons: int,
        threshold: ParamLike,
        v_reset: ParamLike,
        refractory_period: ParamLike,
        **positive: ParamLike,
    ) -> int:
        """Convert and check the shared parameters and the positive ones (from
        `__init__`); returns `num_neurons`."""
        name = type(self).__name__
        n = self.num_neurons = check_num_neurons(name, num_neurons)
        for key, value in positive.items():
            setattr(self, key, check_positive(f"{name} {key}", as_param(key, value, n)))
        setattr(self, self.threshold_name, as_param(self.threshold_name, threshold, n))
        self.v_reset = as_param("v_reset", v_reset, n)
        self.refractory_period = check_positive(
            f"{name} refractory_period",
            as_param("refractory_period", refractory_period, n),
            allow_zero=True,
        )
        check_reset_below_threshold(name, self.v_reset, self.threshold, self.threshold_name)
        return n

    def check(self):
        name = type(self).__name__
        keys = self.positive_fields + ("refractory_period", "v_reset")
        values = tuple(
            check_positive(f"{name} {k}", getattr(self, k)) for k in self.positive_fields
        ) + (
            check_positive(f"{name} refractory_period", self.refractory_period, allow_zero=True),
            check_reset_below_threshold(name, self.v_reset, self.threshold, self.threshold_name),
        )
        return eqx.tree_at(lambda m: tuple(getattr(m, k) for k in keys), self, values)

    @property
    def state_size(self) -> int:
        return 2

    def init_state(self):
        dtype = jnp.result_type(self.threshold, self.v_reset)
        return jnp.zeros((self.num_neurons, self.state_size), dtype)

    def condition(self, t, y):
        return y[:, 0] - self.threshold

    def reset(self, y, fired):
        return y.at[:, 0].set(jnp.where(fired, self.v_reset, y[:, 0]))

    def receive(self, y, weights):
        return y.at[:, 1].add(weights)


def peak_step_end(model: AbstractFlowNeuron, t0, y0, t_max, refractory, delay):
    """`safe_step_end` of a closed-form model whose condition has at most one interior
    maximum between events: end at the earliest such maximum above threshold that lies
    before `t_max` (`delay`: time from `t0` to each neuron's maximum, `+inf` if none)."""
    t_peak = t0 + delay
    t_peak_safe = jnp.where(t_peak < t_max, t_peak, t_max)
    y_peak = model.flow(t0, y0, t_peak_safe, refractory)
    hides = (~refractory) & (t_peak < t_max) & (model.condition(t_peak_safe, y_peak) > 0)
    return jnp.min(jnp.where(hides, t_peak_safe, t_max))


def check_reset_below_threshold(name, v_reset, threshold, threshold_name="threshold"):
    """Raise (eagerly, or inside `jit` via `equinox.error_if`) unless
    `v_reset < threshold` everywhere; returns `v_reset`."""
    msg = (
        f"{name}: `v_reset` must lie below `{threshold_name}` (else the neuron fires "
        "forever)."
    )
    if isinstance(v_reset, jax.core.Tracer) or isinstance(threshold, jax.core.Tracer):
        return eqx.error_if(v_reset, jnp.any(v_reset >= threshold), msg)
    if np.any(np.asarray(v_reset) >= np.asarray(threshold)):
        raise ValueError(msg)
    return v_reset

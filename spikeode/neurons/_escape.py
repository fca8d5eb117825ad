"""Escape noise: any model fires stochastically with a hazard of its distance to
threshold, sampled exactly by time rescaling (`EscapeNoise`); the hazards
(`AbstractHazard`, `ExponentialHazard`)."""

# (No `from __future__ import annotations`: `EscapeNoise` implements `eqx.AbstractVar`s
# of `_AbstractWrapper`; see _base.py.)

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Key, Scalar

from ._base import AbstractNeuron
from ._params import as_param, check_positive, ParamLike
from ._wrapper import _AbstractWrapper, per_neuron_keys


class AbstractHazard(eqx.Module):
    """An escape rate `rho(u)` (events per unit time) as a function of the distance
    to threshold `u`, the wrapped model's `condition` (e.g. `v - threshold`); used
    by [`spikeode.EscapeNoise`][] and [`spikeode.log_likelihood`][].

    Its parameters are differentiable array leaves, each a scalar or one per neuron
    (shape `(num_neurons,)`). A hazard provides `__call__` (the rate, `>= 0`, smooth
    in `u` and its parameters) and may override `log_rate` (default `log` of the
    rate) with a form that stays finite where the rate underflows, and `check`
    (run-time parameter checks).
    """

    @abc.abstractmethod
    def __call__(self, u: Float[Array, " neurons"]) -> Float[Array, " neurons"]:
        """The rate `rho(u)` of each neuron."""

    def log_rate(self, u: Float[Array, " neurons"]) -> Float[Array, " neurons"]:
        """`log rho(u)`."""
        return jnp.log(self(u))

    def check(self) -> "AbstractHazard":
        """The hazard with run-time checks of its parameters attached (via
        `equinox.error_if`); called by the event loop through the model's `check`."""
        return self


def _hazard_param(name: str, value: ParamLike) -> Float[Array, "..."]:
    """A hazard parameter as a floating array, a scalar or one per neuron (its
    length is checked against the population by `EscapeNoise`)."""
    shape = np.shape(value)
    if len(shape) > 1:
        raise ValueError(
            f"parameter `{name}` has shape {shape}; expected a scalar or one value per neuron."
        )
    return as_param(name, value, shape[0] if shape else 1)


class ExponentialHazard(AbstractHazard):
    r"""The exponential escape rate (Gerstner et al. 2014, ch. 9):

    $$\rho(u) = \rho_0 \exp(u / \delta),$$

    with `u = v - threshold` for the integrate-and-fire models. `rho0` is the rate at
    threshold; `delta` the width of the soft threshold: as `delta -> 0` the rate is 0
    below threshold and infinite above it, so the neuron fires at the deterministic
    threshold crossing. `log_rate` is `log(rho0) + u / delta`, finite for any `u`.
    The rate overflows for `u / delta > 709` (float64); a neuron fires long before its
    voltage gets there, but a clamped voltage far above threshold (in
    [`spikeode.log_likelihood`][]) gives an infinite integral.

    **Arguments** (each a scalar or one per neuron, differentiable):

    - `rho0`: rate at threshold (> 0), in events per unit of the model's time.
    - `delta`: soft-threshold width (> 0), in units of the condition `u`.

    **Raises:** `ValueError` if `rho0` or `delta` is not positive (at construction),
    or `equinox.EquinoxRuntimeError` from `check` for traced values that are not.
    """

    rho0: Float[Array, "..."]
    delta: Float[Array, "..."]

    def __init__(self, rho0: ParamLike, delta: ParamLike):
        self.rho0 = check_positive("ExponentialHazard rho0", _hazard_param("rho0", rho0))
        self.delta = check_positive("ExponentialHazard delta", _hazard_param("delta", delta))

    def __call__(self, u):
        return self.rho0 * jnp.exp(u / self.delta)

    def log_rate(self, u):
        return jnp.log(self.rho0) + u / self.delta

    def check(self):
        return eqx.tree_at(
            lambda h: (h.rho0, h.delta),
            self,
            (
                check_positive("ExponentialHazard rho0", self.rho0),
                check_positive("ExponentialHazard delta", self.delta),
            ),
        )


class EscapeNoise(_AbstractWrapper):
    r"""Escape noise around any neuron model: each neuron fires stochastically with
    the hazard `rho(u)` of its distance to threshold `u = neuron.condition(t, y)`
    (e.g. `v - threshold`), instead of at the threshold crossing.

    Spikes are sampled exactly by time rescaling: the state gets three columns after
    the wrapped model's, the integrated hazard since the last spike `Lambda`
    ($\dot\Lambda = \rho(u)$), the current Exp(1) draw `E` and the spike count `k`;
    the neuron fires when `Lambda` reaches `E` (the condition `Lambda - E`, an event
    like any other). Then the wrapped model's reset applies, `Lambda = 0`, `k += 1`
    and `E` is redrawn as `Exp(1)` from `jax.random.fold_in(key_i, k)` (`key_i`: the
    neuron's key), so the draws are independent, and the same for a given key however
    the network is simulated (any loop, batch or neuron order). For a fixed key spike
    times are exact for the integrated trajectory and differentiable (pathwise
    gradients: the implicit function theorem on `Lambda = E`); batches of
    realisations are `jax.vmap` over keys.

    The wrapped model's threshold no longer fires (only through the hazard). Between
    events `Lambda - E` cannot decrease, so no crossing hides inside a solver step
    (the default `safe_step_end`). Refractoriness is the wrapped model's: for its
    `refractory_period` after a spike the hazard is zero (`Lambda` is frozen at 0)
    and the wrapped model is refractory as usual, so an interspike interval is the
    refractory period plus the hazard's waiting time. Inputs act as on the wrapped
    model (`receive`, `receives_while_refractory`).

    The integral of the hazard has no closed form in general, so the model is
    integrated numerically (`simulate`'s default for models without a `flow`:
    `diffrax.Tsit5` with `PIDController(rtol=1e-10, atol=1e-10)`). Models whose
    voltage runs away without their threshold's reset (e.g. `ExpIF`, `QIF`) are
    stiff there; the hazard fires them almost surely before.

    **Arguments:**

    - `neuron`: the wrapped model ([`spikeode.AbstractNeuron`][]).
    - `hazard`: the escape rate ([`spikeode.AbstractHazard`][], e.g.
      [`spikeode.ExponentialHazard`][]); its parameters scalars or one per neuron.
    - `key`: a JAX PRNG key (`jax.random.key(seed)` or `jax.random.PRNGKey(seed)`),
      of which neuron `i` gets `jax.random.fold_in(key, i)` (so its draws do not
      depend on the population size), or one key per neuron (shape
      `(num_neurons,)`, or `(num_neurons, 2)` for `PRNGKey`s), kept as given.

    **Raises:** `TypeError` if `neuron` or `hazard` is of the wrong kind, `ValueError`
    for a hazard parameter of the wrong shape or a key of the wrong shape or dtype.
    """

    neuron: AbstractNeuron
    hazard: AbstractHazard
    key: Key[Array, " neurons"]

    def __init__(self, neuron: AbstractNeuron, hazard: AbstractHazard, key: ArrayLike):
        if not isinstance(neuron, AbstractNeuron) or isinstance(neuron, EscapeNoise):
            raise TypeError(
                f"EscapeNoise: `neuron` must be a neuron model without escape noise, got "
                f"{type(neuron).__name__}."
            )
        if not isinstance(hazard, AbstractHazard):
            raise TypeError(
                f"EscapeNoise: `hazard` must be a spikeode.AbstractHazard (e.g. "
                f"ExponentialHazard), got {type(hazard).__name__}."
            )
        n = neuron.num_neurons
        for path, x in jax.tree_util.tree_leaves_with_path(hazard):
            if eqx.is_array(x) and x.shape not in ((), (n,)):
                raise ValueError(
                    f"EscapeNoise: hazard parameter {jax.tree_util.keystr(path)} has "
                    f"shape {x.shape}; expected a scalar or shape ({n},)."
                )
        self.neuron = neuron
        self.hazard = hazard
        self.key = per_neuron_keys(key, n, "EscapeNoise")

    @property
    def state_size(self) -> int:
        return self.neuron.state_size + 3

    def rate(
        self, t: Scalar, y: Float[Array, "neurons state"], refractory: Bool[Array, " neurons"]
    ) -> Float[Array, " neurons"]:
        """The hazard of each neuron at the wrapped model's state `y` (its columns
        only), zero for refractory neurons."""
        rho = self.hazard(self.neuron.condition(t, y))
        return jnp.where(refractory, jnp.zeros((), rho.dtype), rho)

    def draws(self, count: Float[Array, " neurons"]) -> Float[Array, " neurons"]:
        """Each neuron's Exp(1) draw after its spike number `count` (0: before its
        first spike), from `jax.random.fold_in(key_i, count_i)`."""
        keys = jnp.broadcast_to(self.key, (self.num_neurons,))  # (one lane: shape ())

        def draw(key, k):
            return jax.random.exponential(jax.random.fold_in(key, k), (), count.dtype)

        return jax.vmap(draw)(keys, count.astype(jnp.uint32))

    def init_state(self):
        inner = self.neuron.init_state()
        zero = jnp.zeros((self.num_neurons,), inner.dtype)
        return jnp.concatenate([inner, jnp.stack([zero, self.draws(zero), zero], 1)], 1)

    def vector_field(self, t, y, refractory):
        m = self.neuron.state_size
        d_inner = self.neuron.vector_field(t, y[:, :m], refractory)
        zero = jnp.zeros_like(y[:, m])
        rest = jnp.stack([self.rate(t, y[:, :m], refractory), zero, zero], 1)
        return jnp.concatenate([d_inner, rest], 1)

    def condition(self, t, y):
        m = self.neuron.state_size
        return y[:, m] - y[:, m + 1]

    def reset(self, y, fired):
        m = self.neuron.state_size
        inner = self.neuron.reset(y[:, :m], fired)
        count = y[:, m + 2] + fired.astype(y.dtype)
        lam = jnp.where(fired, jnp.zeros((), y.dtype), y[:, m])
        draw = jnp.where(fired, self.draws(count), y[:, m + 1])
        return jnp.concatenate([inner, jnp.stack([lam, draw, count], 1)], 1)

    def receive(self, y, weights):
        m = self.neuron.state_size
        return jnp.concatenate([self.neuron.receive(y[:, :m], weights), y[:, m:]], 1)

    def check(self):
        return eqx.tree_at(
            lambda e: (e.neuron, e.hazard), self, (self.neuron.check(), self.hazard.check())
        )

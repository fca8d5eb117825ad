"""Diffusion noise: white-noise input as a capability of a neuron model
(`AbstractDiffusionNeuron`: between events `dy = f dt + g dW`, one Brownian motion per
neuron) and `DiffusionNoise`, which adds it to a column of any model's state."""

# (No `from __future__ import annotations`: this module declares `eqx.AbstractVar`s.)

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float, Key, Scalar, UInt32

from ._base import AbstractNeuron
from ._params import as_param, check_positive, ParamLike
from ._wrapper import _AbstractWrapper, per_neuron_keys


class AbstractDiffusionNeuron(AbstractNeuron):
    r"""A neuron model with white-noise input (a capability): between events its state
    follows the stochastic differential equation

    $$dy_i = f_i(t, y)\,dt + g_i(t, y)\,dW_i(t),$$

    `f` the model's `vector_field`, `g` its `diffusion`, and `W_i` one standard
    Brownian motion per neuron (a fixed path per key in `brownian_keys`).

    [`spikeode.simulate`][] integrates such models with a Diffrax SDE solver (default
    `diffrax.ShARK()` at the fixed step `dt0`, which must be given) over one
    `diffrax.VirtualBrownianTree` per neuron spanning the whole simulation, and finds
    threshold crossings on the solver's interpolation between steps; see
    [`spikeode.neurons.DiffusionNoise`][] for the choice of solver and step.
    """

    @abc.abstractmethod
    def diffusion(
        self, t: Scalar, y: Float[Array, "neurons state"], refractory: Bool[Array, " neurons"]
    ) -> Float[Array, "neurons state"]:
        """The coefficients `g` of the noise: `g[i, :] dW_i` is what neuron `i`'s
        Brownian motion adds to its state. Refractory neurons are held (as in
        `vector_field`): their rows must be zero. Additive-noise solvers (`ShARK`,
        `SRA1`) need `g` independent of `y`."""

    @abc.abstractmethod
    def brownian_keys(self) -> Key[Array, " neurons"]:
        """One PRNG key per neuron, which fixes its Brownian path."""


class DiffusionNoise(AbstractDiffusionNeuron, _AbstractWrapper):
    r"""Any neuron model with white-noise input on one state column: between events

    $$dy_{i,c} = f_{i,c}(t, y)\,dt + \sigma_i\,dW_i(t)$$

    for the column `c = column` (the voltage, column 0, in every library model), the
    other columns as in `neuron`. Everything else (threshold, reset, synaptic input,
    refractory period, during which the held voltage gets no noise) is `neuron`'s.
    In the diffusion approximation of Brunel (2000), `tau dv = (mu - v) dt + s sqrt(tau)
    dW`, this is `sigma = s / sqrt(tau)`.

    For a fixed `key` the Brownian path of each neuron is fixed (neuron `i`'s from
    `fold_in(key, i)`), so a simulation is a deterministic, differentiable function of
    the parameters (pathwise gradients), and `jax.vmap` over keys gives independent
    trials. The path is a `diffrax.VirtualBrownianTree` over the simulation's
    `[t0, t1]`, resolved to `(t1 - t0) 2^-32` (keep `dt0` above about a hundred times
    that): the same key and trial span give the same path at every step size.

    **Solver and step.** [`spikeode.simulate`][] uses `diffrax.ShARK()` (strong order
    1.5 for additive noise, two drift evaluations per step) at the constant step
    `dt0`, which has no default: pass it (and `max_steps` at least the longest
    interval between events over `dt0`). Threshold crossings are found on the solver's
    linear interpolation between steps, so a path that crosses the threshold and
    returns within one step is missed: the firing rate is biased low by an amount that
    shrinks like `sqrt(dt0)` (measured for the LIF against the Siegert rate: see
    docs/api.md), while spike times of a fixed path converge as `dt0` shrinks. Choose
    `dt0` small against the membrane time constant and against `(threshold -
    v)^2 / sigma^2` near threshold. Any Diffrax SDE solver and step-size controller can
    be passed instead; `ExactSolver` and `EventPropAdjoint` cannot be used.

    Spike times are differentiated pathwise (for the fixed path): exactly for the
    discretised model. The first passage time of a diffusion is not differentiable
    along a path in the continuum limit, so a pathwise gradient of a spike time is not
    an estimate of the gradient of its expectation; states at fixed times are (see
    docs/api.md).

    **Arguments:**

    - `neuron`: the model that gets the noise.
    - `sigma`: the noise amplitude (`>= 0`, scalar or per neuron, differentiable), in
      units of the state column per square root of time.
    - `key`: a JAX PRNG key (`jax.random.key(seed)` or `jax.random.PRNGKey(seed)`),
      of which neuron `i` gets `jax.random.fold_in(key, i)`, or one key per neuron
      (shape `(num_neurons,)`, or `(num_neurons, 2)` for `PRNGKey`s), kept as given.
    - `column`: the state column that gets the noise (default 0).

    **Raises:** `ValueError` for a negative or NaN `sigma` (inside `jit` via
    `equinox.error_if` when the model is checked), a key of the wrong kind or shape, a
    `column` outside the state.
    """

    neuron: AbstractNeuron
    sigma: Float[Array, "..."]
    key: Key[Array, "..."]
    column: int = eqx.field(static=True)

    def __init__(
        self,
        neuron: AbstractNeuron,
        sigma: ParamLike,
        key: Key[Array, "..."] | UInt32[ArrayLike, "... 2"],
        column: int = 0,
    ):
        if not isinstance(neuron, AbstractNeuron):
            raise TypeError(
                f"DiffusionNoise: `neuron` must be a spikeode.AbstractNeuron, got "
                f"{type(neuron).__name__}."
            )
        n = neuron.num_neurons
        if not isinstance(column, int) or not 0 <= column < neuron.state_size:
            raise ValueError(
                f"DiffusionNoise: `column` must be an int in [0, {neuron.state_size}) for "
                f"{type(neuron).__name__}, got {column!r}."
            )
        self.neuron = neuron
        self.sigma = check_positive("DiffusionNoise sigma", as_param("sigma", sigma, n),
                                    allow_zero=True)  # fmt: skip
        self.key = per_neuron_keys(key, n, "DiffusionNoise")
        self.column = column

    # --------------------------------------------------------- the wrapped model
    @property
    def state_size(self) -> int:
        return self.neuron.state_size

    def init_state(self):
        return self.neuron.init_state()

    def vector_field(self, t, y, refractory):
        return self.neuron.vector_field(t, y, refractory)

    def condition(self, t, y):
        return self.neuron.condition(t, y)

    def reset(self, y, fired):
        return self.neuron.reset(y, fired)

    def receive(self, y, weights):
        return self.neuron.receive(y, weights)

    # (`safe_step_end` is the default, `t_max`: the wrapped model's bound is about its
    # deterministic flow; with noise every solver step end is checked.)

    def check(self):
        return eqx.tree_at(
            lambda d: (d.neuron, d.sigma),
            self,
            (
                self.neuron.check(),
                check_positive("DiffusionNoise sigma", self.sigma, allow_zero=True),
            ),
        )

    # --------------------------------------------------------------- the noise
    def diffusion(self, t, y, refractory):
        sigma = jnp.broadcast_to(self.sigma, refractory.shape).astype(y.dtype)
        g = jnp.where(refractory, jnp.zeros((), y.dtype), sigma)
        return jnp.zeros(y.shape, y.dtype).at[:, self.column].set(g)

    def brownian_keys(self):
        # (a lane of the per-neuron loops holds its neuron's key alone, shape ())
        return jnp.reshape(self.key, (-1,))

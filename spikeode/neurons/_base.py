"""The neuron-model contract."""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Scalar


class ExpPolynomial(eqx.Module):
    """A model's free response as a quadratic in `x = e^{-t/tau}` (see
    [`spikeode.AbstractNeuron.exp_polynomial`][]).

    **Fields:**

    - `tau`: the time constant (scalar or per neuron).
    - `input_kernel`: shape `(3, ...)`: an input spike of weight `w` at `t_i` adds
      `w * input_kernel[j] * e^{-j (t - t_i)/tau}` to channel `j` (`j = 0, 1, 2`).
    - `bias_kernel`: shape `(3, ...)`: the constant drive adds
      `bias_kernel[j] * e^{-j (t - t0)/tau}` to channel `j`, from rest at `t0`.
    - `state_map`: shape `(state_size, 3)`: the state is `state_map @ channels`; its
      first row is `(1, 1, 1)` (the voltage is the channels' sum).
    """

    tau: Float[Array, "..."]
    input_kernel: Float[Array, "3 ..."]
    bias_kernel: Float[Array, "3 ..."]
    state_map: Float[Array, "state 3"]


class AbstractNeuron(eqx.Module):
    """What every neuron model provides to the event loop.

    A model describes a population of `num_neurons` identical-in-form neurons. Its
    state is an array `y` of shape `(num_neurons, state_size)`; its parameters are
    differentiable array leaves, each a scalar (shared) or of shape `(num_neurons,)`
    (per neuron).

    Between events the state follows `vector_field`, which must be free of jumps so
    that it can serve as a Diffrax `ODETerm`. A neuron spikes when its `condition`
    crosses zero from below; the loop then applies `reset` to it. A presynaptic spike
    (input or recurrent) arriving with weights `w` applies `receive(y, w)`.

    While a neuron is refractory (for `refractory_period` after its spike) the loop
    passes `refractory=True` for it to `vector_field` and `flow`, and ignores its
    condition. The end of a refractory period is a scheduled event, so the vector field
    is smooth inside every segment.

    Optional, for exactness and speed:

    - `flow`: the closed-form solution between events. Enables
      [`spikeode.ExactSolver`][], which makes spike times exact to round-off.
    - `safe_step_end`: the latest time up to which no threshold crossing can hide
      between two evaluations of the condition (see its docstring). Without it a
      crossing that goes up and back down inside one solver step can be missed, so
      bound the solver's step (e.g. `diffrax.PIDController(dtmax=...)`).
    - `exp_polynomial`: the free response as a quadratic in one decaying
      exponential. Enables [`spikeode.first_spikes`][] (first spike times in closed
      form, no event loop).
    """

    num_neurons: eqx.AbstractVar[int]

    @property
    @abc.abstractmethod
    def state_size(self) -> int:
        """Number of state variables per neuron."""

    @abc.abstractmethod
    def init_state(self) -> Float[Array, "neurons state"]:
        """The resting state, shape `(num_neurons, state_size)`."""

    @abc.abstractmethod
    def vector_field(
        self, t: Scalar, y: Float[Array, "neurons state"], refractory: Bool[Array, " neurons"]
    ) -> Float[Array, "neurons state"]:
        """`dy/dt` between events. Must not contain jumps."""

    @abc.abstractmethod
    def condition(
        self, t: Scalar, y: Float[Array, "neurons state"]
    ) -> Float[Array, " neurons"]:
        """Real-valued threshold condition: neuron `i` spikes when entry `i` crosses
        zero upwards (e.g. `v - threshold`)."""

    @abc.abstractmethod
    def reset(
        self, y: Float[Array, "neurons state"], fired: Bool[Array, " neurons"]
    ) -> Float[Array, "neurons state"]:
        """State after the neurons in `fired` spiked."""

    @abc.abstractmethod
    def receive(
        self, y: Float[Array, "neurons state"], weights: Float[Array, " neurons"]
    ) -> Float[Array, "neurons state"]:
        """State after a presynaptic spike with weight `weights[i]` onto neuron `i`."""

    @property
    def refractory_period(self) -> Float[Array, "..."]:
        """Absolute refractory period (scalar or per neuron); 0 by default."""
        return jnp.zeros(())

    def flow(
        self,
        t0: Scalar,
        y0: Float[Array, "neurons state"],
        t1: Scalar,
        refractory: Bool[Array, " neurons"],
    ) -> Float[Array, "neurons state"]:
        """Closed-form solution of `vector_field` from `(t0, y0)` to `t1`.

        Models without one leave this unimplemented and are integrated by a numerical
        Diffrax solver.
        """
        raise NotImplementedError(f"{type(self).__name__} has no closed-form flow.")

    @property
    def has_flow(self) -> bool:
        """Whether `flow` is implemented."""
        return type(self).flow is not AbstractNeuron.flow

    def exp_polynomial(self) -> ExpPolynomial:
        """The model's free response as a quadratic in one decaying exponential, for
        [`spikeode.first_spikes`][].

        Models for which, starting at rest at `t0`, each input spike of weight `w` at
        `t_i` and the constant drive add to the state terms of the form
        `c e^{-j (t - s)/tau}` with `j` in `{0, 1, 2}` (and nothing else) return them as
        an [`spikeode.neurons.ExpPolynomial`][]: then the voltage between two inputs is
        `c0 + c1 x + c2 x^2` in `x = e^{-t/tau}`, and its first threshold crossing is a
        root of a quadratic. Others leave this unimplemented.
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no closed-form first spike time: its voltage "
            "between inputs is not a quadratic in one decaying exponential. Use "
            "LIF with tau_mem == 2 * tau_syn or NonLeakyIF without bias, or the event "
            "loop (spikeode.simulate)."
        )

    def safe_step_end(
        self,
        t0: Scalar,
        y0: Float[Array, "neurons state"],
        t_max: Scalar,
        refractory: Bool[Array, " neurons"],
    ) -> Scalar:
        """A time `t_end` in `(t0, t_max]` such that on `[t0, t_end]` every
        non-refractory neuron's condition crosses zero at most once, upwards, and stays
        positive afterwards. Then a sign check at the step ends cannot miss a spike.

        The default returns `t_max`, which is only safe for models whose condition
        cannot rise and fall back within a solver step; models that know where their
        voltage peaks (e.g. closed-form ones) override it.
        """
        return t_max

    def pseudodynamics(self, drive: Float[Array, "..."]) -> AbstractNeuron:
        """The model that continues after the trial end under
        [`spikeode.Pseudodynamics`][]: the same neurons with their constant drive
        replaced by `drive`, large enough that every neuron keeps firing.

        Only meaningful for models whose spikes cannot vanish inside a trial (phase
        models such as [`spikeode.QIF`][] and [`spikeode.ThetaNeuron`][]); others
        leave it unimplemented. The state carries over from the trial, refractoriness
        does not (the phase models have none).
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no pseudodynamics: its spikes can vanish inside "
            "a trial, so continuing it after the trial end would not make the loss "
            "continuous. Use QIF or ThetaNeuron."
        )

    def check(self) -> AbstractNeuron:
        """Return the model with run-time checks of its parameters attached (via
        `equinox.error_if`), e.g. that time constants are positive. Called by the
        event loop, so invalid parameters reached by training are reported too."""
        return self

"""The neuron-model contract: `AbstractNeuron` (what every model provides) and the
capabilities some models add, each an abstract class (Equinox's abstract/final
pattern): `AbstractFlowNeuron` (closed-form flow), `AbstractFirstSpikeNeuron`
(closed-form first spikes) and `AbstractPhaseNeuron` (phase models with
pseudodynamics). A concrete model is final and inherits the capabilities it has;
code that needs one checks for it with `isinstance` (`require_capability`)."""

# (No `from __future__ import annotations` in the modules that declare `eqx.AbstractVar`s:
# Equinox does not recognise stringified ones, which would become plain fields.)

import abc
import dataclasses
from typing import ClassVar, TypeVar

import equinox as eqx
import jax
from jaxtyping import Array, Bool, Float, Scalar


class ExpPolynomial(eqx.Module):
    """A model's free response as a quadratic in `x = e^{-t/tau}` (see
    [`spikeode.AbstractFirstSpikeNeuron.exp_polynomial`][]).

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
    (per neuron). Its fields are its constructor's arguments (same names, values as
    converted by the constructor), so that `dataclasses.replace(model, ...)` rebuilds
    it (see `one_neuron`).

    Between events the state follows `vector_field`, which must be free of jumps so
    that it can serve as a Diffrax `ODETerm`. A neuron spikes when its `condition`
    crosses zero from below; the loop then applies `reset` to it. A presynaptic spike
    (input or recurrent) arriving with weights `w` applies `receive(y, w)`.

    While a neuron is refractory (for `refractory_period` after its spike) the loop
    passes `refractory=True` for it to `vector_field` (and `flow`), and ignores its
    condition. The end of a refractory period is a scheduled event, so the vector field
    is smooth inside every segment. A model without refractoriness sets
    `refractory_period` to 0 (e.g. `refractory_period: ClassVar[float] = 0.0`).

    Defaulted: `safe_step_end` (the latest time up to which no threshold crossing can
    hide between two evaluations of the condition; see its docstring), `check`
    (run-time parameter checks) and `receives_while_refractory` (whether input spikes
    reach a refractory neuron: by default they do, `receive` applies to every neuron;
    a model that sets it to `False` gets zero weights for its refractory neurons, e.g.
    delta synapses, whose input would move the held voltage).

    A jump may put a neuron at or above threshold: a non-refractory neuron whose
    condition is `>= 0` at the start of a segment fires at that time (at one instant,
    the lowest index first).

    Capabilities are abstract subclasses, which a model inherits when it has them:

    - [`spikeode.AbstractFlowNeuron`][]: the closed-form solution between events
      (`flow`). Enables [`spikeode.ExactSolver`][] (the default solver of such
      models), which makes spike times exact to round-off.
    - [`spikeode.AbstractFirstSpikeNeuron`][]: the free response as a quadratic in
      one decaying exponential (`exp_polynomial`). Enables [`spikeode.first_spikes`][]
      (first spike times in closed form, no event loop).
    - [`spikeode.AbstractPhaseNeuron`][]: a phase model, whose spikes cannot vanish
      inside a trial, with `pseudodynamics`. Enables [`spikeode.Pseudodynamics`][].
    """

    num_neurons: eqx.AbstractVar[int]
    refractory_period: eqx.AbstractVar[Float[Array, "..."]]
    # whether input spikes reach a neuron during its refractory period
    receives_while_refractory: ClassVar[bool] = True

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
        voltage peaks (e.g. closed-form ones) override it. Without it a crossing that
        goes up and back down inside one solver step can be missed, so bound the
        solver's step (e.g. `diffrax.PIDController(dtmax=...)`).
        """
        return t_max

    def check(self) -> "AbstractNeuron":
        """Return the model with run-time checks of its parameters attached (via
        `equinox.error_if`), e.g. that time constants are positive. Called by the
        event loop, so invalid parameters reached by training are reported too."""
        return self

    def one_neuron(self, i=0) -> "AbstractNeuron":
        """Neuron `i` of the population as a model of its own (`num_neurons == 1`):
        the model rebuilt by its constructor (`dataclasses.replace`, which passes the
        fields as the constructor's arguments) with `num_neurons=1` and each
        per-neuron parameter (an array of shape `(num_neurons,)`) replaced by its entry
        `i`; shared parameters stay as they are. The per-neuron, windowed and
        event-driven loops take their one-neuron model's structure from it."""
        n = self.num_neurons
        pick = lambda x: x[i] if eqx.is_array(x) and x.shape == (n,) else x
        return dataclasses.replace(jax.tree_util.tree_map(pick, self), num_neurons=1)


class AbstractFlowNeuron(AbstractNeuron):
    """A neuron model with a closed-form solution between events (`flow`).

    [`spikeode.simulate`][] integrates such models with [`spikeode.ExactSolver`][] by
    default (spike times exact to round-off); the windowed and event-driven loops need
    it. Models without a flow are integrated by a numerical Diffrax solver.
    """

    @abc.abstractmethod
    def flow(
        self,
        t0: Scalar,
        y0: Float[Array, "neurons state"],
        t1: Scalar,
        refractory: Bool[Array, " neurons"],
    ) -> Float[Array, "neurons state"]:
        """Closed-form solution of `vector_field` from `(t0, y0)` to `t1` (no event in
        between; refractory neurons as in `vector_field`)."""


class AbstractFirstSpikeNeuron(AbstractNeuron):
    """A neuron model whose first spike times have a closed form: its free response is
    a quadratic in one decaying exponential (`exp_polynomial`). Enables
    [`spikeode.first_spikes`][] and [`spikeode.nn.FirstSpikeLayer`][]."""

    @abc.abstractmethod
    def exp_polynomial(self) -> ExpPolynomial:
        """The model's free response as a quadratic in one decaying exponential, for
        [`spikeode.first_spikes`][].

        Starting at rest at `t0`, each input spike of weight `w` at `t_i` and the
        constant drive add to the state terms of the form `c e^{-j (t - s)/tau}` with
        `j` in `{0, 1, 2}` (and nothing else); they are returned as an
        [`spikeode.neurons.ExpPolynomial`][]. Then the voltage between two inputs is
        `c0 + c1 x + c2 x^2` in `x = e^{-t/tau}`, and its first threshold crossing is a
        root of a quadratic. A model for which this holds only for some parameters
        (e.g. `LIF` with `tau_mem == 2 tau_syn`) raises here otherwise, also inside
        `jit` (via `equinox.error_if`). The first spike's threshold is the model's
        `threshold`.
        """


class AbstractPhaseNeuron(AbstractNeuron):
    """A phase model: its spikes move continuously with the parameters and cannot
    vanish inside a trial, only leave or enter it at its end (e.g. [`spikeode.QIF`][]
    and [`spikeode.ThetaNeuron`][]). It provides `pseudodynamics`, which
    [`spikeode.Pseudodynamics`][] runs after the trial end."""

    @abc.abstractmethod
    def pseudodynamics(self, drive: Float[Array, "..."]) -> "AbstractPhaseNeuron":
        """The model that continues after the trial end under
        [`spikeode.Pseudodynamics`][]: the same neurons with their constant drive
        replaced by `drive`, large enough that every neuron keeps firing. The state
        carries over from the trial, refractoriness does not (the phase models have
        none)."""


_Capability = TypeVar("_Capability", bound=AbstractNeuron)

_MISSING = {
    AbstractFlowNeuron: "has no closed-form flow.",
    AbstractFirstSpikeNeuron: (
        "has no closed-form first spike time: its voltage between inputs is not a "
        "quadratic in one decaying exponential. Use LIF with tau_mem == 2 * tau_syn or "
        "NonLeakyIF without bias, or the event loop (spikeode.simulate)."
    ),
    AbstractPhaseNeuron: (
        "has no pseudodynamics: its spikes can vanish inside a trial, so continuing it "
        "after the trial end would not make the loss continuous. Use QIF or ThetaNeuron."
    ),
}


def require_capability(neuron: AbstractNeuron, capability: type[_Capability]) -> _Capability:
    """`neuron`, after checking that it has `capability` (one of the capability
    classes: `AbstractFlowNeuron`, `AbstractFirstSpikeNeuron`, `AbstractPhaseNeuron`);
    otherwise a `TypeError` naming the model and what it lacks."""
    if not isinstance(neuron, capability):
        raise TypeError(
            f"{type(neuron).__name__} {_MISSING[capability]} (It is not an "
            f"{capability.__name__}.)"
        )
    return neuron

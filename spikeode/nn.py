"""Equinox layers: feed-forward and recurrent layers built on the event loop, a
feed-forward layer of closed-form first spikes, and `Sequential`."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._first_spike import first_spikes
from ._loops import AbstractLoop
from ._simulate import simulate
from ._simulation import Simulation
from ._spikes import SpikeTrain
from ._synapses import Synapses
from ._typing import RealScalarLike
from .neurons import AbstractFirstSpikeNeuron, AbstractNeuron, LIF
from .neurons._base import require_capability


def _population(layer: str, neuron, num_neurons: int, dtype):
    """The layer's neuron model (default `LIF`), checked, and the weights' dtype."""
    neuron = LIF(num_neurons) if neuron is None else neuron
    if neuron.num_neurons != num_neurons:
        raise ValueError(
            f"{layer}: neuron model has {neuron.num_neurons} neurons, expected {num_neurons}."
        )
    return neuron, jnp.result_type(float) if dtype is None else dtype


def _delays(delays, dtype):
    """Delays as a floating array of `dtype`, or `None`."""
    return None if delays is None else jnp.asarray(delays, dtype)


def _init_weight(key, shape, mean, std, dtype):
    return mean + std * jax.random.normal(key, shape, dtype)


class _AbstractLayer(eqx.Module):
    """A population driven by input spikes; `__call__` runs the event loop."""

    neuron: eqx.AbstractVar[AbstractNeuron]
    w_in: eqx.AbstractVar[Float[Array, "inputs neurons"]]
    input_delays: eqx.AbstractVar[Float[Array, "..."] | None]
    max_spikes: eqx.AbstractVar[int]
    loop: eqx.AbstractVar[AbstractLoop | None]

    def _connections(self) -> dict[str, Any]:
        """The recurrent connections of `simulate` (none for a feed-forward layer)."""
        return {}

    def __call__(
        self, inputs: SpikeTrain, t1: RealScalarLike, *, t0: RealScalarLike = 0.0, **kwargs: Any
    ) -> Simulation:
        """Simulate the layer on one input train over `[t0, t1]`.

        **Arguments:**

        - `inputs`: an unbatched [`spikeode.SpikeTrain`][] (use `jax.vmap` for batches).
        - `t1`, `t0`: the time window.
        - `**kwargs`: passed to [`spikeode.simulate`][] (`solver`, `save_ts`, `y0`,
          `root_finder`, `throw`, ...).

        **Returns:** the layer's [`spikeode.Simulation`][].
        """
        if inputs.num_neurons != self.w_in.shape[0]:
            raise ValueError(
                f"{type(self).__name__}: inputs have {inputs.num_neurons} neurons but "
                f"the layer expects {self.w_in.shape[0]}."
            )
        return simulate(
            self.neuron,
            t1,
            inputs,
            self.w_in,
            t0=t0,
            max_spikes=self.max_spikes,
            input_delays=self.input_delays,
            **self._connections(),
            **({"loop": self.loop} | kwargs),
        )


class SpikingLayer(_AbstractLayer):
    """A feed-forward layer: input spikes reach `num_neurons` neurons through `w_in`.

    **Arguments:**

    - `num_inputs`, `num_neurons`: sizes.
    - `max_spikes`: capacity of the layer's output spike buffer.
    - `loop`: the loop of every call ([`spikeode.AbstractLoop`][]; default: `simulate`'s
      choice, the coupled loop here). [`spikeode.PerNeuronLoop`][] simulates each
      neuron by its own loop (the neurons of a feed-forward layer are independent):
      the same spikes and gradients, much faster for wide layers.
    - `neuron`: the model (default `LIF(num_neurons)` with its defaults).
    - `w_mean`, `w_std`: the input weights are drawn from a normal distribution
      with this mean and standard deviation.
    - `input_delays`: transmission delays of the inputs (trainable; broadcast against
      `w_in` as in [`spikeode.simulate`][]), or `None`.
    - `dtype`: floating dtype of the weights (default: JAX's default float).
    - `key`: a JAX PRNG key.
    """

    neuron: AbstractNeuron
    w_in: Float[Array, "inputs neurons"]
    input_delays: Float[Array, "..."] | None
    max_spikes: int = eqx.field(static=True)
    loop: AbstractLoop | None

    def __init__(
        self,
        num_inputs: int,
        num_neurons: int,
        *,
        max_spikes: int,
        loop: AbstractLoop | None = None,
        neuron: AbstractNeuron | None = None,
        w_mean: float | int = 0.0,
        w_std: float | int = 1.0,
        input_delays: ArrayLike | None = None,
        dtype=None,
        key: PRNGKeyArray,
    ):
        self.neuron, dtype = _population("SpikingLayer", neuron, num_neurons, dtype)
        self.w_in = _init_weight(key, (num_inputs, num_neurons), w_mean, w_std, dtype)
        self.input_delays = _delays(input_delays, dtype)
        self.max_spikes = max_spikes
        self.loop = loop


class RecurrentLayer(_AbstractLayer):
    """A recurrently connected population: input weights `w_in` and recurrent weights
    `w_rec[pre, post]` (self-connections included; set the diagonal to 0 to remove
    them), or sparse recurrent [`spikeode.Synapses`][] with their own delays.

    **Arguments:** as [`spikeode.nn.SpikingLayer`][], plus `w_rec_mean` and `w_rec_std`
    for the recurrent weights; `synapses` (a [`spikeode.Synapses`][] used instead of a
    random dense `w_rec`); `delays` (trainable recurrent delays of a dense `w_rec`,
    broadcast against it); `loop` (the loop of every call, e.g.
    [`spikeode.WindowedLoop`][] with its window and capacities; default
    `simulate`'s choice).
    """

    neuron: AbstractNeuron
    w_in: Float[Array, "inputs neurons"]
    w_rec: Float[Array, "neurons neurons"] | Synapses
    delays: Float[Array, "..."] | None
    input_delays: Float[Array, "..."] | None
    max_spikes: int = eqx.field(static=True)
    loop: AbstractLoop | None

    def __init__(
        self,
        num_inputs: int,
        num_neurons: int,
        *,
        max_spikes: int,
        neuron: AbstractNeuron | None = None,
        w_mean: float | int = 0.0,
        w_std: float | int = 1.0,
        w_rec_mean: float | int = 0.0,
        w_rec_std: float | int = 0.1,
        synapses: Synapses | None = None,
        delays: ArrayLike | None = None,
        input_delays: ArrayLike | None = None,
        loop: AbstractLoop | None = None,
        dtype=None,
        key: PRNGKeyArray,
    ):
        self.neuron, dtype = _population("RecurrentLayer", neuron, num_neurons, dtype)
        k1, k2 = jax.random.split(key)
        self.w_in = _init_weight(k1, (num_inputs, num_neurons), w_mean, w_std, dtype)
        if synapses is not None:
            if delays is not None:
                raise ValueError(
                    "RecurrentLayer: `synapses` carry their own delays; do not pass "
                    "`delays` too."
                )
            if (synapses.num_pre, synapses.num_post) != (num_neurons, num_neurons):
                raise ValueError(
                    f"RecurrentLayer: `synapses` connect {synapses.num_pre} -> "
                    f"{synapses.num_post} neurons; expected {num_neurons} -> {num_neurons}."
                )
            self.w_rec = synapses
        else:
            self.w_rec = _init_weight(
                k2, (num_neurons, num_neurons), w_rec_mean, w_rec_std, dtype
            )
        self.delays = _delays(delays, dtype)
        self.input_delays = _delays(input_delays, dtype)
        self.max_spikes = max_spikes
        self.loop = loop

    def _connections(self):
        return dict(w_rec=self.w_rec, delays=self.delays)


class FirstSpikeLayer(eqx.Module):
    """A feed-forward layer whose neurons fire at most once, with the spike times in
    closed form ([`spikeode.first_spikes`][]: no event loop, much faster). The
    model must have a closed-form first spike time: [`spikeode.LIF`][] with
    `tau_mem = 2 tau_syn` (the default here, as in Goeltz et al. 2021) or
    [`spikeode.NonLeakyIF`][] without bias (Mostafa 2017).

    **Arguments:** `num_inputs`, `num_neurons`, `neuron` (default
    `LIF(num_neurons, tau_mem=20e-3, tau_syn=10e-3)`), `w_mean`, `w_std`, `dtype`,
    `key`, as for [`spikeode.nn.SpikingLayer`][].
    """

    neuron: AbstractNeuron
    w_in: Float[Array, "inputs neurons"]

    def __init__(
        self,
        num_inputs: int,
        num_neurons: int,
        *,
        neuron: AbstractNeuron | None = None,
        w_mean: float | int = 0.0,
        w_std: float | int = 1.0,
        dtype=None,
        key: PRNGKeyArray,
    ):
        if neuron is None:
            neuron = LIF(num_neurons, tau_mem=20e-3, tau_syn=10e-3)
        self.neuron, dtype = _population("FirstSpikeLayer", neuron, num_neurons, dtype)
        require_capability(self.neuron, AbstractFirstSpikeNeuron).exp_polynomial()  # fails now
        self.w_in = _init_weight(key, (num_inputs, num_neurons), w_mean, w_std, dtype)

    def __call__(
        self, inputs: SpikeTrain, t1: RealScalarLike, *, t0: RealScalarLike = 0.0
    ) -> Simulation:
        """Each neuron's first spike on one input train over `[t0, t1]`.

        **Returns:** the layer's [`spikeode.Simulation`][] (see
        [`spikeode.first_spikes`][]).
        """
        return first_spikes(self.neuron, t1, inputs, self.w_in, t0=t0)


class Sequential(eqx.Module):
    """Layers applied one after another, each to the previous layer's output spikes.

    Calling it returns the tuple of every layer's [`spikeode.Simulation`][], so that
    losses and regularisers can use hidden activity; the output is the last one.
    """

    layers: tuple[_AbstractLayer | FirstSpikeLayer, ...]

    def __init__(self, layers):
        self.layers = tuple(layers)
        for a, b in zip(self.layers[:-1], self.layers[1:]):
            if a.neuron.num_neurons != b.w_in.shape[0]:
                raise ValueError(
                    f"Sequential: a layer of {a.neuron.num_neurons} neurons feeds one "
                    f"expecting {b.w_in.shape[0]} inputs."
                )

    def __call__(
        self, inputs: SpikeTrain, t1: RealScalarLike, *, t0: RealScalarLike = 0.0, **kwargs: Any
    ) -> tuple[Simulation, ...]:
        """Run all layers on one input train; `**kwargs` go to every layer."""
        out = []
        spikes = inputs
        for layer in self.layers:
            sim = layer(spikes, t1, t0=t0, **kwargs)
            out.append(sim)
            spikes = sim.spikes
        return tuple(out)

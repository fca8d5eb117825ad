"""The neuron contract: capabilities as abstract classes (closed-form flow, closed-form
first spikes, phase models with pseudodynamics), fields named as the constructor's
arguments, and the one-neuron model the per-neuron loops are built from."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import CAPABILITIES, MODELS

import spikeode as so
from spikeode._segment import _one_neuron_model, lane_models
from spikeode._solver import default_solver
from spikeode.neurons import AbstractQIF, ClosedFormQIF, GeneralQIF

N = 3  # (the models of helpers.MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_capabilities_and_default_solver(name):
    model, has = MODELS[name]
    assert isinstance(model, so.AbstractNeuron)
    assert tuple(int(isinstance(model, c)) for c in CAPABILITIES) == has
    # ExactSolver by default exactly for the models with a closed-form flow
    expected = so.ExactSolver if has[0] else diffrax.Tsit5
    assert isinstance(default_solver(model), expected)
    # every model has a refractory period (0 for the phase models)
    assert jnp.shape(model.refractory_period) in ((), (N,))
    if has[2]:
        assert float(model.refractory_period) == 0.0


@pytest.mark.parametrize("name", MODELS)
def test_fields_are_constructor_arguments(name):
    model = MODELS[name][0]
    again = dataclasses.replace(model)  # the constructor, called with the fields
    assert type(again) is type(model)
    assert jax.tree_util.tree_structure(again) == jax.tree_util.tree_structure(model)
    for a, b in zip(jax.tree_util.tree_leaves(again), jax.tree_util.tree_leaves(model)):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


@pytest.mark.parametrize("name", MODELS)
def test_one_neuron_template_is_the_vmapped_slice(name):
    model = MODELS[name][0]
    single, axes = _one_neuron_model(model)
    assert single.num_neurons == 1 and type(single) is type(model)
    # the template carries the population's leaves, mapped over `axes`
    for a, b in zip(jax.tree_util.tree_leaves(single), jax.tree_util.tree_leaves(model)):
        assert a is b
    for i in range(N):
        lane = jax.tree_util.tree_map(lambda x, ax: x if ax is None else x[i], single, axes)
        own = model.one_neuron(i)
        assert jax.tree_util.tree_structure(lane) == jax.tree_util.tree_structure(own)
        for a, b in zip(jax.tree_util.tree_leaves(lane), jax.tree_util.tree_leaves(own)):
            np.testing.assert_array_equal(a, b)
    # ... also inside jit, and `lanes_of` gathers neurons
    _, _, lanes_of = lane_models(model)
    lanes = jax.jit(lambda m: lanes_of(_one_neuron_model(m)[0], jnp.array([2, 0])))(model)
    for x, ax, y in zip(
        jax.tree_util.tree_leaves(lanes),
        jax.tree_util.tree_leaves(axes, is_leaf=lambda x: x is None),
        jax.tree_util.tree_leaves(model),
    ):
        np.testing.assert_array_equal(x, y if ax is None else y[jnp.array([2, 0])])


def test_one_neuron_model_on_a_model_whose_constructor_does_not_take_its_fields():
    class Hidden(so.AbstractNeuron):
        num_neurons: int = eqx.field(static=True)
        tau_: jax.Array
        refractory_period: ClassVar[float] = 0.0

        def __init__(self, num_neurons, tau=1.0):
            self.num_neurons, self.tau_ = num_neurons, jnp.asarray(tau)

        state_size = 1
        init_state = vector_field = condition = reset = receive = lambda *a: None

    with pytest.raises(TypeError, match="must accept the model's fields"):
        _one_neuron_model(Hidden(2))


def test_a_model_must_state_its_refractory_period():
    def make(refractory):
        class Model(so.AbstractNeuron):
            num_neurons: int = eqx.field(static=True)
            if refractory:
                refractory_period: ClassVar[float] = 0.0

            def __init__(self, num_neurons):
                self.num_neurons = num_neurons

            state_size = 1
            init_state = vector_field = condition = reset = receive = lambda *a: None

        return Model(2)

    assert make(True).refractory_period == 0.0
    with pytest.raises(TypeError, match="refractory_period"):
        make(False)


def test_renamed_fields():
    eif = so.ExpIF(2, v_peak=jnp.array([2.0, 3.0]))
    np.testing.assert_array_equal(eif.v_peak, eif.threshold)  # the event threshold
    assert "v_peak" in {f.name for f in dataclasses.fields(eif)}
    assert "threshold" not in {f.name for f in dataclasses.fields(eif)}
    lif = eqx.tree_at(lambda m: m.refractory_period, so.LIF(2), jnp.asarray(1e-3))
    assert float(lif.refractory_period) == 1e-3
    general = so.QIF(2, bias=0.5)
    assert {f.name for f in dataclasses.fields(general)} == {
        "num_neurons", "tau_mem", "tau_syn", "bias"
    }  # fmt: skip
    np.testing.assert_allclose(general.tau_syn, 0.5)  # default tau_mem / 2


def test_qif_builds_the_closed_form_or_the_general_model():
    exact = so.QIF(2, tau_mem=2.0)
    assert type(exact) is ClosedFormQIF and isinstance(exact, AbstractQIF)
    assert float(exact.tau_syn) == 1.0 and float(exact.bias) == 0.0
    for kw in (dict(bias=0.0), dict(tau_syn=1.0), dict(tau_syn=1.0, bias=0.3)):
        general = so.QIF(2, tau_mem=2.0, **kw)
        assert type(general) is GeneralQIF and isinstance(general, AbstractQIF)
        assert not isinstance(general, so.AbstractFlowNeuron)
    # the pseudodynamics of the closed-form model has a bias: the general model,
    # integrated numerically
    after = exact.pseudodynamics(1.0)
    assert type(after) is GeneralQIF and float(after.bias) == 1.0
    np.testing.assert_allclose(after.tau_syn, 1.0)
    assert isinstance(default_solver(after), diffrax.Tsit5)


def test_missing_capabilities_are_named():
    inputs = so.SpikeTrain.from_lists([[0.01]])
    w = jnp.ones((1, N))
    for model in (MODELS["AlphaIF"][0], MODELS["QIF"][0]):
        name = type(model).__name__
        with pytest.raises(TypeError, match=f"{name} has no closed-form first spike time"):
            so.first_spikes(model, 0.1, inputs, w)
        with pytest.raises(TypeError, match="AbstractFirstSpikeNeuron"):
            so.nn.FirstSpikeLayer(1, N, neuron=model, key=jax.random.key(0))
    for model in (MODELS["LIF"][0], MODELS["ExpIF"][0]):
        name = type(model).__name__
        with pytest.raises(TypeError, match=f"{name} has no pseudodynamics.*AbstractPhaseNeuron"):
            so.simulate(model, 0.1, max_spikes=2, pseudodynamics=so.Pseudodynamics(0.05))

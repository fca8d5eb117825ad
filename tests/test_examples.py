"""The worked example of writing a new neuron model stays correct."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def new_neuron(load_example):
    return load_example("new_neuron")


def test_new_neuron_recipe_spike_times_and_gradients(new_neuron):
    """The Izhikevich example: spike times against SciPy DOP853 and gradients against
    finite differences, as the recipe in docs/models.md prescribes."""
    err, count = new_neuron.spike_time_error()
    assert count >= 10
    assert err <= 1e-8
    report = new_neuron.gradient_report()
    assert report.passed and report.max_rel_error <= 1e-6, report

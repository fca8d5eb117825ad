"""The worked example of writing a new neuron model stays correct."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def new_neuron():
    spec = importlib.util.spec_from_file_location("new_neuron", EXAMPLES / "new_neuron.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["new_neuron"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_new_neuron_recipe_spike_times_and_gradients(new_neuron):
    """The Izhikevich example: spike times against SciPy DOP853 and gradients against
    finite differences, as the recipe in docs/models.md prescribes."""
    err, count = new_neuron.spike_time_error()
    assert count >= 10
    assert err <= 1e-8
    report = new_neuron.gradient_report()
    assert report.passed and report.max_rel_error <= 1e-6, report

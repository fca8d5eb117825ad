"""Reproductions of published results stay correct (their `--fast` modes)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def mostafa(load_example):
    return load_example("mostafa").run(fast=True)


def test_mostafa_closed_form_and_event_loop_gradients_agree(mostafa):
    """Mostafa (2017): the z-domain closed form (plain JAX) and spikeode's event loop
    give the same loss and gradients at initialisation, in float64."""
    for task in ("xor", "digits"):
        r = mostafa[task]
        assert r["init_grad_rel_diff"] <= 1e-9, (task, r["init_grad_rel_diff"])
        assert abs(r["init_loss"]["closed_form"] - r["init_loss"]["event_loop"]) <= 1e-9
        assert r["init_zout_max_abs_diff"] <= 1e-8
    ref = mostafa["digits"]["hidden_times_vs_numpy_closed_form"]
    assert ref["same_silent_neurons"] and ref["max_abs_diff"] <= 1e-10
    assert mostafa["digits"]["hidden_fraction_firing_at_init"] > 0.5


def test_mostafa_xor_training_reduces_the_loss(mostafa):
    xor = mostafa["xor"]
    for path in ("closed_form", "event_loop"):
        loss = xor["loss"][path]
        assert loss[-1] < 0.5 * loss[0], (path, loss[0], loss[-1])
    # both paths follow the same trajectory
    assert max(
        abs(a - b) for a, b in zip(xor["loss"]["closed_form"], xor["loss"]["event_loop"])
    ) <= 1e-6

"""Mostafa (2017) reproduced: the example's `--fast` mode stays correct."""

from __future__ import annotations

import pytest

# the examples' training runs (about a minute): in `make test-slow` and `make reproduce`
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mostafa(load_example):
    return load_example("mostafa").run(fast=True)


def test_mostafa_closed_form_and_event_loop_gradients_agree(mostafa):
    """Mostafa (2017): the z-domain closed form (plain JAX), spikeode's event loop
    and spikeode's closed-form layers (`first_spikes`) give the same loss and
    gradients at initialisation, in float64."""
    for task in ("xor", "digits"):
        r = mostafa[task]
        for suffix, path in (("", "closed_form"), ("_first_spikes", "first_spikes")):
            assert r["init_grad_rel_diff" + suffix] <= 1e-9, (task, path, r)
            assert abs(r["init_loss"][path] - r["init_loss"]["event_loop"]) <= 1e-9
            assert r["init_zout_max_abs_diff" + suffix] <= 1e-8
    ref = mostafa["digits"]["hidden_times_vs_numpy_closed_form"]
    assert ref["same_silent_neurons"] and ref["max_abs_diff"] <= 1e-10
    assert mostafa["digits"]["hidden_fraction_firing_at_init"] > 0.5


def test_mostafa_xor_training_reduces_the_loss(mostafa):
    xor = mostafa["xor"]
    for path in ("closed_form", "event_loop", "first_spikes"):
        loss = xor["loss"][path]
        assert loss[-1] < 0.5 * loss[0], (path, loss[0], loss[-1])
        # all paths follow the same trajectory
        assert max(abs(a - b) for a, b in zip(loss, xor["loss"]["event_loop"])) <= 1e-6

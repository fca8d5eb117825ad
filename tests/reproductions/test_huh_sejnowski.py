"""Huh & Sejnowski (2018) reproduction (examples/huh_sejnowski.py) in its `--fast`
mode: training through the smooth gated network (gradients of batches of trials from
`RecursiveCheckpointAdjoint`, vmapped) lowers the losses of the delayed-XOR and
predictive-coding tasks, and the continuous adjoint's (`BacksolveAdjoint`) gradient
of the task loss agrees with backpropagation through the solver."""

from __future__ import annotations

import math

import pytest

# a training run of the example (about 30 s): in `make test-slow`
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hs(load_example):
    return load_example("huh_sejnowski").run(fast=True)


def test_xor_training_lowers_the_loss(hs):
    """A few Adam steps on a fixed batch of delayed-XOR trials (one second each)
    lower its loss (measured again with the final parameters)."""
    x = hs["runs"][0]["xor"]
    assert all(math.isfinite(v) for v in x["loss"])
    assert x["final_batch_loss"] < 0.9 * x["loss"][0], (x["loss"][0], x["final_batch_loss"])


def test_predictive_coding_error_falls(hs):
    """The held-out reconstruction error (relative to the signal's mean square) falls
    during training, and so does the training loss."""
    p = hs["runs"][0]["predictive_coding"]
    assert p["heldout_rel_error"] < 0.9 * p["heldout_rel_error_init"], (
        p["heldout_rel_error_init"], p["heldout_rel_error"])
    assert p["final_batch_loss"] < 0.85 * p["loss"][0], (p["loss"][0], p["final_batch_loss"])


def test_backsolve_gradient_matches_checkpointed_backprop(hs):
    """`diffrax.BacksolveAdjoint` (the continuous adjoint used for training) against
    `diffrax.RecursiveCheckpointAdjoint` on the XOR loss of one trial, float64,
    rtol = atol = 1e-10: max |difference| / max |gradient| over U, W, O and b."""
    g = hs["gradient_check"]
    assert abs(g["loss_backsolve"] - g["loss_checkpoint"]) <= 1e-9 * abs(g["loss_checkpoint"])
    assert g["rel_diff"] <= BOUND, g["rel_diff"]
    # at the (loose) training tolerance both are within a few per cent of the tight
    # reference
    assert g["rel_diff_training_tolerance"] <= 0.05, g["rel_diff_training_tolerance"]
    assert g["rel_diff_checkpoint_training_tolerance"] <= 0.05, g


def test_summary_over_seeds(hs):
    """The per-seed figures are collected in the summary (one seed in fast mode), and
    a trial within the tolerance all over the response window is also a correct
    decision (so the fraction within cannot exceed the accuracy)."""
    s, x = hs["summary"], hs["runs"][0]["xor"]
    assert s["xor_heldout_accuracy"]["per_seed"] == [x["heldout_accuracy"]]
    assert s["xor_heldout_within"]["per_seed"] == [x["heldout_within"]]
    assert 0.0 <= x["heldout_within"] <= x["heldout_accuracy"]


BOUND = 1e-5

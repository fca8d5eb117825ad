"""`fit` and `evaluate_checkpoint`: the training job, with results on disk."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any, TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from ..data import TASKS
from ._config import TrainConfig
from ._trainer import _take, _Trainer, read_checkpoint_meta

if TYPE_CHECKING:
    from ..data import Task


# ----------------------------------------------------------------------------------
def _setup_jax(dtype: str):

    jax.config.update("jax_enable_x64", dtype == "float64")
    return jax


def _load(task, config: TrainConfig, dtype):
    (x_train, y_train), (x_test, y_test) = task.load(dtype)
    if config.train_samples:
        x_train, y_train = _take((x_train, y_train), slice(0, config.train_samples))
    if config.test_samples:
        x_test, y_test = _take((x_test, y_test), slice(0, config.test_samples))
    return (x_train, np.asarray(y_train)), (x_test, np.asarray(y_test))


def _load_validation(task, config: TrainConfig, dtype):
    """The task's validation split (limited to `validation_samples`), or `None`."""
    if task.load_validation is None:
        return None
    x_val, y_val = task.load_validation(dtype)
    if config.validation_samples:
        x_val, y_val = _take((x_val, y_val), slice(0, config.validation_samples))
    return x_val, np.asarray(y_val)


def fit(
    config: TrainConfig,
    *,
    task: Task | None = None,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train `config`'s network on its task, writing to `config.out`:
    `config.json`, `metrics.jsonl` (one line per epoch), `checkpoint.{eqx,json}`
    (written atomically after every epoch; it holds the latest and the selected
    parameters), `results.json` and PNG plots.

    The result is the parameters of the epoch chosen by `config.select`: with
    `"validation"`, the epoch with the best accuracy on the task's validation split
    (never the test split); `results.json` reports that epoch's test accuracy as
    `test_acc`, with `selected` (the epoch, its metrics and the rule) and
    `final_test_acc` (the last epoch's).

    **Arguments:**

    - `config`: a [`spikeode.train.TrainConfig`][].
    - `task`: the data to train on, e.g. your own spike trains and labels by
      [`spikeode.data.Task.from_data`][] (`config.task` must be its name); default
      the registered task `spikeode.data.TASKS[config.task]`.
    - `resume`: continue from `config.out/checkpoint` if it exists (the result is
      identical to an uninterrupted run).
    - `progress`: show a progress bar.
    - `log`: where to print messages.

    **Returns:** the final results (also in `results.json`).
    """
    config.validate(task)
    _setup_jax(config.dtype)

    os.makedirs(config.out, exist_ok=True)
    task = TASKS[config.task] if task is None else task
    dtype = jnp.dtype(config.dtype)
    (x_train, y_train), (x_test, y_test) = _load(task, config, dtype)
    val = _load_validation(task, config, dtype) if config.select == "validation" else None
    rule = "validation" if val is not None else "last"
    steps = len(y_train) // config.batch_size
    if steps == 0:
        raise ValueError(
            f"batch_size {config.batch_size} exceeds the {len(y_train)} training samples"
        )
    trainer = _Trainer(config, x_train.num_neurons, task.num_classes, steps)
    devices = trainer.devices
    log(f"{config.task}: {steps} steps of {config.batch_size} samples per epoch, each "
        f"batch split over {devices} device(s)")
    ckpt = os.path.join(config.out, "checkpoint")
    metrics_path = os.path.join(config.out, "metrics.jsonl")
    start_epoch, history = 0, []
    if resume and os.path.exists(ckpt + ".json"):
        start_epoch, history = trainer.load(ckpt)
        log(f"resumed from {ckpt} after epoch {start_epoch}")
    with open(os.path.join(config.out, "config.json"), "w") as f:
        json.dump(config.to_json(), f, indent=1)
    with open(metrics_path, "w") as f:  # rewritten from the checkpoint's history
        for row in history:
            f.write(json.dumps(row) + "\n")

    y_test_j = jnp.asarray(y_test)
    bar_factory = None
    if progress:
        try:
            from tqdm import tqdm as bar_factory
        except ImportError:
            bar_factory = None
    wall = time.perf_counter()
    for epoch in range(start_epoch, config.epochs):
        t_epoch = time.perf_counter()
        bar = (
            bar_factory(total=steps, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False)
            if bar_factory
            else None
        )
        seen_loss, seen_acc, first_call = [], [], []

        def on_chunk(loss, acc):
            if not first_call:
                first_call.append(time.perf_counter() - t_epoch)
            seen_loss.extend(loss)
            seen_acc.extend(acc)
            if bar is not None:
                bar.update(len(loss))
                bar.set_postfix(loss=f"{np.mean(seen_loss[-20:]):.3f}",
                                acc=f"{np.mean(seen_acc[-20:]):.3f}")  # fmt: skip

        losses, accs = trainer.train_epoch(x_train, y_train, epoch, on_chunk)
        if bar is not None:
            bar.close()
        train_time = time.perf_counter() - t_epoch
        row = dict(
            epoch=epoch + 1,
            train_loss=float(np.mean(losses)),
            train_acc=float(np.mean(accs)),
        )
        if val is not None:
            val_loss, val_acc = trainer.evaluate(val[0], jnp.asarray(val[1]))
            row.update(val_loss=float(val_loss), val_acc=float(val_acc))
        test_loss, test_acc, silent = trainer.evaluate(x_test, y_test_j, activity=True)
        row.update(
            test_loss=float(test_loss),
            test_acc=float(test_acc),
            hidden_silent=float(silent),
            epoch_seconds=train_time,
            first_call_seconds=first_call[0],
        )
        chosen = trainer.select(row, rule)
        history.append(row)
        with open(metrics_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        trainer.save(ckpt, epoch + 1, history)
        val_text = (
            f"val acc {row['val_acc']:.4f}{' *' if chosen else '  '} | " if val is not None else ""
        )
        log(
            f"epoch {epoch + 1:3d}: train loss {row['train_loss']:.4f} acc "
            f"{row['train_acc']:.4f} | {val_text}test loss {row['test_loss']:.4f} acc "
            f"{row['test_acc']:.4f} | silent hidden {100 * row['hidden_silent']:.0f} % | "
            f"{train_time:.1f} s"
        )
    selected = trainer.selected
    if selected is not None and rule == "validation":
        log(
            f"selected epoch {selected['epoch']} ({selected['rule']}): val acc "
            f"{selected['val_acc']:.4f}, test acc {selected['test_acc']:.4f}"
        )
    results = dict(
        task=config.task,
        test_acc=selected["test_acc"] if selected else None,
        test_loss=selected["test_loss"] if selected else None,
        selected=selected,
        final_test_acc=history[-1]["test_acc"] if history else None,
        epochs=len(history),
        devices=devices,
        wall_seconds=time.perf_counter() - wall,
        out=os.path.abspath(config.out),
        config=config.to_json(),
    )
    with open(os.path.join(config.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    try:
        from ._plots import write_plots

        write_plots(config, trainer, history, x_test, y_test)
    except ImportError:
        log("matplotlib is not installed: no plots (pip install spikeode[plot])")
    return results


def evaluate_checkpoint(path: str, task: Task | None = None) -> dict[str, Any]:
    """Evaluate a checkpoint's selected parameters (see `TrainConfig.select`) on its
    task's test split (`task`: the user's task it was trained on, as for `fit`)."""
    meta = read_checkpoint_meta(path)
    config = TrainConfig.from_json(meta["config"]).validate(task)
    _setup_jax(config.dtype)

    task = TASKS[config.task] if task is None else task
    (x_train, y_train), (x_test, y_test) = _load(task, config, jnp.dtype(config.dtype))
    steps = max(len(y_train) // config.batch_size, 1)
    trainer = _Trainer(config, x_train.num_neurons, task.num_classes, steps)
    epoch, _ = trainer.load(path.rsplit(".", 1)[0] if path.endswith((".json", ".eqx")) else path)
    loss, acc = trainer.evaluate_selected(x_test, jnp.asarray(y_test))
    selected = trainer.selected or {}
    return dict(
        task=config.task, epoch=selected.get("epoch", epoch), trained_epochs=epoch,
        rule=selected.get("rule"), test_loss=float(loss), test_acc=float(acc),
    )

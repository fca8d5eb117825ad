"""A training run's state, its compiled steps, epochs of minibatches and checkpoints."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.sharding import PartitionSpec

from .._spikes import SpikeTrain
from ._config import TrainConfig
from ._model import (
    _batch_loss,
    _bump_silent,
    _fired,
    _sample_losses,
    build_model,
    optimiser,
    trainable_filter,
)
from ._parallel import _chunk_size, _data_parallel, _largest_divisor, _replicated, num_devices

CHECKPOINT_FORMAT = 2


# The compiled steps: the static part of the model and the configuration (minus
# fields that do not affect the computation) are static arguments, so every trainer
# with the same network shares one compilation.
@eqx.filter_jit
def _train_steps(params, opt_state, xs, ys, static, config, steps_per_epoch):
    # one optimiser step per batch (xs[k], ys[k]), as one lax.scan; with several
    # devices the scan runs on each, over its share of every batch, and the
    # shares' means and silent neurons are combined at every step
    d = num_devices(config)
    opt = optimiser(config, steps_per_epoch)

    def steps(params, opt_state, xs, ys):
        def step(carry, batch):
            params, opt_state = carry
            (loss, (acc, fired)), grads = jax.value_and_grad(_batch_loss, has_aux=True)(
                params, static, config, *batch
            )
            if d > 1:  # the mean over the batch is the mean of the shares' means
                loss, acc, grads = lax.pmean((loss, acc, grads), "batch")
                fired = lax.psum(fired, "batch")
            # (Optax's Adam mixes its int32 step count with float parameters: standard
            # promotion also where a caller runs JAX with strict promotion)
            with jax.numpy_dtype_promotion("standard"):
                updates, opt_state = opt.update(grads, opt_state, params)
                params = optax.apply_updates(params, updates)
            params = _bump_silent(params, fired, config.hidden_bump)
            return (params, opt_state), (loss, acc)

        return lax.scan(step, (params, opt_state), (xs, ys))

    every, shares = PartitionSpec(), PartitionSpec(None, "batch")
    (params, opt_state), (losses, accs) = _data_parallel(
        steps, d, (every, every, shares, shares), ((every, every), (every, every))
    )(params, opt_state, xs, ys)
    return params, opt_state, losses, accs


@eqx.filter_jit
def _evaluate(params, x, y, static, config):
    # the training's devices, or fewer if they do not divide the samples
    d = _largest_divisor(y.shape[0], num_devices(config))
    if d == 1:
        loss, (acc, fired) = _batch_loss(params, static, config, x, y)
    else:
        # per-sample results on each device's share, firing counts summed
        def per_sample(params, x, y):
            losses, (preds, hidden) = _sample_losses(params, static, config, x, y)
            return losses, preds == y, lax.psum(_fired(hidden), "batch")

        every, batch = PartitionSpec(), PartitionSpec("batch")
        losses, correct, fired = _data_parallel(
            per_sample, d, (every, batch, batch), (batch, batch, every)
        )(params, x, y)
        loss, acc = jnp.mean(losses), jnp.mean(correct)
    # fraction of hidden neurons that fired for none of the samples
    silent = jnp.mean(jnp.concatenate([f == 0 for f in fired])) if fired else jnp.zeros(())
    return loss, acc, silent


@eqx.filter_jit
def _simulate_all(params, x, static, config):
    return jax.vmap(lambda xi: eqx.combine(params, static)(xi, config.t1))(x)


class _Trainer:
    """The state of a training run and its compiled steps."""

    def __init__(
        self, config: TrainConfig, num_inputs: int, num_classes: int, steps_per_epoch: int
    ):
        self.config = config
        self._key = dataclasses.replace(config, out="", epochs=1, seed=0)
        model = build_model(config, num_inputs, num_classes, jax.random.PRNGKey(config.seed))
        self.params, self.static = eqx.partition(model, trainable_filter(model))
        self.steps_per_epoch = steps_per_epoch
        self.devices = num_devices(config)
        self.params = _replicated(self.params, self.devices)
        self.opt_state = _replicated(
            optimiser(config, steps_per_epoch).init(self.params), self.devices
        )
        # the parameters selected so far (see `TrainConfig.select`) and why
        self.selected_params = self.params
        self.selected: dict | None = None

    def train_steps(self, xs, ys):
        """One optimiser step per batch `(xs[k], ys[k])` (batches stacked along a
        leading axis), in one compiled call; returns the steps' losses and accuracies."""
        self.params, self.opt_state, losses, accs = _train_steps(
            self.params, self.opt_state, xs, ys, self.static, self._key, self.steps_per_epoch
        )
        return losses, accs

    def train_epoch(self, x, y, epoch: int, on_chunk: Callable | None = None):
        """One epoch over the training split `(x, y)` (`y` a NumPy array): the batches
        of `_batches`, augmented by `_augment`, in calls of `_chunk_size` steps each;
        `on_chunk(losses, accs)` is called after each call with its steps' values.

        **Returns:** the epoch's per-step losses and accuracies (NumPy arrays).
        """
        config = self.config
        idx = np.stack(list(_batches(len(y), config.batch_size, config.seed, epoch)))
        chunk = _chunk_size(len(idx))
        losses, accs = [], []
        for start in range(0, len(idx), chunk):
            rows = idx[start : start + chunk]
            if config.input_jitter or config.input_dropout:
                # augmented on the host, step by step, with each step's own noise
                batches = [
                    _augment(_take(x, r), config, epoch, start + k) for k, r in enumerate(rows)
                ]
                xs = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *batches)
            else:
                xs = _take(x, rows)
            loss, acc = (np.asarray(v) for v in self.train_steps(xs, jnp.asarray(y[rows])))
            losses.append(loss)
            accs.append(acc)
            if on_chunk is not None:
                on_chunk(loss, acc)
        return np.concatenate(losses), np.concatenate(accs)

    def evaluate(self, x, y, *, activity: bool = False):
        """`(loss, accuracy)` on `(x, y)`; with `activity`, also the fraction of hidden
        neurons that fired for no sample."""
        out = _evaluate(self.params, x, y, self.static, self._key)
        return out if activity else out[:2]

    def evaluate_selected(self, x, y):
        return _evaluate(self.selected_params, x, y, self.static, self._key)[:2]

    def simulate_all(self, x, params=None):
        params = self.params if params is None else params
        return _simulate_all(params, x, self.static, self._key)

    def select(self, row: dict, rule: str) -> bool:
        """Keep the current parameters if `row` (this epoch's metrics) beats the
        selection so far under `rule`; returns whether it did."""
        if rule == "validation":
            key = lambda r: (r["val_acc"], -r["val_loss"])
            better = self.selected is None or key(row) > key(self.selected)
            why = "highest validation accuracy (ties: lowest validation loss)"
        else:
            better, why = True, "last epoch"
        if better:
            self.selected_params = self.params
            self.selected = dict(row, rule=why)
        return better

    # -- checkpoints ---------------------------------------------------------------
    def save(self, path: str, epoch: int, history: list[dict]):

        meta = dict(
            format=CHECKPOINT_FORMAT, epoch=epoch, config=self.config.to_json(),
            history=history, selected=self.selected,
        )
        directory = os.path.dirname(os.path.abspath(path))
        for suffix, write in (
            (".eqx", lambda f: eqx.tree_serialise_leaves(f, self._state())),
            (".json", lambda f: f.write(json.dumps(meta, indent=1).encode())),
        ):
            fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.replace(tmp, path + suffix)

    def _state(self):
        return self.params, self.opt_state, self.selected_params

    def load(self, path: str) -> tuple[int, list[dict]]:

        meta = read_checkpoint_meta(path)
        saved = TrainConfig.from_json(meta["config"])
        mine = self.config
        same = dataclasses.replace(saved, epochs=mine.epochs, out=mine.out) == mine
        if not same:
            diff = {
                k: (v, getattr(mine, k))
                for k, v in saved.to_json().items()
                if k not in ("epochs", "out") and mine.to_json()[k] != v
            }
            raise ValueError(
                f"checkpoint {path} was written with a different configuration "
                f"(saved, requested): {diff}"
            )
        try:
            with open(path + ".eqx", "rb") as f:
                self.params, self.opt_state, self.selected_params = _replicated(
                    eqx.tree_deserialise_leaves(f, self._state()), self.devices
                )
        except Exception as e:
            raise ValueError(
                f"checkpoint {path}.eqx is corrupted or does not match the model: {e}"
            ) from e
        self.selected = meta.get("selected")
        return int(meta["epoch"]), list(meta.get("history", []))


def read_checkpoint_meta(path: str) -> dict:
    """Read and check a checkpoint's metadata (`PATH.json`)."""
    if path.endswith(".json") or path.endswith(".eqx"):
        path = path.rsplit(".", 1)[0]
    for suffix in (".json", ".eqx"):
        if not os.path.exists(path + suffix):
            raise FileNotFoundError(f"checkpoint file {path + suffix} not found")
    try:
        with open(path + ".json") as f:
            meta = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"checkpoint metadata {path}.json is corrupted: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"checkpoint {path}.json has format "
            f"{meta.get('format') if isinstance(meta, dict) else None!r}; "
            f"expected {CHECKPOINT_FORMAT}"
        )
    return meta


def _batches(num: int, batch_size: int, seed: int, epoch: int):
    """The shuffled minibatch indices of one epoch: a function of (seed, epoch) only,
    so a resumed run sees exactly the batches of an uninterrupted one."""
    perm = np.random.default_rng([seed, epoch]).permutation(num)
    for i in range(0, num - batch_size + 1, batch_size):
        yield perm[i : i + batch_size]


def _augment(x, config: TrainConfig, epoch: int, step: int):
    """Data augmentation of a training batch's input spikes against overfitting:
    Gaussian noise of standard deviation `config.input_jitter` on the spike times
    (kept at or after 0) and deletion of each spike with probability
    `config.input_dropout`; the result is re-sorted. The noise is a function of
    (seed, epoch, step), so a resumed run sees the same."""
    if not (config.input_jitter or config.input_dropout):
        return x

    rng = np.random.default_rng([config.seed, epoch, step])
    times = np.asarray(x.times)
    ids = np.asarray(x.neurons)
    noise = rng.normal(0.0, config.input_jitter, times.shape) if config.input_jitter else 0.0
    real = np.isfinite(times)
    times = np.where(real, np.maximum(times + noise, 0.0), times)
    if config.input_dropout:
        drop = real & (rng.random(times.shape) < config.input_dropout)
        times = np.where(drop, np.inf, times)
        ids = np.where(drop, x.num_neurons, ids)
    return SpikeTrain(
        jnp.asarray(times, x.times.dtype), jnp.asarray(ids, x.neurons.dtype), x.num_neurons
    ).sorted()


def _take(tree, idx):

    return jax.tree_util.tree_map(lambda a: a[idx], tree)

"""The main job: train a spiking classifier with exact gradients, results on disk."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .data import Task

CHECKPOINT_FORMAT = 2
SELECT_RULES = ("validation", "last")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (saved with every checkpoint).

    **Fields:** `task` (`"yinyang"`, `"xor"`, `"digits"` or `"randman"`), `epochs`,
    `batch_size`, `lr` (initial learning rate of Adam), `lr_decay` (factor per
    epoch, applied smoothly), `hidden` (hidden neurons),
    `dtype` (`"float32"` or `"float64"`), `seed`, `out` (output folder), and the
    network and loss constants: `t1` (trial length, s), `tau_mem`, `tau_syn`,
    `tau0` and `alpha`, `tau1` of [`spikeode.losses.first_spike_loss`][], the
    initial weight means and standard deviations, `grad_clip` (global-norm
    clipping), `output_refractory` (refractory period of the output neurons; longer
    than `t1`, each fires at most once, which is all a first-spike loss uses),
    `output_bias` (constant current into the output neurons; above threshold, every
    output neuron fires by itself before `t1`), `missing_weight` (weight of
    [`spikeode.losses.missing_spike_loss`][]: a correct output neuron that stayed
    silent is pulled towards threshold through its voltage at `t1`, since it has no
    spike time to carry a gradient), `silent_weight` (weight of
    [`spikeode.losses.silent_neuron_loss`][] on each hidden layer: hidden neurons
    that fired for no sample of the batch are pulled towards threshold through their
    voltage at `t1`), `weight_decay` (decoupled weight decay of AdamW; 0: Adam),
    `input_jitter` (standard deviation of Gaussian noise added to the training
    inputs' spike times) and `input_dropout` (probability of deleting each training
    input spike), data augmentations against overfitting, `hidden_bump` (after every
    step, the input weights of hidden neurons that fired for no sample of the batch
    grow by this much: the exact gradient cannot revive a silent neuron either), the
    spike capacities `hidden_spikes_per_neuron` and `output_spikes` (0: one per
    output neuron, enough when `output_refractory` exceeds `t1`); `select`: which
    epoch's parameters are the result, `"validation"` (the best validation accuracy,
    ties to the lower validation loss, for tasks with a validation split; otherwise
    the last epoch) or `"last"`; `train_samples`, `validation_samples` and
    `test_samples` use only the first samples of each split (0: all); `devices`:
    how many devices share each batch (data parallel: every device simulates and
    differentiates its share of the samples, and the gradients are averaged, the
    same mean as on one device up to round-off). 0: as many of JAX's local devices
    as divide `batch_size`. JAX sees one CPU device unless told otherwise; the
    `spikeode` command sets `--xla_force_host_platform_device_count` to the number
    of cores, so `spikeode train` uses them all. `silent_weight > 0` needs the
    whole batch on one device (it asks which neurons fired for no sample).
    `closed_form`: build both layers as [`spikeode.nn.FirstSpikeLayer`][] (each
    neuron fires at most once, its spike time in closed form, no event loop; needs
    `tau_mem == 2 * tau_syn`; `hidden_spikes_per_neuron`, `output_spikes` and
    `output_refractory` then do not apply).
    """

    task: str = "yinyang"
    epochs: int = 45
    batch_size: int = 64
    lr: float = 5e-3
    lr_decay: float = 0.95
    hidden: int = 120
    dtype: str = "float32"
    seed: int = 0
    out: str = "runs/yinyang"
    t1: float = 0.04
    tau_mem: float = 0.02
    tau_syn: float = 0.005
    tau0: float = 0.0005
    alpha: float = 0.003
    tau1: float = 0.0064
    w_hidden: tuple[float, float] = (1.5, 0.78)
    w_out: tuple[float, float] = (0.93, 0.1)
    grad_clip: float = 1.0
    output_refractory: float = 0.1
    output_bias: float = 0.0
    hidden_bump: float = 0.0
    missing_weight: float = 1.0
    silent_weight: float = 0.0
    weight_decay: float = 0.0
    input_jitter: float = 0.0
    input_dropout: float = 0.0
    hidden_spikes_per_neuron: int = 3
    output_spikes: int = 0
    select: str = "validation"
    train_samples: int = 0
    validation_samples: int = 0
    test_samples: int = 0
    devices: int = 0
    closed_form: bool = False

    def validate(self, task: Task | None = None) -> TrainConfig:
        """Check every field; raise `ValueError` listing every problem. `task`: the
        user's task the run trains on (see `fit`), else the name must be one of
        `spikeode.data.TASKS`."""
        from .data import TASKS

        problems = []
        if task is not None and self.task != task.name:
            problems.append(f"task must be the name of the task trained on, {task.name!r}; "
                            f"got {self.task!r}")  # fmt: skip
        elif task is None and self.task not in TASKS:
            problems.append(f"task must be one of {sorted(TASKS)} (or pass your own "
                            f"`task` to `fit`), got {self.task!r}")  # fmt: skip
        for name in ("train_samples", "validation_samples", "test_samples", "output_spikes",
                     "devices"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                problems.append(f"{name} must be a non-negative integer, got {value!r}")
        for name in ("epochs", "batch_size", "hidden", "hidden_spikes_per_neuron"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        for name in ("lr", "lr_decay", "t1", "tau_mem", "tau_syn", "tau0", "tau1"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                problems.append(f"{name} must be a positive number, got {value!r}")
        for name in ("hidden_bump", "missing_weight", "silent_weight", "output_bias",
                     "weight_decay", "input_jitter", "input_dropout"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value >= 0):
                problems.append(f"{name} must be a non-negative number, got {value!r}")
        if not (0 <= self.input_dropout < 1):
            problems.append(f"input_dropout must lie in [0, 1), got {self.input_dropout!r}")
        if self.devices > 1 and self.silent_weight:
            problems.append(
                f"silent_weight > 0 needs the whole batch on one device; got devices={self.devices}"
            )
        elif self.devices > 1 and self.batch_size % self.devices:
            problems.append(
                f"batch_size {self.batch_size} must be a multiple of devices={self.devices}"
            )
        if self.closed_form and self.tau_mem != 2 * self.tau_syn:
            problems.append(
                f"closed_form needs tau_mem == 2 * tau_syn; got tau_mem={self.tau_mem!r}, "
                f"tau_syn={self.tau_syn!r}"
            )
        if self.select not in SELECT_RULES:
            problems.append(f"select must be one of {list(SELECT_RULES)}, got {self.select!r}")
        if self.dtype not in ("float32", "float64"):
            problems.append(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))
        return self

    @classmethod
    def for_task(cls, task: str, closed_form: bool = False) -> TrainConfig:
        """The defaults, with the task's own overrides (`spikeode.data.TASKS`). With
        `closed_form`, the network of closed-form first-spike layers: `tau_syn` half
        of `tau_mem`, and the task's `closed_form_defaults`."""
        from .data import TASKS

        if task not in TASKS:
            raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
        fields = dict(TASKS[task].defaults)
        if closed_form:
            tau_mem = fields.get("tau_mem", cls.tau_mem)
            fields.update(closed_form=True, tau_syn=tau_mem / 2)
            fields.update(TASKS[task].closed_form_defaults)
        return cls(task=task, out=f"runs/{task}", **fields)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> TrainConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ValueError(f"unknown configuration keys {sorted(unknown)}")
        d = dict(d)
        for k in ("w_hidden", "w_out"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


# ----------------------------------------------------------------------------------
def _setup_jax(dtype: str):
    import jax

    jax.config.update("jax_enable_x64", dtype == "float64")
    return jax


def build_model(config: TrainConfig, num_inputs: int, num_classes: int, key):
    """The classifier: a hidden LIF layer and an output LIF layer (event-loop layers,
    or closed-form first-spike layers with `config.closed_form`)."""
    import jax
    import jax.numpy as jnp

    from .nn import FirstSpikeLayer, Sequential, SpikingLayer
    from .neurons import LIF

    dtype = jnp.dtype(config.dtype)
    k1, k2 = jax.random.split(key)

    def lif(n, refractory=0.0, bias=0.0):
        c = lambda x: jnp.asarray(x, dtype)
        return LIF(n, tau_mem=c(config.tau_mem), tau_syn=c(config.tau_syn), threshold=c(1.0),
                   v_reset=c(0.0), bias=c(bias), refractory_period=c(refractory))

    if config.closed_form:
        return Sequential(
            [
                FirstSpikeLayer(
                    num_inputs, config.hidden, neuron=lif(config.hidden), w_mean=config.w_hidden[0],
                    w_std=config.w_hidden[1], dtype=dtype, key=k1,
                ),
                FirstSpikeLayer(
                    config.hidden, num_classes, neuron=lif(num_classes, bias=config.output_bias),
                    w_mean=config.w_out[0], w_std=config.w_out[1], dtype=dtype, key=k2,
                ),
            ]
        )  # fmt: skip
    return Sequential(
        [
            SpikingLayer(
                num_inputs, config.hidden, neuron=lif(config.hidden),
                max_spikes=config.hidden_spikes_per_neuron * config.hidden,
                # independent neurons: one event loop each (the same spikes, faster)
                max_spikes_per_neuron=config.hidden_spikes_per_neuron,
                w_mean=config.w_hidden[0], w_std=config.w_hidden[1], dtype=dtype, key=k1,
            ),
            SpikingLayer(
                config.hidden, num_classes, neuron=lif(num_classes, config.output_refractory, config.output_bias),
                max_spikes=config.output_spikes or num_classes,
                w_mean=config.w_out[0], w_std=config.w_out[1], dtype=dtype, key=k2,
            ),
        ]
    )


def trainable_filter(model):
    """Which leaves are trained: the weights (time constants and thresholds stay)."""
    import equinox as eqx
    import jax

    filt = jax.tree_util.tree_map(lambda _: False, model)
    return eqx.tree_at(
        lambda m: tuple(layer.w_in for layer in m.layers),
        filt,
        tuple(True for _ in model.layers),
    )


def optimiser(config: TrainConfig, steps_per_epoch: int):
    """The training's Optax optimiser: global-norm clipping at `config.grad_clip`,
    then Adam (AdamW with `config.weight_decay`) with the learning rate `config.lr`
    decaying by `config.lr_decay` per epoch of `steps_per_epoch` steps."""
    import optax

    schedule = optax.exponential_decay(config.lr, steps_per_epoch, config.lr_decay)
    adam = (
        optax.adamw(schedule, weight_decay=config.weight_decay)
        if config.weight_decay
        else optax.adam(schedule)
    )
    return optax.chain(optax.clip_by_global_norm(config.grad_clip), adam)


def sample_loss(params, static, config: TrainConfig, x, y):
    """The loss of one sample (input train `x`, label `y`) for the model
    `equinox.combine(params, static)` (from `build_model`): `first_spike_loss` of the
    output spikes plus `config.missing_weight * missing_spike_loss`.

    **Returns:** `(loss, (prediction, hidden))`, with `hidden` a tuple of
    `(spikes, v_final)` per hidden layer.
    """
    import equinox as eqx

    from .losses import first_spike_loss, first_spike_prediction, missing_spike_loss

    sims = eqx.combine(params, static)(x, config.t1)
    out = sims[-1].spikes
    loss = first_spike_loss(
        out, y, t_silent=config.t1, tau0=config.tau0, alpha=config.alpha, tau1=config.tau1
    )
    if config.missing_weight:
        v_final = sims[-1].y_final[:, 0]
        loss = loss + config.missing_weight * missing_spike_loss(out, v_final, y, threshold=1.0)
    hidden = tuple((sim.spikes, sim.y_final[:, 0]) for sim in sims[:-1])
    return loss, (first_spike_prediction(out), hidden)


def _sample_losses(params, static, config, x, y):
    """`sample_loss` of every sample of the batch `(x, y)`."""
    import jax

    return jax.vmap(sample_loss, in_axes=(None, None, None, 0, 0))(params, static, config, x, y)


def _batch_loss(params, static, config, x, y):
    """The mean loss of the batch `(x, y)` (with `config.silent_weight`'s term), and
    as auxiliaries the accuracy and, per hidden layer, for how many of the samples
    each neuron fired."""
    import jax.numpy as jnp

    from .losses import silent_neuron_loss

    losses, (preds, hidden) = _sample_losses(params, static, config, x, y)
    loss = jnp.mean(losses)
    if config.silent_weight:
        for spikes, v_final in hidden:
            loss = loss + config.silent_weight * silent_neuron_loss(spikes, v_final)
    return loss, (jnp.mean(preds == y), _fired(hidden))


def _fired(hidden):
    """Per hidden layer, for how many samples each neuron fired (`hidden` as returned
    by `sample_loss` for a batch)."""
    import jax.numpy as jnp

    return tuple(jnp.sum(spikes.counts() > 0, axis=0) for spikes, _ in hidden)


def _bump_silent(params, fired, bump):
    """Raise the input weights of hidden neurons that fired for no sample of the batch
    (`fired`: per hidden layer, for how many samples each neuron fired) by `bump`: a
    silent neuron's spike times do not exist, so the exact gradient cannot revive it
    (Goeltz et al. 2021 use such weight bumping)."""
    import equinox as eqx

    if not bump:
        return params
    layers = params.layers[: len(fired)]
    new = tuple(
        layer.w_in + bump * (count == 0).astype(layer.w_in.dtype)
        for layer, count in zip(layers, fired)
    )
    return eqx.tree_at(lambda p: tuple(l.w_in for l in p.layers[: len(new)]), params, new)


def _largest_divisor(n: int, most: int) -> int:
    """The largest divisor of `n` that is at most `most` (1 at least)."""
    return max(k for k in range(1, max(min(n, most), 1) + 1) if n % k == 0)


def num_devices(config: TrainConfig) -> int:
    """How many devices share each training batch under `config.devices` (see
    `TrainConfig`)."""
    import jax

    available = jax.local_device_count()
    if config.devices:
        if config.devices > available:
            raise ValueError(
                f"devices={config.devices} but JAX has {available} local device(s); for "
                "CPU cores set XLA_FLAGS=--xla_force_host_platform_device_count=N before "
                "JAX starts (the spikeode command does)"
            )
        return config.devices
    if config.silent_weight:
        return 1
    return _largest_divisor(config.batch_size, available)


def _mesh(d: int):
    import jax
    from jax.sharding import Mesh

    return Mesh(np.array(jax.local_devices()[:d]), ("batch",))


def _replicated(tree, d: int):
    """`tree` on each of the `d` devices (so that the compiled step, whose outputs
    are replicated, sees the same placement at every call and compiles once)."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    if d == 1:
        return tree
    return jax.device_put(tree, NamedSharding(_mesh(d), PartitionSpec()))


def _data_parallel(fn, d: int, in_specs, out_specs):
    """`fn` with its arguments split over `d` devices as `in_specs` says (a
    `PartitionSpec` per argument: `PartitionSpec()` replicates it, a `"batch"` entry
    splits that axis); `fn` runs on each share and reduces its outputs over the mesh
    axis `"batch"` itself (`out_specs` says which outputs stay split)."""
    import jax

    if d == 1:
        return fn
    return jax.shard_map(
        fn, mesh=_mesh(d), in_specs=in_specs, out_specs=out_specs,
        # equinox.error_if's branches are not annotated for shard_map's type check
        check_vma=False,
    )  # fmt: skip


def _chunk_size(steps: int) -> int:
    """Training steps per compiled call: the largest divisor of an epoch's `steps`
    up to 16, so that every call has the same length (one compilation) and the
    progress bar still moves several times per epoch."""
    return _largest_divisor(steps, 16)


# Module-level compiled steps: the static part of the model and the configuration
# (minus fields that do not affect the computation) are static arguments, so every
# trainer with the same network shares one compilation.
def _compiled():
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax
    from jax import lax
    from jax.sharding import PartitionSpec

    @eqx.filter_jit
    def train_steps(params, opt_state, xs, ys, static, config, steps_per_epoch):
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
    def evaluate(params, x, y, static, config):
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
    def simulate_all(params, x, static, config):
        return jax.vmap(lambda xi: eqx.combine(params, static)(xi, config.t1))(x)

    return train_steps, evaluate, simulate_all


_COMPILED = None


class _Trainer:
    """The state of a training run and its compiled steps."""

    def __init__(
        self, config: TrainConfig, num_inputs: int, num_classes: int, steps_per_epoch: int
    ):
        import equinox as eqx
        import jax

        global _COMPILED
        if _COMPILED is None:
            _COMPILED = _compiled()
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
        self.params, self.opt_state, losses, accs = _COMPILED[0](
            self.params, self.opt_state, xs, ys, self.static, self._key, self.steps_per_epoch
        )
        return losses, accs

    def train_epoch(self, x, y, epoch: int, on_chunk: Callable | None = None):
        """One epoch over the training split `(x, y)` (`y` a NumPy array): the batches
        of `_batches`, augmented by `_augment`, in calls of `_chunk_size` steps each;
        `on_chunk(losses, accs)` is called after each call with its steps' values.

        **Returns:** the epoch's per-step losses and accuracies (NumPy arrays).
        """
        import jax
        import jax.numpy as jnp

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
        out = _COMPILED[1](self.params, x, y, self.static, self._key)
        return out if activity else out[:2]

    def evaluate_selected(self, x, y):
        return _COMPILED[1](self.selected_params, x, y, self.static, self._key)[:2]

    def simulate_all(self, x, params=None):
        params = self.params if params is None else params
        return _COMPILED[2](params, x, self.static, self._key)

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
        import equinox as eqx

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
        import equinox as eqx

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
            f"checkpoint {path}.json has format {meta.get('format') if isinstance(meta, dict) else None!r}; "
            f"expected {CHECKPOINT_FORMAT}"
        )
    return meta


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
    import jax.numpy as jnp

    from ._spikes import SpikeTrain

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
    import jax

    return jax.tree_util.tree_map(lambda a: a[idx], tree)


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
    import jax.numpy as jnp

    from .data import TASKS

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
        val_text = f"val acc {row['val_acc']:.4f}{' *' if chosen else '  '} | " if val is not None else ""
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
        _plots(config, trainer, history, x_test, y_test)
    except ImportError:
        log("matplotlib is not installed: no plots (pip install spikeode[plot])")
    return results


def evaluate_checkpoint(path: str, task: Task | None = None) -> dict[str, Any]:
    """Evaluate a checkpoint's selected parameters (see `TrainConfig.select`) on its
    task's test split (`task`: the user's task it was trained on, as for `fit`)."""
    meta = read_checkpoint_meta(path)
    config = TrainConfig.from_json(meta["config"]).validate(task)
    _setup_jax(config.dtype)
    import jax.numpy as jnp

    from .data import TASKS

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


def _plots(config: TrainConfig, trainer: _Trainer, history, x_test, y_test):
    import matplotlib

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
            axes[c].hist(np.where(np.isfinite(t), t, config.t1) * 1e3, bins=bins, alpha=0.5, label=f"neuron {k}")
        axes[c].set_title(f"class {c}"), axes[c].set_xlabel("first spike (ms)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "first_spike_times.png"), dpi=120)
    plt.close(fig)

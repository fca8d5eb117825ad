"""`TrainConfig`: everything that determines a training run."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from ..data import TASKS

if TYPE_CHECKING:
    from ..data import Task


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

        if task not in TASKS:
            raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
        fields = dict(TASKS[task].defaults)
        if closed_form:
            tau_mem = fields.get("tau_mem", cls.tau_mem)
            fields.update(closed_form=True, tau_syn=tau_mem / 2)
            fields.update(TASKS[task].closed_form_defaults)
        return cls(task=task, out=f"runs/{task}", **fields)

    def to_json(self) -> dict:
        """The configuration as a dict of JSON values (written as `config.json`)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> TrainConfig:
        """The configuration from `to_json`'s dict; unknown keys are a `ValueError`,
        missing ones take their defaults."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ValueError(f"unknown configuration keys {sorted(unknown)}")
        d = dict(d)
        for k in ("w_hidden", "w_out"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)

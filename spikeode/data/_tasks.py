"""The classification tasks `spikeode train` knows, with their spike encodings."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ._digits import digits_spikes
from ._randman import randman_spikes
from ._xor import xor_spikes
from ._yinyang import yinyang_spikes

# Every task codes values into spike times inside [0, 30 ms] with a bias spike at 0.
T_MIN, T_MAX, BIAS = 0.0, 0.03, 0.0


@dataclasses.dataclass(frozen=True)
class Task:
    """A classification task: `load(dtype)` returns
    `((train_spikes, train_labels), (test_spikes, test_labels))`;
    `load_validation(dtype)`, if given, returns a held-out `(spikes, labels)` split,
    disjoint from both, on which training selects its final parameters; `defaults`
    overrides fields of `spikeode.train.TrainConfig` for this task."""

    name: str
    num_classes: int
    load: Callable
    defaults: dict = dataclasses.field(default_factory=dict)
    load_validation: Callable | None = None


def _yinyang(dtype):
    return tuple(
        yinyang_spikes(split, T_MIN, T_MAX, BIAS, dtype=dtype) for split in ("train", "test")
    )


def _yinyang_validation(dtype):
    return yinyang_spikes("validation", T_MIN, T_MAX, BIAS, dtype=dtype)


def _xor(dtype):
    data = xor_spikes(T_MIN, T_MAX / 2, BIAS, dtype=dtype)
    return data, data  # four patterns: the training set is the test set


def _digits(dtype):
    return tuple(
        digits_spikes(split, T_MIN, T_MAX, bias_time=BIAS, dtype=dtype)
        for split in ("train", "test")
    )


def _digits_validation(dtype):
    return digits_spikes("validation", T_MIN, T_MAX, bias_time=BIAS, dtype=dtype)


def _randman(dtype):
    common = dict(num_classes=10, num_inputs=20, bias_time=BIAS, dtype=dtype)
    return (
        randman_spikes(T_MIN, T_MAX, samples_per_class=500, sample_seed=1, **common),
        randman_spikes(T_MIN, T_MAX, samples_per_class=100, sample_seed=2, **common),
    )


TASKS: dict[str, Task] = {
    "yinyang": Task(
        "yinyang", 3, _yinyang,
        # Weight bumping (Goeltz et al. 2021) against dying hidden neurons, which took
        # 42 -> 69-76 % of them silent and one seed to 94.4 % test. Chosen on the
        # validation split (selected epoch, seeds 0-4, float32, 2 devices): mean
        # 97.06 % without, 97.42 % with 0.01, 97.78 % with 0.001 (no neuron silent);
        # lr_decay 0.9 instead of 0.95: 97.14 %.
        dict(hidden_bump=0.001),
        load_validation=_yinyang_validation,
    ),
    "xor": Task("xor", 2, _xor),
    "digits": Task(
        "digits", 10, _digits,
        # measured (test accuracy of the validation-selected / last epoch): 100
        # hidden, no augmentation 92.2 % (seed 0, last); 200 hidden with these
        # augmentations 94.99 / 96.9, 95.5 / 95.5, 93.6 / 93.9 % (seeds 0, 1, 2);
        # these defaults (300 hidden) 95.5 / 95.8, 95.8 / 95.8, 96.4 / 96.7 % (one
        # device); two devices 94.4 / 95.3, 96.1 / 95.0, 93.3 / 95.0 % (float32 chaos)
        dict(hidden=300, epochs=40, w_hidden=(0.3, 0.15), w_out=(0.3, 0.1),
             output_bias=1.2, missing_weight=0.0, input_jitter=0.001, input_dropout=0.1),
        load_validation=_digits_validation,
    ),
    "randman": Task("randman", 10, _randman),
}

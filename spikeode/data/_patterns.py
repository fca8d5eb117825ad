"""Random spike-pattern targets for learning precise spike times."""

from __future__ import annotations

import math

import numpy as np

from .._spikes import SpikeTrain
from ._randman import _check_int


def _check_rate(name: str, what: str, value) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"{name}: `{what}` must be a finite number >= 0, got {value!r}."
        )
    return value


def _poisson(rng, rate: float, t1: float) -> np.ndarray:
    n = rng.poisson(rate * t1)
    return np.sort(rng.rand(n) * t1)


def _dead_time_poisson(rng, rate: float, refractory: float, t1: float) -> np.ndarray:
    """Renewal process with intervals `refractory + Exp`, mean interval `1 / rate`;
    starts at 0, so the first spike comes after `refractory` too."""
    if rate == 0:
        return np.zeros(0)
    mean_exp = 1.0 / rate - refractory
    times, t = [], 0.0
    while True:
        t += refractory + rng.exponential(mean_exp)
        if t > t1:
            return np.asarray(times, dtype=np.float64)
        times.append(t)


def spike_pattern_task(
    num_inputs: int,
    num_outputs: int,
    t1: float | int,
    rate: float | int,
    seed: int = 0,
    *,
    target_rate: float | int | None = None,
    refractory: float | int | None = None,
    input_capacity: int | None = None,
    target_capacity: int | None = None,
    dtype=None,
) -> tuple[SpikeTrain, SpikeTrain]:
    """A random input pattern and a random target output pattern, for training a
    network to emit spikes at prescribed times over `[0, t1]`.

    The inputs are independent homogeneous Poisson processes of rate `rate`: each
    input neuron gets `Poisson(rate * t1)` spikes, uniform in `[0, t1)`. The targets
    are independent Poisson processes with a refractory gap (dead time): the
    intervals between consecutive target spikes of a neuron (and from 0 to its first
    spike) are `refractory + Exponential`, with the exponential's mean chosen so that
    the mean rate is `target_rate`. Targets thus never come closer than `refractory`
    and never before `refractory`.

    **Arguments:**

    - `num_inputs`, `num_outputs`: population sizes.
    - `t1`: end of the time window (> 0); all spikes lie in `[0, t1]`.
    - `rate`: rate of every input neuron (spikes per unit time, e.g. Hz if times are
        in seconds).
    - `seed`: seed of the generator (`numpy.random.RandomState`).
    - `target_rate`: mean rate of every output neuron (default: `rate`).
    - `refractory`: minimal gap between target spikes (default:
        `0.2 / target_rate`); must be below `1 / target_rate`.
    - `input_capacity`, `target_capacity`: capacities of the two trains (default:
        their number of spikes, at least 1).
    - `dtype`: floating dtype of the spike times (default: JAX's default float).

    **Returns:**

    A tuple `(inputs, targets)` of unbatched [`spikeode.SpikeTrain`][]s with
    `num_inputs` and `num_outputs` neurons, times sorted.
    """
    name = "spike_pattern_task"
    num_inputs = _check_int(name, "num_inputs", num_inputs, 1)
    num_outputs = _check_int(name, "num_outputs", num_outputs, 1)
    t1 = float(t1)
    if not math.isfinite(t1) or t1 <= 0:
        raise ValueError(f"{name}: `t1` must be a finite number > 0, got {t1!r}.")
    rate = _check_rate(name, "rate", rate)
    if target_rate is None:
        target_rate = rate
    target_rate = _check_rate(name, "target_rate", target_rate)
    if refractory is None:
        refractory = 0.2 / target_rate if target_rate > 0 else 0.0
    refractory = _check_rate(name, "refractory", refractory)
    if target_rate > 0 and refractory >= 1.0 / target_rate:
        raise ValueError(
            f"{name}: `refractory` ({refractory!r}) must be below the mean interval "
            f"1 / target_rate ({1.0 / target_rate!r})."
        )

    rng = np.random.RandomState(seed)
    inp = [_poisson(rng, rate, t1) for _ in range(num_inputs)]
    tgt = [
        _dead_time_poisson(rng, target_rate, refractory, t1)
        for _ in range(num_outputs)
    ]

    def build(lists, capacity):
        n = sum(len(x) for x in lists)
        capacity = max(n, 1) if capacity is None else capacity
        return SpikeTrain.from_lists(lists, capacity=capacity, dtype=dtype)

    return build(inp, input_capacity), build(tgt, target_capacity)

"""Losses and regularisers on spike trains."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int

from ._spikes import SpikeTrain


def first_spike_times(train: SpikeTrain, t_silent: ArrayLike) -> Float[Array, "*batch neurons"]:
    """First spike time of each neuron, with `t_silent` for neurons that did not fire.

    Silent neurons get `t_silent` (typically the end of the trial) as a constant, so
    they receive no gradient; see `first_spike_loss`'s regulariser for one remedy.
    """
    t = train.first_spike_times()
    return jnp.where(jnp.isfinite(t), t, t_silent)


def first_spike_loss(
    train: SpikeTrain,
    label: Int[Array, ""],
    *,
    t_silent: ArrayLike,
    tau0: ArrayLike,
    alpha: ArrayLike = 0.0,
    tau1: ArrayLike = 1.0,
) -> Float[Array, ""]:
    """Cross-entropy of first-spike times, the earliest neuron being the prediction
    (Goeltz et al. 2021; Wunderlich & Pehle 2021):

    $$-\\log \\frac{e^{-t_y/\\tau_0}}{\\sum_k e^{-t_k/\\tau_0}}
       + \\alpha\\,(e^{t_y/\\tau_1} - 1),$$

    the second term (optional) rewarding an early spike of the correct neuron.

    **Arguments:**

    - `train`: the output layer's spikes (one sample).
    - `label`: the correct class (an output neuron index).
    - `t_silent`: first-spike time given to silent neurons (e.g. the trial end).
    - `tau0`: temperature of the softmax over `-t`.
    - `alpha`, `tau1`: weight and time scale of the early-spike regulariser.

    **Returns:** a scalar loss.
    """
    t = first_spike_times(train, t_silent)
    logp = jax.nn.log_softmax(-t / tau0)
    loss = -logp[label]
    return loss + alpha * jnp.expm1(t[label] / tau1)


def first_spike_prediction(train: SpikeTrain) -> Int[Array, "*batch"]:
    """Index of the earliest-firing neuron (ties and all-silent: the lowest index)."""
    return jnp.argmin(train.first_spike_times(), axis=-1)


def activity_regulariser(
    counts: Float[Array, "*batch neurons"],
    *,
    lower: ArrayLike = 0.0,
    lower_weight: ArrayLike = 0.0,
    upper: ArrayLike = jnp.inf,
    upper_weight: ArrayLike = 0.0,
) -> Float[Array, ""]:
    """Zenke & Vogels' (2021) activity regularisers on spike counts `zeta_i`:
    a per-neuron lower bound `lower_weight * mean_i max(0, lower - zeta_i)^2` and a
    population upper bound `upper_weight * max(0, mean_i zeta_i - upper)`.

    Spike counts are piecewise constant in the parameters, so in an exact-gradient
    setting these terms have zero gradient; they are reported as diagnostics, and
    drive learning only through surrogate or pseudo-spike methods.
    """
    counts = jnp.asarray(counts, jnp.result_type(float))
    low = lower_weight * jnp.mean(jnp.maximum(0.0, lower - counts) ** 2)
    high = upper_weight * jnp.maximum(0.0, jnp.mean(counts) - upper)
    return low + high

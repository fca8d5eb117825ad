"""The classifier of `spikeode train`, its trained leaves, optimiser and loss."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from .._loops import PerNeuronLoop
from ..losses import (
    first_spike_loss,
    first_spike_prediction,
    missing_spike_loss,
    silent_neuron_loss,
)
from ..neurons import LIF
from ..nn import FirstSpikeLayer, Sequential, SpikingLayer
from ._config import TrainConfig


def build_model(config: TrainConfig, num_inputs: int, num_classes: int, key):
    """The classifier: a hidden LIF layer and an output LIF layer (event-loop layers,
    or closed-form first-spike layers with `config.closed_form`)."""

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
                loop=PerNeuronLoop(config.hidden_spikes_per_neuron),
                w_mean=config.w_hidden[0], w_std=config.w_hidden[1], dtype=dtype, key=k1,
            ),
            SpikingLayer(
                config.hidden, num_classes,
                neuron=lif(num_classes, config.output_refractory, config.output_bias),
                max_spikes=config.output_spikes or num_classes,
                w_mean=config.w_out[0], w_std=config.w_out[1], dtype=dtype, key=k2,
            ),
        ]
    )


def trainable_filter(model):
    """Which leaves are trained: the weights (time constants and thresholds stay)."""

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

    return jax.vmap(sample_loss, in_axes=(None, None, None, 0, 0))(params, static, config, x, y)


def _batch_loss(params, static, config, x, y):
    """The mean loss of the batch `(x, y)` (with `config.silent_weight`'s term), and
    as auxiliaries the accuracy and, per hidden layer, for how many of the samples
    each neuron fired."""

    losses, (preds, hidden) = _sample_losses(params, static, config, x, y)
    loss = jnp.mean(losses)
    if config.silent_weight:
        for spikes, v_final in hidden:
            loss = loss + config.silent_weight * silent_neuron_loss(spikes, v_final)
    return loss, (jnp.mean(preds == y.astype(preds.dtype)), _fired(hidden))


def _fired(hidden):
    """Per hidden layer, for how many samples each neuron fired (`hidden` as returned
    by `sample_loss` for a batch)."""

    return tuple(jnp.sum(spikes.counts() > 0, axis=0) for spikes, _ in hidden)


def _bump_silent(params, fired, bump):
    """Raise the input weights of hidden neurons that fired for no sample of the batch
    (`fired`: per hidden layer, for how many samples each neuron fired) by `bump`: a
    silent neuron's spike times do not exist, so the exact gradient cannot revive it
    (Goeltz et al. 2021 use such weight bumping)."""

    if not bump:
        return params
    layers = params.layers[: len(fired)]
    new = tuple(
        layer.w_in + bump * (count == 0).astype(layer.w_in.dtype)[None, :]
        for layer, count in zip(layers, fired)
    )
    return eqx.tree_at(lambda p: tuple(layer.w_in for layer in p.layers[: len(new)]), params, new)

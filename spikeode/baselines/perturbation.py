"""Perturbation gradient estimators (Fiete & Seung 2006), the baseline that exact
gradients are compared with.

A perturbation estimator needs no derivative of the network: it runs the network
`trials` times with random perturbations, and correlates the change of the loss with
the perturbation. With Gaussian noise `xi ~ N(0, sigma^2 I)` and a baseline `b` that
does not depend on `xi`,

    E[(L(xi) - b) xi] / sigma^2 = grad_xi L(0) + O(sigma^2),

so the estimate is unbiased to first order in `sigma`; its variance grows with the
number of perturbed variables, which is what makes it slow.

- `weight_perturbation`: perturb every inexact-array leaf of a parameter pytree
  (any loss function).
- `node_perturbation`: the general form of Fiete & Seung's rule: perturb the
  *nodes* (each neuron's input), then map the correlation onto the weights through an
  eligibility, `grad_W ~ (L - b) e / sigma^2`.
- `network_node_perturbation`: Fiete & Seung's estimator for a spikeode layer
  (`nn.SpikingLayer` or `nn.RecurrentLayer` of any model whose input adds the weight
  to a synaptic variable, e.g. `LIF`). The noise reaches the neurons through
  "empiric synapses", as in the paper: extra input channels that spike on a time grid
  `t_k` and kick neuron `i` by `xi_ki ~ N(0, sigma^2)`. Writing `G_i(t)` for the
  derivative of the loss with respect to a kick into neuron `i` at time `t`, the
  exact gradient of a weight is `dL/dw_ji = sum_{spikes f of j} G_i(t_j^f)`, and the
  noise estimates `G_i(t_k)` on the grid; the eligibility
  `e_ji = sum_k xi_ki s_jk`, with `s_jk = sum_f hat((t_j^f - t_k) / dt)` the
  presynaptic spikes of `j` spread over the grid by linear interpolation, is
  Fiete & Seung's `integral xi_i(t) s_j(t) dt` on that grid. Its bias is the
  interpolation error of `G_i` (shrinks with finer grids, at the price of more
  perturbed variables and so more variance).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from .. import nn as _nn
from .._simulate import simulate as _simulate
from .._spikes import SpikeTrain
from .._typing import RealScalarLike

__all__ = [
    "weight_perturbation",
    "node_perturbation",
    "network_node_perturbation",
    "noise_grid",
    "spread_on_grid",
]

_BASELINES = ("unperturbed", "mean")  # or a scalar value


def _check_common(name, sigma, trials, baseline, chunk_size):
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"{name}: `trials` must be a positive int, got {trials!r}.")
    if not isinstance(sigma, jax.core.Tracer):  # a traced sigma (under jit) is not checked
        try:
            sigma_f = float(sigma)
        except (TypeError, ValueError):
            raise ValueError(
                f"{name}: `sigma` must be a positive number, got {sigma!r}."
            ) from None
        if not sigma_f > 0.0:  # also rejects NaN
            raise ValueError(
                f"{name}: `sigma` must be a positive number, got {sigma!r}."
            )
    kind = _kind(baseline)
    if kind is None:
        raise ValueError(
            f"{name}: `baseline` must be one of {_BASELINES} or a scalar (a given "
            f"reward baseline, e.g. a running average of past losses), got {baseline!r}."
        )
    if kind == "mean" and trials < 2:
        raise ValueError(
            f"{name}: `baseline='mean'` (leave-one-out mean of the other trials) needs "
            f"`trials >= 2`, got {trials}."
        )
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(
            f"{name}: `chunk_size` must be a positive int or None, got {chunk_size!r}."
        )


def _kind(baseline):
    """"unperturbed", "mean", "value" (a given scalar) or None (invalid)."""
    if isinstance(baseline, str):
        return baseline if baseline in _BASELINES else None
    if isinstance(baseline, bool) or baseline is None:
        return None
    if isinstance(baseline, (int, float)) or (
        hasattr(baseline, "shape") and hasattr(baseline, "dtype")
        and baseline.shape == () and jnp.issubdtype(baseline.dtype, jnp.floating)
    ):
        return "value"
    return None


def _map(fn, xs, chunk_size):
    """`jax.vmap` over the leading axis, or `jax.lax.map` in chunks (less memory)."""
    if chunk_size is None:
        return jax.vmap(fn)(xs)
    return jax.lax.map(fn, xs, batch_size=chunk_size)


def _advantages(losses, loss0, baseline):
    """`L_k - b_k`: minus the unperturbed loss, the leave-one-out mean or a given value."""
    kind = _kind(baseline)
    if kind == "value":
        return losses - jnp.asarray(baseline, losses.dtype)
    if kind == "unperturbed":
        return losses - loss0
    n = losses.shape[0]
    return (losses - jnp.mean(losses)) * (n / (n - 1))  # = L_k - mean_{l != k} L_l


def _reduce(adv, elig, scale, per_trial):
    """`(L_k - b_k) e_k / scale`, per trial (leading axis) or averaged over trials."""
    if per_trial:
        return jax.tree.map(
            lambda e: adv.reshape((-1,) + (1,) * (e.ndim - 1)) * e / scale, elig
        )
    n = adv.shape[0]
    return jax.tree.map(lambda e: jnp.tensordot(adv, e, axes=1) / (n * scale), elig)


def weight_perturbation(
    loss_fn: Callable[[PyTree], Float[Array, ""]],
    params: PyTree,
    key: PRNGKeyArray,
    *,
    sigma: RealScalarLike,
    trials: int,
    baseline: str | float | int | Float[Array, ""] = "unperturbed",
    chunk_size: int | None = None,
    per_trial: bool = False,
) -> tuple[Float[Array, ""], PyTree]:
    """Weight-perturbation estimate of the gradient of `loss_fn` at `params`.

    Every inexact-array leaf of `params` (selected with `equinox.is_inexact_array`;
    other leaves are held fixed) is perturbed by independent Gaussian noise
    `sigma * z`, `z ~ N(0, I)`, in each of `trials` trials; the estimate is

        g = mean_k (L(params + sigma z_k) - b_k) z_k / sigma.

    **Arguments:**

    - `loss_fn`: a function of the parameter pytree returning a scalar (it is called
      under `jax.vmap`, so it must be traceable).
    - `params`: the parameter pytree (e.g. an Equinox module).
    - `key`: a `jax.random` key.
    - `sigma`: standard deviation of the perturbation (positive; may be a traced
      scalar under `jit`, which is then not checked).
    - `trials`: number of perturbed evaluations (positive int).
    - `baseline`: `"unperturbed"` (one extra evaluation, `b = L(params)`),
      `"mean"` (leave-one-out mean of the other trials' losses; `trials >= 2`), or a
      scalar `b` (e.g. Fiete & Seung's running average of past rewards; the estimate
      is unbiased to first order for any `b` independent of the noise, but its
      variance grows with `|L - b|`).
    - `chunk_size`: evaluate the trials with `jax.lax.map` in chunks of this size
      instead of one `jax.vmap` (less memory); `None` for one `vmap`.
    - `per_trial`: if `True`, return each trial's estimate (a leading axis of size
      `trials`; their mean is the estimate), e.g. to study the variance, or the
      estimate with fewer trials, from one run.

    **Returns:** `(loss, grads)`: the unperturbed loss (`baseline="unperturbed"`) or
    the mean of the trials' losses (otherwise), and a pytree with the structure of
    `params`, holding the estimate at the inexact-array leaves and `None` elsewhere.
    """
    _check_common("weight_perturbation", sigma, trials, baseline, chunk_size)
    diff, static = eqx.partition(params, eqx.is_inexact_array)
    leaves, treedef = jax.tree.flatten(diff)
    keys = jax.random.split(key, len(leaves))
    noise = [
        jax.random.normal(k, (trials,) + x.shape, x.dtype) for k, x in zip(keys, leaves)
    ]
    noise = jax.tree.unflatten(treedef, noise)

    def evaluate(z):
        p = jax.tree.map(lambda x, zi: x + sigma * zi, diff, z)
        return loss_fn(eqx.combine(p, static))

    if _kind(baseline) == "unperturbed":  # the unperturbed loss as row 0 of the map
        with_zero = jax.tree.map(lambda z: jnp.concatenate([jnp.zeros_like(z[:1]), z]), noise)
        losses = _map(evaluate, with_zero, chunk_size)
        loss0, losses = losses[0], losses[1:]
    else:
        losses = _map(evaluate, noise, chunk_size)
        loss0 = jnp.mean(losses)
    adv = _advantages(losses, loss0, baseline)
    return loss0, _reduce(adv, noise, sigma, per_trial)


def node_perturbation(
    loss_fn: Callable[[PyTree, Array], tuple[Float[Array, ""], Any]],
    params: PyTree,
    key: PRNGKeyArray,
    *,
    noise_shape: tuple[int, ...],
    eligibility: Callable[[Any, Array], PyTree],
    sigma: RealScalarLike,
    trials: int,
    baseline: str | float | int | Float[Array, ""] = "unperturbed",
    chunk_size: int | None = None,
    per_trial: bool = False,
) -> tuple[Float[Array, ""], PyTree]:
    """Node-perturbation estimate (Fiete & Seung's rule) of a gradient.

    The network is run `trials` times with noise `xi ~ N(0, sigma^2 I)` of shape
    `noise_shape` added to its nodes (how is up to `loss_fn`); the estimate is

        g = mean_k (L(xi_k) - b_k) e(aux_k, xi_k) / sigma^2,

    where the eligibility `e` is linear in `xi` and maps a node perturbation onto
    the parameters (e.g. `e_ji = integral xi_i(t) s_j(t) dt` for a weight from `j` to
    `i` with presynaptic activity `s_j`).

    **Arguments:**

    - `loss_fn`: `loss_fn(params, xi) -> (loss, aux)`: the loss of one trial with node
      noise `xi` (all zeros for the unperturbed trial), and anything the eligibility
      needs (e.g. the trial's presynaptic spikes). Called under `jax.vmap`.
    - `params`: the parameters (passed to `loss_fn` unchanged).
    - `key`: a `jax.random` key.
    - `noise_shape`: shape of `xi` for one trial.
    - `eligibility`: `eligibility(aux, xi) -> pytree`: the eligibility of one trial
      (any pytree, e.g. the parameters' structure with `None` where there is none).
    - `sigma`: standard deviation of each noise component (positive).
    - `trials`: number of trials (positive int).
    - `baseline`: `"unperturbed"` (one extra noise-free trial), `"mean"`
      (leave-one-out mean of the other trials; `trials >= 2`) or a scalar (a given
      baseline, e.g. a running average of past losses).
    - `chunk_size`, `per_trial`: as in `weight_perturbation`.

    **Returns:** `(loss, grads)`: the unperturbed loss (or the trials' mean loss with
    another baseline) and the estimate, with the structure that `eligibility`
    returns.
    """
    _check_common("node_perturbation", sigma, trials, baseline, chunk_size)
    noise_shape = tuple(int(s) for s in noise_shape)
    params_dtype = [x.dtype for x in jax.tree.leaves(params) if eqx.is_inexact_array(x)]
    dtype = params_dtype[0] if params_dtype else jnp.result_type(float)
    xi = sigma * jax.random.normal(key, (trials,) + noise_shape, dtype)
    if _kind(baseline) == "unperturbed":  # the noise-free trial as row 0 of the map
        xi = jnp.concatenate([jnp.zeros((1,) + noise_shape, dtype), xi])

    def one(x):
        loss, aux = loss_fn(params, x)
        return loss, eligibility(jax.lax.stop_gradient(aux), x)

    losses, elig = _map(one, xi, chunk_size)
    if _kind(baseline) == "unperturbed":
        loss0, losses = losses[0], losses[1:]
        elig = jax.tree.map(lambda e: e[1:], elig)
    else:
        loss0 = jnp.mean(losses)
    adv = _advantages(losses, loss0, baseline)
    return loss0, _reduce(adv, elig, sigma**2, per_trial)


def noise_grid(t0: float | int, t1: float | int, num_bins: int) -> Float[Array, " num_bins"]:
    """The times `t0 + k (t1 - t0) / num_bins`, `k = 0 .. num_bins - 1`, at which
    `network_node_perturbation` kicks the neurons.

    **Arguments:** `t0`, `t1` (the trial, `t1 > t0`), `num_bins` (positive int).

    **Returns:** the grid, shape `(num_bins,)`.
    """
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < 1:
        raise ValueError(f"noise_grid: `num_bins` must be a positive int, got {num_bins!r}.")
    if not float(t1) > float(t0):
        raise ValueError(f"noise_grid: need `t1 > t0`, got t0={t0!r}, t1={t1!r}.")
    span = jnp.asarray(t1 - t0)
    return t0 + span * jnp.arange(num_bins).astype(span.dtype) / num_bins


def spread_on_grid(
    train: SpikeTrain, grid: Float[Array, " K"]
) -> Float[Array, "neurons K"]:
    """Spikes of each neuron spread over a uniform grid by linear interpolation:
    `s[j, k] = sum_{spikes f of j} max(0, 1 - |t_j^f - t_k| / dt)` (the presynaptic
    factor of the eligibility). A spike after the last grid point gives only its
    share to that point (the share of the missing point at `t1` is dropped: a kick at
    `t1` has no effect).

    **Arguments:** `train`: an unbatched `SpikeTrain`; `grid`: uniform and
    increasing, at least 2 points (its spacing is `grid[1] - grid[0]`).

    **Returns:** `(train.num_neurons, len(grid))`.
    """
    dt = grid[1] - grid[0]
    t = jnp.where(train.valid, train.times, jnp.inf)
    w = jnp.maximum(0.0, 1.0 - jnp.abs(t[:, None] - grid[None, :]) / dt)  # (cap, K)
    w = jnp.where(train.valid[:, None], w, 0.0)
    return jax.ops.segment_sum(w, train.neurons, num_segments=train.num_neurons + 1)[:-1]


def _merge_noise_inputs(inputs: SpikeTrain | None, num_inputs: int, grid):
    """Input train extended by `len(grid)` noise channels, channel `k` spiking once at
    `grid[k]` (ids `num_inputs + k`), time-sorted."""
    K = grid.shape[0]
    n_total = num_inputs + K
    noise_ids = num_inputs + jnp.arange(K, dtype=jnp.int32)
    if inputs is None:
        return SpikeTrain(grid, noise_ids, n_total)
    ids = jnp.where(inputs.valid, inputs.neurons, n_total).astype(jnp.int32)
    times = jnp.concatenate([inputs.times.astype(grid.dtype), grid])
    return SpikeTrain(times, jnp.concatenate([ids, noise_ids]), n_total).sorted()


def network_node_perturbation(
    loss_fn: Callable[[Any], Float[Array, ""]],
    layer: _nn.SpikingLayer | _nn.RecurrentLayer,
    inputs: SpikeTrain | None,
    t1: float | int,
    key: PRNGKeyArray,
    *,
    sigma: RealScalarLike,
    trials: int,
    num_bins: int,
    t0: float | int = 0.0,
    baseline: str | float | int | Float[Array, ""] = "unperturbed",
    chunk_size: int | None = None,
    per_trial: bool = False,
    **simulate_kwargs: Any,
) -> tuple[Float[Array, ""], PyTree]:
    """Fiete & Seung's node-perturbation estimate of the gradient of a spiking layer's
    loss with respect to its weights `w_in` (and `w_rec`).

    Each trial adds `num_bins` noise input channels ("empiric synapses") that spike
    at `noise_grid(t0, t1, num_bins)` and kick every neuron `i` by an independent
    `xi_ki ~ N(0, sigma^2)` (a kick is `neuron.receive`, e.g. `I += xi` for `LIF`,
    exactly as a weight acts). With the trial's presynaptic spikes spread on the grid,
    `s = spread_on_grid(train, grid)`, the eligibilities are `e_in = s_in @ xi` and
    `e_rec = s_rec @ xi` (presynaptic activity of the perturbed trial, as in the
    online rule), and the estimate is `mean_k (L_k - b_k) e_k / sigma^2`. See the
    module docstring for why this estimates the gradient, and its bias.

    **Arguments:**

    - `loss_fn`: a function of the layer's `spikeode.Simulation` for one trial,
      returning a scalar.
    - `layer`: a `spikeode.nn.SpikingLayer` or `spikeode.nn.RecurrentLayer`.
    - `inputs`: its (unbatched) input `SpikeTrain`, or `None` (no inputs: then only
      `w_rec` gets an estimate).
    - `t1`: trial end; `t0`: trial start.
    - `key`: a `jax.random` key.
    - `sigma`: standard deviation of each noise kick (positive; in units of a weight).
    - `trials`: number of noisy trials (positive int).
    - `num_bins`: number of noise kicks per neuron per trial (int >= 2).
    - `baseline`: `"unperturbed"` (one extra noise-free trial; its loss is returned),
      `"mean"` (leave-one-out mean; `trials >= 2`) or a scalar (e.g. a running
      average of past losses, Fiete & Seung's `R_bar`).
    - `chunk_size`, `per_trial`: as in `weight_perturbation`.
    - `simulate_kwargs`: further `spikeode.simulate` arguments (e.g. `throw=False`).
      The layer's `max_spikes` must leave room for the spikes the noise adds.

    **Returns:** `(loss, grads)`: the unperturbed (or mean) loss, and a pytree with the
    structure of `layer` holding the estimates at `w_in` and `w_rec` and `None`
    everywhere else (the structure of `eqx.partition(layer, filter)[0]` for a filter
    that selects the weights, so it can go straight to an Optax update).
    """
    name = "network_node_perturbation"
    if not isinstance(layer, (_nn.SpikingLayer, _nn.RecurrentLayer)):
        raise ValueError(
            f"{name}: `layer` must be a spikeode.nn.SpikingLayer or RecurrentLayer, "
            f"got {type(layer).__name__}."
        )
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < 2:
        raise ValueError(f"{name}: `num_bins` must be an int >= 2, got {num_bins!r}.")
    _check_common(name, sigma, trials, baseline, chunk_size)
    recurrent = isinstance(layer, _nn.RecurrentLayer)
    num_inputs, n = layer.w_in.shape
    if inputs is not None and inputs.num_neurons != num_inputs:
        raise ValueError(
            f"{name}: `inputs` has {inputs.num_neurons} neurons, the layer expects "
            f"{num_inputs}."
        )
    dtype = layer.w_in.dtype
    grid = noise_grid(float(t0), float(t1), num_bins).astype(dtype)
    merged = _merge_noise_inputs(inputs, num_inputs, grid)
    s_in = None if inputs is None else spread_on_grid(inputs, grid)
    kwargs = dict(t0=t0, max_spikes=layer.max_spikes, **simulate_kwargs)

    def trial(lay, xi):
        w = jnp.concatenate([lay.w_in, xi], axis=0)
        w_rec = lay.w_rec if recurrent else None
        sim = _simulate(lay.neuron, t1, merged, w, w_rec=w_rec, **kwargs)
        return loss_fn(sim), sim.spikes

    def eligibility(spikes, xi):
        e_in = None if s_in is None else s_in @ xi
        e_rec = spread_on_grid(spikes, grid) @ xi if recurrent else None
        return e_in, e_rec

    loss0, (g_in, g_rec) = node_perturbation(
        trial,
        layer,
        key,
        noise_shape=(num_bins, n),
        eligibility=eligibility,
        sigma=sigma,
        trials=trials,
        baseline=baseline,
        chunk_size=chunk_size,
        per_trial=per_trial,
    )
    grads = jax.tree.map(lambda _: None, layer)
    if g_in is None:
        shape = ((trials,) if per_trial else ()) + layer.w_in.shape
        g_in = jnp.zeros(shape, layer.w_in.dtype)
    grads = eqx.tree_at(lambda m: m.w_in, grads, g_in, is_leaf=lambda x: x is None)
    if recurrent:
        grads = eqx.tree_at(lambda m: m.w_rec, grads, g_rec, is_leaf=lambda x: x is None)
    return loss0, grads

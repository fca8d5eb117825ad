"""[`spikeode.fit`][]: fitting a model's parameters to recorded spike trains, by
maximum likelihood (escape-noise models, with standard errors from the Hessian) or by
a spike-train distance (deterministic models), with Optax."""

from __future__ import annotations

import abc
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import jax.scipy.stats
import numpy as np
import optax
from jaxtyping import Array, Float, PyTree, Scalar

from . import losses
from ._gradients import AbstractAdjoint, ForwardMode
from ._likelihood import log_likelihood
from ._simulate import simulate
from ._spikes import SpikeTrain
from ._synapses import Synapses
from ._typing import RealScalarLike
from .neurons import AbstractNeuron
from .neurons._escape import EscapeNoise


class Recording(eqx.Module):
    """Recorded spike trains of a population over repeated trials, with the input
    spikes that drove each trial: the data of [`spikeode.fit`][].

    **Arguments:**

    - `spikes`: the population's spikes, a [`spikeode.SpikeTrain`][] batched over
      trials (times of shape `(trials, capacity)`); spikes at or after `t1` are
      ignored.
    - `t1`: end of every trial.
    - `inputs`: the input spikes of each trial (a `SpikeTrain` batched over the same
      trials), or `None` for a population without inputs.
    - `t0`: start of every trial.

    **Raises:** `ValueError` if `spikes` is not batched over one axis of trials, if
    `inputs` has another number of trials, or if `t1 <= t0`.
    """

    spikes: SpikeTrain
    t1: Float[Array, ""]
    inputs: SpikeTrain | None
    t0: Float[Array, ""]

    def __init__(
        self,
        spikes: SpikeTrain,
        t1: RealScalarLike,
        inputs: SpikeTrain | None = None,
        t0: RealScalarLike = 0.0,
    ):
        if spikes.times.ndim != 2:
            raise ValueError(
                f"Recording: `spikes` must be batched over one axis of trials (times of "
                f"shape (trials, capacity)); got times of shape {spikes.times.shape}."
            )
        if inputs is not None and inputs.times.shape[:-1] != spikes.times.shape[:1]:
            raise ValueError(
                f"Recording: `inputs` must hold one train per trial "
                f"({spikes.times.shape[0]}); got times of shape {inputs.times.shape}."
            )
        if not float(t1) > float(t0):
            raise ValueError(f"Recording: `t1` ({t1}) must be after `t0` ({t0}).")
        self.spikes = spikes
        self.inputs = inputs
        dtype = spikes.times.dtype
        self.t1 = jnp.asarray(t1, dtype)
        self.t0 = jnp.asarray(t0, dtype)

    @property
    def num_trials(self) -> int:
        """The number of trials."""
        return self.spikes.times.shape[0]

    def trials(self, index) -> Recording:
        """The recording of the trials `index` (an int array or a slice), e.g. a
        subset for cross-validation or a bootstrap sample."""
        take = lambda x: jax.tree_util.tree_map(lambda a: a[index], x)
        return Recording(take(self.spikes), self.t1, take(self.inputs), self.t0)


class AbstractObjective(eqx.Module):
    """What [`spikeode.fit`][] minimises: a model with its connections, and its loss
    on one recorded trial (the fit minimises the mean over trials).

    Subclasses implement `trial_loss`; `is_likelihood` says whether `trial_loss` is a
    negative log-likelihood (then the fit reports standard errors from its Hessian).
    The fitted parameters are leaves of the objective, chosen by `fit`'s `where`
    (e.g. `lambda o: o.model.neuron.tau_mem`).
    """

    is_likelihood: ClassVar[bool] = False
    options: eqx.AbstractVar[dict[str, Any]]

    @abc.abstractmethod
    def trial_loss(
        self, spikes: SpikeTrain, inputs: SpikeTrain | None, t0: Scalar, t1: Scalar
    ) -> Scalar:
        """The loss of one trial: `spikes` the recorded spikes (unbatched), `inputs`
        the trial's input spikes (or `None`), `[t0, t1]` the trial."""

    def with_adjoint(self, adjoint: AbstractAdjoint) -> AbstractObjective:
        """The same objective, differentiated by `adjoint` (the fit's Hessian is taken
        in forward over forward mode, [`spikeode.ForwardMode`][])."""
        return eqx.tree_at(lambda o: o.options, self, {**self.options, "adjoint": adjoint})


def _connections(w_in, w_rec, delays, input_delays) -> tuple[Any, ...]:
    """The connections as arrays (`None` stays `None`; `Synapses` stay `Synapses`)."""
    array = lambda x: x if x is None or isinstance(x, Synapses) else jnp.asarray(x)
    return array(w_in), array(w_rec), array(delays), array(input_delays)


class LogLikelihoodObjective(AbstractObjective):
    """The negative log-likelihood of each trial's spikes under an escape-noise model
    ([`spikeode.log_likelihood`][]: exact, conditioned on the recorded spikes, the
    network driven by the recorded spikes of the population and the inputs).

    **Arguments:**

    - `model`: an [`spikeode.EscapeNoise`][] model.
    - `w_in`, `w_rec`, `delays`, `input_delays`: its connections, as in
      [`spikeode.simulate`][] (each may be fitted).
    - `**options`: other keyword arguments of [`spikeode.log_likelihood`][]
      (`solver`, `stepsize_controller`, `adjoint`, ...).
    """

    is_likelihood: ClassVar[bool] = True
    model: AbstractNeuron
    w_in: Float[Array, "..."] | None
    w_rec: Float[Array, "..."] | Synapses | None
    delays: Float[Array, "..."] | None
    input_delays: Float[Array, "..."] | None
    options: dict[str, Any]

    def __init__(self, model, w_in=None, w_rec=None, delays=None, input_delays=None, **options):
        if not isinstance(model, EscapeNoise):
            raise TypeError(
                f"LogLikelihoodObjective: `model` must be a spikeode.EscapeNoise (a model "
                f"with a hazard), got {type(model).__name__}."
            )
        self.model = model
        self.w_in, self.w_rec, self.delays, self.input_delays = _connections(
            w_in, w_rec, delays, input_delays
        )
        self.options = options

    def trial_loss(self, spikes, inputs, t0, t1):
        """Minus the log-likelihood of one trial's `spikes`."""
        return -log_likelihood(
            self.model, spikes, t1, inputs, self.w_in, t0=t0, w_rec=self.w_rec,
            delays=self.delays, input_delays=self.input_delays, **self.options,
        )  # fmt: skip


def _van_rossum(tau: float) -> Callable[[SpikeTrain, SpikeTrain, Scalar], Scalar]:
    def distance(train, target, t1):
        return losses.van_rossum_distance(train, target, tau=tau, t1=t1)

    return distance


class SpikeDistanceObjective(AbstractObjective):
    """A distance between the spikes a deterministic model fires on each trial's
    inputs and the recorded spikes (by default the squared van Rossum distance,
    [`spikeode.losses.van_rossum_distance`][] with time constant `tau`).

    The model is simulated by [`spikeode.simulate`][] with `throw=False`; a full
    spike buffer is not an error here (the extra spikes are not counted), so choose
    `max_spikes` above the recorded counts. With `options={"pseudodynamics": ...}`
    (phase models) spikes that leave the trial become pseudospikes and a loss of
    spike times stays continuous.

    **Arguments:**

    - `model`: any model.
    - `w_in`, `w_rec`, `delays`, `input_delays`: its connections.
    - `max_spikes`: capacity of the simulated spike buffer.
    - `tau`: the van Rossum time constant (used by the default distance).
    - `distance`: `distance(simulated, recorded, t1) -> scalar` instead of van
      Rossum's (e.g. a spike-time loss from `spikeode.losses`).
    - `**options`: other keyword arguments of [`spikeode.simulate`][].
    """

    model: AbstractNeuron
    w_in: Float[Array, "..."] | None
    w_rec: Float[Array, "..."] | Synapses | None
    delays: Float[Array, "..."] | None
    input_delays: Float[Array, "..."] | None
    max_spikes: int = eqx.field(static=True)
    distance: Callable[[SpikeTrain, SpikeTrain, Scalar], Scalar] = eqx.field(static=True)
    options: dict[str, Any]

    def __init__(
        self, model, w_in=None, w_rec=None, delays=None, input_delays=None, *,
        max_spikes: int, tau: float | None = None, distance=None, **options,
    ):  # fmt: skip
        if (tau is None) == (distance is None):
            raise ValueError(
                "SpikeDistanceObjective: give either `tau` (the van Rossum distance) or "
                "a `distance` function."
            )
        if tau is not None and not float(tau) > 0:
            raise ValueError(f"SpikeDistanceObjective: `tau` must be positive, got {tau}.")
        self.model = model
        self.w_in, self.w_rec, self.delays, self.input_delays = _connections(
            w_in, w_rec, delays, input_delays
        )
        self.max_spikes = max_spikes
        self.distance = _van_rossum(float(tau)) if distance is None else distance
        self.options = {"throw": False, **options}

    def trial_loss(self, spikes, inputs, t0, t1):
        """The distance between the model's spikes on `inputs` and `spikes`."""
        sim = simulate(
            self.model, t1, inputs, self.w_in, t0=t0, w_rec=self.w_rec, delays=self.delays,
            input_delays=self.input_delays, max_spikes=self.max_spikes, **self.options,
        )  # fmt: skip
        return self.distance(sim.spikes, spikes, t1)


class FitResult(eqx.Module):
    """The result of [`spikeode.fit`][].

    - `objective`: the objective with the fitted parameters (its `model` is the
      fitted model).
    - `values`: the fitted parameters, in the order of `where`.
    - `losses`: the mean loss per trial before each optimiser step (for a likelihood,
      the negative log-likelihood per trial), one per step taken; `final_loss` the
      one after the last step.
    - `hessian`: the Hessian of the total negative log-likelihood (summed over the
      trials) in the flattened parameters at the fit, or `None` (not a likelihood,
      or `standard_errors=False`).
    - `covariance`: its inverse, the asymptotic covariance of the estimates.
    - `standard_errors`: the square roots of its diagonal, shaped as `values`.
    """

    objective: AbstractObjective
    values: tuple[Array, ...]
    losses: Float[Array, " steps"]
    final_loss: Float[Array, ""]
    hessian: Float[Array, "p p"] | None
    covariance: Float[Array, "p p"] | None
    standard_errors: tuple[Array, ...] | None

    def intervals(self, level: float = 0.95) -> tuple[tuple[Array, Array], ...]:
        """Wald confidence intervals `(low, high)` per parameter at `level`:
        `value -+ z * standard_error` with `z` the normal quantile (1.96 at 0.95).

        **Raises:** `ValueError` without standard errors or for a level outside (0, 1).
        """
        if self.standard_errors is None:
            raise ValueError(
                "FitResult.intervals: no standard errors (the objective is not a "
                "likelihood, or the fit ran with standard_errors=False)."
            )
        if not 0 < level < 1:
            raise ValueError(f"FitResult.intervals: `level` must be in (0, 1), got {level}.")
        z = float(jax.scipy.stats.norm.ppf(0.5 + level / 2))
        return tuple((v - z * s, v + z * s) for v, s in zip(self.values, self.standard_errors))


def _strong(tree: PyTree) -> PyTree:
    """`tree` without weak types (parameters built from Python floats are weakly
    typed, the optimiser's updates are not: a jitted step would compile twice)."""
    strong = lambda x: jnp.asarray(x, dtype=x.dtype) if isinstance(x, jax.Array) else x
    return jax.tree_util.tree_map(strong, tree)


def _where_tuple(where, tree) -> tuple[Any, ...]:
    out = where(tree)
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _replace(where, objective: AbstractObjective, values: tuple[Array, ...]):
    return eqx.tree_at(lambda o: _where_tuple(where, o), objective, values)


def _total_loss(objective: AbstractObjective, data: Recording) -> Scalar:
    per_trial = jax.vmap(objective.trial_loss, in_axes=(0, 0, None, None))
    return jnp.sum(per_trial(data.spikes, data.inputs, data.t0, data.t1))


_total_loss_jit = eqx.filter_jit(_total_loss)


@eqx.filter_jit
def _step(raw, opt_state, objective, data, where, positive, optimiser):
    def loss(raw):
        values = tuple(jnp.exp(r) if p else r for r, p in zip(raw, positive))
        return _total_loss(_replace(where, objective, values), data) / data.num_trials

    value, grads = jax.value_and_grad(loss)(raw)
    # (the extra arguments serve optimisers with a line search, e.g. optax.lbfgs;
    # others ignore them. Optax's L-BFGS mixes int32 and int64 indices under x64, which
    # strict dtype promotion would refuse: its update runs under standard promotion.)
    with jax.numpy_dtype_promotion("standard"):
        updates, opt_state = optimiser.update(
            grads, opt_state, raw, value=value, grad=grads, value_fn=loss
        )
    return optax.apply_updates(raw, updates), opt_state, value


@eqx.filter_jit
def _hessian(flat, unravel, objective, data, where, chunk):
    """The Hessian of the total loss in the flattened parameters, forward over forward
    mode, `chunk` columns at a time."""
    objective = objective.with_adjoint(ForwardMode())
    f = lambda x: _total_loss(_replace(where, objective, unravel(x)), data)
    grad = jax.jacfwd(f)
    column = lambda e: jax.jvp(grad, (flat,), (e,))[1]
    return jax.lax.map(column, jnp.eye(flat.size, dtype=flat.dtype), batch_size=chunk)


def fit(
    objective: AbstractObjective,
    data: Recording,
    where: Callable[[AbstractObjective], Any],
    *,
    positive: bool | Sequence[bool] = False,
    optimiser: optax.GradientTransformation | None = None,
    steps: int = 500,
    tol: float | None = None,
    standard_errors: bool | None = None,
    hessian_chunk: int = 8,
    progress: bool = True,
    log_every: int = 0,
    log: Callable[[str], None] = print,
) -> FitResult:
    r"""Fit parameters of a model to recorded spike trains: minimise the mean over
    trials of `objective`'s loss (for a [`spikeode.LogLikelihoodObjective`][] the
    negative log-likelihood: maximum likelihood) by `steps` steps of an Optax
    optimiser on exact gradients (reverse mode through the event loop).

    For a likelihood the result has standard errors from the observed information,
    the Hessian $H$ of the total negative log-likelihood at the estimate
    (covariance $H^{-1}$), computed exactly in forward over forward mode (the reverse
    pass of the event loop is a custom VJP, which JAX cannot differentiate in forward
    mode, so forward over reverse is not available); its cost grows as the square of
    the number of parameters. For a network whose neurons' likelihoods factorise (all
    spikes recorded), fitting each neuron's incoming weights separately, with the
    other neurons' spikes as inputs, is much cheaper and gives the same estimates.

    **Arguments:**

    - `objective`: a [`spikeode.LogLikelihoodObjective`][] or
      [`spikeode.SpikeDistanceObjective`][] (any [`spikeode.AbstractObjective`][]).
    - `data`: the [`spikeode.Recording`][].
    - `where`: selects the fitted parameters of `objective`, as in
      `equinox.tree_at`: e.g. `lambda o: (o.model.neuron.tau_mem, o.w_rec)`; each
      must be a floating array.
    - `positive`: whether each parameter is positive (one bool, or one per
      parameter): positive parameters are optimised as their logarithms, so they stay
      positive (time constants, noise widths and rates). Standard errors are always
      those of the parameters themselves.
    - `optimiser`: an Optax optimiser on the (log-)parameters; default
      `optax.adam(1e-2)`.
    - `steps`: optimiser steps (full batch: every step uses every trial).
    - `tol`: stop early once the mean loss changed by at most `tol` in each of three
      consecutive steps (default: run all `steps`).
    - `standard_errors`: compute the Hessian and standard errors (default: when the
      objective is a likelihood; an error otherwise).
    - `hessian_chunk`: Hessian columns computed at once (memory against speed).
    - `progress`: show a progress bar (tqdm) with the current loss.
    - `log_every`, `log`: also call `log` with the loss every `log_every` steps.

    **Returns:** a [`spikeode.FitResult`][].

    **Raises:** `ValueError` for a `where` that selects no floating array, a
    non-positive start value of a positive parameter, a length of `positive` that
    does not match, `steps < 0`, `hessian_chunk < 1`, standard errors of a
    non-likelihood, or a non-finite loss during the fit (naming the step);
    `UserWarning` when the Hessian at the end is not positive definite (then the
    standard errors are NaN: the fit is not at a maximum of the likelihood).
    """
    start = _where_tuple(where, objective)
    for k, v in enumerate(start):
        if not eqx.is_inexact_array(v):
            raise ValueError(
                f"fit: parameter {k} selected by `where` is {type(v).__name__}; "
                f"expected a floating JAX array."
            )
    flags = (positive,) * len(start) if isinstance(positive, bool) else tuple(positive)
    if len(flags) != len(start):
        raise ValueError(
            f"fit: `positive` has {len(flags)} entries for {len(start)} parameters."
        )
    for k, (v, p) in enumerate(zip(start, flags)):
        if p and not bool(jnp.all(v > 0)):
            raise ValueError(f"fit: parameter {k} is declared positive but starts at {v}.")
    if steps < 0:
        raise ValueError(f"fit: `steps` must be >= 0, got {steps}.")
    if hessian_chunk < 1:
        raise ValueError(f"fit: `hessian_chunk` must be >= 1, got {hessian_chunk}.")
    if standard_errors is None:
        standard_errors = objective.is_likelihood
    if standard_errors and not objective.is_likelihood:
        raise ValueError(
            f"fit: standard errors need a likelihood; {type(objective).__name__} is not one."
        )
    optimiser = optax.adam(1e-2) if optimiser is None else optimiser
    raw = _strong(tuple(jnp.log(v) if p else v for v, p in zip(start, flags)))
    opt_state = _strong(optimiser.init(raw))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc="fit", unit="step")
    history = []
    for i in range(steps):
        new_raw, opt_state, value = _step(raw, opt_state, objective, data, where, flags,
                                          optimiser)  # fmt: skip
        value = float(value)
        if not np.isfinite(value):
            raise ValueError(
                f"fit: the loss is {value} at step {i} (parameters "
                f"{[np.asarray(v) for v in raw]}, logarithms where positive)."
            )
        raw = new_raw
        history.append(value)
        still = tol is not None and len(history) > 3 and all(
            abs(a - b) <= tol for a, b in zip(history[-4:-1], history[-3:])
        )
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{value:.6g}")
        if log_every and (i % log_every == 0 or i == steps - 1):
            log(f"fit step {i}: loss {value:.10g}")
        if still:
            break
    if bar is not None:
        bar.close()
    values = tuple(jnp.exp(r) if p else r for r, p in zip(raw, flags))
    fitted = _replace(where, objective, values)
    final = _total_loss_jit(fitted, data) / data.num_trials
    if not bool(jnp.isfinite(final)):
        raise ValueError(f"fit: the loss is {float(final)} after the last step.")
    hessian = covariance = errors = None
    if standard_errors:
        flat, unravel = jax.flatten_util.ravel_pytree(values)
        hessian = _hessian(flat, unravel, fitted, data, where, hessian_chunk)
        hessian = 0.5 * (hessian + hessian.T)
        if bool(jnp.all(jnp.linalg.eigvalsh(hessian) > 0)):
            covariance = jnp.linalg.inv(hessian)
            errors = unravel(jnp.sqrt(jnp.diag(covariance)))
        else:
            warnings.warn(
                "fit: the Hessian of the negative log-likelihood is not positive "
                "definite at the fit (not a maximum of the likelihood: fit longer, or "
                "the parameters are not identifiable from these data); standard "
                "errors are NaN.",
                stacklevel=2,
            )
            covariance = jnp.full_like(hessian, jnp.nan)
            errors = unravel(jnp.full_like(flat, jnp.nan))
    return FitResult(
        objective=fitted,
        values=values,
        losses=jnp.asarray(history),
        final_loss=final,
        hessian=hessian,
        covariance=covariance,
        standard_errors=errors,
    )

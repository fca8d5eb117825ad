"""Helpers for neuron parameters: conversion, broadcasting and validation."""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Real, ScalarLike

# A neuron parameter as the constructors take it: a real number, shared by the
# population, or one per neuron (an array or a sequence of numbers). `as_param`
# converts it and checks its shape.
ParamLike = Real[ArrayLike, "..."] | Sequence[ScalarLike]


def is_concrete(*xs) -> bool:
    """Whether none of `xs` is traced (so its value can be checked eagerly)."""
    return not any(isinstance(x, jax.core.Tracer) for x in xs)


def as_param(name: str, value: ParamLike, num_neurons: int) -> jax.Array:
    """Convert a parameter to a floating array of shape `()` or `(num_neurons,)`."""
    x = jnp.asarray(value)
    dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.result_type(float)
    # An explicit dtype gives a strongly typed array, so that parameters updated by
    # an optimiser keep the same abstract type (no recompilation).
    x = jnp.array(x, dtype=dtype)
    if x.shape not in ((), (num_neurons,)):
        raise ValueError(
            f"parameter `{name}` has shape {x.shape}; expected a scalar or shape "
            f"({num_neurons},) for {num_neurons} neurons."
        )
    if not isinstance(x, jax.core.Tracer):
        if np.any(np.isnan(np.asarray(x))):
            raise ValueError(f"parameter `{name}` contains NaN.")
    return x


def check_positive(name: str, x: jax.Array, *, allow_zero: bool = False) -> jax.Array:
    """Raise a clear error (eagerly, or inside `jit` via `equinox.error_if`) unless
    every entry of `x` is positive (or non-negative if `allow_zero`)."""
    what = "non-negative" if allow_zero else "positive"
    if not isinstance(x, jax.core.Tracer):
        xv = np.asarray(x)
        bad = (xv < 0) if allow_zero else (xv <= 0)
        if np.any(bad) or np.any(np.isnan(xv)):
            raise ValueError(f"`{name}` must be {what}; got {xv}.")
        return x
    bad = (x < 0) if allow_zero else (x <= 0)
    return eqx.error_if(x, jnp.any(bad | jnp.isnan(x)), f"`{name}` must be {what}.")


def check_num_neurons(name: str, num_neurons) -> int:
    """`num_neurons` as a positive int, or a clear error."""
    if not isinstance(num_neurons, int) or num_neurons < 1:
        raise ValueError(f"{name}: `num_neurons` must be a positive int, got {num_neurons!r}.")
    return num_neurons

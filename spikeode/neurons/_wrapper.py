"""Noise wrappers: models built around another model, which they delegate to
(`EscapeNoise`, `DiffusionNoise`); their shared base `_AbstractWrapper` and their
per-neuron PRNG keys (`per_neuron_keys`)."""

# (No `from __future__ import annotations`: this module declares `eqx.AbstractVar`s
# and implements those of `AbstractNeuron` as properties; see _base.py.)

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Key

from ._base import AbstractNeuron


def per_neuron_keys(key: ArrayLike, n: int, owner: str) -> Key[Array, " neurons"]:
    """`n` typed PRNG keys, one per neuron: from one key, neuron `i` gets
    `jax.random.fold_in(key, i)` (independent of `n`: a neuron's randomness does not
    depend on the population size); one key per neuron (shape `(n,)`) is kept. Legacy
    `uint32` keys (`jax.random.PRNGKey`, shape `(2,)` or `(n, 2)`) are wrapped first.
    `owner` names the model in the error message.

    **Raises:** `ValueError` for a key of the wrong dtype or shape."""
    key = jnp.asarray(key)
    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    if not typed and key.dtype == jnp.uint32 and key.shape in ((2,), (n, 2)):
        key = jax.random.wrap_key_data(key)
        typed = True
    if not typed or key.shape not in ((), (n,)):
        raise ValueError(
            f"{owner}: `key` must be a JAX PRNG key, `jax.random.key(seed)` (shape ()) "
            f"or `jax.random.PRNGKey(seed)` (shape (2,)), or one per neuron (shape ({n},) "
            f"or ({n}, 2)); got dtype {key.dtype} and shape {key.shape}."
        )
    if key.shape == (n,):
        return key
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, jnp.arange(n, dtype=jnp.uint32))


class _AbstractWrapper(AbstractNeuron):
    """A model around another one, `neuron`, with one PRNG key per neuron, `key`
    (shape `(num_neurons,)`, from `per_neuron_keys`; a lane of the per-neuron loops
    holds its neuron's key alone, shape `()`).

    The population, the refractory period and whether inputs reach a refractory
    neuron are the wrapped model's. `one_neuron(i)` rebuilds the wrapper by its
    constructor (its fields are the constructor's arguments) around
    `neuron.one_neuron(i)`, with the key of neuron `i` kept (shape `(1,)`, so it is
    not folded in again) and each other per-neuron parameter (shape
    `(num_neurons,)`) replaced by its entry `i`. Final subclasses declare the fields
    `neuron` and `key`, and implement the rest of the contract."""

    neuron: eqx.AbstractVar[AbstractNeuron]
    key: eqx.AbstractVar[Key[Array, "..."]]

    @property
    def num_neurons(self) -> int:
        """The wrapped model's number of neurons."""
        return self.neuron.num_neurons

    @property
    def refractory_period(self) -> Float[Array, "..."]:
        """The wrapped model's refractory period (the noise is off during it)."""
        return self.neuron.refractory_period

    @property
    def receives_while_refractory(self) -> bool:
        """The wrapped model's: whether inputs reach a refractory neuron."""
        return self.neuron.receives_while_refractory

    def one_neuron(self, i=0):
        """Neuron `i` as a wrapper of its own: around `neuron.one_neuron(i)`, with its
        key (shape `(1,)`) and its entries of the per-neuron parameters."""
        n = self.num_neurons
        pick = lambda x: x[i] if eqx.is_array(x) and x.shape == (n,) else x
        # (`neuron` and `key` are picked too, then replaced)
        picked = jax.tree_util.tree_map(pick, self)
        return dataclasses.replace(
            picked, neuron=self.neuron.one_neuron(i), key=self.key[i : i + 1]
        )

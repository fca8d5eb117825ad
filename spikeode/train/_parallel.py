"""Data parallelism: each batch split over devices (`jax.shard_map`)."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ._config import TrainConfig


def _largest_divisor(n: int, most: int) -> int:
    """The largest divisor of `n` that is at most `most` (1 at least)."""
    return max(k for k in range(1, max(min(n, most), 1) + 1) if n % k == 0)


def num_devices(config: TrainConfig) -> int:
    """How many devices share each training batch under `config.devices` (see
    `TrainConfig`)."""

    available = jax.local_device_count()
    if config.devices:
        if config.devices > available:
            raise ValueError(
                f"devices={config.devices} but JAX has {available} local device(s); for "
                "CPU cores set XLA_FLAGS=--xla_force_host_platform_device_count=N before "
                "JAX starts (the spikeode command does)"
            )
        return config.devices
    if config.silent_weight:
        return 1
    return _largest_divisor(config.batch_size, available)


def _mesh(d: int):

    return Mesh(np.array(jax.local_devices()[:d]), ("batch",))


def _replicated(tree, d: int):
    """`tree` on each of the `d` devices (so that the compiled step, whose outputs
    are replicated, sees the same placement at every call and compiles once)."""

    if d == 1:
        return tree
    return jax.device_put(tree, NamedSharding(_mesh(d), PartitionSpec()))


def _data_parallel(fn, d: int, in_specs, out_specs):
    """`fn` with its arguments split over `d` devices as `in_specs` says (a
    `PartitionSpec` per argument: `PartitionSpec()` replicates it, a `"batch"` entry
    splits that axis); `fn` runs on each share and reduces its outputs over the mesh
    axis `"batch"` itself (`out_specs` says which outputs stay split)."""

    if d == 1:
        return fn
    return jax.shard_map(
        fn, mesh=_mesh(d), in_specs=in_specs, out_specs=out_specs,
        # equinox.error_if's branches are not annotated for shard_map's type check
        check_vma=False,
    )  # fmt: skip


def _chunk_size(steps: int) -> int:
    """Training steps per compiled call: the largest divisor of an epoch's `steps`
    up to 16, so that every call has the same length (one compilation) and the
    progress bar still moves several times per epoch."""
    return _largest_divisor(steps, 16)

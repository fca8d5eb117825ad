"""The main job: train a spiking classifier with exact gradients, results on disk.

- `TrainConfig` (`_config.py`): everything that determines a run.
- `build_model`, `trainable_filter`, `optimiser`, `sample_loss` (`_model.py`): the
  network, which leaves are trained, the Optax optimiser and the loss of one sample.
- `num_devices` (`_parallel.py`): how many devices share each batch (data
  parallelism by `jax.shard_map`).
- `_trainer.py`: a run's state, its compiled steps, epochs and checkpoints
  (`read_checkpoint_meta`).
- `fit`, `evaluate_checkpoint` (`_fit.py`): the job, on a registered task or on the
  user's own data (`spikeode.data.Task.from_data`); `_plots.py` its figures.
"""

from ._config import TrainConfig as TrainConfig
from ._fit import evaluate_checkpoint as evaluate_checkpoint, fit as fit
from ._model import (
    build_model as build_model,
    optimiser as optimiser,
    sample_loss as sample_loss,
    trainable_filter as trainable_filter,
)
from ._parallel import num_devices as num_devices
from ._trainer import read_checkpoint_meta as read_checkpoint_meta

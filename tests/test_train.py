"""The training job: learning, resume, checkpoints, CLI errors (small and fast)."""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import numpy as np
import pytest

from spikeode import cli
from spikeode.train import TrainConfig, _Trainer, evaluate_checkpoint, fit

# float64 (the suite runs with x64 on); a small Yin-Yang subset.
SMALL = TrainConfig(
    task="yinyang", epochs=3, batch_size=32, lr=5e-3, hidden=40, dtype="float64",
    seed=0, train_samples=960, test_samples=300,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("run"))
    config = dataclasses.replace(SMALL, out=out)
    results = fit(config, progress=False, log=lambda *_: None)
    return config, results


def _history(out):
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_training_learns_and_writes_results(trained):
    config, results = trained
    history = _history(config.out)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    # chance is 1/3 on Yin-Yang
    assert results["test_acc"] >= 0.5, history
    for name in ("results.json", "config.json", "checkpoint.eqx", "checkpoint.json",
                 "curves.png", "raster.png", "first_spike_times.png"):
        assert os.path.getsize(os.path.join(config.out, name)) > 0
    again = evaluate_checkpoint(os.path.join(config.out, "checkpoint"))
    assert again["test_acc"] == pytest.approx(results["test_acc"], abs=1e-12)


def test_resume_gives_identical_parameters(trained, tmp_path):
    config, _ = trained
    part = dataclasses.replace(config, out=str(tmp_path), epochs=2)
    fit(part, progress=False, log=lambda *_: None)
    fit(dataclasses.replace(part, epochs=3), resume=True, progress=False, log=lambda *_: None)
    a, b = _Trainer(config, 5, 3, 30), _Trainer(config, 5, 3, 30)
    a.load(os.path.join(config.out, "checkpoint"))
    b.load(os.path.join(str(tmp_path), "checkpoint"))
    for x, y in zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert _history(config.out)[-1]["test_acc"] == _history(str(tmp_path))[-1]["test_acc"]


def test_corrupted_and_mismatched_checkpoints(trained, tmp_path):
    config, _ = trained
    src = os.path.join(config.out, "checkpoint")
    # mismatched: a different hidden size
    other = _Trainer(dataclasses.replace(config, hidden=41), 5, 3, 30)
    with pytest.raises(ValueError, match="different configuration"):
        other.load(src)
    # corrupted weights file
    bad = os.path.join(str(tmp_path), "checkpoint")
    with open(src + ".json") as f:
        meta = f.read()
    with open(bad + ".json", "w") as f:
        f.write(meta)
    with open(bad + ".eqx", "wb") as f:
        f.write(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupted"):
        _Trainer(config, 5, 3, 30).load(bad)
    # corrupted metadata
    with open(bad + ".json", "w") as f:
        f.write("{not json")
    with pytest.raises(ValueError, match="corrupted"):
        evaluate_checkpoint(bad)
    with pytest.raises(FileNotFoundError):
        evaluate_checkpoint(os.path.join(str(tmp_path), "missing"))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "mnist"], "invalid choice"),
        (["train", "yinyang", "--epochs", "0"], "positive integer"),
        (["train", "yinyang", "--lr", "-1"], "positive number"),
        (["train", "yinyang", "--dtype", "float16"], "invalid choice"),
    ],
)
def test_cli_rejects_bad_options(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_eval_reports_missing_checkpoint(tmp_path, capsys):
    assert cli.main(["eval", str(tmp_path / "nothing")]) == 2
    assert "not found" in capsys.readouterr().err


def test_config_validation():
    with pytest.raises(ValueError, match="hidden must be a positive integer"):
        dataclasses.replace(SMALL, hidden=0).validate()
    with pytest.raises(ValueError, match="task must be one of"):
        dataclasses.replace(SMALL, task="cifar").validate()

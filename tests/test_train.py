"""The training job: learning, resume, checkpoints, CLI errors (small and fast)."""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import numpy as np
import pytest

from spikeode import cli
from spikeode.train import evaluate_checkpoint, fit, TrainConfig
from spikeode.train._trainer import _Trainer

# float64 (the suite runs with x64 on); a small Yin-Yang subset.
SMALL = TrainConfig(
    task="yinyang", epochs=3, batch_size=32, lr=5e-3, hidden=40, dtype="float64",
    seed=0, train_samples=960, validation_samples=300, test_samples=300,
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
    assert again["epoch"] == results["selected"]["epoch"]


def test_selection_uses_validation_not_test(trained):
    """The result is the epoch with the best validation accuracy (ties: lower
    validation loss), and its test accuracy is what is reported."""
    config, results = trained
    history = _history(config.out)
    best = max(history, key=lambda h: (h["val_acc"], -h["val_loss"]))
    selected = results["selected"]
    assert selected["epoch"] == best["epoch"]
    assert "validation" in selected["rule"]
    assert results["test_acc"] == history[best["epoch"] - 1]["test_acc"]
    assert results["final_test_acc"] == history[-1]["test_acc"]
    with open(os.path.join(config.out, "checkpoint.json")) as f:
        assert json.load(f)["selected"]["epoch"] == best["epoch"]
    with open(os.path.join(config.out, "results.json")) as f:
        assert json.load(f)["selected"]["epoch"] == best["epoch"]


def test_select_last(tmp_path):
    """`select="last"`: the last epoch is the result, and the validation split is not
    evaluated. (A task without a validation split, with `select="validation"`, is
    `test_xor_task_defaults_learn_xor`.) The selection does not depend on the network:
    closed-form layers, which compile in a fraction of the event loop's time."""
    config = dataclasses.replace(
        SMALL, epochs=1, hidden=10, train_samples=64, test_samples=20,
        validation_samples=20, select="last", out=str(tmp_path / "last"),
        closed_form=True, tau_syn=SMALL.tau_mem / 2,
    )
    results = fit(config, progress=False, log=lambda *_: None)
    assert results["selected"]["epoch"] == 1 and results["selected"]["rule"] == "last epoch"
    assert "val_acc" not in _history(config.out)[0]


@pytest.mark.slow  # (a training run of about a minute)
def test_xor_task_defaults_learn_xor(tmp_path):
    """`spikeode train xor` with the task's defaults (float64 here) solves XOR. XOR has
    no validation split: with `select="validation"` (the default) the last epoch is
    the result."""
    config = dataclasses.replace(TrainConfig.for_task("xor"), dtype="float64",
                                 out=str(tmp_path))  # fmt: skip
    assert config.select == "validation"
    results = fit(config, progress=False, log=lambda *_: None)
    assert results["test_acc"] == 1.0, results
    assert results["selected"]["rule"] == "last epoch"
    assert results["selected"]["epoch"] == config.epochs
    assert "val_acc" not in _history(config.out)[0]


@pytest.mark.slow  # (a training run of about a minute)
def test_randman_task_defaults_learn(tmp_path):
    """`spikeode train randman`'s defaults (float64, 2 epochs on 640 samples here)
    run and learn: far above chance (10 %) after 20 steps."""
    config = dataclasses.replace(TrainConfig.for_task("randman"), dtype="float64", epochs=2,
                                 train_samples=640, test_samples=200,
                                 out=str(tmp_path))  # fmt: skip
    results = fit(config, progress=False, log=lambda *_: None)
    assert results["test_acc"] > 0.4, results  # 58.5 % measured


def test_silent_hidden_neurons_are_bumped():
    from spikeode.train._model import _bump_silent

    trainer = _Trainer(dataclasses.replace(SMALL, hidden=4), 5, 3, 30)
    params = trainer.params
    fired = np.array([0, 2, 1, 0])  # samples per hidden neuron: 0 and 3 silent
    bumped = _bump_silent(params, (fired,), 0.25)
    diff = np.asarray(bumped.layers[0].w_in - params.layers[0].w_in)
    np.testing.assert_allclose(diff, np.tile([0.25, 0.0, 0.0, 0.25], (5, 1)))
    np.testing.assert_array_equal(
        np.asarray(bumped.layers[1].w_in), np.asarray(params.layers[1].w_in)
    )
    assert _bump_silent(params, (fired,), 0.0) is params


def test_resume_gives_identical_parameters(trained, tmp_path):
    config, _ = trained
    part = dataclasses.replace(config, out=str(tmp_path), epochs=2)
    fit(part, progress=False, log=lambda *_: None)
    fit(dataclasses.replace(part, epochs=3), resume=True, progress=False, log=lambda *_: None)
    a, b = _Trainer(config, 5, 3, 30), _Trainer(config, 5, 3, 30)
    a.load(os.path.join(config.out, "checkpoint"))
    b.load(os.path.join(str(tmp_path), "checkpoint"))
    for x, y in zip(jax.tree_util.tree_leaves(a._state()), jax.tree_util.tree_leaves(b._state())):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    strip = lambda hs: [{k: v for k, v in h.items() if "seconds" not in k} for h in hs]
    assert strip([a.selected]) == strip([b.selected])
    assert strip(_history(config.out)) == strip(_history(str(tmp_path)))


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


def test_cli_xla_flags(monkeypatch):
    """Every `spikeode` command compiles with XLA's legacy CPU fusion emitters,
    `train`/`eval` give JAX a device per core, `check` compiles at optimisation level
    0; the caller's own flags win."""
    cores = f"--xla_force_host_platform_device_count={cli.cpu_cores()}"
    legacy = "--xla_cpu_use_fusion_emitters=false"
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    cli._configure_xla("train")
    assert os.environ["XLA_FLAGS"] == f"--xla_cpu_enable_fast_math=false {legacy} {cores}"
    assert cli.xla_flags("eval") == f"{legacy} {cores}"
    assert cli.xla_flags("check") == f"{legacy} --xla_backend_optimization_level=0"
    # the user's choices stand
    mine = "--xla_force_host_platform_device_count=1 --xla_cpu_use_fusion_emitters=true"
    assert cli.xla_flags("train", mine) == mine
    assert cli.xla_flags("check", "--xla_backend_optimization_level=3") == (
        f"--xla_backend_optimization_level=3 {legacy}")


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
    with pytest.raises(ValueError, match="select must be one of"):
        dataclasses.replace(SMALL, select="test").validate()
    with pytest.raises(ValueError, match="hidden_bump must be a non-negative"):
        dataclasses.replace(SMALL, hidden_bump=-0.1).validate()
    for name in ("silent_weight", "weight_decay", "input_jitter"):
        with pytest.raises(ValueError, match=f"{name} must be a non-negative"):
            dataclasses.replace(SMALL, **{name: -1.0}).validate()
    with pytest.raises(ValueError, match="devices must be a non-negative integer"):
        dataclasses.replace(SMALL, devices=-1).validate()
    with pytest.raises(ValueError, match="batch_size 32 must be a multiple of devices=3"):
        dataclasses.replace(SMALL, devices=3).validate()
    with pytest.raises(ValueError, match="silent_weight > 0 needs the whole batch"):
        dataclasses.replace(SMALL, devices=2, silent_weight=0.1).validate()


_DATA_PARALLEL = """
import dataclasses, json, sys
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np, jax.numpy as jnp
from spikeode.train import TrainConfig, num_devices
from spikeode.train._fit import _load
from spikeode.train._trainer import _Trainer
from spikeode.data import TASKS
assert jax.local_device_count() == 2, jax.devices()
# weight bumping uses the silent neurons of the whole batch, summed over both shares
config = TrainConfig(task="yinyang", batch_size=32, hidden=40, dtype="float64",
                     train_samples=96, test_samples=50, hidden_bump=0.05)
(x, y), (x_test, y_test) = _load(TASKS["yinyang"], config, jnp.float64)
out = {}
for d in (1, 2):
    c = dataclasses.replace(config, devices=d)
    trainer = _Trainer(c, x.num_neurons, 3, 3)
    losses = trainer.train_epoch(x, y, 0)[0].tolist()
    w = [np.asarray(l.w_in).tolist() for l in trainer.params.layers]
    test = [float(v) for v in trainer.evaluate(x_test, jnp.asarray(y_test), activity=True)]
    out[d] = dict(devices=num_devices(c), losses=losses, w=w, test=test)
out["auto"] = num_devices(config)  # devices=0: all that divide the batch
print(json.dumps(out))
"""


@pytest.mark.slow  # (a training run of about a minute)
def test_data_parallel_training_matches_one_device():
    """Splitting each batch over two CPU devices (a fresh process: the device count is
    fixed when JAX starts) gives the one-device losses, parameters (weight bumping
    included) and test metrics to round-off in float64; `devices=0` picks both."""
    import subprocess
    import sys

    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    proc = subprocess.run(
        [sys.executable, "-c", _DATA_PARALLEL], env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    one, two = out["1"], out["2"]
    assert (one["devices"], two["devices"], out["auto"]) == (1, 2, 2)
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=1e-12)
    for a, b in zip(two["w"], one["w"]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # the test set (50 samples) is split over both devices too
    np.testing.assert_allclose(two["test"], one["test"], rtol=1e-12)
    assert one["w"][0] != _initial_weights()  # training moved the weights


def _initial_weights():
    trainer = _Trainer(
        TrainConfig(task="yinyang", batch_size=32, hidden=40, dtype="float64"), 5, 3, 3
    )
    return np.asarray(trainer.params.layers[0].w_in).tolist()


def test_input_augmentation_is_reproducible_sorted_and_nonnegative():
    from spikeode.data import yinyang_spikes
    from spikeode.train._trainer import _augment, _take

    x, _ = yinyang_spikes("test", 0.0, 0.03, 0.0)
    x = _take(x, np.arange(64))
    config = dataclasses.replace(SMALL, input_jitter=0.002)
    a, b = _augment(x, config, 3, 5), _augment(x, config, 3, 5)
    np.testing.assert_array_equal(a.times, b.times)
    assert not np.array_equal(a.times, _augment(x, config, 3, 6).times)
    t = np.asarray(a.times)
    assert np.all(t >= 0) and np.all(np.diff(t, axis=-1) >= 0)
    # the same spikes, moved: per-neuron counts unchanged, moves of about 2 ms
    np.testing.assert_array_equal(a.counts(), x.counts())
    moved = np.sort(t, -1) - np.sort(np.asarray(x.times), -1)
    assert 0.001 < np.std(moved[np.asarray(x.times) > 0.005]) < 0.003
    assert _augment(x, SMALL, 3, 5) is x
    # dropout deletes about the given fraction of spikes (padding moves last)
    dropped = _augment(x, dataclasses.replace(SMALL, input_dropout=0.3), 3, 5)
    kept = float(np.sum(dropped.counts())) / float(np.sum(x.counts()))
    assert 0.6 < kept < 0.8
    assert np.all(np.isinf(np.asarray(dropped.times)[~np.asarray(dropped.valid)]))
    with pytest.raises(ValueError, match=r"input_dropout must lie in \[0, 1\)"):
        dataclasses.replace(SMALL, input_dropout=1.0).validate()


def test_cli_set_option_errors(capsys):
    for args, message in [
        (["--set", "foo=1"], "unknown or dedicated field 'foo'"),
        (["--set", "lr=0.1"], "unknown or dedicated field 'lr'"),
        (["--set", "lr_decay"], "expects FIELD=VALUE"),
        (["--set", "w_out=[1]"], "list of 2 numbers"),
        (["--set", "select=3"], "expected a str"),
        (["--set", "silent_weight=-1"], "silent_weight must be a non-negative"),
    ]:
        assert cli.main(["train", "yinyang", *args]) == 2
        assert message in capsys.readouterr().err


def test_closed_form_network_trains_from_the_cli(tmp_path, capsys):
    """`spikeode train yinyang --closed-form`: closed-form first-spike layers
    (`FirstSpikeLayer`, tau_syn = tau_mem / 2) learn, and the checkpoint evaluates to
    the same accuracy."""
    out = str(tmp_path / "cf")
    # all 5000 training samples, 5 epochs: about 5 s (closed form, float64)
    argv = ["train", "yinyang", "--closed-form", "--epochs", "5", "--dtype", "float64",
            "--out", out, "--no-progress", "--set", "validation_samples=300",
            "--set", "test_samples=300"]  # fmt: skip
    assert cli.main(argv) == 0
    with open(os.path.join(out, "config.json")) as f:
        config = TrainConfig.from_json(json.load(f))
    assert config.closed_form and config.tau_syn == config.tau_mem / 2
    assert config.w_hidden == (1.0, 0.5)  # the task's closed_form_defaults
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)
    assert results["test_acc"] > 0.85, results  # chance is 1/3; 92.7 % measured
    again = evaluate_checkpoint(os.path.join(out, "checkpoint"))
    assert again["test_acc"] == pytest.approx(results["test_acc"], abs=1e-12)
    trainer = _Trainer(config, 5, 3, 1)
    assert all(type(layer).__name__ == "FirstSpikeLayer" for layer in trainer.params.layers)


def test_closed_form_config_errors(capsys):
    with pytest.raises(ValueError, match=r"closed_form needs tau_mem == 2 \* tau_syn"):
        dataclasses.replace(SMALL, closed_form=True).validate()
    assert cli.main(["train", "yinyang", "--set", "closed_form=true"]) == 2
    assert "dedicated field 'closed_form'" in capsys.readouterr().err


def _blobs(n, seed):
    """Two Gaussian blobs in the unit square, latency-coded with a bias spike: a
    user's own data set, built without the task registry."""
    import spikeode as so

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    centres = np.array([[0.25, 0.7], [0.75, 0.3]])
    x = np.clip(centres[y] + rng.normal(0, 0.1, (n, 2)), 0, 1)
    x = np.concatenate([x, 1 - x], axis=1)  # (as Yin-Yang: each value and 1 - value)
    spikes = so.data.latency_encode(x, 0.0, 0.03, dtype=np.float64)
    return so.data.add_bias_spike(spikes, 0.0), y


def test_fit_on_user_data(tmp_path):
    """`fit(config, task=Task.from_data(...))` trains on spike trains and labels the
    user built, writes its results, and its checkpoint evaluates with the same task."""
    from spikeode.data import Task

    task = Task.from_data("blobs", _blobs(256, 0), _blobs(100, 1), validation=_blobs(100, 2))
    assert task.num_classes == 2
    config = dataclasses.replace(
        SMALL, task="blobs", epochs=3, hidden=10, closed_form=True,
        tau_syn=SMALL.tau_mem / 2, out=str(tmp_path / "blobs"),
        train_samples=0, validation_samples=0, test_samples=0,
    )  # fmt: skip
    results = fit(config, task=task, progress=False, log=lambda *_: None)
    assert results["task"] == "blobs" and results["test_acc"] >= 0.9, results
    assert "val_acc" in _history(config.out)[0]
    ckpt = os.path.join(config.out, "checkpoint")
    again = evaluate_checkpoint(ckpt, task=task)
    assert again["test_acc"] == pytest.approx(results["test_acc"], abs=1e-12)
    with pytest.raises(ValueError, match="pass your own `task`"):
        evaluate_checkpoint(ckpt)
    with pytest.raises(ValueError, match="task must be the name of the task trained on"):
        fit(dataclasses.replace(config, task="yinyang"), task=task, progress=False)


def test_user_data_errors():
    import spikeode as so
    from spikeode.data import Task

    x, y = _blobs(8, 0)
    with pytest.raises(ValueError, match="train labels must be integers of shape"):
        Task.from_data("t", (x, y[:5]), (x, y))
    with pytest.raises(ValueError, match=r"test labels must lie in \[0, 2\)"):
        Task.from_data("t", (x, y), (x, y + 5), num_classes=2)
    with pytest.raises(ValueError, match="validation spikes must be a batched SpikeTrain"):
        Task.from_data("t", (x, y), (x, y), validation=(so.SpikeTrain.from_lists([[0.1]]), y))
    other = so.data.latency_encode(np.zeros((8, 3)), 0.0, 0.03)
    with pytest.raises(ValueError, match="test spikes have 3 input neurons; the train split has 5"):
        Task.from_data("t", (x, y), (other, y))

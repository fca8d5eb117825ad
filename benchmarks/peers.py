"""Benchmark: spikeode against the peer libraries jaxsnn and Eventax, on CPU, float32.

Three measurements, each library in its own subprocess (a missing peer or a crash is
reported in the JSON instead of stopping the run):

1. `yinyang`: training on Yin-Yang with first-spike coding: 5 inputs (x, y, 1-x,
   1-y and a bias spike, latency-coded into [0, 30 ms] by `spikeode.data.yinyang_spikes`,
   the same samples and the same minibatches for every library) -> 120 hidden LIF ->
   3 output LIF, batch 64, 78 steps (4992 samples) per epoch, float32. Reported:
   epoch time after compilation (median of the measured epochs), compile time, peak
   RSS of the subprocess, and test accuracy (1000 test samples) after `--epochs`.
   spikeode runs as `spikeode train` does, each batch split over one CPU device per
   core (`TrainConfig.devices`), and again on one device (`spikeode_one_device`),
   as the peers run.
   Each library trains the way its own documentation/examples do; what differs from
   spikeode's configuration (tau_mem = 20 ms, tau_syn = 5 ms) is listed in the JSON
   under `differences`.
2. `spike_time`: the first spike time of one LIF neuron (tau_mem = 20 ms,
   tau_syn = 10 ms, threshold 1) driven by four weighted input spikes, against the
   closed form for tau_mem = 2 tau_syn (a quadratic in x = exp(-t/tau_mem),
   `spikeode._verify._formulas.lif_double_tau_first_spike`) and, independently, SciPy's
   `solve_ivp` (rtol = atol = 1e-12), in float64 and in float32.
3. `recurrent`: the recurrent 100-neuron LIF network of `benchmarks/recurrent_lif.py`
   (1 s, about 10 spikes per neuron, float64 as there): compile time, forward and
   forward+gradient time, peak RSS, for spikeode and Eventax (which can express
   recurrent weights).

Prints one JSON document on stdout (progress goes to stderr).

Usage (in a separate venv with the peers, see docs/benchmarks.md):

    python benchmarks/peers.py --epochs 3
    python benchmarks/peers.py --epochs 1 --eventax-batches 3 --skip recurrent
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

from _machine import machine_info, max_rss_mb, version

HERE = os.path.dirname(os.path.abspath(__file__))
LIBRARIES = ("spikeode", "jaxsnn", "eventax")
PEER_VERSIONS = {"jaxsnn": "0.3.0", "eventax": "0.1.0"}
BENCHMARKS = ("yinyang", "spike_time", "recurrent")

# The common problem (spikeode's TrainConfig defaults for Yin-Yang).
HIDDEN, CLASSES, INPUTS = 120, 3, 5
BATCH = 64
SEED = 0
T1 = 0.04  # trial length (s)
TAU_MEM, TAU_SYN = 0.02, 0.005

# The single-neuron spike-time check (tau_mem = 2 tau_syn: closed form).
ST_TAU_MEM, ST_TAU_SYN, ST_T1 = 0.02, 0.01, 0.05
ST_TIMES = (0.001, 0.0035, 0.006, 0.009)  # s
ST_WEIGHTS = (2.0, 1.5, -0.8, 2.2)

# Eventax settings (its times are in ms here; see `differences`).
EVX_DT = 0.1  # ms, constant step of Tsit5
EVX_NEWTON_TOL_F32 = 1e-5  # ms
EVX_NEWTON_TOL_F64 = 1e-9


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def median(xs):
    return float(statistics.median(xs)) if xs else None


# =============================================================================== data
def yinyang_arrays():
    """spikeode's Yin-Yang splits as NumPy arrays: times (s, float32, sorted per sample),
    input ids, labels; every sample has exactly 5 spikes."""
    import jax.numpy as jnp
    import numpy as np

    from spikeode.data import yinyang_spikes
    from spikeode.data._tasks import BIAS, T_MAX, T_MIN

    out = {}
    for split in ("train", "test"):
        spikes, labels = yinyang_spikes(split, T_MIN, T_MAX, BIAS, dtype=jnp.float32)
        times, ids = np.asarray(spikes.times), np.asarray(spikes.neurons)
        assert times.shape[1] == INPUTS and np.all(ids < INPUTS)
        out[split] = (times, ids, np.asarray(labels))
    return out


def epoch_batches(n, epoch):
    """The minibatch indices of one epoch, exactly spikeode's `fit` (seed 0)."""
    from spikeode.train._trainer import _batches

    return list(_batches(n, BATCH, SEED, epoch))


def summarize_training(epoch_times, step_times, first_step, compile_s, extra, first_steps=1):
    """`first_step`: the time of the first call, which compiled and ran `first_steps`
    steps; `step_times`: the steady steps' times."""
    steady = [t for t in step_times if t is not None]
    res = {
        "epoch_time_s": median(epoch_times[1:]) if len(epoch_times) > 1 else None,
        "epoch_times_s": epoch_times,
        "step_time_median_s": median(steady),
        "first_step_s": first_step,
        "compile_time_s": compile_s,
    }
    if res["epoch_time_s"] is None and epoch_times:
        # one epoch only: its steady steps plus steady ones for the compiled call's
        res["epoch_time_s"] = epoch_times[0] - first_step + first_steps * res["step_time_median_s"]
        res["epoch_time_note"] = "one epoch: first epoch minus compilation"
    res.update(extra)
    return res


# =========================================================================== spikeode
def spikeode_yinyang(args):
    import jax
    import jax.numpy as jnp
    import numpy as np

    from spikeode.data import TASKS
    from spikeode.train import num_devices, TrainConfig
    from spikeode.train._fit import _load, _setup_jax
    from spikeode.train._parallel import _chunk_size
    from spikeode.train._trainer import _Trainer

    # `spikeode train yinyang`'s configuration and epoch loop
    config = dataclasses.replace(
        TrainConfig.for_task("yinyang", closed_form=args.closed_form), epochs=args.epochs,
        out="", select="last", devices=args.devices,
    ).validate()
    _setup_jax(config.dtype)
    task = TASKS["yinyang"]
    (x_train, y_train), (x_test, y_test) = _load(task, config, jnp.dtype(config.dtype))
    steps = len(y_train) // config.batch_size
    trainer = _Trainer(config, x_train.num_neurons, task.num_classes, steps)
    chunk = _chunk_size(steps)
    epoch_times, step_times, first_step, history = [], [], None, []
    for epoch in range(config.epochs):
        t_epoch = last = time.perf_counter()

        def on_chunk(loss, acc):  # called after each compiled call of `chunk` steps
            nonlocal last, first_step
            now = time.perf_counter()
            if first_step is None:
                first_step = now - last
            else:
                step_times.append((now - last) / len(loss))
            last = now

        losses, _ = trainer.train_epoch(x_train, y_train, epoch, on_chunk)
        epoch_times.append(time.perf_counter() - t_epoch)
        _, acc = trainer.evaluate(x_test, jnp.asarray(y_test))
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
                        "test_acc": float(acc)})
        log(f"[spikeode] epoch {epoch + 1}: {epoch_times[-1]:.2f} s, test acc {float(acc):.4f}")
    compile_s = first_step - chunk * median(step_times)
    return summarize_training(
        epoch_times, step_times, first_step, compile_s,
        {
            "test_acc": history[-1]["test_acc"],
            "history": history,
            "compile_time_method": "first call minus its steps at the median steady step time",
            "steps_per_call": chunk,
            "devices": num_devices(config),
            "cpu_devices": jax.local_device_count(),
            "config": {"tau_mem_s": config.tau_mem, "tau_syn_s": config.tau_syn,
                       "t1_s": config.t1, "loss": "first_spike_loss (Goeltz et al. 2021) "
                       "+ missing_spike_loss", "optimiser": "clip_by_global_norm(1) + Adam "
                       "5e-3, decay 0.95/epoch",
                       "solver": "closed-form first spikes (spikeode.first_spikes)"
                       if config.closed_form else "ExactSolver + BracketedNewton",
                       "hidden_spikes_per_neuron": 1 if config.closed_form
                       else config.hidden_spikes_per_neuron,
                       "w_hidden": config.w_hidden, "w_out": config.w_out,
                       "hidden_bump": config.hidden_bump,
                       "missing_weight": config.missing_weight},
        },
        first_steps=chunk,
    )


def spikeode_spike_time(args, dtype):
    import jax.numpy as jnp
    import numpy as np

    import spikeode as so

    model = so.LIF(1, tau_mem=jnp.asarray(ST_TAU_MEM, dtype),
                   tau_syn=jnp.asarray(ST_TAU_SYN, dtype),
                   threshold=jnp.asarray(1.0, dtype), v_reset=jnp.asarray(0.0, dtype))
    n = len(ST_TIMES)
    train = so.SpikeTrain(jnp.asarray(ST_TIMES, dtype), jnp.arange(n), n)
    w = jnp.asarray(np.asarray(ST_WEIGHTS)[:, None], dtype)
    sim = so.simulate(model, jnp.asarray(ST_T1, dtype), train, w, max_spikes=4)
    closed = so.first_spikes(model, jnp.asarray(ST_T1, dtype), train, w)
    return {"t_first_s": float(sim.spikes.times[0]), "solver": "ExactSolver + BracketedNewton",
            "t_first_s_closed_form": float(closed.spikes.times[0])}


def spikeode_recurrent(args):
    sys.path.insert(0, HERE)
    import recurrent_lif as rl  # enables float64, as that benchmark does

    cfg = rl.QUICK if args.quick else rl.FULL
    params = rl.make_params(cfg)
    forward, value_and_grad = rl.make_spikeode_fns(cfg, {})
    prep = rl.prepare("spikeode", forward, value_and_grad, params)
    fwd, grad = prep["fns"]["forward"], prep["fns"]["forward_grad"]
    t_fwd, t_grad = [], []
    for _ in range(args.repeats):
        t_fwd.append(rl.call_time(fwd, (params,))[1])
        t_grad.append(rl.call_time(grad, (params,))[1])
    out = prep["fwd_out"]
    import numpy as np

    times, neurons = np.asarray(out["times"]), np.asarray(out["neurons"])
    valid = neurons < cfg.num_neurons
    return {
        "num_spikes": int(valid.sum()),
        "forward_time_s": median(t_fwd),
        "forward_grad_time_s": median(t_grad),
        "compile_forward_s": prep["compile_forward"]["total_s"],
        "compile_grad_s": prep["compile_grad"]["total_s"],
        "compile_method": "AOT: equinox.filter_jit(...).lower(...).compile()",
        "dtype": "float64",
        "solver": "ExactSolver + BracketedNewton (default)",
        "_spikes": {"times": times[valid].tolist(), "neurons": neurons[valid].tolist()},
    }


# ============================================================================= jaxsnn
def _jaxsnn_spikes(times, ids):
    import jax.numpy as jnp
    from jaxsnn.event.types import Spike

    times = jnp.asarray(times)
    return Spike(
        time=times,
        idx=jnp.asarray(ids, dtype=int),
        current=jnp.zeros_like(times),
        layer_idx=jnp.zeros(times.shape, dtype=int),
        internal=jnp.ones(times.shape, dtype=bool),
    )


JAXSNN_TAU_MEM, JAXSNN_TAU_SYN = 0.02, 0.01


def jaxsnn_yinyang(args):
    from functools import partial

    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from jaxsnn.event.encode import target_temporal_encode
    from jaxsnn.event.loss import mse_loss
    from jaxsnn.event.modules import LIF, Linear, Source
    from jaxsnn.event.modules.lif.lif import LIFParameters
    from jaxsnn.event.topology import Topology
    from jaxsnn.event.training import update
    from jaxsnn.event.types import OptState
    from jaxsnn.examples.event.utils import loss_wrapper

    data = yinyang_arrays()
    tau_mem, tau_syn = JAXSNN_TAU_MEM, JAXSNN_TAU_SYN
    # as in jaxsnn's yinyang_layered_event_prop example: v_reset = -1000 (one spike per
    # neuron), t_max = 4 tau_syn (= 40 ms = spikeode's t1 here), MSE on target times
    params = LIFParameters(v_reset=-1000.0, v_th=1.0, tau_syn=tau_syn, tau_mem=tau_mem)
    correct_t, wrong_t = 1.2 * tau_syn, 1.8 * tau_syn  # the example's 0.8/1.2 tau_syn,
    # scaled by 1.5 for the 30 ms input window (the example codes into 2 tau_syn = 20 ms)
    builder = Topology(t_max=T1, backprop_method="eventprop")
    builder.add({
        "inp": Source(INPUTS),
        "lif1": LIF(HIDDEN, HIDDEN + INPUTS, params),
        "lif2": LIF(CLASSES, HIDDEN + CLASSES, params),
        # the example's means/stds (3/5, 1.6/5) are for 5 copies of each input spike;
        # here each input spikes once, so the input weights are 5x larger
        "syn1": Linear(mean=3.0, std=1.6),
        "syn2": Linear(mean=0.5, std=0.8),
    })
    builder.connect([("inp", "syn1"), ("syn1", "lif1"), ("lif1", "syn2"), ("syn2", "lif2")])
    init_fn, apply_fn = builder.done()
    weights = init_fn(jax.random.PRNGKey(SEED))
    n_batches = len(data["train"][2]) // BATCH
    schedule = optax.exponential_decay(5e-3, n_batches, 0.99)
    optimizer = optax.chain(optax.scale(1.0 / tau_syn), optax.clip(0.01), optax.adam(schedule))
    state = OptState(optimizer.init(weights), weights, jax.random.PRNGKey(SEED))
    loss_fn = partial(loss_wrapper, apply_fn, mse_loss, tau_mem, "lif2", CLASSES)
    encode_targets = jax.vmap(partial(target_temporal_encode, n_classes=CLASSES,
                                      correct_target_time=correct_t, wrong_target_time=wrong_t))

    def batched(split, perm_batches):
        times, ids, labels = data[split]
        idx = np.stack(perm_batches)  # (batches, 64)
        return ({"inp": _jaxsnn_spikes(times[idx], ids[idx])},
                encode_targets(jnp.asarray(labels[idx].reshape(-1))).reshape(
                    idx.shape + (CLASSES,)))

    def run_epoch(state, batches):  # the body of jaxsnn.event.training.epoch
        state, (recording, grads) = jax.lax.scan(
            partial(update, optimizer, loss_fn), state, batches
        )
        return state, recording[0]

    n_train = len(data["train"][2])
    b0 = batched("train", epoch_batches(n_train, 0))
    t0 = time.perf_counter()
    lowered = jax.jit(run_epoch).lower(state, b0)
    t1 = time.perf_counter()
    epoch_c = lowered.compile()
    t2 = time.perf_counter()
    times_te, ids_te, y_te = data["test"]
    test_in = {"inp": _jaxsnn_spikes(times_te, ids_te)}
    test_targets = encode_targets(jnp.asarray(y_te))

    @jax.jit
    def evaluate(weights):
        loss, (t_first, _) = loss_fn(weights, (test_in, test_targets))
        return loss, jnp.mean(jnp.argmin(t_first, axis=-1) == jnp.asarray(y_te))

    epoch_times, history = [], []
    for epoch in range(args.epochs):
        batches = b0 if epoch == 0 else batched("train", epoch_batches(n_train, epoch))
        t = time.perf_counter()
        state, losses = epoch_c(state, batches)
        losses = np.asarray(jax.block_until_ready(losses))
        epoch_times.append(time.perf_counter() - t)
        _, acc = evaluate(state.params)
        history.append({"epoch": epoch + 1, "train_loss": float(losses.mean()),
                        "test_acc": float(acc)})
        log(f"[jaxsnn] epoch {epoch + 1}: {epoch_times[-1]:.2f} s, test acc {float(acc):.4f}")
    return {
        "epoch_time_s": median(epoch_times),
        "epoch_times_s": epoch_times,
        "compile_time_s": t2 - t0,
        "compile_lower_s": t1 - t0,
        "compile_xla_s": t2 - t1,
        "compile_time_method": "AOT: jax.jit(epoch scan).lower(...).compile() (one program "
        "per epoch, as jaxsnn.event.training.epoch runs it)",
        "test_acc": history[-1]["test_acc"],
        "history": history,
        "config": {"tau_mem_s": tau_mem, "tau_syn_s": tau_syn, "t_max_s": T1,
                   "loss": f"jaxsnn mse_loss on first-spike times, targets "
                   f"{correct_t * 1e3:.0f} ms (correct) / {wrong_t * 1e3:.0f} ms (wrong)",
                   "optimiser": "scale(1/tau_syn) + clip(0.01) + Adam 5e-3, decay 0.99/epoch "
                   "(jaxsnn example)", "v_reset": -1000.0,
                   "n_steps": {"lif1": HIDDEN + INPUTS, "lif2": HIDDEN + CLASSES},
                   "init": "Linear(3.0, 1.6), Linear(0.5, 0.8)"},
        "differences": [
            "tau_syn = 10 ms instead of 5 ms: jaxsnn's analytical LIF spike-time solver "
            "(jaxsnn.event.solver.ttfs_solver) handles only tau_mem = tau_syn and "
            "tau_mem = 2 tau_syn (it rounds tau_mem/tau_syn and, for a ratio of 4, "
            "silently uses the ratio-2 formula); tau_mem stays 20 ms",
            "one spike per neuron (v_reset = -1000, the jaxsnn example's choice); "
            "spikeode allows 3 per hidden neuron and resets to 0",
            "loss, targets, optimiser and weight initialisation from jaxsnn's "
            "yinyang_layered_event_prop example",
        ],
    }


def jaxsnn_spike_time(args, dtype):
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jaxsnn.event.modules import LIF, Linear, Source
    from jaxsnn.event.modules.lif.lif import LIFParameters
    from jaxsnn.event.topology import Topology

    n = len(ST_TIMES)
    params = LIFParameters(v_reset=0.0, v_th=1.0, tau_syn=ST_TAU_SYN, tau_mem=ST_TAU_MEM)
    builder = Topology(t_max=ST_T1, backprop_method="eventprop")
    builder.add({"inp": Source(n), "lif": LIF(1, n + 4, params),
                 "syn": Linear(pre_weights=jnp.asarray(np.asarray(ST_WEIGHTS)[:, None], dtype))})
    builder.connect([("inp", "syn"), ("syn", "lif")])
    init_fn, apply_fn = builder.done()
    weights = init_fn(jax.random.PRNGKey(0))
    inp = _jaxsnn_spikes(jnp.asarray([ST_TIMES], dtype), jnp.arange(n)[None])
    events = jax.jit(apply_fn)({"inp": inp}, weights)["lif"]
    t = np.asarray(events.time)[0]
    ok = np.asarray(events.internal)[0] & (np.asarray(events.idx)[0] >= 0) & (t < ST_T1)
    return {"t_first_s": float(t[ok].min()) if ok.any() else float("inf"),
            "time_dtype": str(np.asarray(events.time).dtype),
            "solver": "analytical (tau_mem = 2 tau_syn)"}


# ============================================================================ eventax
def _eventax_common(dtype, adjoint="default"):
    import diffrax as dfx
    import optimistix as optx
    from eventax.adjoint import EventPropAdjoint

    tol = EVX_NEWTON_TOL_F64 if dtype == "float64" else EVX_NEWTON_TOL_F32
    kwargs = dict(
        solver=dfx.Tsit5(),
        solver_stepsize=EVX_DT,
        root_finder=optx.Newton(tol, tol, optx.rms_norm),
    )
    if adjoint == "eventprop":
        kwargs["adjoint"] = EventPropAdjoint()
        name = "eventax.adjoint.EventPropAdjoint"
    else:  # Eventax's default
        name = "diffrax.RecursiveCheckpointAdjoint (Eventax's default)"
    return kwargs, {"solver": f"diffrax.Tsit5, constant step {EVX_DT} ms",
                    "root_finder": f"optimistix.Newton(rtol=atol={tol}) on the diffrax.Event",
                    "adjoint": name}


def _goeltz_loss(t, y, tau0, alpha, tau1):
    """spikeode's first_spike_loss on first-spike times `t` (one sample)."""
    import jax
    import jax.numpy as jnp

    ce = -jax.nn.log_softmax(-t / tau0)[y]
    return ce + alpha * (jnp.exp(t[y] / tau1) - 1.0)


def _first_line(e):
    lines = [x.strip() for x in str(e).splitlines() if x.strip()]
    hits = [x for x in lines if "Error" in x or "Terminating" in x]
    return (hits or lines or [""])[-1][:300]


def eventax_yinyang(args):
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from eventax.evnn import FFEvNN
    from eventax.neuron_models import LIF

    from spikeode.train import build_model, TrainConfig

    config = TrainConfig.for_task("yinyang")
    data = yinyang_arrays()
    ms = 1e3  # Eventax runs in ms here (its tests and docs use ms-scale numbers)
    t_max = T1 * ms
    # the same initial weights as spikeode (its build_model with seed 0)
    so_model = build_model(config, INPUTS, CLASSES, jax.random.PRNGKey(config.seed))
    w_hid = np.asarray(so_model.layers[0].w_in)  # (5, 120)
    w_out = np.asarray(so_model.layers[1].w_in)  # (120, 3)
    n = HIDDEN + CLASSES
    w0 = np.zeros((n + INPUTS, n), np.float32)  # rows: neurons then inputs
    w0[:HIDDEN, HIDDEN:] = w_out
    w0[n:, :HIDDEN] = w_hid
    common, solver_info = _eventax_common("float32", args.eventax_adjoint)
    model = FFEvNN(
        layers=[HIDDEN, CLASSES], in_size=INPUTS, neuron_model=LIF,
        max_solver_time=t_max, key=jax.random.PRNGKey(SEED),
        max_event_steps=args.eventax_event_steps, output_no_spike_value=t_max,
        dtype=jnp.float32, thresh=1.0, tsyn=TAU_SYN * ms, tmem=TAU_MEM * ms, vreset=0.0,
        init_weights=jnp.asarray(w0), init_bias=0.0, **common,
    )
    # train the weights only (the bias currents `ic` stay 0, as in spikeode)
    filt = jax.tree_util.tree_map(lambda _: False, model)
    filt = eqx.tree_at(lambda m: m.neuron_model.weights, filt, True)
    params, static = eqx.partition(model, filt)
    steps = len(data["train"][2]) // BATCH
    optimiser = optax.chain(optax.clip_by_global_norm(config.grad_clip),
                            optax.adam(optax.exponential_decay(config.lr, steps, config.lr_decay)))
    opt_state = optimiser.init(params)

    def to_input(times, ids):  # (batch, 5) sorted events -> (batch, in_size, 1) in ms
        x = np.full(times.shape, np.inf, np.float32)
        np.put_along_axis(x, ids, times * ms, axis=1)
        return jnp.asarray(x[..., None])

    def batch_loss(params, x, y):
        m = eqx.combine(params, static)
        t = jax.vmap(m.ttfs)(x)
        losses = jax.vmap(lambda t, y: _goeltz_loss(t, y, config.tau0 * ms, config.alpha,
                                                    config.tau1 * ms))(t, y)
        return jnp.mean(losses), jnp.mean(jnp.argmin(t, axis=-1) == y)

    @eqx.filter_jit
    def train_step(params, opt_state, x, y):
        (loss, acc), grads = eqx.filter_value_and_grad(batch_loss, has_aux=True)(params, x, y)
        updates, opt_state = optimiser.update(grads, opt_state, params)
        return eqx.apply_updates(params, updates), opt_state, loss, acc

    @eqx.filter_jit
    def predict(params, x):
        return jnp.argmin(jax.vmap(eqx.combine(params, static).ttfs)(x), axis=-1)

    def evaluate_robust(params, times, ids, labels):
        """Accuracy in chunks of 64; a chunk whose solve raises (diffrax: "Terminating
        differential equation solve because an event occurred", seen in float32) is
        redone sample by sample, and a sample that still fails counts as wrong."""
        correct, failed = 0, 0
        for s in range(0, len(labels), BATCH):
            sl = slice(s, s + BATCH)
            try:
                pred = np.asarray(predict(params, to_input(times[sl], ids[sl])))
                correct += int((pred == labels[sl]).sum())
            except Exception:
                for j in range(s, min(s + BATCH, len(labels))):
                    try:
                        pred = np.asarray(predict(params, to_input(times[j:j + 1], ids[j:j + 1])))
                        correct += int(pred[0] == labels[j])
                    except Exception as e:
                        failed += 1
                        failure.setdefault("test", f"{type(e).__name__}: {_first_line(e)}")
        return correct / len(labels), failed

    failed_batches, failure = 0, {}
    times_tr, ids_tr, y_tr = data["train"]
    times_te, ids_te, y_te = data["test"]
    limit = args.eventax_batches or steps
    epoch_times, step_times, first_step, history = [], [], None, []
    for epoch in range(args.epochs):
        losses, t_epoch = [], time.perf_counter()
        for b, idx in enumerate(epoch_batches(len(y_tr), epoch)[:limit]):
            x, y = to_input(times_tr[idx], ids_tr[idx]), jnp.asarray(y_tr[idx])
            t = time.perf_counter()
            try:
                params, opt_state, loss, _ = train_step(params, opt_state, x, y)
                losses.append(float(loss))
            except Exception as e:  # see evaluate_robust; the batch is skipped
                failed_batches += 1
                failure.setdefault("train", f"{type(e).__name__}: {_first_line(e)}")
                log(f"[eventax] batch {b + 1} failed ({type(e).__name__}); skipped")
                continue  # not timed
            dt = time.perf_counter() - t
            if first_step is None:
                first_step = dt
                log(f"[eventax] first step (with compilation) {dt:.1f} s")
            else:
                step_times.append(dt)
                log(f"[eventax] step {b + 1}/{limit}: {dt:.1f} s")
        epoch_times.append(time.perf_counter() - t_epoch)
        t = time.perf_counter()
        acc, failed = evaluate_robust(params, times_te, ids_te, y_te)
        history.append({"epoch": epoch + 1, "batches": limit,
                        "train_loss": float(np.mean(losses)), "test_acc": acc,
                        "test_samples_failed": failed, "failed_train_batches": failed_batches,
                        "test_eval_s": time.perf_counter() - t})
        log(f"[eventax] epoch {epoch + 1} ({limit} batches): test acc {acc:.4f}")
    med = median(step_times)
    extrapolated = limit < steps
    res = {
        "epoch_time_s": med * steps if extrapolated else
        (median(epoch_times[1:]) if len(epoch_times) > 1 else epoch_times[0] - first_step + med),
        "epoch_time_extrapolated": extrapolated,
        "batches_per_epoch_run": limit,
        "batches_per_epoch_full": steps,
        "step_time_median_s": med,
        "step_times_s": step_times,
        "first_step_s": first_step,
        "compile_time_s": first_step - med,
        "compile_time_method": "first step minus the median steady step",
        "test_acc": history[-1]["test_acc"],
        "test_acc_after": f"{args.epochs} epoch(s) of {limit} batches each",
        "test_samples_failed": history[-1]["test_samples_failed"],
        "failed_train_batches": failed_batches,
        "failure_example": failure,
        "failure_note": "a batch whose solve raises is skipped (not timed); a test sample "
        "that raises counts as wrong",
        "history": history,
        "config": {"tau_mem_ms": TAU_MEM * ms, "tau_syn_ms": TAU_SYN * ms, "t_max_ms": t_max,
                   "max_event_steps": args.eventax_event_steps,
                   "loss": "spikeode's first_spike_loss terms (no missing-spike term)",
                   "optimiser": "as spikeode", "init": "spikeode's initial weights (seed 0)",
                   **solver_info},
        "differences": [
            "times in ms (Eventax's ODE solver, step size and root-finder tolerances are "
            "absolute); the same network otherwise: tau_mem 20 ms, tau_syn 5 ms",
            "no refractory period and no spike cap; the event loop (LIF.ttfs) stops when "
            "every output neuron has spiked or at t_max",
            "no missing-spike loss term (a silent output neuron gets t = t_max, no gradient)",
        ],
    }
    if extrapolated:
        res["epoch_time_note"] = (f"extrapolated: median of {len(step_times)} timed steps "
                                  f"x {steps} steps per epoch (--eventax-batches {limit})")
    return res


def eventax_spike_time(args, dtype):
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    from eventax.evnn import FFEvNN
    from eventax.neuron_models import LIF

    ms = 1e3
    jdt = jnp.float64 if dtype == "float64" else jnp.float32
    n = len(ST_TIMES)
    w = np.zeros((1 + n, 1))
    w[1:, 0] = ST_WEIGHTS
    out = {}
    common, info = _eventax_common(dtype)
    for name, kwargs in (("benchmark_config", common), ("eventax_defaults", {})):
        model = FFEvNN(layers=[1], in_size=n, neuron_model=LIF, max_solver_time=ST_T1 * ms,
                       key=jax.random.PRNGKey(0), dtype=jdt, thresh=1.0, tsyn=ST_TAU_SYN * ms,
                       tmem=ST_TAU_MEM * ms, vreset=0.0, init_weights=jnp.asarray(w, jdt),
                       init_bias=0.0, **kwargs)
        x = jnp.asarray(np.asarray(ST_TIMES)[:, None] * ms, jdt)
        t = float(eqx.filter_jit(lambda m, x: m.ttfs(x))(model, x)[0]) / ms
        out[name] = t
    return {"t_first_s": out["benchmark_config"],
            "t_first_s_eventax_defaults": out["eventax_defaults"],
            "solver": info["solver"] + "; " + info["root_finder"],
            "eventax_defaults": "diffrax.Euler, step 0.01 ms, optimistix.Newton(1e-2, 1e-2)"}


def eventax_recurrent(args):
    import jax

    jax.config.update("jax_enable_x64", True)
    import equinox as eqx
    import jax.numpy as jnp
    import numpy as np
    from eventax.evnn import EvNN
    from eventax.neuron_models import LIF

    sys.path.insert(0, HERE)
    import recurrent_lif as rl

    cfg = rl.QUICK if args.quick else rl.FULL
    p = rl.make_params(cfg)
    n, ms = cfg.num_neurons, 1e3
    w = np.zeros((n + 1, n))
    w[:n] = np.asarray(p["w_rec"])
    wmask = np.ones((n + 1, n))
    np.fill_diagonal(wmask[:n], 0.0)
    wmask[n] = 0.0  # one unconnected input (EvNN needs in_size >= 1)
    common, info = _eventax_common("float64", args.eventax_adjoint)
    model = EvNN(
        neuron_model=LIF, n_neurons=n, max_solver_time=cfg.t1 * ms, in_size=1,
        key=jax.random.PRNGKey(0), wmask=jnp.asarray(wmask),
        max_event_steps=cfg.max_spikes + 10, dtype=jnp.float64, thresh=cfg.threshold,
        tsyn=cfg.tau_syn * ms, tmem=cfg.tau_mem * ms, vreset=cfg.v_reset,
        init_weights=jnp.asarray(w), init_bias=jnp.asarray(p["bias"]), **common,
    )
    x = jnp.full((1, 1), jnp.inf)
    filt = jax.tree_util.tree_map(lambda _: False, model)
    filt = eqx.tree_at(lambda m: (m.neuron_model.weights, m.neuron_model.ic), filt, (True, True))
    params, static = eqx.partition(model, filt)

    def spikes(params):
        m = eqx.combine(params, static)
        st = m.spikes_until_t(x, cfg.t1 * ms, max_spikes=cfg.max_spikes)  # (n, max) ms
        return st

    def forward(params):
        return spikes(params)

    def loss(params):
        st = spikes(params) / ms
        valid = jnp.isfinite(st)
        phase = 0.1 * jnp.arange(n, dtype=st.dtype)[:, None]
        t = jnp.where(valid, st, 0.0)
        return jnp.sum(jnp.where(valid, jnp.sin(cfg.loss_omega * t + phase), 0.0))

    value_and_grad = eqx.filter_value_and_grad(loss)
    timing = {}
    compiled = {}
    for name, fn in (("forward", forward), ("forward_grad", value_and_grad)):
        log(f"[eventax] compiling recurrent {name} ...")
        t0 = time.perf_counter()
        lowered = eqx.filter_jit(fn).lower(params)
        t1 = time.perf_counter()
        compiled[name] = lowered.compile()
        timing[name] = time.perf_counter() - t0
        log(f"[eventax]   {timing[name]:.1f} s (lower {t1 - t0:.1f} s)")
    t_fwd, t_grad = [], []
    out = None
    for _ in range(args.repeats):
        t = time.perf_counter()
        out = jax.block_until_ready(compiled["forward"](params))
        t_fwd.append(time.perf_counter() - t)
        t = time.perf_counter()
        jax.block_until_ready(compiled["forward_grad"](params))
        t_grad.append(time.perf_counter() - t)
        log(f"[eventax] recurrent forward {t_fwd[-1]:.2f} s, forward+grad {t_grad[-1]:.2f} s")
    st = np.asarray(out) / ms
    nid = np.broadcast_to(np.arange(n)[:, None], st.shape)
    valid = np.isfinite(st)
    order = np.argsort(st[valid], kind="stable")
    return {
        "num_spikes": int(valid.sum()),
        "forward_time_s": median(t_fwd),
        "forward_grad_time_s": median(t_grad),
        "compile_forward_s": timing["forward"],
        "compile_grad_s": timing["forward_grad"],
        "compile_method": "AOT: equinox.filter_jit(...).lower(...).compile()",
        "dtype": "float64",
        "expressed_as": "eventax.evnn.EvNN with a full recurrent wmask (no self-connections), "
        "the bias as the LIF's constant current ic, EvNN.spikes_until_t; times in ms",
        **info,
        "_spikes": {"times": st[valid][order].tolist(), "neurons": nid[valid][order].tolist()},
    }


# ======================================================================== spike time
def spike_time_reference():
    import numpy as np
    from scipy.integrate import solve_ivp

    from spikeode._verify._formulas import lif_double_tau_first_spike

    closed = lif_double_tau_first_spike(ST_TIMES, ST_WEIGHTS, ST_TAU_MEM, threshold=1.0)
    # independent: integrate the ODE between inputs, stop at v = 1
    v, i, t = 0.0, 0.0, 0.0
    edges = list(ST_TIMES) + [ST_T1]
    ivp = np.inf
    for k, t_next in enumerate(edges):
        if k > 0:
            i += ST_WEIGHTS[k - 1]
        ev = lambda t, y: y[0] - 1.0  # noqa: E731
        ev.terminal, ev.direction = True, 1
        sol = solve_ivp(lambda t, y: [(-y[0] + y[1]) / ST_TAU_MEM, -y[1] / ST_TAU_SYN],
                        (t, t_next), [v, i], rtol=1e-12, atol=1e-12, events=ev)
        if sol.t_events[0].size:
            ivp = float(sol.t_events[0][0])
            break
        v, i, t = sol.y[0, -1], sol.y[1, -1], t_next
    return {"closed_form_s": float(closed), "solve_ivp_s": ivp,
            "closed_form_vs_solve_ivp_s": abs(float(closed) - ivp)}


SPIKE_TIME = {"spikeode": spikeode_spike_time, "jaxsnn": jaxsnn_spike_time,
              "eventax": eventax_spike_time}
YINYANG = {"spikeode": spikeode_yinyang, "jaxsnn": jaxsnn_yinyang, "eventax": eventax_yinyang}
RECURRENT = {"spikeode": spikeode_recurrent, "eventax": eventax_recurrent}


def worker(args):
    """Run one (benchmark, library) in this process; print its JSON on stdout."""
    if args.lib != "spikeode":
        __import__(args.lib)  # ImportError -> reported by the parent
    t0 = time.perf_counter()
    if args.worker == "yinyang":
        res = YINYANG[args.lib](args)
    elif args.worker == "spike_time":
        import jax

        jax.config.update("jax_enable_x64", args.dtype == "float64")
        res = SPIKE_TIME[args.lib](args, args.dtype)
        res["dtype"] = args.dtype
    elif args.worker == "recurrent":
        res = RECURRENT[args.lib](args)
    else:
        raise ValueError(args.worker)
    res["max_rss_mb"] = max_rss_mb()
    res["wall_time_s"] = time.perf_counter() - t0
    sys.stdout.write(json.dumps(res) + "\n")


# ============================================================================= parent
def run_child(kind, lib, args, extra=(), env=None):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--lib", lib,
           "--epochs", str(args.epochs), "--eventax-batches", str(args.eventax_batches),
           "--eventax-event-steps", str(args.eventax_event_steps),
           "--eventax-adjoint", args.eventax_adjoint,
           "--repeats", str(args.repeats), *(["--quick"] if args.quick else []), *extra]
    log(f"== {kind} / {lib}: {' '.join(cmd[1:])}")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=args.timeout, env=env)
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        sys.stderr.write(err)
        return {"status": "timeout", "timeout_s": args.timeout, "stderr_tail": err[-2000:]}
    sys.stderr.write(proc.stderr)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"status": "error", "returncode": proc.returncode,
                "stderr_tail": proc.stderr[-3000:], "subprocess_wall_s": wall}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    res = json.loads(lines[-1])
    res["status"] = "ok"
    res["subprocess_wall_s"] = wall
    return res


def library_status():
    out = {}
    for lib in LIBRARIES:
        v = version(lib)
        entry = {"version": v, "installed": v is not None}
        if lib in PEER_VERSIONS:
            entry["benchmarked_version"] = PEER_VERSIONS[lib]
            if v is None:
                entry["note"] = (f"not installed in this environment: pip install "
                                 f"{lib}=={PEER_VERSIONS[lib]} (or spikeode[bench])")
        out[lib] = entry
    return out


def compare_recurrent(a, b):
    """Spike trains of two recurrent runs: count, and the time differences of the
    common prefix in which the neuron sequences agree."""
    import numpy as np

    ta, na = np.asarray(a["times"]), np.asarray(a["neurons"])
    tb, nb = np.asarray(b["times"]), np.asarray(b["neurons"])
    m = min(len(na), len(nb))
    same = na[:m] == nb[:m]
    prefix = int(m if same.all() else np.argmin(same))
    d = np.abs(ta[:prefix] - tb[:prefix])
    return {"num_spikes": [int(len(na)), int(len(nb))], "same_sequence_prefix": prefix,
            "max_abs_time_diff_in_prefix_s": float(d.max()) if prefix else None,
            "median_abs_time_diff_in_prefix_s": float(np.median(d)) if prefix else None}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (all libraries)")
    parser.add_argument("--eventax-batches", type=int, default=5,
                        help="Eventax: batches run per epoch; the epoch time is extrapolated "
                        "from their median step (0: the full epoch)")
    parser.add_argument("--eventax-event-steps", type=int, default=600,
                        help="Eventax: max_event_steps of the Yin-Yang network's event loop")
    parser.add_argument("--eventax-adjoint", choices=("default", "eventprop"), default="default",
                        help="Eventax: diffrax's RecursiveCheckpointAdjoint (its default) or "
                        "eventax.adjoint.EventPropAdjoint (about 15x slower here)")
    parser.add_argument("--libraries", default=",".join(LIBRARIES))
    parser.add_argument("--skip", default="", help=f"comma-separated subset of {BENCHMARKS}")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (recurrent)")
    parser.add_argument("--quick", action="store_true",
                        help="recurrent: the small configuration of recurrent_lif.py")
    parser.add_argument("--timeout", type=float, default=3600, help="per subprocess (s)")
    parser.add_argument("--worker", choices=BENCHMARKS, help=argparse.SUPPRESS)
    parser.add_argument("--lib", choices=LIBRARIES, help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--devices", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--closed-form", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)

    wall0 = time.perf_counter()
    libs = [x.strip() for x in args.libraries.split(",") if x.strip()]
    skip = {x.strip() for x in args.skip.split(",") if x.strip()}
    status = library_status()
    report = {
        "benchmark": "peers",
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.executable), "benchmarks/peers.py",
                             *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine_info(),
        "libraries": status,
        "versions": {k: version(k) for k in ("jax", "jaxlib", "diffrax", "equinox",
                                             "optimistix", "optax", "numpy", "scipy")},
        "problem": {
            "task": "Yin-Yang (spikeode.data.yinyang_spikes: train 5000 seed 42, test 1000 "
            "seed 40), inputs (x, y, 1-x, 1-y) latency-coded into [0, 30 ms] + a bias "
            "spike at 0",
            "network": f"{INPUTS} inputs -> {HIDDEN} LIF -> {CLASSES} LIF, first-spike coding",
            "batch_size": BATCH, "steps_per_epoch": 5000 // BATCH,
            "samples_per_epoch": (5000 // BATCH) * BATCH, "epochs": args.epochs,
            "dtype": "float32", "tau_mem_s": TAU_MEM, "tau_syn_s": TAU_SYN, "t1_s": T1,
            "minibatches": "identical index sequence for every library "
            "(spikeode.train._trainer._batches, seed 0)",
        },
        "notes": {
            "epoch_time_s": "median wall time of the epochs after the first (the first "
            "includes compilation); Eventax: extrapolated from timed steps, see its entry",
            "compile_time_s": "see each entry's compile_time_method",
            "test_acc": "spikeode and jaxsnn: after --epochs full epochs; Eventax: after "
            "--epochs x --eventax-batches batches (see test_acc_after)",
            "max_rss_mb": "peak resident memory (getrusage ru_maxrss) of the subprocess "
            "that ran only that library and benchmark",
        },
        "yinyang": {},
        "spike_time": {},
        "recurrent": {},
    }
    for lib in libs:
        if not status.get(lib, {}).get("installed"):
            for kind in BENCHMARKS:
                report[kind][lib] = {"status": "not installed",
                                     "note": status.get(lib, {}).get("note")}
    libs = [lib for lib in libs if status.get(lib, {}).get("installed")]

    if "spike_time" not in skip:
        ref = spike_time_reference()
        report["spike_time"]["reference"] = ref | {
            "neuron": f"LIF tau_mem {ST_TAU_MEM * 1e3:g} ms, tau_syn {ST_TAU_SYN * 1e3:g} ms, "
            "threshold 1, reset 0", "input_times_s": ST_TIMES, "weights": ST_WEIGHTS}
        for lib in libs:
            report["spike_time"][lib] = {}
            for dtype in ("float64", "float32"):
                r = run_child("spike_time", lib, args, ("--dtype", dtype))
                if r.get("status") == "ok":
                    r["abs_error_s"] = abs(r["t_first_s"] - ref["closed_form_s"])
                    if "t_first_s_closed_form" in r:  # spikeode.first_spikes
                        r["abs_error_s_closed_form"] = abs(
                            r["t_first_s_closed_form"] - ref["closed_form_s"])
                    if "t_first_s_eventax_defaults" in r:
                        r["abs_error_s_eventax_defaults"] = abs(
                            r["t_first_s_eventax_defaults"] - ref["closed_form_s"])
                report["spike_time"][lib][dtype] = r
    if "yinyang" not in skip:
        for lib in libs:
            if lib == "spikeode":
                # as `spikeode train` runs it (its XLA flags: one CPU device per core,
                # each batch split over them); and on one device, as the peers run
                from spikeode.cli import xla_flags

                flags = xla_flags("train", os.environ.get("XLA_FLAGS", ""))
                env = dict(os.environ, XLA_FLAGS=flags)
                report["yinyang"][lib] = run_child("yinyang", lib, args, env=env)
                report["yinyang"]["spikeode_one_device"] = run_child(
                    "yinyang", lib, args, ("--devices", "1"), env=env)
                # `spikeode train yinyang --closed-form`: the closed-form first-spike
                # network (tau_syn = tau_mem/2 and one spike per neuron, as jaxsnn's)
                report["yinyang"]["spikeode_closed_form"] = run_child(
                    "yinyang", lib, args, ("--closed-form",), env=env)
                report["yinyang"]["spikeode_closed_form_one_device"] = run_child(
                    "yinyang", lib, args, ("--closed-form", "--devices", "1"), env=env)
            else:
                report["yinyang"][lib] = run_child("yinyang", lib, args)
    if "recurrent" not in skip:
        report["recurrent"]["config"] = "benchmarks/recurrent_lif.py " + (
            "QUICK (20 neurons, 0.2 s)" if args.quick else "FULL (100 neurons, 1 s)")
        for lib in libs:
            if lib in RECURRENT:
                report["recurrent"][lib] = run_child("recurrent", lib, args)
            else:
                report["recurrent"][lib] = {"status": "not applicable",
                                            "note": "not expressible in jaxsnn's event-based LIF: "
                                            "it has no constant bias current (which drives "
                                            "this network) and its spike-time solver supports "
                                            "only tau_mem/tau_syn = 1 or 2 (here 5)"}
        rec = report["recurrent"]
        if all(rec.get(k, {}).get("status") == "ok" for k in ("spikeode", "eventax")):
            rec["eventax_vs_spikeode"] = compare_recurrent(rec["eventax"]["_spikes"],
                                                           rec["spikeode"]["_spikes"])
        for v in rec.values():
            if isinstance(v, dict):
                v.pop("_spikes", None)
    report["wall_time_s"] = time.perf_counter() - wall0
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

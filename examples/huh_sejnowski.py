"""Huh & Sejnowski (2018): a delayed-memory XOR and predictive coding, trained by
gradient descent through the smooth gated network.

Huh and Sejnowski replace the spike-triggered synapse by a gate that releases one unit
of synaptic output while a neuron's phase crosses a narrow zone around the spike, so a
spiking network is one smooth ODE and the exact gradient comes from the adjoint ODE
solved backwards in time. spikeode has that network (`spikeode.smooth`: theta
neurons, `tau_v dtheta/dt = (1 - cos theta) + (1 + cos theta) I`,
`tau_s ds/dt = -s + g(theta) dtheta/dt`, `I = U i(t) + W s + b`, readout `o = O s`).
Here it is trained with Adam on two tasks, 3 seeds each. The gradient of a batch of
trials (run side by side with `jax.vmap`) comes by default from
`diffrax.RecursiveCheckpointAdjoint` (backpropagation through the solver: the exact
gradient of the discretised loss at the training tolerance); `--adjoint backsolve`
trains with `diffrax.BacksolveAdjoint` (the continuous adjoint of the paper) instead,
whose gradient at the training tolerance rtol = atol = 1e-6 differs from it by
0.3-5 % and which was about four times slower here on a vmapped batch. The gradient check compares
the two.

(a) Delayed-memory XOR over one second (time in ms). Input channel 0 carries two
    50 ms pulses of sign +-1 (amplitude 0.8-1.2): the first starting at 50-150 ms, the
    second 250-350 ms later; channel 1 carries a 50 ms go cue another 250-350 ms
    later (at most 850 ms). Target: +1 if the two signs differ and -1 if they agree,
    over the response window 50-150 ms after the cue onset; the loss is the mean
    squared error over that window widened by `MARGIN` on both sides, plus
    `PRE_WEIGHT` times the mean square of the readout before the cue. Timings and
    amplitudes are drawn at random for every trial; batches of 8 fresh trials. Every
    `steps // 10` steps the validation score is measured on 64 validation trials and
    the best parameters are kept. Reported on 256 other held-out trials, on a 1 ms
    grid: the fraction of trials whose readout stays within `XOR_TOL` = 0.25 of the
    target at every point of the response window, and the decision accuracy (sign of
    the mean readout over the window).
(b) Predictive coding / auto-encoding. Channel 0 carries a random sum of three
    sinusoids (1-4 Hz, a fresh one per trial); the readout must reproduce it (from
    100 ms on). The loss of a trial is its relative error (mean squared error over the
    5 ms loss grid divided by the signal's mean square); the figure reported is the
    held-out relative error on 32 signals on a 1 ms grid (pooled: MSE / mean square).
    Spike rasters before and after training.

Units and choices (the paper's values were not available to us): time in ms, trial
`T = 1000`; `tau_v = 20` ms; active zone `delta = 2` rad (crossing it takes ~20 ms,
which also sets the solver's step bound, `delta tau_v / 8 = 5` ms); 60 neurons for
the XOR, 100 for predictive coding (whose held-out error is lower with more neurons:
0.108-0.119 over the three seeds with 60, at the same number of steps); synaptic time
constants fixed (not trained), log-uniform across neurons: 20-500 ms for the XOR (the
slow ones hold the memory), 10-200 ms for predictive coding. Trained: `U`, `W`, `O`
and the bias `b`. `W` and `O` act on the synaptic *trace* `tau_s s` of each
presynaptic neuron (which rises by 1 per spike): `W = W' diag(tau_s)`,
`O = O' diag(tau_s)`, and Adam trains `W'` and `O'`; so a weight of order 1 means a
current (or readout) of order 1 per spike, for fast and slow synapses alike. No
parameter is fitted other than by these gradient steps.

With `BacksolveAdjoint` the backward solve is re-anchored at every save time
(Diffrax restarts the backward segment from the saved forward state there), which
keeps the backward reconstruction of the (dissipative) forward dynamics stable; the
backward step-size control measures the error of the reconstructed state only
(`norm`), not of the adjoint of the parameters.

    python examples/huh_sejnowski.py            # full run (3 seeds)
    python examples/huh_sejnowski.py --fast     # tiny version (tests)

`run(fast=...)` returns the numbers (tests/reproductions/test_huh_sejnowski.py uses `fast=True`).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax

jax.config.update("jax_enable_x64", True)  # before any array is created

import diffrax  # noqa: E402
import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import optimistix  # noqa: E402
from _seeds import spread  # noqa: E402
from jaxtyping import Array, Float  # noqa: E402

from spikeode.smooth import simulate_smooth, SmoothGatedNetwork, spike_times  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
T = 1000.0  # trial length, ms
TAU_V = 20.0  # ms
DELTA = 2.0  # active zone, rad
DT_SAVE = 5.0  # ms: save grid of the loss (and anchors of the backward solve)
TS = np.arange(DT_SAVE, T + 1e-9, DT_SAVE)
TS_EVAL = np.arange(1.0, T + 1e-9, 1.0)  # 1 ms grid of the held-out measurements
MAX_STEPS = 20_000  # solver step budget (forward runs)
TRAIN_MAX_STEPS = 4096  # solver step budget in training (a trial takes ~400 steps)
TRAIN_TOL = 1e-6  # rtol = atol of forward and backward solves in training
LR_FLOOR = 0.01  # both learning rates decay (cosine) to this fraction
PULSE = 50.0  # ms, duration of every pulse
EDGE = 2.0  # ms, rise time of the pulses (logistic edges)
RESPONSE = (50.0, 150.0)  # ms after the go cue: the XOR response window
XOR_TOL = 0.25  # a trial is "within" if |readout - target| <= this all over the window
PRE_WEIGHT = 0.1  # weight of "readout = 0 before the go cue" in the XOR loss
MARGIN = 15.0  # ms: the XOR loss asks for +-1 on the response window widened by this
# full-run settings (the --fast mode uses tiny versions)
XOR_NEURONS, XOR_TAU, XOR_LR, XOR_STEPS = 60, (20.0, 500.0), (2e-2, 2e-3), 400
PC_NEURONS, PC_TAU, PC_LR, PC_STEPS = 100, (10.0, 200.0), (1e-2, 3e-3), 300
PC_FREQS = (1.0, 4.0)  # Hz, range of the predictive-coding sinusoids
PC_START = 100.0  # ms: the reconstruction is scored from here on


# --------------------------------------------------------------------------- input
class Drive(diffrax.AbstractPath):
    """Two input channels: smooth rectangular pulses plus sums of sinusoids.

    `i(t) = sum_k box(t - onset_k) amps[k] + sum_j sin_amp[:, j] sin(2 pi f_j t + phi_j)`,
    `box` a 50 ms pulse with logistic edges (2 ms). A pytree of arrays, so batches of
    trials are data, not closures (what `BacksolveAdjoint` needs)."""

    onsets: Float[Array, " pulses"]
    amps: Float[Array, "pulses 2"]
    sin_amp: Float[Array, "2 waves"]
    sin_freq: Float[Array, " waves"]  # cycles per ms
    sin_phase: Float[Array, " waves"]

    @property
    def t0(self):
        return 0.0

    @property
    def t1(self):
        return T

    def evaluate(self, t0, t1=None, left=True):
        del left
        if t1 is not None:
            return self.evaluate(t1) - self.evaluate(t0)
        box = jax.nn.sigmoid((t0 - self.onsets) / EDGE) - jax.nn.sigmoid(
            (t0 - self.onsets - PULSE) / EDGE
        )
        waves = jnp.sin(2 * jnp.pi * self.sin_freq * t0 + self.sin_phase)
        return box @ self.amps + self.sin_amp @ waves


def _index(batch, i):
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x[i]), batch)


def xor_trials(rng, n):
    """`n` random delayed-XOR trials: the inputs (a stacked `Drive`), targets and
    weights on the save grid `TS`, the labels (+1 XOR true, -1 false) and the go
    times."""
    a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    p1 = rng.uniform(50, 150, n)
    p2 = p1 + rng.uniform(250, 350, n)
    go = p2 + rng.uniform(250, 350, n)
    amp = rng.uniform(0.8, 1.2, (n, 2))
    amps = np.zeros((n, 3, 2))
    amps[:, 0, 0] = (2 * a - 1) * amp[:, 0]
    amps[:, 1, 0] = (2 * b - 1) * amp[:, 1]
    amps[:, 2, 1] = 1.0
    label = np.where(a != b, 1.0, -1.0)
    paths = Drive(
        onsets=np.stack([p1, p2, go], 1), amps=amps, sin_amp=np.zeros((n, 2, 3)),
        sin_freq=np.zeros((n, 3)), sin_phase=np.zeros((n, 3)),
    )
    response = (TS[None] >= go[:, None] + RESPONSE[0] - MARGIN) & (
        TS[None] <= go[:, None] + RESPONSE[1] + MARGIN)
    before = TS[None] < go[:, None]
    target = np.where(response, label[:, None], 0.0)
    weight = response / response.sum(1, keepdims=True) + PRE_WEIGHT * before / before.sum(
        1, keepdims=True
    )
    return paths, target, weight, label, go, (a, b)


def pc_signals(rng, n):
    """`n` random predictive-coding inputs: three sinusoids of 1-4 Hz on channel 0
    (amplitudes 0.3-0.7, random phases). Returns the inputs, the target (= the input)
    on the loss grid `TS`, the loss weights (from `PC_START` on, divided by the
    number of scored points and by the mean square of that trial's signal there: the
    loss of a trial is its relative error) and the signal on the 1 ms grid `TS_EVAL`."""
    k = 3
    sin_amp = np.zeros((n, 2, k))
    sin_amp[:, 0] = rng.uniform(0.3, 0.7, (n, k))
    freq = rng.uniform(*PC_FREQS, (n, k)) / 1000.0
    phase = rng.uniform(0, 2 * np.pi, (n, k))
    paths = Drive(
        onsets=np.full((n, 3), -1e4), amps=np.zeros((n, 3, 2)), sin_amp=sin_amp,
        sin_freq=freq, sin_phase=phase,
    )

    def signal_on(ts):
        waves = np.sin(2 * np.pi * freq[:, None] * ts[None, :, None] + phase[:, None])
        return np.einsum("nk,ntk->nt", sin_amp[:, 0], waves)

    signal = signal_on(TS)
    scored = TS >= PC_START
    mean_square = np.mean(signal[:, scored] ** 2, 1, keepdims=True)
    weight = scored[None] / scored.sum() / mean_square
    return paths, signal, weight, signal_on(TS_EVAL)


# ------------------------------------------------------------------------- network
def make_network(key, num_neurons, tau_s, *, w_gain, u_gain, bias_range, o_gain, rng):
    """A `SmoothGatedNetwork` (2 inputs, 1 output) and its trainable raw parameters."""
    k1, k2, k3 = jax.random.split(key, 3)
    n = num_neurons
    net = SmoothGatedNetwork(
        2, n, 1, tau_v=np.full(n, TAU_V), tau_s=np.asarray(tau_s, float), delta=DELTA,
        bias=rng.uniform(*bias_range, n), key=key,
    )
    params = {
        "U": u_gain * jax.random.normal(k1, (n, 2)),
        "W": w_gain * jax.random.normal(k2, (n, n)) / np.sqrt(n),
        "O": o_gain * jax.random.normal(k3, (1, n)) / np.sqrt(n),
        "bias": net.bias,
    }
    return net, params


def build(base, params):
    """The network with the trained parameters in place: `W = W' diag(tau_s)`,
    `O = O' diag(tau_s)` (weights on the synaptic traces `tau_s s`)."""
    trace = base.tau_s[None, :]
    return eqx.tree_at(
        lambda m: (m.U, m.W, m.O, m.bias),
        base,
        (params["U"], params["W"] * trace, params["O"] * trace, params["bias"]),
    )


def _state_norm(x):
    """Error norm of the backward solve: the reconstructed forward state only."""
    return optimistix.rms_norm(jax.tree_util.tree_leaves(x)[0])


def _adjoint(kind, tol):
    """'backsolve': `diffrax.BacksolveAdjoint` (the continuous adjoint, the paper's
    method), its backward solve at rtol = atol = `tol` with the error measured on the
    reconstructed state only; 'checkpoint': `diffrax.RecursiveCheckpointAdjoint`
    (backpropagation through the solver: the exact gradient of the discretised loss)."""
    if kind == "backsolve":
        controller = diffrax.PIDController(
            rtol=tol, atol=tol, dtmax=0.125 * DELTA * TAU_V, norm=_state_norm
        )
        return diffrax.BacksolveAdjoint(stepsize_controller=controller)
    if kind == "checkpoint":
        # one checkpoint per step (no recomputation in the backward pass)
        return diffrax.RecursiveCheckpointAdjoint(checkpoints=TRAIN_MAX_STEPS)
    raise ValueError(f"unknown adjoint {kind!r}")


def _trial_loss(params, base, path, target, weight, tol, kind):
    sol = simulate_smooth(
        build(base, params), path, T, ts=jnp.asarray(TS), adjoint=_adjoint(kind, tol),
        rtol=tol, atol=tol, max_steps=TRAIN_MAX_STEPS,
    )
    out = sol.outputs[:, 0]
    return jnp.sum(weight * (out - target) ** 2), out


_grad_fns = {}


def trial_grad(kind):
    """Jitted `(params, base, path, target, weight, tol) -> ((loss, outputs), grads)`
    for one trial, the gradient by `kind` ('backsolve' or 'checkpoint'); `tol` (rtol =
    atol of the forward and backward solves) is an array argument, so that every
    tolerance shares one compilation."""
    if ("trial", kind) not in _grad_fns:
        _grad_fns["trial", kind] = eqx.filter_jit(
            jax.value_and_grad(
                lambda p, b, x, y, w, tol: _trial_loss(p, b, x, y, w, tol, kind),
                has_aux=True,
            )
        )
    return _grad_fns["trial", kind]


def batch_grad(kind):
    """Jitted `(params, base, paths, targets, weights, tol) -> (losses, mean grads)`
    over a stacked batch of trials (`jax.vmap`: the trials run side by side)."""
    if ("batch", kind) not in _grad_fns:
        per_trial = jax.vmap(
            jax.value_and_grad(
                lambda p, b, x, y, w, tol: _trial_loss(p, b, x, y, w, tol, kind)[0]
            ),
            in_axes=(None, None, 0, 0, 0, None),
        )

        def fn(p, b, x, y, w, tol):
            losses, grads = per_trial(p, b, x, y, w, tol)
            return losses, jax.tree_util.tree_map(lambda g: jnp.mean(g, 0), grads)

        _grad_fns["batch", kind] = eqx.filter_jit(fn)
    return _grad_fns["batch", kind]


@eqx.filter_jit
def _forward(params, base, paths, ts):
    def one(path):
        sol = simulate_smooth(build(base, params), path, T, ts=ts,
                              rtol=TRAIN_TOL, atol=TRAIN_TOL, max_steps=MAX_STEPS)
        return sol.outputs[:, 0]

    return jax.vmap(one)(paths)


def forward_batch(params, base, paths, ts=None, chunk=32):
    """Readouts for a stacked batch of inputs on the grid `ts` (default the loss grid
    `TS`), shape `(n, len(ts))`; trials run `chunk` at a time (vmapped)."""
    ts = jnp.asarray(TS if ts is None else ts)
    n = paths.onsets.shape[0]
    out = []
    for i in range(0, n, chunk):
        part = jax.tree_util.tree_map(lambda x: jnp.asarray(x[i:i + chunk]), paths)
        out.append(np.asarray(_forward(params, base, part, ts)))
    return np.concatenate(out)


FINE_TS = np.linspace(0.0, T, 401)


@eqx.filter_jit
def _dense(params, base, path):
    return simulate_smooth(build(base, params), path, T, ts=jnp.asarray(FINE_TS),
                           rtol=TRAIN_TOL, atol=TRAIN_TOL, max_steps=MAX_STEPS, dense=True)


def dense_run(params, base, path):
    """Readout on a fine grid and spike times (theta = pi crossings) of one trial."""
    sol = _dense(params, base, path)
    return np.asarray(sol.outputs[:, 0]), [s.tolist() for s in spike_times(sol)]


def train(params, base, sample, *, steps, batch_size, lr, seed, adjoint, log_every=10,
          evaluate=None, eval_every=None, name="", better=None):
    """Adam (global-norm clipping at 1, cosine decay of both learning rates to a
    hundredth) on the mean trial loss, the gradient of the batch from `adjoint`
    ('checkpoint' or 'backsolve'). `lr = (readout, network)`: the learning rate of
    `O'` and that of `U`, `W'`, `b`. `sample(rng, n)` gives a batch `(paths, targets,
    weights)`; `evaluate(params)` (optional) a value measured every `eval_every` steps
    on validation data not used for training; with `better(a, b)` (True if value `a`
    is better than `b`) the parameters with the best such value are returned (early
    stopping on a validation set)."""
    lr_out, lr_net = lr
    sched = lambda lr0: optax.cosine_decay_schedule(lr0, steps, alpha=LR_FLOOR)  # noqa: E731
    opt = optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.multi_transform(
            {"readout": optax.adam(sched(lr_out)), "network": optax.adam(sched(lr_net))},
            {"U": "network", "W": "network", "O": "readout", "bias": "network"},
        ),
    )
    state = opt.init(params)

    @eqx.filter_jit
    def update(g, s, p):
        # (Optax's Adam mixes its int32 step count with float parameters: standard
        # promotion also where a caller runs JAX with strict promotion, as the tests do)
        with jax.numpy_dtype_promotion("standard"):
            return opt.update(g, s, p)

    grad = batch_grad(adjoint)
    rng = np.random.default_rng(seed)
    losses, evals = [], []
    best = None
    start = time.perf_counter()
    for step in range(steps):
        paths, target, weight = sample(rng, batch_size)
        paths = jax.tree_util.tree_map(jnp.asarray, paths)
        trial_losses, g = grad(params, base, paths, jnp.asarray(target), jnp.asarray(weight),
                               jnp.asarray(TRAIN_TOL))
        updates, state = update(g, state, params)
        params = eqx.apply_updates(params, updates)
        losses.append(float(jnp.mean(trial_losses)))
        if evaluate is not None and eval_every and (step + 1) % eval_every == 0:
            value = evaluate(params)
            evals.append((step + 1, value))
            if better is not None and (best is None or better(value, best[0])):
                best = (value, step + 1, params)
        if log_every and (step % log_every == 0 or step == steps - 1):
            extra = f"  validation {evals[-1][1]}" if evals and evals[-1][0] == step + 1 else ""
            print(f"  {name} step {step:4d}  loss {losses[-1]:.4f}  "
                  f"{time.perf_counter() - start:6.1f} s{extra}", flush=True)
    seconds = time.perf_counter() - start
    if best is not None:
        return best[2], losses, evals, seconds, best[1], params
    return params, losses, evals, seconds, steps, params


def batch_loss(params, base, batch):
    """Mean trial loss of a batch `(paths, targets, weights)` (forward only)."""
    paths, target, weight = batch
    out = forward_batch(params, base, paths)
    return float(np.mean(np.sum(weight * (out - target) ** 2, 1)))


# ------------------------------------------------------------------------------ XOR
def xor_metrics(params, base, data):
    """On the 1 ms grid `TS_EVAL`: the decision accuracy (sign of the mean readout
    over the response window `[go + 50, go + 150]` ms), the fraction of trials whose
    readout stays within `XOR_TOL` of the +-1 target at every grid point of that
    window, and the largest deviation of each trial there."""
    paths, _, _, label, go, _ = data
    out = forward_batch(params, base, paths, TS_EVAL)
    window = (TS_EVAL[None] >= go[:, None] + RESPONSE[0]) & (
        TS_EVAL[None] <= go[:, None] + RESPONSE[1])
    score = np.sum(out * window, 1) / window.sum(1)
    max_err = np.max(np.where(window, np.abs(out - label[:, None]), 0.0), 1)
    return {
        "accuracy": float(np.mean(np.sign(score) == label)),
        "within": float(np.mean(max_err <= XOR_TOL)),
        "max_err": max_err,
        "out": out,
    }


def xor_experiment(fast, *, neurons, steps, batch_size, lr, num_test, num_val, seed,
                   adjoint, tau_range=(20.0, 500.0), num_examples=6):
    """Delayed XOR: train (Adam), keep the parameters with the best validation score
    (fraction of validation trials within `XOR_TOL` over the whole response window
    plus decision accuracy; checked every `steps // 10` steps on `num_val` trials),
    and report the figures on `num_test` other held-out trials."""
    rng = np.random.default_rng(seed)
    tau_s = np.exp(rng.uniform(np.log(tau_range[0]), np.log(tau_range[1]), neurons))
    base, params = make_network(
        jax.random.PRNGKey(seed), neurons, tau_s, w_gain=0.6, u_gain=2.0,
        bias_range=(-0.1, 0.05), o_gain=0.1, rng=rng,
    )
    test = xor_trials(np.random.default_rng(10_000 + seed), num_test)
    val = xor_trials(np.random.default_rng(30_000 + seed), num_val) if num_val else None

    if fast:  # a fixed training batch (the loss on it must fall)
        fixed = xor_trials(np.random.default_rng(seed + 1), batch_size)[:3]
        sample = lambda r, n: fixed  # noqa: E731
    else:
        sample = lambda r, n: xor_trials(r, n)[:3]  # noqa: E731

    def evaluate(p):
        m = xor_metrics(p, base, val)
        return [m["within"], m["accuracy"]]

    m0 = xor_metrics(params, base, test)
    params, losses, evals, seconds, chosen, last = train(
        params, base, sample, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
        adjoint=adjoint, name=f"xor seed {seed}", log_every=1 if fast else 25,
        evaluate=None if fast else evaluate,
        eval_every=None if fast else max(steps // 10, 1),
        # (by within + accuracy: a constant readout of -1 is "within" on half the trials)
        better=lambda a, b: sum(a) > sum(b),
    )
    m = xor_metrics(params, base, test)
    m_last = m if chosen == steps else xor_metrics(last, base, test)
    res = {
        "seed": seed, "neurons": neurons, "steps": steps, "batch_size": batch_size,
        "lr_readout_network": list(lr), "adjoint": adjoint,
        "tau_s_range_ms": list(tau_range), "loss": losses, "train_seconds": seconds,
        "seconds_per_step": seconds / steps, "heldout_trials": num_test,
        "heldout_accuracy_init": m0["accuracy"], "heldout_within_init": m0["within"],
        "heldout_accuracy": m["accuracy"], "heldout_within": m["within"],
        "heldout_max_err_quantiles": {
            q: float(np.quantile(m["max_err"], float(q))) for q in ("0.5", "0.9", "0.95", "1.0")
        },
        "validation_trials": num_val,
        "validation_within_accuracy_during_training": evals,
        "chosen_step": chosen,
        "heldout_accuracy_last_step": m_last["accuracy"],
        "heldout_within_last_step": m_last["within"],
    }
    if fast:  # the loss on the fixed batch after training
        res["final_batch_loss"] = batch_loss(params, base, fixed)
    # held-out examples for the figure: the first trials of the test set, and one
    # trial per sign condition
    a, b = test[5]
    picks = list(range(min(num_examples, num_test)))
    for ca in (0, 1):
        for cb in (0, 1):
            where = np.flatnonzero((a == ca) & (b == cb))
            if len(where) and int(where[0]) not in picks:
                picks.append(int(where[0]))
    res["examples"] = [
        {"a": int(a[i]), "b": int(b[i]), "index": i, "label": float(test[3][i]),
         "go": float(test[4][i]), "onsets": np.asarray(test[0].onsets[i]).tolist(),
         "max_err": float(m["max_err"][i]), "readout": m["out"][i].tolist()}
        for i in picks
    ]
    return res, (params, base)


# ------------------------------------------------------------------ predictive coding
def pc_error(params, base, paths, signal_eval):
    """Held-out reconstruction error on the 1 ms grid `TS_EVAL` from `PC_START` on:
    mean squared error divided by the mean square of the signal (pooled over the
    signals; 1 = readout stuck at 0)."""
    out = forward_batch(params, base, paths, TS_EVAL)
    scored = TS_EVAL >= PC_START
    return float(np.mean((out - signal_eval)[:, scored] ** 2)
                 / np.mean(signal_eval[:, scored] ** 2))


def pc_experiment(fast, *, neurons, steps, batch_size, lr, num_test, seed, adjoint,
                  tau_range=(50.0, 50.0)):
    rng = np.random.default_rng(seed + 7)
    tau_s = np.exp(rng.uniform(np.log(tau_range[0]), np.log(tau_range[1]), neurons))
    base, params = make_network(
        jax.random.PRNGKey(seed + 7), neurons, tau_s, w_gain=0.5,
        u_gain=3.0, bias_range=(0.0, 0.2), o_gain=0.1, rng=rng,
    )
    test_paths, _, _, test_eval = pc_signals(np.random.default_rng(20_000 + seed), num_test)
    params0 = params
    err0 = pc_error(params, base, test_paths, test_eval)
    if fast:  # a fixed training batch
        fixed = pc_signals(np.random.default_rng(seed + 2), batch_size)[:3]
        sample = lambda r, n: fixed  # noqa: E731
    else:
        sample = lambda r, n: pc_signals(r, n)[:3]  # noqa: E731
    params, losses, evals, seconds, _, _ = train(
        params, base, sample, steps=steps, batch_size=batch_size, lr=lr, seed=seed + 1,
        adjoint=adjoint, name=f"predictive coding seed {seed}", log_every=1 if fast else 25,
        evaluate=lambda p: pc_error(p, base, test_paths, test_eval),
        eval_every=max(steps // 10, 1),
    )
    err = pc_error(params, base, test_paths, test_eval)
    res = {
        "seed": seed, "neurons": neurons, "steps": steps, "batch_size": batch_size,
        "lr_readout_network": list(lr), "adjoint": adjoint,
        "tau_s_range_ms": list(tau_range), "loss": losses, "train_seconds": seconds,
        "seconds_per_step": seconds / steps, "heldout_signals": num_test,
        "heldout_rel_error_init": err0, "heldout_rel_error": err,
        "heldout_rel_error_during_training": [[0, err0]] + [list(e) for e in evals],
    }
    if fast:
        res["final_batch_loss"] = batch_loss(params, base, fixed)
    else:
        path = _index(test_paths, 0)
        t = FINE_TS
        freq, amp, phase = (np.asarray(test_paths.sin_freq[0]),
                            np.asarray(test_paths.sin_amp[0, 0]),
                            np.asarray(test_paths.sin_phase[0]))
        signal = np.sin(2 * np.pi * freq * t[:, None] + phase) @ amp
        res["example"] = {"signal_fine": signal.tolist()}
        for tag, p in (("before", params0), ("after", params)):
            out, spikes = dense_run(p, base, path)
            res["example"][f"readout_{tag}"] = out.tolist()
            res["example"][f"spikes_{tag}"] = spikes
            res["example"][f"num_spikes_{tag}"] = int(sum(len(s) for s in spikes))
    return res, (params, base)


# ------------------------------------------------------------------- gradient check
def gradient_check(params, base, tol=1e-10):
    """BacksolveAdjoint vs RecursiveCheckpointAdjoint on the XOR loss of one held-out
    trial (float64): max over U, W, O, b of max|g_a - g_b| / max|g_b|; at the tight
    tolerance `tol`, and at the training tolerance against the tight reference (for
    both adjoints: how far the training gradient is from the gradient of the exact
    loss)."""
    paths, target, weight, *_ = xor_trials(np.random.default_rng(99), 1)
    args = (params, base, _index(paths, 0), jnp.asarray(target[0]), jnp.asarray(weight[0]))

    def rel(ga, gb):
        return max(float(jnp.max(jnp.abs(ga[k] - gb[k])) / jnp.max(jnp.abs(gb[k]))) for k in ga)

    out = {"tol": tol}
    start = time.perf_counter()
    (l_rc, _), g_rc = trial_grad("checkpoint")(*args, jnp.asarray(tol))
    (l_bs, _), g_bs = trial_grad("backsolve")(*args, jnp.asarray(tol))
    out["loss_backsolve"], out["loss_checkpoint"] = float(l_bs), float(l_rc)
    out["rel_diff"] = rel(g_bs, g_rc)
    (_, _), g_train = trial_grad("backsolve")(*args, jnp.asarray(TRAIN_TOL))
    out["rel_diff_training_tolerance"] = rel(g_train, g_rc)
    (_, _), g_train_rc = trial_grad("checkpoint")(*args, jnp.asarray(TRAIN_TOL))
    out["rel_diff_checkpoint_training_tolerance"] = rel(g_train_rc, g_rc)
    out["rel_diff_backsolve_vs_checkpoint_training_tolerance"] = rel(g_train, g_train_rc)
    out["training_tolerance"] = TRAIN_TOL
    out["seconds"] = time.perf_counter() - start
    return out


# ---------------------------------------------------------------------------- plot
def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results["runs"]
    x, p = runs[0]["xor"], runs[0]["predictive_coding"]
    fig = plt.figure(figsize=(14, 14), layout="constrained")
    grid = fig.add_gridspec(4, 6, height_ratios=[1, 0.8, 1, 1])
    left, right = grid[0, :3], grid[0, 3:]

    a = fig.add_subplot(left)
    for k, r in enumerate(runs):
        a.plot(r["xor"]["loss"], lw=0.6, color=f"C{k}", alpha=0.7, label=f"seed {r['seed']}")
    a.set(xlabel="Adam step", ylabel="training loss (batch)", yscale="log",
          title=f"(a) delayed XOR, {x['neurons']} neurons, {len(runs)} seeds")
    b = a.twinx()
    for k, r in enumerate(runs):
        ev = r["xor"]["validation_within_accuracy_during_training"]
        if len(ev):
            b.plot([e[0] for e in ev], [100 * e[1][0] for e in ev], "o-", color=f"C{k}", ms=3,
                   lw=0.8)
        b.plot([r["xor"]["chosen_step"]], [100 * r["xor"]["heldout_within"]], "*",
               color=f"C{k}", mec="k", ms=12)
    b.axhline(95, color="0.4", ls=":", lw=0.8)
    b.set_ylabel(f"% trials within +-{XOR_TOL} all over the window\n"
                 f"(dots: validation; star: {x['heldout_trials']} held-out)")
    b.set_ylim(-2, 101)
    a.legend(fontsize=7, loc="lower left")

    a = fig.add_subplot(right)
    shown = [e for e in x["examples"] if e["index"] >= 6][:4] or x["examples"][:4]
    for k, e in enumerate(shown):
        signs = f"{'+-'[1 - e['a']]}{'+-'[1 - e['b']]}"
        label = f"{signs} -> {'XOR' if e['a'] != e['b'] else 'not XOR'}"
        a.plot(TS_EVAL, e["readout"], color=f"C{k}", lw=0.8, label=label)
        a.axvline(e["go"], color=f"C{k}", ls=":", lw=0.8)
        a.axvspan(e["go"] + RESPONSE[0], e["go"] + RESPONSE[1], color=f"C{k}", alpha=0.08)
    a.axhline(1, color="0.6", lw=0.5), a.axhline(-1, color="0.6", lw=0.5)
    a.set(xlabel="time (ms)", ylabel="readout",
          title="held-out trials, one per condition (dotted: go cue, shaded: window)")
    a.legend(fontsize=7)

    for k, e in enumerate(x["examples"][:6]):
        a = fig.add_subplot(grid[1, k])
        go, lab = e["go"], e["label"]
        a.plot(TS_EVAL, e["readout"], color="C0", lw=0.8, label="readout")
        target = np.where(TS_EVAL < go, 0.0, np.nan)
        a.plot(TS_EVAL, target, color="k", ls="--", lw=0.8, label="target (0: loss weight "
               f"{PRE_WEIGHT})")
        w0, w1 = go + RESPONSE[0], go + RESPONSE[1]
        a.fill_between([w0, w1], lab - XOR_TOL, lab + XOR_TOL, color="C2", alpha=0.3,
                       label=f"window, +-{XOR_TOL}")
        a.plot([w0, w1], [lab, lab], color="k", lw=1.5)
        for t0 in e["onsets"][:2]:
            a.axvspan(t0, t0 + PULSE, color="0.5", alpha=0.15)
        a.axvspan(go, go + PULSE, color="C3", alpha=0.15)
        ok = "ok" if e["max_err"] <= XOR_TOL else "out"
        a.set(ylim=(-1.7, 1.7), xlim=(max(0.0, go - 400), T), xlabel="time (ms)",
              title=f"trial {e['index']}: {'+-'[1 - e['a']]}{'+-'[1 - e['b']]}, "
                    f"max err {e['max_err']:.2f} ({ok})")
        a.title.set_fontsize(8)
        if k == 0:
            a.set_ylabel("readout vs target")
            a.legend(fontsize=6, loc="lower left")
        else:
            a.set_yticklabels([])

    a = fig.add_subplot(grid[2, :3])
    for k, r in enumerate(runs):
        q = r["predictive_coding"]
        a.plot(q["loss"], lw=0.6, color=f"C{k}", alpha=0.7,
               label=f"seed {r['seed']}: training loss" if k == 0 else f"seed {r['seed']}")
        ev = np.asarray(q["heldout_rel_error_during_training"])
        a.plot(ev[:, 0], ev[:, 1], "o-", color=f"C{k}", ms=3, lw=1)
    a.axhline(0.1, color="0.4", ls=":", lw=0.8)
    a.set(xlabel="Adam step", ylabel="relative error (lines: training batch,\n"
          "dots: held-out, MSE / mean square)", yscale="log",
          title=f"(b) predictive coding, {p['neurons']} neurons, {len(runs)} seeds")
    a.legend(fontsize=7)
    a = fig.add_subplot(grid[2, 3:])
    e = p["example"]
    a.plot(FINE_TS, e["signal_fine"], "k", lw=1.5, label="input i(t)")
    a.plot(FINE_TS, e["readout_before"], color="C0", lw=1, label="readout before training")
    a.plot(FINE_TS, e["readout_after"], color="C3", lw=1, label="readout after training")
    a.axvline(PC_START, color="0.6", ls=":", lw=0.8)
    a.set(xlabel="time (ms)", ylabel="signal", title="held-out signal and readout (seed 0)")
    a.legend(fontsize=7)
    for k, tag in enumerate(("before", "after")):
        a = fig.add_subplot(grid[3, 3 * k:3 * k + 3])
        for i, s in enumerate(e[f"spikes_{tag}"]):
            a.plot(s, np.full(len(s), i), "|", color="k", ms=2)
        a.set(xlabel="time (ms)", ylabel="neuron", xlim=(0, T),
              title=f"spike raster {tag} training ({e[f'num_spikes_{tag}']} spikes)")
    fig.savefig(path, dpi=100)


# ----------------------------------------------------------------------------- run
def run(fast=False, seeds=(0, 1, 2), xor_steps=XOR_STEPS, pc_steps=PC_STEPS,
        adjoint="checkpoint"):
    """Both tasks for every seed and the gradient check; returns a JSON-able dict.
    `adjoint`: how training gets its gradients, 'checkpoint'
    (`RecursiveCheckpointAdjoint`) or 'backsolve' (`BacksolveAdjoint`)."""
    start = time.perf_counter()
    if fast:
        seeds = seeds[:1]
        xor_kw = dict(neurons=12, steps=6, batch_size=4, lr=(2e-2, 1e-3), num_test=8,
                      num_val=0)
        pc_kw = dict(neurons=12, steps=6, batch_size=2, lr=(2e-2, 1e-2), num_test=4)
    else:
        xor_kw = dict(neurons=XOR_NEURONS, steps=xor_steps, batch_size=8, lr=XOR_LR,
                      num_test=256, num_val=64, tau_range=XOR_TAU)
        pc_kw = dict(neurons=PC_NEURONS, steps=pc_steps, batch_size=8, lr=PC_LR, num_test=32,
                     tau_range=PC_TAU)
    results = {"fast": fast, "dtype": "float64", "T_ms": T, "tau_v_ms": TAU_V,
               "delta_rad": DELTA, "loss_grid_ms": DT_SAVE, "eval_grid_ms": 1.0,
               "train_tol": TRAIN_TOL, "response_window_ms": list(RESPONSE),
               "xor_tolerance": XOR_TOL, "xor_pre_cue_weight": PRE_WEIGHT,
               "xor_loss_margin_ms": MARGIN, "lr_floor": LR_FLOOR,
               "adjoint": {"checkpoint": "diffrax.RecursiveCheckpointAdjoint",
                           "backsolve": "diffrax.BacksolveAdjoint"}[adjoint],
               "seeds": list(seeds), "runs": []}
    trained = None
    for seed in seeds:
        entry = {"seed": seed}
        entry["xor"], xnet = xor_experiment(fast, seed=seed, adjoint=adjoint, **xor_kw)
        entry["predictive_coding"], _ = pc_experiment(fast, seed=seed, adjoint=adjoint,
                                                      **pc_kw)
        trained = trained or xnet
        results["runs"].append(entry)
        x, q = entry["xor"], entry["predictive_coding"]
        print(f"seed {seed}: XOR within {x['heldout_within']:.1%}, decisions "
              f"{x['heldout_accuracy']:.1%}; predictive coding error "
              f"{q['heldout_rel_error']:.3f}  ({time.perf_counter() - start:.0f} s)", flush=True)
    xs = [r["xor"] for r in results["runs"]]
    results["summary"] = {
        "xor_heldout_within": spread([x["heldout_within"] for x in xs]),
        "xor_heldout_accuracy": spread([x["heldout_accuracy"] for x in xs]),
        "xor_heldout_within_last_step": spread([x["heldout_within_last_step"] for x in xs]),
        "xor_heldout_accuracy_last_step": spread([x["heldout_accuracy_last_step"]
                                                   for x in xs]),
        "pc_heldout_rel_error": spread([r["predictive_coding"]["heldout_rel_error"]
                                        for r in results["runs"]]),
    }
    results["gradient_check"] = gradient_check(*trained)
    results["total_time_s"] = time.perf_counter() - start
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fast", action="store_true", help="tiny versions (seconds)")
    p.add_argument("--xor-steps", type=int, default=XOR_STEPS)
    p.add_argument("--pc-steps", type=int, default=PC_STEPS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--adjoint", choices=("checkpoint", "backsolve"), default="checkpoint",
                   help="gradient used for training (default: checkpoint)")
    p.add_argument("--figure", default=None,
                   help="default docs/figures/huh_sejnowski.png (not with --fast)")
    p.add_argument("--json", default=None,
                   help="default docs/figures/huh_sejnowski.json (not with --fast)")
    args = p.parse_args(argv)
    results = run(args.fast, tuple(args.seeds), args.xor_steps, args.pc_steps, args.adjoint)
    figure = args.figure or (None if args.fast else str(ROOT / "docs/figures/huh_sejnowski.png"))
    out_json = args.json or (None if args.fast else str(ROOT / "docs/figures/huh_sejnowski.json"))
    if figure and not args.fast:
        plot(results, figure)
        print(f"wrote {figure}")
    if out_json:
        pathlib.Path(out_json).write_text(json.dumps(results) + "\n")
        print(f"wrote {out_json}")
    s, g = results["summary"], results["gradient_check"]
    for r in results["runs"]:
        x, q = r["xor"], r["predictive_coding"]
        print(f"seed {r['seed']}: XOR on {x['heldout_trials']} held-out trials: within "
              f"+-{XOR_TOL} all over the window {x['heldout_within']:.1%}, decisions "
              f"{x['heldout_accuracy']:.1%} (step {x['chosen_step']}; last step "
              f"{x['heldout_within_last_step']:.1%}, {x['heldout_accuracy_last_step']:.1%}); "
              f"predictive coding error {q['heldout_rel_error_init']:.3f} -> "
              f"{q['heldout_rel_error']:.3f}")
    for k, v in s.items():
        print(f"{k}: mean {v['mean']:.4f}, std {v['std']:.4f}, range {v['min']:.4f}-"
              f"{v['max']:.4f}")
    print(f"gradient, BacksolveAdjoint vs RecursiveCheckpointAdjoint (tol {g['tol']:g}): "
          f"{g['rel_diff']:.1e}; at the training tolerance {g['rel_diff_training_tolerance']:.1e}")
    print(f"total {results['total_time_s']:.0f} s")


if __name__ == "__main__":
    main()

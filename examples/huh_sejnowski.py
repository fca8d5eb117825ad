"""Huh & Sejnowski (2018): a delayed-memory XOR and predictive coding, trained through
the smooth gated network with the continuous adjoint.

Huh and Sejnowski replace the spike-triggered synapse by a gate that releases one unit
of synaptic output while a neuron's phase crosses a narrow zone around the spike, so a
spiking network is one smooth ODE and the exact gradient comes from the adjoint ODE
solved backwards in time. spikeode has that network (`spikeode.smooth`: theta
neurons, `tau_v dtheta/dt = (1 - cos theta) + (1 + cos theta) I`,
`tau_s ds/dt = -s + g(theta) dtheta/dt`, `I = U i(t) + W s + b`, readout `o = O s`).
Here it is trained with Adam on two tasks, the gradient always from
`diffrax.BacksolveAdjoint` (the continuous adjoint, as in the paper):

(a) Delayed-memory XOR over one second (time in ms). Input channel 0 carries two
    50 ms pulses of sign +-1 (amplitude 0.8-1.2): the first starting at 50-150 ms, the
    second 250-350 ms later; channel 1 carries a 50 ms go cue another 250-350 ms
    later (at most 850 ms). The readout must be 0 before the cue and, 50-150 ms after
    its onset, +1 if the two signs differ and -1 if they agree. Timings and amplitudes
    are drawn at random for every trial. 200 Adam steps on batches of 8 fresh
    trials; every 20 steps the accuracy (sign of the mean readout in the response
    window) is measured on 128 validation trials and the best parameters are kept;
    the accuracy reported is that on 256 other held-out trials.
(b) Predictive coding / auto-encoding. Channel 0 carries a random sum of three
    sinusoids (1-4 Hz, a fresh one per trial); the readout must reproduce it (from
    100 ms on). 60 Adam steps on batches of 8; the relative reconstruction error on
    16 held-out signals falls during training; spike rasters before and after.

Units and choices (the paper's values were not available to us): time in ms, trial
`T = 1000`; `tau_v = 20` ms; active zone `delta = 2` rad (crossing it takes ~20 ms,
which also sets the solver's step bound, `delta tau_v / 8 = 5` ms); synaptic time
constants fixed (not trained), for the XOR log-uniform in 20-500 ms across neurons
(the slow ones hold the memory), for predictive coding 50 ms. Trained: `U`, `W`, `O`
and the bias `b`. `W` and `O` act on the synaptic *trace* `tau_s s` of each
presynaptic neuron (which rises by 1 per spike): `W = W' diag(tau_s)`,
`O = O' diag(tau_s)`, and Adam trains `W'` and `O'`; so a weight of order 1 means a
current (or readout) of order 1 per spike, for fast and slow synapses alike.

The backward solve is re-anchored at every save time (Diffrax's `BacksolveAdjoint`
restarts the backward segment from the saved forward state there); the loss uses a
50 ms save grid, which also keeps the backward reconstruction of the (dissipative)
forward dynamics stable: with only a few save times in one second the reversed
theta dynamics amplify round-off and the backward solve does not finish. The backward
step-size control measures the error of the reconstructed state only (`norm`), not
of the adjoint of the parameters.

    python examples/huh_sejnowski.py            # full run (about 10 minutes)
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
from jaxtyping import Array, Float  # noqa: E402

from spikeode.smooth import simulate_smooth, SmoothGatedNetwork, spike_times  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
T = 1000.0  # trial length, ms
TAU_V = 20.0  # ms
DELTA = 2.0  # active zone, rad
DT_SAVE = 50.0  # ms: save grid of the loss (and anchors of the backward solve)
TS = np.arange(DT_SAVE, T + 1e-9, DT_SAVE)
TRAIN_TOL = 1e-6  # rtol = atol of forward and backward solves in training
PULSE = 50.0  # ms, duration of every pulse
EDGE = 2.0  # ms, rise time of the pulses (logistic edges)
PRE_WEIGHT = 0.1  # weight of "readout = 0 before the go cue" in the XOR loss
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


def _stack(paths):
    return jax.tree_util.tree_map(lambda *x: np.stack(x), *paths)


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
    response = (TS[None] >= go[:, None] + 50) & (TS[None] <= go[:, None] + 150)
    before = TS[None] < go[:, None]
    target = np.where(response, label[:, None], 0.0)
    weight = response / response.sum(1, keepdims=True) + PRE_WEIGHT * before / before.sum(
        1, keepdims=True
    )
    return paths, target, weight, label, go, (a, b)


def pc_signals(rng, n):
    """`n` random predictive-coding inputs: three sinusoids of 1-4 Hz on channel 0
    (amplitudes 0.3-0.7, random phases); target = the input on the save grid from
    `PC_START` on."""
    k = 3
    sin_amp = np.zeros((n, 2, k))
    sin_amp[:, 0] = rng.uniform(0.3, 0.7, (n, k))
    freq = rng.uniform(*PC_FREQS, (n, k)) / 1000.0
    phase = rng.uniform(0, 2 * np.pi, (n, k))
    paths = Drive(
        onsets=np.full((n, 3), -1e4), amps=np.zeros((n, 3, 2)), sin_amp=sin_amp,
        sin_freq=freq, sin_phase=phase,
    )
    waves = np.sin(2 * np.pi * freq[:, None] * TS[None, :, None] + phase[:, None])
    signal = np.einsum("nk,ntk->nt", sin_amp[:, 0], waves)
    weight = np.broadcast_to((TS >= PC_START) / np.sum(TS >= PC_START), signal.shape).copy()
    return paths, signal, weight


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
    if kind == "backsolve":
        controller = diffrax.PIDController(
            rtol=tol, atol=tol, dtmax=0.125 * DELTA * TAU_V, norm=_state_norm
        )
        return diffrax.BacksolveAdjoint(stepsize_controller=controller)
    return diffrax.RecursiveCheckpointAdjoint()


def _trial_loss(params, base, path, target, weight, tol, kind):
    sol = simulate_smooth(
        build(base, params), path, T, ts=jnp.asarray(TS), adjoint=_adjoint(kind, tol),
        rtol=tol, atol=tol, max_steps=20_000,
    )
    out = sol.outputs[:, 0]
    return jnp.sum(weight * (out - target) ** 2), out


_grad_fns = {}


def trial_grad(kind):
    """Jitted `(params, base, path, target, weight, tol) -> ((loss, outputs), grads)`
    for one trial, the gradient by `kind` ('backsolve' or 'checkpoint'); `tol` (rtol =
    atol of the forward and backward solves) is an array argument, so that every
    tolerance shares one compilation."""
    if kind not in _grad_fns:
        _grad_fns[kind] = eqx.filter_jit(
            jax.value_and_grad(
                lambda p, b, x, y, w, tol: _trial_loss(p, b, x, y, w, tol, kind),
                has_aux=True,
            )
        )
    return _grad_fns[kind]


@eqx.filter_jit
def _forward(params, base, path):
    sol = simulate_smooth(build(base, params), path, T, ts=jnp.asarray(TS),
                          rtol=TRAIN_TOL, atol=TRAIN_TOL, max_steps=20_000)
    return sol.outputs[:, 0]


def forward_batch(params, base, paths):
    """Readouts on the save grid for a stacked batch of inputs, shape `(n, len(TS))`."""
    n = paths.onsets.shape[0]
    return np.stack([np.asarray(_forward(params, base, _index(paths, i))) for i in range(n)])


FINE_TS = np.linspace(0.0, T, 401)


@eqx.filter_jit
def _dense(params, base, path):
    return simulate_smooth(build(base, params), path, T, ts=jnp.asarray(FINE_TS),
                           rtol=TRAIN_TOL, atol=TRAIN_TOL, max_steps=20_000, dense=True)


def dense_run(params, base, path):
    """Readout on a fine grid and spike times (theta = pi crossings) of one trial."""
    sol = _dense(params, base, path)
    return np.asarray(sol.outputs[:, 0]), [s.tolist() for s in spike_times(sol)]


def train(params, base, sample, *, steps, batch_size, lr, seed, log_every=10,
          evaluate=None, eval_every=None, name="", keep_best=False):
    """Adam (global-norm clipping at 1, cosine decay to a tenth) on the mean trial
    loss, the gradient of every trial from `BacksolveAdjoint`. `lr = (readout,
    network)`: the learning rate of `O'` and that of `U`, `W'`, `b` (smaller: Adam moves
    every weight by about the learning rate per step, and large moves of the recurrent
    weights reshuffle the dynamics). `sample(rng, n)` gives a batch `(paths, targets,
    weights)`; `evaluate(params)` (optional) a number measured every `eval_every`
    steps on data not used for training; with `keep_best` the parameters with the
    highest such number are returned (early stopping on a validation set)."""
    lr_out, lr_net = lr
    sched = lambda lr0: optax.cosine_decay_schedule(lr0, steps, alpha=0.1)  # noqa: E731
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

    grad = trial_grad("backsolve")
    rng = np.random.default_rng(seed)
    losses, evals = [], []
    best = (-np.inf, 0, params)
    start = time.perf_counter()
    for step in range(steps):
        paths, target, weight = sample(rng, batch_size)
        total, gsum = 0.0, None
        for i in range(batch_size):
            (loss, _), g = grad(params, base, _index(paths, i), jnp.asarray(target[i]),
                                jnp.asarray(weight[i]), jnp.asarray(TRAIN_TOL))
            total += float(loss)
            gsum = g if gsum is None else jax.tree_util.tree_map(jnp.add, gsum, g)
        gmean = jax.tree_util.tree_map(lambda x: x / batch_size, gsum)
        updates, state = update(gmean, state, params)
        params = eqx.apply_updates(params, updates)
        losses.append(total / batch_size)
        if evaluate is not None and eval_every and (step + 1) % eval_every == 0:
            evals.append((step + 1, evaluate(params)))
            if keep_best and evals[-1][1] > best[0]:
                best = (evals[-1][1], step + 1, params)
        if log_every and (step % log_every == 0 or step == steps - 1):
            print(f"  {name} step {step:4d}  loss {losses[-1]:.4f}  "
                  f"{time.perf_counter() - start:6.1f} s", flush=True)
    seconds = time.perf_counter() - start
    if keep_best and np.isfinite(best[0]):
        return best[2], losses, evals, seconds, best[1], params
    return params, losses, evals, seconds, steps, params


def batch_loss(params, base, batch):
    """Mean trial loss of a batch `(paths, targets, weights)` (forward only)."""
    paths, target, weight = batch
    out = forward_batch(params, base, paths)
    return float(np.mean(np.sum(weight * (out - target) ** 2, 1)))


# ------------------------------------------------------------------------------ XOR
def xor_accuracy(params, base, paths, label, go):
    out = forward_batch(params, base, paths)
    window = (TS[None] >= go[:, None] + 50) & (TS[None] <= go[:, None] + 150)
    score = np.sum(out * window, 1) / window.sum(1)
    return float(np.mean(np.sign(score) == label)), out


def xor_experiment(fast, *, neurons, steps, batch_size, lr, num_test, num_val, seed):
    """Delayed XOR: train (`BacksolveAdjoint`, Adam), keep the parameters with the best
    accuracy on `num_val` validation trials (checked every `steps // 10` steps), and
    report the accuracy on `num_test` other held-out trials."""
    rng = np.random.default_rng(seed)
    tau_s = np.exp(rng.uniform(np.log(20.0), np.log(500.0), neurons))
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
    acc0, _ = xor_accuracy(params, base, test[0], test[3], test[4])
    params, losses, evals, seconds, chosen, last = train(
        params, base, sample, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
        name="xor", log_every=1 if fast else 10,
        evaluate=None if fast else (lambda p: xor_accuracy(p, base, val[0], val[3], val[4])[0]),
        eval_every=None if fast else max(steps // 10, 1), keep_best=not fast,
    )
    acc, out = xor_accuracy(params, base, test[0], test[3], test[4])
    # for comparison: the parameters after the last step (no early stopping)
    acc_last = acc if chosen == steps else xor_accuracy(last, base, test[0], test[3], test[4])[0]
    res = {
        "neurons": neurons, "steps": steps, "batch_size": batch_size,
        "lr_readout_network": list(lr),
        "tau_s_range_ms": [20.0, 500.0], "loss": losses, "train_seconds": seconds,
        "seconds_per_step": seconds / steps, "heldout_trials": num_test,
        "heldout_accuracy_init": acc0, "heldout_accuracy": acc,
        "validation_trials": num_val, "validation_accuracy_during_training": evals,
        "chosen_step": chosen, "heldout_accuracy_last_step": acc_last,
    }
    if fast:  # the loss on the fixed batch after training
        res["final_batch_loss"] = batch_loss(params, base, fixed)
    # one held-out example per condition (for the figure)
    a, b = test[5]
    examples = []
    for ca in (0, 1):
        for cb in (0, 1):
            where = np.flatnonzero((a == ca) & (b == cb))
            if len(where) == 0:
                continue
            i = int(where[0])
            fine_out, _ = dense_run(params, base, _index(test[0], i)) if not fast else (None, None)
            examples.append({"a": ca, "b": cb, "index": i, "go": float(test[4][i]),
                             "onsets": np.asarray(test[0].onsets[i]).tolist(),
                             "readout_fine": None if fine_out is None else fine_out.tolist()})
    res["examples"] = examples
    return res, (params, base)


# ------------------------------------------------------------------ predictive coding
def pc_error(params, base, paths, signal):
    """Held-out reconstruction error: mean squared error over the scored save times
    divided by the mean square of the signal there (1 = readout stuck at 0)."""
    out = forward_batch(params, base, paths)
    scored = TS >= PC_START
    return float(np.mean((out - signal)[:, scored] ** 2) / np.mean(signal[:, scored] ** 2))


def pc_experiment(fast, *, neurons, steps, batch_size, lr, num_test, seed):
    rng = np.random.default_rng(seed + 7)
    base, params = make_network(
        jax.random.PRNGKey(seed + 7), neurons, np.full(neurons, 50.0), w_gain=0.5,
        u_gain=3.0, bias_range=(0.0, 0.2), o_gain=0.1, rng=rng,
    )
    test_paths, test_signal, _ = pc_signals(np.random.default_rng(20_000 + seed), num_test)
    params0 = params
    err0 = pc_error(params, base, test_paths, test_signal)
    if fast:  # a fixed training batch
        fixed = pc_signals(np.random.default_rng(seed + 2), batch_size)
        sample = lambda r, n: fixed  # noqa: E731
    else:
        sample = pc_signals
    params, losses, evals, seconds, _, _ = train(
        params, base, sample, steps=steps, batch_size=batch_size, lr=lr, seed=seed + 1,
        name="predictive coding", log_every=1 if fast else 10,
        evaluate=lambda p: pc_error(p, base, test_paths, test_signal),
        eval_every=max(steps // 10, 1),
    )
    err = pc_error(params, base, test_paths, test_signal)
    res = {
        "neurons": neurons, "steps": steps, "batch_size": batch_size,
        "lr_readout_network": list(lr),
        "tau_s_ms": 50.0, "loss": losses, "train_seconds": seconds,
        "seconds_per_step": seconds / steps, "heldout_signals": num_test,
        "heldout_rel_error_init": err0, "heldout_rel_error": err,
        "heldout_rel_error_during_training": [[0, err0]] + [list(e) for e in evals],
    }
    if fast:
        res["final_batch_loss"] = batch_loss(params, base, fixed)
    if not fast:
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
    trial (float64): max over U, W, O, b of max|g_bs - g_rc| / max|g_rc|; at the tight
    tolerance `tol` and, for information, with the training tolerance."""
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
    out["training_tolerance"] = TRAIN_TOL
    out["seconds"] = time.perf_counter() - start
    return out


# ---------------------------------------------------------------------------- plot
def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, p = results["xor"], results["predictive_coding"]
    fig, ax = plt.subplots(3, 2, figsize=(11, 10))
    a = ax[0, 0]
    a.plot(x["loss"], lw=0.8, label="training loss (batch)")
    a.set(xlabel="Adam step", ylabel="loss", title=f"(a) delayed XOR, {x['neurons']} neurons")
    b = a.twinx()
    ev = np.asarray(x["validation_accuracy_during_training"])
    if len(ev):
        b.plot(ev[:, 0], 100 * ev[:, 1], "o-", color="C3", ms=3)
    b.plot([x["chosen_step"]], [100 * x["heldout_accuracy"]], "*", color="k", ms=12)
    b.axhline(95, color="C3", ls=":", lw=0.8)
    b.set_ylabel(f"validation % correct ({x['validation_trials']} trials)\n"
                 f"star: test, {x['heldout_trials']} trials", color="C3")
    b.set_ylim(40, 101)
    a = ax[0, 1]
    for k, e in enumerate(x["examples"]):
        signs = f"{'+-'[1 - e['a']]}{'+-'[1 - e['b']]}"
        label = f"{signs} -> {'XOR' if e['a'] != e['b'] else 'not XOR'}"
        a.plot(FINE_TS, e["readout_fine"], color=f"C{k}", lw=1, label=label)
        for t0 in e["onsets"][:2]:
            a.axvspan(t0, t0 + PULSE, color=f"C{k}", alpha=0.08)
        a.axvline(e["go"], color=f"C{k}", ls=":", lw=0.8)
    a.axhline(1, color="0.6", lw=0.5), a.axhline(-1, color="0.6", lw=0.5)
    a.set(xlabel="time (ms)", ylabel="readout",
          title="held-out trials: readout (shaded: pulses, dotted: go cue)")
    a.legend(fontsize=7)
    a = ax[1, 0]
    a.plot(p["loss"], lw=0.8, label="training loss (batch)")
    ev = np.asarray(p["heldout_rel_error_during_training"])
    a.plot(ev[:, 0], ev[:, 1], "o-", color="C3", label="held-out relative error")
    a.set(xlabel="Adam step", ylabel="training MSE; held-out MSE / mean square", yscale="log",
          title=f"(b) predictive coding, {p['neurons']} neurons")
    a.legend(fontsize=8)
    a = ax[1, 1]
    e = p["example"]
    a.plot(FINE_TS, e["signal_fine"], "k", lw=1.5, label="input i(t)")
    a.plot(FINE_TS, e["readout_before"], color="C0", lw=1, label="readout before training")
    a.plot(FINE_TS, e["readout_after"], color="C3", lw=1, label="readout after training")
    a.axvline(PC_START, color="0.6", ls=":", lw=0.8)
    a.set(xlabel="time (ms)", ylabel="signal", title="held-out signal and readout")
    a.legend(fontsize=7)
    for k, tag in enumerate(("before", "after")):
        a = ax[2, k]
        for i, s in enumerate(e[f"spikes_{tag}"]):
            a.plot(s, np.full(len(s), i), "|", color="k", ms=3)
        a.set(xlabel="time (ms)", ylabel="neuron", xlim=(0, T),
              title=f"spike raster {tag} training ({e[f'num_spikes_{tag}']} spikes)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ----------------------------------------------------------------------------- run
def run(fast=False, xor_steps=200, pc_steps=60, seed=0):
    """Both tasks and the gradient check; returns a JSON-able dict."""
    start = time.perf_counter()
    if fast:
        xor_kw = dict(neurons=12, steps=6, batch_size=4, lr=(2e-2, 1e-3), num_test=8,
                      num_val=0)
        pc_kw = dict(neurons=12, steps=6, batch_size=2, lr=(2e-2, 1e-2), num_test=4)
    else:
        xor_kw = dict(neurons=40, steps=xor_steps, batch_size=8, lr=(1e-2, 3e-4),
                      num_test=256, num_val=128)
        pc_kw = dict(neurons=30, steps=pc_steps, batch_size=8, lr=(2e-2, 1e-2), num_test=16)
    results = {"fast": fast, "dtype": "float64", "T_ms": T, "tau_v_ms": TAU_V,
               "delta_rad": DELTA, "save_grid_ms": DT_SAVE, "train_tol": TRAIN_TOL,
               "adjoint": "diffrax.BacksolveAdjoint (backward error control on the state)"}
    results["xor"], (xp, xb) = xor_experiment(fast, seed=seed, **xor_kw)
    results["predictive_coding"], _ = pc_experiment(fast, seed=seed, **pc_kw)
    results["gradient_check"] = gradient_check(xp, xb)
    results["total_time_s"] = time.perf_counter() - start
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fast", action="store_true", help="tiny versions (seconds)")
    p.add_argument("--xor-steps", type=int, default=200)
    p.add_argument("--pc-steps", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figure", default=None,
                   help="default docs/figures/huh_sejnowski.png (not with --fast)")
    p.add_argument("--json", default=None,
                   help="default docs/figures/huh_sejnowski.json (not with --fast)")
    args = p.parse_args(argv)
    results = run(args.fast, args.xor_steps, args.pc_steps, args.seed)
    figure = args.figure or (None if args.fast else str(ROOT / "docs/figures/huh_sejnowski.png"))
    out_json = args.json or (None if args.fast else str(ROOT / "docs/figures/huh_sejnowski.json"))
    if figure and not args.fast:
        plot(results, figure)
        print(f"wrote {figure}")
    if out_json:
        pathlib.Path(out_json).write_text(json.dumps(results) + "\n")
        print(f"wrote {out_json}")
    x, pc, g = results["xor"], results["predictive_coding"], results["gradient_check"]
    print(f"XOR: held-out accuracy {x['heldout_accuracy']:.1%} on {x['heldout_trials']} trials "
          f"(step {x['chosen_step']}; after the last step "
          f"{x['heldout_accuracy_last_step']:.1%}; at init {x['heldout_accuracy_init']:.1%}); "
          f"loss {x['loss'][0]:.3f} -> "
          f"{x['loss'][-1]:.3f} in {x['steps']} steps, {x['train_seconds']:.0f} s")
    print(f"predictive coding: held-out relative error {pc['heldout_rel_error_init']:.3f} -> "
          f"{pc['heldout_rel_error']:.3f} in {pc['steps']} steps, {pc['train_seconds']:.0f} s")
    print(f"gradient, BacksolveAdjoint vs RecursiveCheckpointAdjoint (tol {g['tol']:g}): "
          f"{g['rel_diff']:.1e}; at the training tolerance {g['rel_diff_training_tolerance']:.1e}")
    print(f"total {results['total_time_s']:.0f} s")


if __name__ == "__main__":
    main()

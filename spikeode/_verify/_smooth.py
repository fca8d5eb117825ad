"""The `spikeode check` row of the smooth gated network (`spikeode.smooth`, Huh &
Sejnowski): spike times against SciPy's DOP853 on an independent NumPy
re-implementation of the ODE, `BacksolveAdjoint`'s gradient against finite
differences, and the amount released per full zone crossing."""

from __future__ import annotations

import math
import time

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from .._gradcheck import check_grads
from ..smooth import simulate_smooth, SmoothGatedNetwork, spike_times
from ._result import CheckResult


def _reference_spike_times(model, amp, freq, phase, t1, y0, max_step, rtol=1e-12):
    """Spike times of the network for the input `amp * sin(freq t + phase)`, computed
    with SciPy's DOP853 and its event location, independently of Diffrax and of the
    model's JAX code (the right-hand side is re-written here in NumPy)."""
    from scipy.integrate import solve_ivp

    n = model.num_neurons
    U, W = np.asarray(model.U), np.asarray(model.W)
    b = np.broadcast_to(np.asarray(model.bias), (n,))
    tau_v = np.broadcast_to(np.asarray(model.tau_v), (n,))
    tau_s = np.broadcast_to(np.asarray(model.tau_s), (n,))
    delta = float(model.delta)

    def g(theta):
        x = np.remainder(theta, 2 * np.pi) - np.pi
        inside = np.abs(x) < delta / 2
        return np.where(inside, (1 + np.cos(2 * np.pi * x / delta)) ** 4 / (35 / 8 * delta), 0.0)

    def rhs(t, z):
        theta, s = z[:n], z[n:]
        current = U @ (amp * np.sin(freq * t + phase)) + W @ s + b
        c = np.cos(theta)
        dtheta = ((1 - c) + (1 + c) * current) / tau_v
        return np.concatenate([dtheta, (g(theta) * dtheta - s) / tau_s])

    events = []
    for i in range(n):
        ev = lambda t, z, i=i: np.sin((z[i] - np.pi) / 2)  # zero at theta = pi + 2 pi k
        ev.terminal, ev.direction = False, 0
        events.append(ev)
    z0 = np.concatenate([np.asarray(y0)[:, 0], np.asarray(y0)[:, 1]])
    sol = solve_ivp(
        rhs, (0.0, t1), z0, method="DOP853", rtol=rtol, atol=rtol, max_step=max_step,
        events=events,
    )
    out = []
    for i in range(n):
        te, ye = sol.t_events[i], sol.y_events[i]
        up = [t for t, z in zip(te, ye) if rhs(t, z)[i] > 0]
        out.append(np.sort(np.asarray(up)))
    return out


def check_smooth_gated(seed: int = 0) -> CheckResult:
    """Built-in verification of the smooth gated network (float64).

    A recurrent network of 2 inputs, 8 neurons and 2 outputs (`tau_v = 0.5`,
    `tau_s = 0.4`, `delta = 1`), driven by sinusoidal inputs for `t1 = 10` (4-8 spikes
    per neuron for the default seed), is simulated with Diffrax
    (`Dopri8`, rtol = atol = 1e-12, dense output); its spike times (`theta = pi`
    crossings, bisected on the dense output) are compared with SciPy's DOP853 (rtol =
    atol = 1e-12, event location) on an independent NumPy re-implementation of the
    ODE. The gradient of a loss of the outputs and phases at 25 save times with
    respect to `U`, `W`, `O`, `bias`, `tau_v`, `tau_s` and `delta`, computed with
    `diffrax.BacksolveAdjoint` (Dopri8, rtol = atol = 1e-12), is compared with central
    finite differences by [`spikeode.check_grads`][] (relative steps 1e-3 ... 1e-7);
    the details also give the error of the amount released by one full zone crossing
    of a single neuron (measured from `s` as `tau_s (s(T) - s(0)) + integral s dt`).
    `tests/test_smooth.py` also compares `BacksolveAdjoint` with
    `RecursiveCheckpointAdjoint`.

    **Returns:** a [`spikeode.CheckResult`][] (`seconds` is the wall time).
    """
    if not jax.config.jax_enable_x64:
        raise RuntimeError("check_smooth_gated needs float64: enable jax_enable_x64 first.")
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_in, n, n_out, t1 = 2, 8, 2, 10.0
    model = SmoothGatedNetwork(
        n_in, n, n_out,
        tau_v=0.5, tau_s=0.4, delta=1.0,
        bias=rng.uniform(0.5, 1.0, n),
        U=rng.normal(0.0, 0.3, (n, n_in)),
        W=rng.normal(0.0, 0.25, (n, n)),
        O=rng.normal(0.0, 1.0, (n_out, n)),
    )
    amp, freq, phase = np.array([0.6, 0.4]), np.array([0.9, 1.7]), np.array([0.0, 1.0])
    amp_j, freq_j, phase_j = (jnp.asarray(a) for a in (amp, freq, phase))

    def drive(t):
        return amp_j * jnp.sin(freq_j * t + phase_j)

    y0 = jnp.stack([jnp.asarray(rng.uniform(-np.pi, np.pi, n)), jnp.zeros(n)], axis=1)
    max_step = float(model.max_step())

    # spike times: Diffrax Dopri8 vs SciPy DOP853
    tight = diffrax.PIDController(rtol=1e-12, atol=1e-12, dtmax=max_step)
    fwd = simulate_smooth(
        model, drive, t1, y0=y0, solver=diffrax.Dopri8(), stepsize_controller=tight,
        dense=True, max_steps=100_000,
    )
    ours = spike_times(fwd)
    ref = _reference_spike_times(model, amp, freq, phase, t1, y0, max_step)
    counts = [len(a) for a in ours]
    if counts != [len(a) for a in ref]:
        err = np.inf
    else:
        err = max((float(np.max(np.abs(a - r))) for a, r in zip(ours, ref) if len(a)), default=0.0)

    # gradients: BacksolveAdjoint vs finite differences (and vs RecursiveCheckpoint)
    ts = jnp.linspace(t1 / 25, t1, 25)
    w_out = jnp.asarray(rng.normal(size=(25, n_out)))
    w_theta = jnp.asarray(rng.normal(size=(25, n)))
    def loss(m, adjoint):
        sol = simulate_smooth(
            m, drive, t1, y0=y0, ts=ts, solver=diffrax.Dopri8(), rtol=1e-12, atol=1e-12,
            adjoint=adjoint, max_steps=100_000,
        )
        return jnp.mean(w_out * sol.outputs) + 0.1 * jnp.mean(w_theta * jnp.cos(sol.theta))

    backsolve = diffrax.BacksolveAdjoint()
    rep = check_grads(
        lambda m: (loss(m, backsolve), None), model, steps=np.logspace(-3, -7, 9)
    )

    # released amount per full zone crossing: one neuron with constant current 0.5
    one = SmoothGatedNetwork(0, 1, 1, tau_v=1.0, tau_s=1.0, delta=1.0, bias=0.5, key=None,
                             U=jnp.zeros((1, 0)), W=jnp.zeros((1, 1)), O=jnp.ones((1, 1)))
    release_err = _release_error_one_cycle(one)

    return CheckResult(
        model="SmoothGated",
        network=f"{n_in} -> {n} recurrent -> {n_out}",
        spikes=int(sum(counts)),
        min_spikes_per_neuron=int(min(counts)),
        spike_time_error=float(err),
        spike_time_reference="SciPy DOP853 rtol 1e-12",
        spike_time_tol=1e-9,
        grad_error=float(rep.max_rel_error) if rep.leaves else np.inf,
        grad_tol=rep.rtol,
        seconds=time.perf_counter() - start,
        details=(
            "spikes = theta = pi crossings; grad: BacksolveAdjoint vs FD for U, W, O, bias, "
            f"tau_v, tau_s, delta; release per full zone crossing |R - 1| = {release_err:.1e}"
        ),
    )


def _release_error_one_cycle(model: SmoothGatedNetwork) -> float:
    """`|R - 1|` for the amount `R` released by neuron 0 of `model` (no input, no
    recurrence, constant current `b = bias > 0`) over one period `pi tau_v / sqrt(b)`
    from `theta = 0`, measured from the simulated synaptic state as
    `R = tau_s (s(T) - s(0)) + integral_0^T s dt` (the integral by an extra state)."""
    b = float(np.asarray(model.bias).reshape(-1)[0])
    tau_v = float(np.asarray(model.tau_v).reshape(-1)[0])
    tau_s = float(np.asarray(model.tau_s).reshape(-1)[0])
    period = math.pi * tau_v / math.sqrt(b)

    def f(t, z, args):
        y, _ = z
        return model.vector_field(t, y, None), y[:, 1]

    z0 = (model.init_state(), jnp.zeros(model.num_neurons, model.dtype))
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(f), diffrax.Dopri8(), 0.0, period, None, z0,
        stepsize_controller=diffrax.PIDController(
            rtol=1e-13, atol=1e-13, dtmax=float(model.max_step())
        ),
        max_steps=100_000,
    )
    y, q = sol.ys
    released = tau_s * float(y[-1, 0, 1]) + float(q[-1, 0])
    return abs(released - 1.0)

"""Writing a new neuron model, worked example: Izhikevich neurons with current synapses.

The recipe (docs/models.md, "Writing a new model"):

1. Subclass `spikeode.AbstractNeuron` and implement the contract: `state_size`,
   `init_state`, a jump-free `vector_field`, a real-valued `condition` that crosses
   zero upwards at a spike, `reset`, `receive`, `refractory_period` (and `check` for
   run-time parameter checks). Parameters are array leaves, so they are
   differentiable; the fields are named as the constructor's arguments.
2. Without a closed-form `flow` the model is integrated by a Diffrax solver; make sure
   no threshold crossing can hide inside a solver step (bound the step, or override
   `safe_step_end`).
3. Verify spike times against an independent integrator (here SciPy's DOP853 with
   event location) and gradients against finite differences with
   `spikeode.check_grads`, in float64.

    python examples/new_neuron.py
"""

from __future__ import annotations

from typing import ClassVar

import diffrax
import equinox as eqx
import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import spikeode as so  # noqa: E402


# ---- 1. the model ----------------------------------------------------------------
class Izhikevich(so.AbstractNeuron):
    """Izhikevich (2003) neurons, time in ms, with an exponential current synapse:

        v' = 0.04 v^2 + 5 v + 140 - u + I + bias,   u' = a (b v - u),   tau_syn I' = -I;

    spike when `v` reaches `v_peak`, then `v = c`, `u += d`. State `(v, u, I)`.
    """

    num_neurons: int = eqx.field(static=True)
    a: jax.Array
    b: jax.Array
    c: jax.Array
    d: jax.Array
    bias: jax.Array
    tau_syn: jax.Array
    v_peak: float = eqx.field(static=True)
    refractory_period: ClassVar[float] = 0.0  # none

    def __init__(
        self, num_neurons, a=0.02, b=0.2, c=-65.0, d=8.0, bias=0.0, tau_syn=5.0, v_peak=30.0
    ):
        self.num_neurons = num_neurons
        self.v_peak = v_peak
        # float arrays of shape () or (num_neurons,): differentiable leaves
        self.a, self.b, self.c, self.d, self.bias, self.tau_syn = (
            jnp.asarray(x, float) for x in (a, b, c, d, bias, tau_syn)
        )
        if np.any(np.asarray(self.tau_syn) <= 0):
            raise ValueError(f"Izhikevich: tau_syn must be positive, got {self.tau_syn}.")

    def check(self):
        # Parameters reached by training are checked inside jit, too.
        tau = eqx.error_if(self.tau_syn, jnp.any(self.tau_syn <= 0), "tau_syn must be positive")
        return eqx.tree_at(lambda m: m.tau_syn, self, tau)

    @property
    def state_size(self):
        return 3

    def init_state(self):
        v = jnp.full((self.num_neurons,), -65.0)
        return jnp.stack([v, self.b * v + 0 * v, jnp.zeros_like(v)], axis=1)

    def vector_field(self, t, y, refractory):
        v, u, i = y[:, 0], y[:, 1], y[:, 2]
        dv = 0.04 * v**2 + 5 * v + 140 - u + i + self.bias
        du = self.a * (self.b * v - u)
        return jnp.stack([dv, du, -i / self.tau_syn], axis=1)

    def condition(self, t, y):
        return y[:, 0] - self.v_peak

    def reset(self, y, fired):
        v = jnp.where(fired, self.c, y[:, 0])
        u = jnp.where(fired, y[:, 1] + self.d, y[:, 1])
        return y.at[:, 0].set(v).at[:, 1].set(u)

    def receive(self, y, weights):
        return y.at[:, 2].add(weights)


# ---- 2. simulating it ------------------------------------------------------------
# No `flow`, so `simulate` integrates with Tsit5. Near threshold v explodes within a
# fraction of a ms; a bounded step (dtmax) keeps a crossing from hiding in one step.
CONTROLLER = diffrax.PIDController(rtol=1e-11, atol=1e-11, dtmax=0.05)
T1 = 100.0
INPUT_TIMES = jnp.array([5.0, 12.0, 20.0, 31.0, 45.0, 60.0, 62.0, 80.0])
INPUT_IDS = jnp.array([0, 1, 0, 1, 0, 1, 0, 1], jnp.int32)
W_IN = jnp.array([[12.0, 8.0, 15.0], [9.0, 14.0, -6.0]])
W_REC = jnp.array([[0.0, 4.0, 3.0], [2.0, 0.0, 5.0], [-3.0, 3.0, 0.0]])
NEURON = Izhikevich(3, a=jnp.array([0.02, 0.02, 0.1]), d=jnp.array([8.0, 2.0, 2.0]), bias=0.0)


def run(neuron=NEURON, w_in=W_IN, w_rec=W_REC, input_times=INPUT_TIMES):
    inputs = so.SpikeTrain(input_times, INPUT_IDS, 2)
    return so.simulate(
        neuron, T1, inputs, w_in, w_rec=w_rec, max_spikes=64,
        stepsize_controller=CONTROLLER, max_steps=100_000,
    )  # fmt: skip


# ---- 3a. spike times against an independent integrator ---------------------------
def scipy_reference(neuron=NEURON):
    """The same network with SciPy's DOP853 (rtol 1e-12) and event location."""
    n = neuron.num_neurons
    par = {k: np.broadcast_to(np.asarray(getattr(neuron, k)), (n,)) for k in "abcd"}
    bias, tau = float(neuron.bias), float(neuron.tau_syn)
    y = np.asarray(neuron.init_state()).T.reshape(-1).copy()  # v..., u..., I...
    kicks = list(zip(np.asarray(INPUT_TIMES), np.asarray(INPUT_IDS)))
    t, out = 0.0, []

    def rhs(_, z):
        v, u, i = z[:n], z[n : 2 * n], z[2 * n :]
        return np.concatenate(
            [0.04 * v**2 + 5 * v + 140 - u + i + bias, par["a"] * (par["b"] * v - u), -i / tau]
        )

    events = []
    for j in range(n):
        ev = lambda _, z, j=j: z[j] - neuron.v_peak
        ev.terminal, ev.direction = True, 1
        events.append(ev)
    while t < T1:
        t_next = kicks[0][0] if kicks else T1
        sol = solve_ivp(rhs, (t, t_next), y, "DOP853", rtol=1e-12, atol=1e-12,
                        max_step=0.05, events=events)  # fmt: skip
        if sol.status == 1:
            t, j = min((te[0], j) for j, te in enumerate(sol.t_events) if len(te))
            y = sol.y_events[j][0].copy()
            y[j], y[n + j] = par["c"][j], y[n + j] + par["d"][j]
            y[2 * n :] += np.asarray(W_REC)[j]
            out.append((t, j))
            continue
        t, y = t_next, sol.y[:, -1].copy()
        if kicks and kicks[0][0] <= t:
            y[2 * n :] += np.asarray(W_IN)[kicks.pop(0)[1]]
    return out


def spike_time_error():
    sim = run()
    valid = np.asarray(sim.spikes.valid)
    ours = list(zip(np.asarray(sim.spikes.times)[valid], np.asarray(sim.spikes.neurons)[valid]))
    ref = scipy_reference()
    if [j for _, j in ours] != [j for _, j in ref]:
        return np.inf, len(ours)
    return max(abs(a - b) for (a, _), (b, _) in zip(ours, ref)), len(ours)


# ---- 3b. gradients against finite differences ------------------------------------
def gradient_report():
    def fn(p):
        neuron = eqx.tree_at(lambda m: (m.a, m.bias), NEURON, (p["a"], p["bias"]))
        sim = run(neuron, p["w_in"], p["w_rec"], p["input_times"])
        # a smooth function of every spike time
        k = jnp.arange(sim.spikes.capacity, dtype=sim.spikes.times.dtype)
        loss = jnp.sum(jnp.where(sim.spikes.valid, jnp.cos(0.3 * k) * sim.spikes.times, 0.0))
        return loss / T1, sim

    params = dict(w_in=W_IN, w_rec=W_REC, a=NEURON.a, bias=NEURON.bias, input_times=INPUT_TIMES)
    return so.check_grads(fn, params)


if __name__ == "__main__":
    err, count = spike_time_error()
    print(f"{count} spikes; max spike-time difference to SciPy DOP853: {err:.2e} ms")
    print(gradient_report())

"""Huh & Sejnowski's smooth gated network: phases, gates, synaptic outputs, readout.

A recurrent network of 8 theta neurons driven by 2 sinusoidal inputs, read out by 2
linear outputs, simulated as one smooth ODE (no events). Writes
`docs/figures/smooth_gated.png`:

    python examples/smooth_gated.py [OUTPUT.png]
"""

import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from spikeode.smooth import gate, simulate_smooth, SmoothGatedNetwork, spike_times  # noqa: E402

start = time.perf_counter()
rng = np.random.default_rng(0)
n_in, n, n_out, t1 = 2, 8, 2, 10.0
net = SmoothGatedNetwork(
    n_in, n, n_out, tau_v=0.5, tau_s=0.4, delta=1.0,
    bias=rng.uniform(0.5, 1.0, n),
    U=rng.normal(0.0, 0.3, (n, n_in)),
    W=rng.normal(0.0, 0.25, (n, n)),
    O=rng.normal(0.0, 1.0, (n_out, n)),
)
freq, phase = jnp.array([0.9, 1.7]), jnp.array([0.0, 1.0])


def drive(t):
    return 0.6 * jnp.sin(freq * t + phase)


ts = jnp.linspace(0.0, t1, 2001)
y0 = jnp.stack([jnp.asarray(rng.uniform(-np.pi, np.pi, n)), jnp.zeros(n)], axis=1)
sol = simulate_smooth(
    net, drive, t1, y0=y0, ts=ts, solver=diffrax.Dopri8(), rtol=1e-10, atol=1e-10, dense=True
)
spikes = spike_times(sol)
t = np.asarray(ts)
wrapped = np.remainder(np.asarray(sol.theta), 2 * np.pi) - np.pi  # spike at 0
g = np.asarray(gate(sol.theta, net.delta))
shown = [0, 1, 2]
colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

fig, axes = plt.subplots(5, 1, figsize=(7.5, 9), sharex=True)
axes[0].plot(t, np.asarray(jax.vmap(drive)(ts)), lw=1)
axes[0].set_ylabel("input i(t)")
for k, i in enumerate(shown):
    c = colors[k]
    jumps = np.flatnonzero(np.abs(np.diff(wrapped[:, i])) > np.pi)  # no line across wraps
    axes[1].plot(np.insert(t, jumps + 1, np.nan), np.insert(wrapped[:, i], jumps + 1, np.nan),
                 color=c, lw=1, label=f"neuron {i}")
    axes[1].plot(spikes[i], np.zeros_like(spikes[i]), "v", color=c, ms=5)
    axes[2].plot(t, g[:, i], color=c, lw=1)
    axes[3].plot(t, np.asarray(sol.s[:, i]), color=c, lw=1)
half = float(net.delta) / 2
axes[1].axhspan(-half, half, color="0.85", zorder=0, label="active zone")
axes[1].set_ylabel("theta - pi (wrapped)")
axes[1].legend(fontsize=7, loc="upper right", ncol=4)
axes[2].set_ylabel("gate g(theta)")
axes[3].set_ylabel("synaptic s")
axes[4].plot(t, np.asarray(sol.outputs), lw=1.2)
axes[4].set_ylabel("output O s")
axes[4].set_xlabel("time")
total = sum(len(s) for s in spikes)
axes[0].set_title(
    f"smooth gated network: {n} theta neurons, {total} spikes (theta = pi crossings: triangles)",
    fontsize=9,
)
fig.tight_layout()
out = sys.argv[1] if len(sys.argv) > 1 else "docs/figures/smooth_gated.png"
fig.savefig(out, dpi=110)
print(f"wrote {out}: {total} spikes, per neuron {[len(s) for s in spikes]}, "
      f"{int(sol.num_steps)} steps, {time.perf_counter() - start:.1f} s")

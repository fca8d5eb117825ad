"""Voltage traces and spikes of spikeode's neuron models under the same input spikes.

Writes `docs/figures/models.png` (the figure of `docs/models.md`):

    python examples/model_traces.py [OUTPUT.png]
"""

import sys

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import spikeode as so  # noqa: E402

# Times in units of the synaptic time constant (1.0); five excitatory inputs.
inputs = so.SpikeTrain.from_lists([[0.5, 4.0], [1.0], [1.5, 6.0], [2.0], [7.0]])
w = jnp.array([[0.9], [0.7], [0.8], [0.5], [1.0]])
t1 = 10.0
ts = jnp.linspace(0.0, t1, 1001)
models = {
    "LIF (tau_mem = 2, tau_syn = 1)": (so.LIF(1, tau_mem=2.0, tau_syn=1.0), 1.5),
    "non-leaky IF (tau_syn = 1; Mostafa)": (so.NonLeakyIF(1, tau_syn=1.0), 1.0),
    "alpha IF (tau = 1; Comsa et al.)": (so.AlphaIF(1, tau=1.0), 1.5),
}

fig, axes = plt.subplots(len(models), 1, figsize=(7, 6), sharex=True)
for ax, (name, (neuron, scale)) in zip(axes, models.items()):
    sim = so.simulate(neuron, t1, inputs, scale * w, max_spikes=16, save_ts=ts)
    ax.plot(np.asarray(ts), np.asarray(sim.ys[:, 0, 0]), lw=1.2, label="v")
    ax.axhline(float(neuron.threshold), color="k", ls=":", lw=0.8, label="threshold")
    spikes = np.asarray(sim.spikes.times)[np.asarray(sim.spikes.valid)]
    ax.plot(spikes, np.full_like(spikes, float(neuron.threshold)), "rv", label="output spike")
    valid = np.asarray(inputs.valid)
    ax.plot(np.asarray(inputs.times)[valid], np.zeros(valid.sum()), "k|", ms=10, label="input")
    ax.set_title(name, fontsize=9)
    ax.set_ylabel("v")
axes[0].legend(fontsize=7, loc="upper right")
axes[-1].set_xlabel("time (units of tau_syn)")
fig.tight_layout()
out = sys.argv[1] if len(sys.argv) > 1 else "docs/figures/models.png"
fig.savefig(out, dpi=110)
print("wrote", out)

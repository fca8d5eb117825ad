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
from spikeode.neurons import phase_to_voltage  # noqa: E402

# Times in units of the synaptic time constant (1.0); five excitatory inputs.
inputs = so.SpikeTrain.from_lists([[0.5, 4.0], [1.0], [1.5, 6.0], [2.0], [7.0]])
w = jnp.array([[0.9], [0.7], [0.8], [0.5], [1.0]])
t1 = 10.0
ts = jnp.linspace(0.0, t1, 1001)


def voltage(ys):
    return ys[:, 0, 0]


def qif_voltage(ys):
    # V = 1/2 + tan(theta/2) is infinite at the spike; clip for the plot
    return jnp.clip(phase_to_voltage(ys[:, 0, 0]), -2.0, 3.0)


# name: (model, weight scale, how to read the voltage, threshold line, extra options)
models = {
    "LIF (tau_mem = 2, tau_syn = 1)": (so.LIF(1, tau_mem=2.0, tau_syn=1.0), 1.5, voltage, 1.0, {}),
    "non-leaky IF (tau_syn = 1; Mostafa)": (so.NonLeakyIF(1, tau_syn=1.0), 1.0, voltage, 1.0, {}),
    "alpha IF (tau = 1; Comsa et al.)": (so.AlphaIF(1, tau=1.0), 1.5, voltage, 1.0, {}),
    "adaptive LIF (tau_mem = 2, tau_adapt = 5, adapt_jump 0.3; Tsit5)": (
        so.AdaptiveLIF(1, tau_mem=2.0, tau_syn=1.0, tau_adapt=5.0, adapt_jump=0.3),
        1.8, voltage, 1.0, {},
    ),
    "exponential IF (tau_mem = 2, v_T = 1, delta_T = 0.2, v_peak = 2; Tsit5)": (
        so.ExpIF(1, tau_mem=2.0, tau_syn=1.0), 2.0, voltage, 2.0, {},
    ),
    "theta neuron (tau = 2, bias 0.1; V jumps by w)": (
        so.ThetaNeuron(1, tau=2.0, bias=0.1), 0.6, qif_voltage, 3.0, {},
    ),
    "QIF (tau_mem = 2, tau_syn = 1; Klos & Memmesheimer)": (
        so.QIF(1, tau_mem=2.0), 1.5, qif_voltage, 3.0, {},
    ),
    "QIF with pseudodynamics after the trial end T = 6 (drive 1)": (
        so.QIF(1, tau_mem=2.0), 0.6, qif_voltage, 3.0,
        {"pseudodynamics": so.Pseudodynamics(6.0, drive=1.0)},
    ),
}  # fmt: skip

fig, axes = plt.subplots(len(models), 1, figsize=(7, 1.8 * len(models)), sharex=True)
for ax, (name, (neuron, scale, read_v, top, options)) in zip(axes, models.items()):
    sim = so.simulate(neuron, t1, inputs, scale * w, max_spikes=16, save_ts=ts, **options)
    ax.plot(np.asarray(ts), np.asarray(read_v(sim.ys)), lw=1.2, label="v")
    label = "V = +inf (clipped)" if read_v is qif_voltage else "threshold"
    ax.axhline(top, color="k", ls=":", lw=0.8, label=label)
    spikes = np.asarray(sim.spikes.times)[np.asarray(sim.spikes.valid)]
    ax.plot(spikes, np.full_like(spikes, top), "rv", label="output spike")
    if "pseudodynamics" in options:
        t_end = float(options["pseudodynamics"].trial_end)
        ax.axvspan(t_end, t1, color="0.9", label="after the trial: pseudospikes")
    valid = np.asarray(inputs.valid)
    ax.plot(np.asarray(inputs.times)[valid], np.zeros(valid.sum()), "k|", ms=10, label="input")
    ax.set_title(name, fontsize=9)
    ax.set_ylabel("v")
    ax.legend(fontsize=6, loc="upper left")
axes[-1].set_xlabel("time (units of tau_syn)")
fig.tight_layout()
out = sys.argv[1] if len(sys.argv) > 1 else "docs/figures/models.png"
fig.savefig(out, dpi=100)
print("wrote", out)

"""The Vogels-Abbott CUBA network: a raster plot and the population rate.

N current-based LIF neurons (`spikeode.ExcInhLIF`: tau_mem = 20 ms, excitatory
current tau = 5 ms, inhibitory 10 ms, threshold 1, reset 0, bias 1.1, refractory
5 ms; voltages in units of the threshold distance, 10 mV). The first 80 % are
excitatory (weight 0.162), the rest inhibitory (-0.9); every neuron receives 64
excitatory and 16 inhibitory synapses with a 1 ms delay
(`spikeode.Synapses.excitatory_inhibitory`). No external input: the bias keeps the
network active. The windowed loop advances all neurons in parallel, one 1 ms window
(the delay) at a time, with exact spike times. float32. Writes
`docs/figures/cuba.png`:

    python examples/cuba.py [--n 1000] [--t1 0.3] [--figure OUTPUT.png]

`benchmarks/cuba.py` runs the same network against Brian2 (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import pathlib
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import spikeode as so  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1000, help="neurons")
    p.add_argument("--t1", type=float, default=0.3, help="simulated time (s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shown", type=int, default=200, help="neurons in the raster plot")
    p.add_argument("--figure", default=str(ROOT / "docs/figures/cuba.png"))
    args = p.parse_args(argv)
    n, t1, f32 = args.n, args.t1, np.float32

    # the network: 80 % excitatory, fixed in-degree 64 + 16, 1 ms delay
    synapses = so.Synapses.excitatory_inhibitory(
        args.seed, n, k_exc=64, k_inh=16, w_exc=f32(0.162), w_inh=f32(-0.9), delay=f32(1e-3)
    )
    neuron = so.ExcInhLIF(
        n, tau_mem=f32(20e-3), tau_exc=f32(5e-3), tau_inh=f32(10e-3), threshold=f32(1.0),
        v_reset=f32(0.0), bias=f32(1.1), refractory_period=f32(5e-3),
    )  # fmt: skip
    # state (v, I_exc, I_inh): v uniform in [0, 1), no synaptic current
    y0 = np.zeros((n, 3), f32)
    y0[:, 0] = np.random.default_rng(args.seed).uniform(0.0, 1.0, n)

    start = time.perf_counter()
    sim = so.simulate(
        neuron, t1, w_rec=synapses, y0=jnp.asarray(y0), loop=so.WindowedLoop(window=1e-3),
        max_spikes=int(60 * n * t1) + 64,  # room for a mean rate up to 60 Hz
    )  # fmt: skip
    times, ids = jax.device_get((sim.spikes.times, sim.spikes.neurons))
    wall = time.perf_counter() - start  # including compilation
    valid = ids < n
    times, ids = times[valid], ids[valid]
    rate = times.size / n / t1
    print(f"CUBA, N = {n}, {t1:g} s: {times.size} spikes, mean rate {rate:.2f} Hz, "
          f"wall time {wall:.1f} s (including compilation)")

    # figure: raster of the first `shown` neurons (excitatory and inhibitory), and the
    # population rate in 1 ms bins
    shown = min(args.shown, n)
    n_exc = int(round(0.8 * n))
    pick = np.unique(np.r_[np.arange(shown * 4 // 5), n_exc + np.arange(shown - shown * 4 // 5)])
    pick = pick[pick < n]
    row = np.full(n, -1)
    row[pick] = np.arange(pick.size)
    in_raster = row[ids] >= 0
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7.5, 5.5), sharex=True,
                                   gridspec_kw={"height_ratios": [2.2, 1]})
    exc = ids < n_exc
    for mask, colour, label in ((exc, "C0", "excitatory"), (~exc, "C3", "inhibitory")):
        m = mask & in_raster
        ax1.plot(times[m] * 1e3, row[ids[m]], "|", ms=2.5, color=colour, label=label)
    ax1.set_ylabel(f"neuron ({pick.size} of {n})")
    ax1.set_ylim(-1, pick.size)
    ax1.legend(loc="upper right", fontsize=8, markerscale=3)
    bins = np.arange(0.0, t1 + 1e-9, 1e-3)
    counts, _ = np.histogram(times, bins)
    ax2.plot(bins[:-1] * 1e3, counts / n / 1e-3, lw=0.8, color="k")
    ax2.set_ylabel("population rate (Hz)")
    ax2.set_xlabel("time (ms)")
    ax1.set_title(f"CUBA network, N = {n}: {times.size} spikes in {t1:g} s, "
                  f"mean rate {rate:.1f} Hz (spikeode, windowed loop, float32)", fontsize=9)
    fig.tight_layout()
    pathlib.Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=110)
    print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()

"""Verify the gradients of your own spiking network with `spikeode.check_grads`.

`check_grads` compares the gradient that JAX computes through the event loop (spike
times through the implicit function theorem, states through the closed-form flow and
the jumps) with central finite differences of the loss, in float64. Finite
differences of a spiking network are only meaningful while the spike sequence (which
neuron fires, in which order) stays the same, so `check_grads` needs the simulations
themselves as well as the loss: it discards every step size at which the sequence
changes, and flags grazing threshold crossings, spikes near the end of the window and
full spike buffers.

Here: a 2-layer feed-forward LIF network (5 inputs -> 8 hidden -> 3 outputs), a batch
of 3 random input spike trains, and a loss of the first two spike times of each output
neuron. Every floating-point leaf of the network is checked: the weights and every LIF
parameter (time constants, threshold, reset, bias, refractory period) of both layers.

Run with:

    python examples/gradient_check.py

It prints the report and exits with status 1 if the check fails.
"""

from __future__ import annotations

import sys
import time

import jax

# Finite differences need float64; enable it before any array is created.
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import spikeode as so  # noqa: E402

NUM_INPUTS, NUM_HIDDEN, NUM_OUTPUTS = 5, 8, 3
BATCH = 3  # input spike trains
SPIKES_PER_INPUT = 3
T1 = 0.05  # end of the simulated window (seconds)


def make_network(key):
    """Two feed-forward LIF layers. A positive refractory period keeps that parameter
    inside its domain (>= 0) on both sides of a finite-difference step: a leaf at the
    edge of its domain (e.g. `refractory_period=0`) cannot be checked by central
    differences, so leave such leaves out of `params` (see `docs/api.md`)."""
    k1, k2 = jax.random.split(key)
    hidden = so.nn.SpikingLayer(
        NUM_INPUTS,
        NUM_HIDDEN,
        max_spikes=32,  # capacity of the hidden layer's output buffer (per train)
        neuron=so.LIF(NUM_HIDDEN, tau_mem=10e-3, tau_syn=5e-3, refractory_period=1e-3),
        w_mean=0.6,
        w_std=0.8,
        key=k1,
    )
    output = so.nn.SpikingLayer(
        NUM_HIDDEN,
        NUM_OUTPUTS,
        max_spikes=16,
        neuron=so.LIF(NUM_OUTPUTS, tau_mem=10e-3, tau_syn=5e-3, refractory_period=1e-3),
        w_mean=0.6,
        w_std=0.5,
        key=k2,
    )
    return so.nn.Sequential([hidden, output])


def make_inputs(seed):
    """A batch of random input spike trains: one `SpikeTrain` whose arrays have a
    leading batch axis (all trains share one capacity)."""
    rng = np.random.default_rng(seed)
    trains = []
    for _ in range(BATCH):
        times = rng.uniform(0.0, 0.6 * T1, (NUM_INPUTS, SPIKES_PER_INPUT))
        trains.append(so.SpikeTrain.from_per_neuron(times))
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trains)


def main():
    net = make_network(jax.random.PRNGKey(0))
    inputs = make_inputs(seed=0)
    # target times of the first and second spike of each output neuron
    targets = jnp.array([[0.015, 0.025], [0.02, 0.03], [0.025, 0.035]])

    def loss_fn(net):
        """`params -> (loss, aux)`. `aux` must hold every Simulation (or SpikeTrain)
        whose spike sequence has to stay fixed for the finite differences: here both
        layers' simulations of every input train."""
        # One Simulation per layer, each with a leading batch axis. `jax.vmap` works
        # the same way; `jax.lax.map` (a loop over the trains) compiles faster, and
        # compilation dominates the run time of this small check.
        sims = jax.lax.map(lambda x: net(x, T1), inputs)
        out = sims[-1].spikes
        # spike times as [train, neuron, k], padded with +inf; a neuron cannot spike
        # more often than the buffer holds, so `to_per_neuron` cannot overflow here
        times = out.to_per_neuron(out.capacity)[..., :2]
        # A missing spike counts as one at T1 (with zero gradient). Replace the +inf
        # before any arithmetic so that no inf * 0 = NaN reaches the gradient.
        times = jnp.where(jnp.isfinite(times), times, T1)
        loss = jnp.mean((times - targets) ** 2)
        # Hand `check_grads` one unbatched Simulation per (train, layer): it does not
        # accept Simulations with a batch axis (see docs/api.md).
        per_train = [jax.tree.map(lambda x: x[b], sims) for b in range(BATCH)]
        return loss, per_train

    start = time.perf_counter()
    report = so.check_grads(loss_fn, net, rtol=1e-6)
    print(report)
    print(f"(took {time.perf_counter() - start:.0f} s, compilation included)")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())

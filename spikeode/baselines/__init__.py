"""Baselines that exact gradients are compared against (not imported by `import spikeode`).

- `spikeode.baselines.surrogate`: time-stepped LIF networks trained by backpropagation
  through time with surrogate derivatives (Zenke & Vogels 2021).
- `spikeode.baselines.perturbation`: the node-perturbation gradient estimator
  (Fiete & Seung 2006).
"""

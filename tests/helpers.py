"""What several test modules share: the errors that checks raise, one small instance of
every library model, comparisons of two runs, and loading an example script.

Import as `from helpers import ...` (pyproject puts tests/ on pytest's path)."""

import importlib.util
import pathlib
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import spikeode as so

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

# The error of a failed `equinox.error_if` check, as raised outside `jit`.
RuntimeErr = eqx.EquinoxRuntimeError
# The same check inside `jax.jit` (JAX may re-wrap it), or a concrete check at trace time.
JitRuntimeErr = (eqx.EquinoxRuntimeError, jax.errors.JaxRuntimeError, ValueError)

# Every library model on 3 neurons, with some per-neuron parameters, and its
# capabilities (closed-form flow, closed-form first spikes, phase model).
_PER = jnp.array([1.0, 1.5, 2.0])
MODELS = {
    "LIF": (so.LIF(3, tau_mem=0.02 * _PER, refractory_period=1e-3 * _PER), (1, 1, 0)),
    "NonLeakyIF": (so.NonLeakyIF(3, threshold=_PER), (1, 1, 0)),
    "AlphaIF": (so.AlphaIF(3, tau=_PER), (1, 0, 0)),
    "DeltaLIF": (so.DeltaLIF(3, tau_mem=0.02 * _PER, refractory_period=1e-3 * _PER), (1, 1, 0)),
    "DeltaIF": (so.DeltaIF(3, bias=_PER), (1, 0, 0)),
    "ExcInhLIF": (so.ExcInhLIF(3, tau_inh=0.01 * _PER), (1, 0, 0)),
    "AdaptiveLIF": (so.AdaptiveLIF(3, adapt_jump=0.1 * _PER), (0, 0, 0)),
    "ExpIF": (so.ExpIF(3, v_peak=_PER + 1.0), (0, 0, 0)),
    "ThetaNeuron": (so.ThetaNeuron(3, bias=_PER), (1, 0, 1)),
    "QIF": (so.QIF(3, tau_mem=_PER), (1, 0, 1)),
    "QIF(bias)": (so.QIF(3, tau_syn=_PER, bias=0.5), (0, 0, 1)),
}
CAPABILITIES = (so.AbstractFlowNeuron, so.AbstractFirstSpikeNeuron, so.AbstractPhaseNeuron)


def assert_same_runs(a, ga, b, gb, *, min_spikes, time_tol=1e-12, grad_tol=1e-9):
    """Two simulations `a`, `b` (with gradients `ga`, `gb` of one loss) agree: the same
    spiking neurons in order, spike times within `time_tol`, final states, and every
    gradient leaf within `grad_tol` relative to its largest entry."""
    k = int(a.spikes.num_spikes)
    assert k > min_spikes
    np.testing.assert_array_equal(a.spikes.neurons, b.spikes.neurons)
    assert np.max(np.abs(np.asarray(a.spikes.times[:k] - b.spikes.times[:k]))) < time_tol
    np.testing.assert_allclose(a.y_final, b.y_final, rtol=1e-9, atol=1e-12)
    for x, y in zip(jax.tree_util.tree_leaves(ga), jax.tree_util.tree_leaves(gb)):
        scale = max(float(np.max(np.abs(x))), 1e-12)
        assert float(np.max(np.abs(x - y))) / scale < grad_tol


def load_example(name: str):
    """`examples/<name>.py` as a module (the examples are scripts, not a package).
    `examples/` goes on `sys.path` first, as when a script is run, so that the
    examples' shared helpers (`from _seeds import spread`) import."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module

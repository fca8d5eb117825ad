"""Shared test set-up: all tests run in float64; `load_example` imports an example.

`make test` runs the suite on two pytest-xdist workers (`--dist loadscope
--no-loadscope-reorder`); the hooks below choose the work units and their order.
"""

import gc
import importlib.util
import pathlib
import sys

import jax
import pytest

jax.config.update("jax_enable_x64", True)

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

# Work units of `--dist loadscope`: a unit runs on one worker, and a free worker takes
# the next one. By default a test module is one unit, so that its tests share module
# fixtures, cached results and compiled functions (compilation costs far more than the
# runs). The tests named here are units of their own: heavy, and sharing nothing with
# the rest of their module, so that they balance the load of the two workers.
SEPARATE_TESTS = {
    "test_gradients.py": {"test_builtin_checks"},  # the `spikeode check` rows
    "test_train.py": {"test_select_last", "test_closed_form_network_trains_from_the_cli"},
}

# The units start heaviest first (longest processing time first), so that no worker is
# left with a long unit at the end; the other modules follow in collection order.
# Rough CPU seconds per module in brackets.
HEAVY_FIRST = [
    "test_delays.py",  # (250)
    "test_gradients.py",  # (250: the `spikeode check` rows are 10 units of 15-25)
    "test_event_driven.py",  # (140)
    "test_train.py",  # (110: units of 10-45)
    "test_adjoint.py",  # (150)
    "test_qif.py",  # (90)
    "test_per_neuron.py",  # (80)
    "test_bad_input.py",  # (100: every failure kind in two loops)
    "test_losses.py",  # (60)
    "test_smooth.py",  # (60)
    "test_first_spike.py",  # (55)
]


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    # a stable sort: each module's tests stay together and in their order
    items.sort(key=lambda item: rank.get(item.path.name, len(HEAVY_FIRST)))


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            module, _, test = nodeid.partition("::")
            name = test.split("[", 1)[0]
            if name in SEPARATE_TESTS.get(pathlib.PurePath(module).name, ()):
                return nodeid
            return module

    return ModuleScheduling(config, log)


@pytest.fixture(scope="module", autouse=True)
def _free_compiled_code():
    """After each test module, drop JAX's caches of traced and compiled functions: a
    worker otherwise keeps every executable of the suite (several GB by the end)."""
    yield
    jax.clear_caches()
    gc.collect()


def pytest_sessionfinish(session):
    # A pytest-xdist worker gets 5 s to finish once the controller has stopped it;
    # then execnet interrupts it with SIGINT, and the KeyboardInterrupt, raised inside
    # whatever runs at that moment (often a weakref callback during garbage
    # collection), is reported as a PytestUnraisableExceptionWarning at the end of the
    # run. After hundreds of compilations a worker's heap holds millions of objects,
    # and pytest's final garbage collections traverse all of them (seconds on a busy
    # machine). Collect once here, before the worker reports that it has finished,
    # and freeze the survivors so that the later collections skip them.
    if hasattr(session.config, "workerinput"):
        gc.collect()
        gc.freeze()


def assert_same_runs(a, ga, b, gb, *, min_spikes, time_tol=1e-12, grad_tol=1e-9):
    """Two simulations `a`, `b` (with gradients `ga`, `gb` of one loss) agree: the same
    spiking neurons in order, spike times within `time_tol`, final states, and every
    gradient leaf within `grad_tol` relative to its largest entry."""
    import numpy as np

    k = int(a.spikes.num_spikes)
    assert k > min_spikes
    np.testing.assert_array_equal(a.spikes.neurons, b.spikes.neurons)
    assert np.max(np.abs(np.asarray(a.spikes.times[:k] - b.spikes.times[:k]))) < time_tol
    np.testing.assert_allclose(a.y_final, b.y_final, rtol=1e-9, atol=1e-12)
    for x, y in zip(jax.tree_util.tree_leaves(ga), jax.tree_util.tree_leaves(gb)):
        scale = max(float(np.max(np.abs(x))), 1e-12)
        assert float(np.max(np.abs(x - y))) / scale < grad_tol


def _load_example(name: str):
    """`examples/<name>.py` as a module (the examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_example():
    return _load_example

"""Shared test set-up: all tests run in float64; the fixture `load_example` imports an
example. What test modules share otherwise is in `helpers.py`.

`make test` runs the suite on two pytest-xdist workers (`--dist loadscope
--no-loadscope-reorder`); the hooks below choose the work units and their order.
"""

import gc
import pathlib

import jax
import pytest
from jaxtyping import install_import_hook

jax.config.update("jax_enable_x64", True)
# No implicit promotion: mixing dtypes (other than with Python scalars) or broadcasting
# arrays of different ranks is an error, so that the library's casts are explicit.
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

# Every annotation of spikeode (argument and return types, jaxtyping shapes and dtypes,
# Equinox module fields) checked at run time during the tests: installed before
# spikeode is first imported (by `helpers`).
install_import_hook("spikeode", "beartype.beartype")

import helpers  # noqa: E402  (after the configuration above: it builds models)

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
    "test_fit.py",  # (120: one fixture's fit shared by most tests)
    "test_qif.py",  # (90)
    "test_delta_neurons.py",  # (90)
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


@pytest.fixture(scope="session")
def load_example():
    """`load_example(name)`: `examples/<name>.py` as a module (`helpers.load_example`)."""
    return helpers.load_example

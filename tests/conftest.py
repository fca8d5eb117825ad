"""Shared test set-up: all tests run in float64; `load_example` imports an example."""

import importlib.util
import pathlib
import sys

import jax
import pytest

jax.config.update("jax_enable_x64", True)

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


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

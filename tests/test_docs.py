"""The documentation: the site builds without a warning, and its code examples run.

- `mkdocs build --strict` (mkdocs.yml; its hooks in docs/hooks.py also check that every
  public name is documented and has a docstring): a broken link, anchor or
  cross-reference fails.
- Every code example of docs/api.md runs as it stands after the page's preamble, and
  the examples of docs/index.md run in sequence (slow: each starts a fresh interpreter
  and compiles its own simulations).
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
API = ROOT / "docs" / "api.md"
INDEX = ROOT / "docs" / "index.md"
BLOCKS = re.findall(r"```python\n(.*?)```", API.read_text(), re.S)


def test_site_builds_strict(tmp_path):
    # 4-6 s; mkdocs and its plugins come with the `docs` extra (make test installs it)
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
               str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's banner about MkDocs 2
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{output[-6000:]}"
    assert "WARNING" not in output, output[-6000:]
    assert (tmp_path / "site" / "api" / "simulation" / "index.html").exists()


@pytest.mark.slow
@pytest.mark.parametrize("index", range(1, len(BLOCKS)))
def test_api_example_runs(index):
    code = BLOCKS[0] + "\n" + BLOCKS[index]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, f"example {index}:\n{BLOCKS[index]}\n{result.stderr[-3000:]}"


@pytest.mark.slow
def test_getting_started_runs():
    code = "\n".join(re.findall(r"```python\n(.*?)```", INDEX.read_text(), re.S))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, f"docs/index.md:\n{result.stderr[-3000:]}"

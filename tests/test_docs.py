"""Every code example of docs/api.md runs as it stands after the page's preamble
(slow: each starts a fresh interpreter and compiles its own simulations)."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

API = pathlib.Path(__file__).resolve().parent.parent / "docs" / "api.md"
BLOCKS = re.findall(r"```python\n(.*?)```", API.read_text(), re.S)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(1, len(BLOCKS)))
def test_api_example_runs(index):
    code = BLOCKS[0] + "\n" + BLOCKS[index]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, f"example {index}:\n{BLOCKS[index]}\n{result.stderr[-3000:]}"

"""What the reproduction scripts share: the spread of one number over the seeds.

The scripts import it as `from _seeds import spread`: run as a script
(`python examples/mostafa.py`), Python puts `examples/` on `sys.path`; the tests'
`load_example` (tests/helpers.py) puts it there before loading a script."""

from __future__ import annotations

import numpy as np


def spread(values, scale=1.0) -> dict:
    """The per-seed values of one number, their mean, sample standard deviation
    (numpy `ddof=1`), minimum and maximum.

    **Arguments:**

    - `values`: one number per seed; `None` for a run without one (diverged, stopped,
      a level not reached) is listed in `per_seed` and left out of the statistics.
    - `scale`: every value is multiplied by it first (`100` for a percentage).

    **Returns:** `{"per_seed": [...], "mean": ..., "std": ..., "min": ..., "max": ...}`
    of plain Python floats (JSON-able): `mean`, `min` and `max` are `None` when no
    value is left, `std` is `0.0` with fewer than two values.
    """
    per_seed = [None if v is None else float(v) * scale for v in values]
    ok = np.asarray([v for v in per_seed if v is not None], dtype=float)
    return {"per_seed": per_seed,
            "mean": float(ok.mean()) if len(ok) else None,
            "std": float(ok.std(ddof=1)) if len(ok) > 1 else 0.0,
            "min": float(ok.min()) if len(ok) else None,
            "max": float(ok.max()) if len(ok) else None}

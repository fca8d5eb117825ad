"""A finite-difference gradient check that knows about spikes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PyTree, Real

from ._simulation import Simulation
from ._spikes import SpikeTrain


@dataclasses.dataclass(frozen=True)
class LeafReport:
    """The check of one parameter (one pytree leaf).

    **Fields:** `name` (its path in the pytree), `size`, `rel_error` (the largest over
    the random directions of `|fd - ad| / max(|ad|, |fd|, abs_floor)`), `valid_steps`
    and `total_steps` (steps at which the spike sequence was unchanged, out of those
    tried), `passed`.
    """

    name: str
    size: int
    rel_error: float
    valid_steps: int
    total_steps: int
    passed: bool


@dataclasses.dataclass(frozen=True)
class GradCheckReport:
    """What [`spikeode.check_grads`][] returns; `str()` gives a table.

    **Fields:** `leaves` (one [`spikeode.LeafReport`][] per parameter), `passed`,
    `rtol`, `num_spikes`, `grazing` (spikes whose threshold crossing is nearly
    tangential), `near_end` (spikes so close to the end of the window that a small
    perturbation may push them out), `overflow` (a spike buffer was full),
    `messages` (human-readable notes), and the unperturbed `loss`, `grad` (same
    structure as the checked parameters) and `aux` that were checked.
    """

    leaves: tuple[LeafReport, ...]
    passed: bool
    rtol: float
    num_spikes: int
    grazing: int
    near_end: int
    overflow: bool
    messages: tuple[str, ...]
    loss: Float[Array, ""] | None = None
    grad: PyTree = None
    aux: Any = None

    @property
    def max_rel_error(self) -> float:
        """The largest relative error over the checked leaves (0 without leaves)."""
        return max((leaf.rel_error for leaf in self.leaves), default=0.0)

    def __str__(self) -> str:
        lines = [f"{'parameter':<32} {'size':>6} {'rel error':>10} {'steps':>7}  ok"]
        for leaf in self.leaves:
            lines.append(
                f"{leaf.name:<32} {leaf.size:>6} {leaf.rel_error:>10.2e} "
                f"{leaf.valid_steps:>3}/{leaf.total_steps:<3}  "
                f"{'yes' if leaf.passed else 'NO'}"
            )
        lines.append(
            f"spikes: {self.num_spikes}, grazing: {self.grazing}, near t1: "
            f"{self.near_end}, buffer full: {self.overflow}; "
            f"{'PASSED' if self.passed else 'FAILED'} at rtol {self.rtol:g}"
        )
        lines.extend(self.messages)
        return "\n".join(lines)


def _spike_records(aux) -> list[Any]:
    is_rec = lambda x: isinstance(x, (Simulation, SpikeTrain))
    return [x for x in jtu.tree_leaves(aux, is_leaf=is_rec) if is_rec(x)]


def _signature(aux) -> tuple:
    """The discrete structure of the spiking: the sequence of firing neurons."""
    sig = []
    for rec in _spike_records(aux):
        train = rec.spikes if isinstance(rec, Simulation) else rec
        sig.append(np.asarray(train.neurons).tobytes())
    return tuple(sig)


def _evaluate_steps(value, dyn, leaf, d, hs, sig0):
    """Loss at `p + h d` and `p - h d` for every `h` (or `None` where the spike
    sequence changed or the loss is not finite), and how many steps were rejected
    because the model raised an error (e.g. a parameter left its domain)."""
    out, failed = [], 0
    for h in hs:
        vals = []
        for sign in (1.0, -1.0):
            moved = jtu.tree_map(lambda x: x + sign * h * d if x is leaf else x, dyn)
            try:
                loss, aux = value(moved)
            except Exception:  # e.g. a parameter stepped out of its domain
                failed += 1
                break
            if _signature(aux) != sig0 or not np.isfinite(float(loss)):
                break
            vals.append(float(loss))
        out.append(tuple(vals) if len(vals) == 2 else None)
    return out, failed


def check_grads(
    fn: Callable[[Any], tuple[jax.Array, Any]],
    params: Any,
    *,
    rtol: float = 1e-6,
    num_directions: int = 2,
    steps: Real[ArrayLike, " steps"] | Sequence[float] | None = None,
    abs_floor: float | None = None,
    grazing_tol: float = 1e-3,
    key: jax.Array | None = None,
) -> GradCheckReport:
    """Compare the gradient of `fn` with central finite differences, in float64.

    For each floating leaf of `params` and each of `num_directions` random unit
    directions `d` in that leaf, the directional derivative `<grad, d>` is compared
    with central differences `(f(p + h d) - f(p - h d)) / 2h` and their Richardson
    extrapolations, over step sizes `h` scanned across several decades (scaled by the
    leaf's magnitude). A step is used only if the spike sequence (which neuron fired,
    in which order, in every spike train in the auxiliary output) is the same at
    `p - h d`, `p` and `p + h d`: where it changes, the loss jumps and finite
    differences are meaningless. The best agreement over the usable steps is reported
    (finite differences are limited by truncation at large `h` and round-off at small
    `h`; a correct gradient agrees at some `h`, a wrong one at none).

    Also flagged: a full spike buffer (fails the check), grazing crossings (slope of
    the condition at the crossing below `grazing_tol` times the median slope), and
    spikes near the end of the window.

    **Arguments:**

    - `fn`: `params -> (loss, aux)`, where `aux` holds the [`spikeode.Simulation`][]s
      or [`spikeode.SpikeTrain`][]s whose spike sequence must stay fixed. It is
      compiled with `equinox.filter_jit`.
    - `params`: a pytree; its floating array leaves are checked.
    - `rtol`: pass threshold on the relative error.
    - `num_directions`: random directions per leaf.
    - `steps`: relative step sizes (default `1e-2 ... 1e-9`, half-decades).
    - `abs_floor`: floor of the relative error's denominator, so that parameters
      with (nearly) zero gradient are judged by an absolute error; default `1e-8`
      times the norm of the whole gradient.
    - `grazing_tol`: see above.
    - `key`: PRNG key for the directions (default `PRNGKey(0)`).

    **Returns:** a [`spikeode.GradCheckReport`][].
    """
    if not jax.config.jax_enable_x64:
        raise RuntimeError(
            "check_grads needs float64: call jax.config.update('jax_enable_x64', True) "
            "before creating arrays (finite differences in float32 cannot resolve 1e-6)."
        )
    key = jax.random.PRNGKey(0) if key is None else key
    steps = np.logspace(-2, -9, 15) if steps is None else np.asarray(steps, float)
    steps = np.sort(steps)[::-1]

    dyn, static = eqx.partition(params, eqx.is_inexact_array)
    # Strongly typed copies: perturbed leaves must not change the abstract signature
    # (a weakly typed leaf would be recompiled for every perturbation).
    dyn = jtu.tree_map(lambda x: jnp.array(x, dtype=x.dtype), dyn)
    for leaf in jtu.tree_leaves(dyn):
        if leaf.dtype != jnp.float64:
            raise TypeError(f"check_grads: parameters must be float64, got {leaf.dtype}.")

    @eqx.filter_jit
    def value(d):
        return fn(eqx.combine(d, static))

    @eqx.filter_jit
    def grad(d):
        return jax.grad(lambda d_: fn(eqx.combine(d_, static)), has_aux=True)(d)

    loss0, aux0 = value(dyn)
    g, _ = grad(dyn)
    sig0 = _signature(aux0)

    # flags
    num_spikes, grazing, near_end, overflow = 0, 0, 0, False
    for rec in _spike_records(aux0):
        train = rec.spikes if isinstance(rec, Simulation) else rec
        valid = np.asarray(train.valid)
        num_spikes += int(valid.sum())
        if isinstance(rec, Simulation):
            overflow |= bool(np.any(np.asarray(rec.overflow)))
            slopes = np.abs(np.asarray(rec.slopes))[valid]
            if slopes.size:
                grazing += int(np.sum(slopes < grazing_tol * np.median(slopes)))
            t = np.asarray(train.times)[valid]
            shape = np.asarray(train.times).shape
            t1 = np.broadcast_to(np.asarray(rec.t1)[..., None], shape)[valid]
            t0 = np.broadcast_to(np.asarray(rec.t0)[..., None], shape)[valid]
            near_end += int(np.sum(t1 - t < 1e-3 * (t1 - t0)))
    messages = []
    if overflow:
        messages.append("A spike buffer is full: spikes were lost; raise max_spikes.")
    if grazing:
        messages.append(
            f"{grazing} grazing crossing(s): their spike times are ill-conditioned and "
            "may appear or vanish under tiny parameter changes."
        )

    if abs_floor is None:
        g_norm = float(jnp.sqrt(sum(jnp.sum(x**2) for x in jtu.tree_leaves(g))))
        abs_floor = max(1e-8 * g_norm, 1e-300)
    paths = jtu.tree_flatten_with_path(dyn)[0]
    grad_leaves = jtu.tree_leaves(g)
    keys = jax.random.split(key, max(len(paths), 1))
    reports = []
    for (path, leaf), g_leaf, k in zip(paths, grad_leaves, keys):
        name = jtu.keystr(path) or "params"
        scale = float(jnp.sqrt(jnp.mean(leaf**2))) or 1.0
        worst, valid_count, rejected = 0.0, 0, 0
        for j in range(num_directions):
            d = jax.random.normal(jax.random.fold_in(k, j), leaf.shape, leaf.dtype)
            d = d / jnp.linalg.norm(d.ravel())
            ad = float(jnp.sum(g_leaf * d))
            estimates, hs = [], []
            hs_all = steps * scale
            evaluated, failed = _evaluate_steps(value, dyn, leaf, d, hs_all, sig0)
            rejected += failed
            for h, vals in zip(hs_all, evaluated):
                if vals is not None:
                    estimates.append((vals[0] - vals[1]) / (2 * h))
                    hs.append(h)
            valid_count += len(estimates)
            candidates = list(estimates)
            for i in range(len(estimates) - 1):  # Richardson on consecutive steps
                r2 = (hs[i] / hs[i + 1]) ** 2
                candidates.append((r2 * estimates[i + 1] - estimates[i]) / (r2 - 1))
            if not candidates:
                worst = np.inf
                continue
            errs = [abs(c - ad) / max(abs(ad), abs(c), abs_floor) for c in candidates]
            worst = max(worst, min(errs))
        reports.append(
            LeafReport(
                name=name,
                size=int(np.size(leaf)),
                rel_error=float(worst),
                valid_steps=valid_count,
                total_steps=len(steps) * num_directions,
                passed=bool(worst <= rtol),
            )
        )
        if not np.isfinite(worst):
            if rejected:
                messages.append(
                    f"{name}: the model rejected {rejected} perturbed evaluations (is the "
                    "parameter at the edge of its domain, e.g. a refractory period of 0?) "
                    "and no step was usable; leave it out of the check or move it inside "
                    "its domain."
                )
            else:
                messages.append(
                    f"{name}: every step changed the spike sequence; no "
                    "finite-difference estimate was possible (try smaller steps)."
                )
    passed = all(r.passed for r in reports) and not overflow and bool(np.isfinite(float(loss0)))
    return GradCheckReport(
        leaves=tuple(reports),
        passed=passed,
        rtol=rtol,
        num_spikes=num_spikes,
        grazing=grazing,
        near_end=near_end,
        overflow=overflow,
        messages=tuple(messages),
        loss=loss0,
        grad=eqx.combine(g, static),
        aux=aux0,
    )

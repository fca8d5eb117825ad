r"""Huh & Sejnowski's smooth gated network: a spiking network that is one smooth ODE.

Huh and Sejnowski ("Gradient Descent for Spiking Neural Networks", NeurIPS 2018)
replace the spike-triggered synaptic kick by a *gate*: a neuron releases synaptic
output continuously while its state passes through a narrow "active zone" around the
spike. There are no events and no resets, so the whole network is a single smooth
ODE, and gradients come from any Diffrax adjoint (backsolve, checkpointed
backpropagation through the solver, ...). Here the neurons are theta neurons (the
phase form of the quadratic integrate-and-fire neuron), with phase `theta` and
synaptic state `s` per neuron:

$$\tau_v \dot\theta = (1 - \cos\theta) + (1 + \cos\theta)\, I,\qquad
I = U\, i(t) + W s + b,$$

$$\tau_s \dot s = -s + g(\theta)\, \dot\theta,\qquad o = O s.$$

- The spike is the crossing of `theta = pi` (mod `2 pi`; the voltage
  `tan(theta/2)` is infinite there). The phase is not wrapped: it grows by `2 pi`
  per spike, and `cos` makes the dynamics periodic, so no reset is needed. Near the
  spike `dtheta/dt = 2/tau_v` whatever the input.
- The gate `g >= 0` is a normalised bump of width `delta` in the phase, centred on
  the spike (on the angle wrapped to `[-pi, pi)` around `pi`):

    $$g(\theta) = \frac{(1 + \cos(2\pi x/\delta))^4}{\tfrac{35}{8}\,\delta}\
    \text{for}\ |x| < \delta/2,\ \text{else } 0,\qquad x = (\theta \bmod 2\pi) - \pi,$$

    with `integral g dtheta = 1` over the zone. It is `C^7` (value and first seven
    derivatives vanish at the zone edges). The smoothness matters for accuracy: with
    the `C^3` square `(1 + cos)^2` of a raised cosine, high-order adaptive solvers
    (SciPy's DOP853 in particular) under-estimate their error in the steps containing
    a zone edge, and spike times of a recurrent network drift by ~1e-9 at rtol 1e-12;
    with the fourth power they agree to ~1e-12.
- The release rate `r = g(theta) dtheta/dt` is the time derivative of the
  cumulative release `Gamma(theta)` ([`spikeode.smooth.gate_primitive`][]: the
  number of zones fully passed plus the fraction of the current one), so the amount
  released between two times is `Gamma(theta(t_b)) - Gamma(theta(t_a))`: exactly 1
  per full crossing of the zone, whatever the speed of the crossing; a fraction
  `Gamma < 1` for a phase that enters the zone and stalls in it (graded release);
  and a phase that turns back takes back what it released (the net release of an
  excursion into the zone and out on the side it came from is 0). For theta neurons
  partial releases need strong inhibition: at `theta = pi + x`,
  `tau_v dtheta/dt ~ 2 - x^2 (1 - I) / 2`, so stopping the phase within `|x|` of the
  spike takes `I < 1 - 4/x^2`; otherwise crossings are all-or-none.
- With `tau_s` long compared to the crossing time (about `delta tau_v / 2`), a
  crossing raises `s` by `1/tau_s`, after which `s` decays with `tau_s`: the
  exponential synapse of an event-based network. In general
  `tau_s (s(t_b) - s(t_a)) + integral s dt = released amount`.

Parameters (`U`, `W`, `O`, `bias`, `tau_v`, `tau_s`, `delta`) are differentiable
leaves of [`spikeode.smooth.SmoothGatedNetwork`][]; [`spikeode.smooth.simulate_smooth`][]
integrates it with `diffrax.diffeqsolve` and whatever adjoint is passed;
[`spikeode.smooth.spike_times`][] reads the spike times (the `theta = pi` crossings)
off a dense solution; `spikeode check smooth-gated` verifies spike times against SciPy
and gradients against finite differences.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Optional, Union

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray, Scalar

from ._typing import RealScalarLike
from .neurons._params import as_param, check_positive, is_concrete as _is_concrete

__all__ = [
    "SmoothGatedNetwork",
    "SmoothSolution",
    "gate",
    "gate_primitive",
    "simulate_smooth",
    "spike_times",
]

_TWO_PI = 2 * math.pi

# An input: None (no input), a callable `t -> (num_inputs,)`, a Diffrax path, or
# samples `(times, values)` (linearly interpolated).
InputLike = Union[
    None,
    Callable[[Scalar], Float[Array, " inputs"]],
    diffrax.AbstractPath,
    tuple[Float[ArrayLike, " samples"], Float[ArrayLike, "samples inputs"]],
]
# An input as `simulate_smooth` passes it to the model (samples interpolated by a path).
PreparedInput = Union[None, Callable[[Scalar], Float[Array, " inputs"]], diffrax.AbstractPath]


# ----------------------------------------------------------------------------- gate
def _zone_coordinate(theta):
    """`x = (theta mod 2 pi) - pi`, in `[-pi, pi)`: the phase relative to the spike."""
    return jnp.remainder(theta, _TWO_PI) - jnp.pi


def gate(theta: ArrayLike, delta: ArrayLike) -> Array:
    r"""The gate `g(theta)`: a `C^7` bump of width `delta` around `theta = pi`
    (mod `2 pi`) with unit integral.

    $$g = \frac{(1 + \cos(2\pi x/\delta))^4}{\tfrac{35}{8}\,\delta}\ \text{on}\
    |x| < \delta/2,\ 0\ \text{elsewhere},\qquad x = (\theta \bmod 2\pi) - \pi.$$

    **Arguments:**

    - `theta`: phases (any shape; not necessarily wrapped).
    - `delta`: width of the active zone, in `(0, 2 pi]` (broadcast against `theta`).

    **Returns:** `g(theta)`, the shape of `theta` broadcast with `delta`.
    """
    theta, delta = jnp.asarray(theta), jnp.asarray(delta)
    x = _zone_coordinate(theta)
    inside = jnp.abs(x) < delta / 2
    # outside the zone, evaluate at the edge (u = pi), where the bump and its
    # derivatives vanish, so that the unused branch is harmless for gradients
    u = jnp.where(inside, _TWO_PI * x / delta, jnp.pi)
    return jnp.where(inside, (1 + jnp.cos(u)) ** 4 / (35 / 8 * delta), 0.0)


def gate_primitive(theta: ArrayLike, delta: ArrayLike) -> Array:
    r"""Cumulative release `Gamma(theta) = integral_0^theta g`, for unwrapped phases.

    `Gamma(theta) = k + G(x)`, with `k = floor(theta / 2 pi)` the number of zones
    fully passed since phase 0 (for `delta < 2 pi`), `x = (theta mod 2 pi) - pi`, and
    `G` the fraction of the current zone, `0` below it, `1` above it and inside

    $$G(x) = \tfrac12 + \frac{x}{\delta} + \frac{1}{35\pi}\Big(28\sin u + 7\sin 2u
    + \tfrac43\sin 3u + \tfrac18\sin 4u\Big),\qquad u = 2\pi x/\delta.$$

    The amount released by a neuron between two times is the difference of `Gamma`
    at its phases there: `d Gamma(theta(t)) / dt = g(theta) dtheta/dt`.

    **Arguments:**

    - `theta`: phases (any shape, unwrapped: `theta` grows by `2 pi` per spike).
    - `delta`: width of the active zone, in `(0, 2 pi]`.

    **Returns:** `Gamma(theta)`, broadcast shape of `theta` and `delta`.
    """
    theta, delta = jnp.asarray(theta), jnp.asarray(delta)
    k = jnp.floor(theta / _TWO_PI)
    x = _zone_coordinate(theta)
    inside = jnp.abs(x) < delta / 2
    u = jnp.where(inside, _TWO_PI * x / delta, 0.0)
    series = 28 * jnp.sin(u) + 7 * jnp.sin(2 * u) + 4 / 3 * jnp.sin(3 * u) + jnp.sin(4 * u) / 8
    frac = 0.5 + x / delta + series / (35 * jnp.pi)
    frac = jnp.where(inside, frac, jnp.where(x > 0, 1.0, 0.0))
    return k + frac


def _check_delta(delta: Array) -> Array:
    msg = "`delta` (width of the active zone, in radians) must lie in (0, 2 pi]"
    # (NumPy or jax.numpy: a concrete value is checked with NumPy, so that no JAX
    # operation is traced when the check runs inside `jit` on a closed-over constant)
    bad = lambda d, xp: (d <= 0) | (d > _TWO_PI * (1 + 1e-12)) | xp.isnan(d)
    if _is_concrete(delta):
        if np.any(bad(np.asarray(delta), np)):
            raise ValueError(f"{msg}; got {np.asarray(delta)}.")
        return delta
    return eqx.error_if(delta, jnp.any(bad(delta, jnp)), msg + ".")


# -------------------------------------------------------------------------- network
def _matrix(name, value, shape, dtype):
    x = jnp.asarray(value)
    x = jnp.array(x, dtype=dtype if not jnp.issubdtype(x.dtype, jnp.floating) else x.dtype)
    if x.shape != shape:
        raise ValueError(f"SmoothGatedNetwork: `{name}` has shape {x.shape}; expected {shape}.")
    if _is_concrete(x) and not np.all(np.isfinite(np.asarray(x))):
        raise ValueError(f"SmoothGatedNetwork: `{name}` contains NaN or inf.")
    return x


class SmoothGatedNetwork(eqx.Module):
    r"""A recurrent network of theta neurons with gated (event-free) synapses, after
    Huh & Sejnowski (2018); see the module docstring of `spikeode.smooth` for the
    equations.

    The state of the network is an array `y` of shape `(num_neurons, 2)` with columns
    `(theta, s)`: the (unwrapped) phase and the synaptic output of each neuron.
    Matrices act as in the equations: `I = U i(t) + W s + bias`, `o = O s` (so `U` is
    `(num_neurons, num_inputs)`, `W[j, k]` is the weight from neuron `k` to neuron
    `j`, `O` is `(num_outputs, num_neurons)`).

    **Arguments:**

    - `num_inputs`, `num_neurons`, `num_outputs`: sizes (`num_inputs` may be 0).
    - `tau_v`: time constant of the phase (> 0; scalar or per neuron). A neuron with
      constant current `I > 0` fires with period `pi tau_v / sqrt(I)`; for `I < 0` it
      rests at `theta = -arccos((1 + I) / (1 - I))`.
    - `tau_s`: synaptic time constant (> 0; scalar or per neuron).
    - `delta`: width of the active zone in radians, in `(0, 2 pi]` (scalar).
    - `bias`: constant current `b` (scalar or per neuron).
    - `U`, `W`, `O`: weight matrices; each one not given is drawn from
      `normal(0, 1) / sqrt(fan_in)` (`fan_in` = `num_inputs` for `U`, `num_neurons`
      for `W` and `O`), which needs `key`.
    - `key`: a `jax.random` key, needed only if some matrix is not given.

    Every parameter is a differentiable floating-point array leaf (in the default
    floating dtype: float64 with `jax_enable_x64`). Invalid time constants or `delta`
    raise `ValueError` at construction, or, when traced (e.g. reached by training
    inside `jit`), an `equinox.EquinoxRuntimeError` from
    [`spikeode.smooth.simulate_smooth`][] (through `check`).
    """

    U: Float[Array, "neurons inputs"]
    W: Float[Array, "neurons neurons"]
    O: Float[Array, "outputs neurons"]  # noqa: E741
    bias: Float[Array, "..."]
    tau_v: Float[Array, "..."]
    tau_s: Float[Array, "..."]
    delta: Float[Array, ""]
    num_inputs: int = eqx.field(static=True)
    num_neurons: int = eqx.field(static=True)
    num_outputs: int = eqx.field(static=True)

    def __init__(
        self,
        num_inputs: int,
        num_neurons: int,
        num_outputs: int,
        *,
        tau_v: ArrayLike = 1.0,
        tau_s: ArrayLike = 1.0,
        delta: ArrayLike = 1.0,
        bias: ArrayLike = 0.0,
        U: Optional[ArrayLike] = None,
        W: Optional[ArrayLike] = None,
        O: Optional[ArrayLike] = None,  # noqa: E741
        key: Optional[PRNGKeyArray] = None,
    ):
        for name, value, low in (
            ("num_inputs", num_inputs, 0),
            ("num_neurons", num_neurons, 1),
            ("num_outputs", num_outputs, 1),
        ):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
                raise ValueError(
                    f"SmoothGatedNetwork: `{name}` must be an int >= {low}, got {value!r}."
                )
        n = int(num_neurons)
        self.num_inputs, self.num_neurons, self.num_outputs = (
            int(num_inputs), n, int(num_outputs),
        )
        self.tau_v = check_positive("tau_v", as_param("tau_v", tau_v, n))
        self.tau_s = check_positive("tau_s", as_param("tau_s", tau_s, n))
        self.bias = as_param("bias", bias, n)
        d = as_param("delta", delta, 1)
        if d.shape != ():
            raise ValueError(f"SmoothGatedNetwork: `delta` must be a scalar, got shape {d.shape}.")
        self.delta = _check_delta(d)
        dtype = self.tau_v.dtype
        shapes = {"U": (n, self.num_inputs), "W": (n, n), "O": (self.num_outputs, n)}
        fan_in = {"U": max(self.num_inputs, 1), "W": n, "O": n}
        given = {"U": U, "W": W, "O": O}
        if any(v is None for v in given.values()) and key is None:
            missing = [k for k, v in given.items() if v is None]
            raise ValueError(
                f"SmoothGatedNetwork: pass `key` to initialise {missing}, or pass them."
            )
        keys = dict(zip(shapes, jax.random.split(key, 3))) if key is not None else {}
        for name, shape in shapes.items():
            value = given[name]
            if value is None:
                value = jax.random.normal(keys[name], shape, dtype) / math.sqrt(fan_in[name])
            setattr(self, name, _matrix(name, value, shape, dtype))

    # ------------------------------------------------------------------ dynamics
    @property
    def dtype(self):
        """The floating dtype of the parameters (and of the state)."""
        return self.tau_v.dtype

    def init_state(self) -> Float[Array, "neurons 2"]:
        """The default initial state: `theta = 0` (the phase opposite to the spike)
        and `s = 0` for every neuron."""
        return jnp.zeros((self.num_neurons, 2), self.dtype)

    def input_current(self, t: RealScalarLike, inputs: PreparedInput) -> Float[Array, " neurons"]:
        """`U i(t)` for an input prepared by `simulate_smooth` (None, a callable of
        `t`, or a Diffrax path)."""
        if inputs is None or self.num_inputs == 0:
            return jnp.zeros((self.num_neurons,), self.dtype)
        i_t = inputs.evaluate(t) if isinstance(inputs, diffrax.AbstractPath) else inputs(t)
        return self.U @ jnp.asarray(i_t, self.dtype)

    def current(
        self, t: RealScalarLike, y: Float[Array, "neurons 2"], inputs: PreparedInput = None
    ) -> Float[Array, " neurons"]:
        """The total current `I = U i(t) + W s + bias` into each neuron."""
        return self.input_current(t, inputs) + self.W @ y[:, 1] + self.bias

    def phase_velocity(
        self, t: RealScalarLike, y: Float[Array, "neurons 2"], inputs: PreparedInput = None
    ) -> Float[Array, " neurons"]:
        """`dtheta/dt = ((1 - cos theta) + (1 + cos theta) I) / tau_v`."""
        c = jnp.cos(y[:, 0])
        return ((1 - c) + (1 + c) * self.current(t, y, inputs)) / self.tau_v

    def release_rate(
        self, t: RealScalarLike, y: Float[Array, "neurons 2"], inputs: PreparedInput = None
    ) -> Float[Array, " neurons"]:
        """The source of the synaptic equation, `g(theta) dtheta/dt` (released amount
        per unit time; it integrates to 1 over a full crossing of the zone)."""
        return gate(y[:, 0], self.delta) * self.phase_velocity(t, y, inputs)

    def vector_field(
        self, t: RealScalarLike, y: Float[Array, "neurons 2"], args: PreparedInput = None
    ) -> Float[Array, "neurons 2"]:
        """`dy/dt` with columns `(dtheta/dt, ds/dt)`.

        **Arguments:**

        - `t`: time.
        - `y`: state, shape `(num_neurons, 2)`, columns `(theta, s)`.
        - `args`: the input: None, a callable `t -> (num_inputs,)` or a Diffrax path
          (as prepared by [`spikeode.smooth.simulate_smooth`][]).

        **Returns:** `dy/dt`, shape `(num_neurons, 2)`.
        """
        dtheta = self.phase_velocity(t, y, args)
        ds = (gate(y[:, 0], self.delta) * dtheta - y[:, 1]) / self.tau_s
        return jnp.stack([dtheta, ds], axis=-1)

    def outputs(self, y: Float[Array, "... neurons 2"]) -> Float[Array, "... outputs"]:
        """Linear readout `o = O s` of a state (or of a stack of states)."""
        return y[..., 1] @ self.O.T

    def max_step(self) -> Scalar:
        """Step bound used by the default step-size controller: an eighth of the
        shortest time a phase needs to cross the active zone (about
        `delta tau_v / 2`), so that no adaptive step can jump over a whole zone
        without sampling the gate. Not differentiated."""
        return jax.lax.stop_gradient(0.125 * self.delta * jnp.min(self.tau_v))

    def check(self) -> SmoothGatedNetwork:
        """The model with run-time checks of its parameters attached: positive time
        constants, `delta` in `(0, 2 pi]`. Raises `ValueError` at once for concrete
        values; for traced ones the checks are `equinox.error_if`s. Called by
        [`spikeode.smooth.simulate_smooth`][]."""
        tau_v = check_positive("tau_v", self.tau_v)
        tau_s = check_positive("tau_s", self.tau_s)
        delta = _check_delta(self.delta)
        return eqx.tree_at(lambda m: (m.tau_v, m.tau_s, m.delta), self, (tau_v, tau_s, delta))

    def __call__(self, inputs: InputLike, t1: ArrayLike, **kwargs) -> SmoothSolution:
        """Shorthand for `simulate_smooth(self, inputs, t1, **kwargs)`."""
        return simulate_smooth(self, inputs, t1, **kwargs)


# ----------------------------------------------------------------------- simulation
class SmoothSolution(eqx.Module):
    """What [`spikeode.smooth.simulate_smooth`][] returns.

    **Fields:**

    - `ts`: save times, shape `(T,)`.
    - `theta`, `s`: phase (unwrapped) and synaptic output at the save times, shape
      `(T, num_neurons)`.
    - `outputs`: readout `O s` at the save times, shape `(T, num_outputs)`.
    - `y1`: the state at `t1`, shape `(num_neurons, 2)`.
    - `num_steps`: number of accepted solver steps.
    - `result`: the `diffrax.RESULTS` of the solve (with `throw=False`, check it).
    - `solution`: the `diffrax.Solution` with dense output if `dense=True`, else None.
    """

    ts: Float[Array, " T"]
    theta: Float[Array, "T neurons"]
    s: Float[Array, "T neurons"]
    outputs: Float[Array, "T outputs"]
    y1: Float[Array, "neurons 2"]
    num_steps: Int[Array, ""]
    result: diffrax.RESULTS
    solution: Optional[diffrax.Solution] = None

    def evaluate(self, t: ArrayLike) -> Float[Array, "neurons 2"]:
        """The state at time `t` from the dense output (needs `dense=True`)."""
        if self.solution is None:
            raise ValueError("SmoothSolution.evaluate needs simulate_smooth(..., dense=True).")
        return self.solution.evaluate(t)


def _prepare_input(inputs, num_inputs, dtype, t0, t1):
    """Turn the user's input into None, a callable or a Diffrax path; check shapes."""
    if inputs is None:
        return None
    if num_inputs == 0:
        raise ValueError("simulate_smooth: the network has num_inputs=0 but `inputs` is given.")
    if isinstance(inputs, tuple):
        if len(inputs) != 2:
            raise ValueError(
                "simulate_smooth: sampled `inputs` must be a pair (times, values), got a "
                f"tuple of length {len(inputs)}."
            )
        times, values = (jnp.asarray(a) for a in inputs)
        times, values = times.astype(dtype), values.astype(dtype)
        if times.ndim != 1 or times.shape[0] < 2:
            raise ValueError(
                "simulate_smooth: input sample times must be 1-D with at least 2 entries, "
                f"got shape {times.shape}."
            )
        if values.shape != (times.shape[0], num_inputs):
            raise ValueError(
                f"simulate_smooth: input values have shape {values.shape}; expected "
                f"{(times.shape[0], num_inputs)} (samples, num_inputs)."
            )
        msg_sorted = "simulate_smooth: input sample times must be strictly increasing."
        msg_cover = "simulate_smooth: input sample times must cover [t0, t1]."
        sorted_bad = jnp.any(jnp.diff(times) <= 0) | jnp.any(jnp.isnan(times))
        cover_bad = (times[0] > t0) | (times[-1] < t1)
        if _is_concrete(times, t0, t1):
            if bool(sorted_bad):
                raise ValueError(msg_sorted)
            if bool(cover_bad):
                raise ValueError(f"{msg_cover} Got [{float(times[0])}, {float(times[-1])}].")
        else:
            times = eqx.error_if(times, sorted_bad, msg_sorted)
            times = eqx.error_if(times, cover_bad, msg_cover)
        return diffrax.LinearInterpolation(ts=times, ys=values)
    if isinstance(inputs, diffrax.AbstractPath):
        shape = jax.eval_shape(inputs.evaluate, t0).shape
    elif callable(inputs):
        shape = jax.eval_shape(inputs, t0).shape
    else:
        raise TypeError(
            "simulate_smooth: `inputs` must be None, a callable t -> (num_inputs,), a "
            f"diffrax path or a pair (times, values); got {type(inputs).__name__}."
        )
    if shape != (num_inputs,):
        raise ValueError(
            f"simulate_smooth: the input at time t has shape {shape}; expected "
            f"({num_inputs},) for num_inputs={num_inputs}."
        )
    return inputs


def _term(t, y, args):
    model, inputs = args
    return model.vector_field(t, y, inputs)


def simulate_smooth(
    model: SmoothGatedNetwork,
    inputs: InputLike,
    t1: ArrayLike,
    *,
    t0: ArrayLike = 0.0,
    y0: Optional[Float[ArrayLike, "..."]] = None,  # (neurons, 2): checked below
    ts: Optional[Float[ArrayLike, " T"]] = None,
    solver: Optional[diffrax.AbstractSolver] = None,
    stepsize_controller: Optional[diffrax.AbstractStepSizeController] = None,
    adjoint: Optional[diffrax.AbstractAdjoint] = None,
    rtol: RealScalarLike = 1e-8,
    atol: RealScalarLike = 1e-8,
    dt0: Optional[ArrayLike] = None,
    max_steps: int = 16384,
    dense: bool = False,
    throw: bool = True,
) -> SmoothSolution:
    """Integrate a [`spikeode.smooth.SmoothGatedNetwork`][] from `t0` to `t1` with
    `diffrax.diffeqsolve`.

    The model and the input are passed to Diffrax as `args`, so every adjoint
    (`diffrax.RecursiveCheckpointAdjoint`, `diffrax.BacksolveAdjoint`,
    `diffrax.DirectAdjoint`, ...) differentiates with respect to the parameters and to
    array data inside the input (sampled values, a path's arrays).

    **Arguments:**

    - `model`: the network.
    - `inputs`: the input `i(t)`, one of: None (no input); a callable `t ->` array
      `(num_inputs,)` (for `BacksolveAdjoint` it must not close over traced arrays:
      pass data through a path instead); a `diffrax.AbstractPath` (e.g.
      `diffrax.CubicInterpolation`); or samples `(times, values)` with `values` of shape
      `(len(times), num_inputs)`, linearly interpolated (`diffrax.LinearInterpolation`;
      the samples must cover `[t0, t1]`).
    - `t1`: end time (> `t0`).
    - `t0`: start time.
    - `y0`: initial state `(num_neurons, 2)` (columns `theta`, `s`); default
      `model.init_state()` (all zeros).
    - `ts`: save times, sorted, in `[t0, t1]`; default `[t1]`.
    - `solver`: default `diffrax.Tsit5()`.
    - `stepsize_controller`: default `diffrax.PIDController(rtol, atol,
      dtmax=model.max_step())`, wrapped for linearly interpolated input in
      `diffrax.ClipStepSizeController(..., step_ts=sample times)` so that steps end
      at the kinks of the input (without this, finite differences of a solve at rtol
      1e-12 are only accurate to ~1e-6). A custom adaptive controller should also
      bound the step (`dtmax` of the order of `delta * tau_v / 8`): where the phase
      moves almost linearly through the zone (currents near 1) an unbounded step can
      jump over the whole zone without any stage inside it, and the release would be
      lost.
    - `rtol`, `atol`: tolerances of the default controller (ignored if
      `stepsize_controller` is given).
    - `adjoint`: default `diffrax.RecursiveCheckpointAdjoint()`.
    - `dt0`: initial step (default: chosen by the controller; required for a constant
      step).
    - `max_steps`: solver step budget.
    - `dense`: also return the dense solution (for `SmoothSolution.evaluate` and
      [`spikeode.smooth.spike_times`][]); not possible with `BacksolveAdjoint`.
    - `throw`: raise if the solve fails (else see `SmoothSolution.result`).

    **Returns:** a [`spikeode.smooth.SmoothSolution`][].

    Bad arguments raise `ValueError`/`TypeError` (shapes, types, and values when they
    are concrete) or `equinox.EquinoxRuntimeError` (traced values, via
    `equinox.error_if`).
    """
    if not isinstance(model, SmoothGatedNetwork):
        raise TypeError(
            f"simulate_smooth: `model` must be a SmoothGatedNetwork, got {type(model).__name__}."
        )
    model = model.check()
    dtype = model.dtype
    t0 = jnp.asarray(t0, dtype)
    t1 = jnp.asarray(t1, dtype)
    if t0.shape != () or t1.shape != ():
        raise ValueError("simulate_smooth: `t0` and `t1` must be scalars.")
    if _is_concrete(t0, t1):
        if not float(t1) > float(t0):
            raise ValueError(f"simulate_smooth: `t1` must be greater than `t0`; got {t0}, {t1}.")
    else:
        t1 = eqx.error_if(t1, ~(t1 > t0), "simulate_smooth: `t1` must be greater than `t0`.")
    inp = _prepare_input(inputs, model.num_inputs, dtype, t0, t1)

    if y0 is None:
        y0 = model.init_state()
    else:
        y0 = jnp.asarray(y0)
        if y0.shape != (model.num_neurons, 2):
            raise ValueError(
                f"simulate_smooth: `y0` has shape {y0.shape}; expected "
                f"({model.num_neurons}, 2) (columns theta, s)."
            )
        y0 = y0.astype(dtype)

    user_ts = ts is not None
    if user_ts:
        ts = jnp.asarray(ts).astype(dtype)
        if ts.ndim != 1 or ts.shape[0] == 0:
            raise ValueError(
                f"simulate_smooth: `ts` must be 1-D and non-empty, got shape {ts.shape}."
            )
        msg = "simulate_smooth: `ts` must be sorted and inside [t0, t1]."
        bad = jnp.any(jnp.diff(ts) < 0) | (ts[0] < t0) | (ts[-1] > t1) | jnp.any(jnp.isnan(ts))
        if _is_concrete(ts, t0, t1):
            if bool(bad):
                raise ValueError(f"{msg} Got {np.asarray(ts)}.")
        else:
            ts = eqx.error_if(ts, bad, msg)

    solver = diffrax.Tsit5() if solver is None else solver
    if stepsize_controller is None:
        stepsize_controller = diffrax.PIDController(rtol=rtol, atol=atol, dtmax=model.max_step())
        if isinstance(inp, diffrax.LinearInterpolation):
            stepsize_controller = diffrax.ClipStepSizeController(
                stepsize_controller, step_ts=jax.lax.stop_gradient(inp.ts)
            )
    adjoint = diffrax.RecursiveCheckpointAdjoint() if adjoint is None else adjoint
    if dense and isinstance(adjoint, diffrax.BacksolveAdjoint):
        raise ValueError("simulate_smooth: `dense=True` is not possible with BacksolveAdjoint.")
    saveat = diffrax.SaveAt(ts=ts if user_ts else None, t1=True, dense=dense)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(_term),
        solver,
        t0,
        t1,
        dt0,
        y0,
        args=(model, inp),
        saveat=saveat,
        stepsize_controller=stepsize_controller,
        adjoint=adjoint,
        max_steps=max_steps,
        throw=throw,
    )
    ys = sol.ys
    y1 = ys[-1]
    if user_ts:
        ys, save_ts = ys[:-1], ts
    else:
        save_ts = t1[None]
        ys = ys[-1:]
    return SmoothSolution(
        ts=save_ts,
        theta=ys[..., 0],
        s=ys[..., 1],
        outputs=model.outputs(ys),
        y1=y1,
        num_steps=jnp.asarray(sol.stats["num_steps"]),
        result=sol.result,
        solution=sol if dense else None,
    )


# ---------------------------------------------------------------------- spike times
@eqx.filter_jit
def _bisect(solution, lo, hi, neuron, target, iterations):
    def theta_at(t, i):
        return solution.evaluate(t)[i, 0]

    def body(_, carry):
        lo, hi = carry
        mid = 0.5 * (lo + hi)
        below = jax.vmap(theta_at)(mid, neuron) < target
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, iterations, body, (lo, hi))
    return 0.5 * (lo + hi)


def spike_times(
    solution: SmoothSolution, *, level: float = math.pi, iterations: int = 100
) -> list[np.ndarray]:
    """Spike times: the upward crossings of `theta = level + 2 pi k` (default the
    spike, `theta = pi` mod `2 pi`), located on the dense output. Analysis only (NumPy
    output, not differentiable).

    Crossings are bracketed by the solver's step ends and refined by bisection on
    the solver's dense interpolation (to round-off of the interpolant; its accuracy
    is that of the solve). Downward crossings (a phase pushed back through `pi`) are
    not reported.

    **Arguments:**

    - `solution`: from `simulate_smooth(..., dense=True)`.
    - `level`: the phase that counts as the spike.
    - `iterations`: bisection steps.

    **Returns:** one sorted NumPy array of times per neuron.
    """
    if solution.solution is None:
        raise ValueError("spike_times needs simulate_smooth(..., dense=True).")
    sol = solution.solution
    interp = sol.interpolation
    num = int(interp.ts_size)
    grid = np.asarray(interp.ts[:num])
    theta = np.asarray(jax.vmap(sol.evaluate)(jnp.asarray(grid)))[..., 0]  # (num, n)
    cycle = np.floor((theta - level) / _TWO_PI)
    lo, hi, neuron, target = [], [], [], []
    for j, i in zip(*np.nonzero(cycle[1:] > cycle[:-1])):
        for k in range(int(cycle[j, i]) + 1, int(cycle[j + 1, i]) + 1):
            lo.append(grid[j]), hi.append(grid[j + 1]), neuron.append(i)
            target.append(level + _TWO_PI * k)
    n = theta.shape[1]
    if not lo:
        return [np.zeros(0) for _ in range(n)]
    times = np.asarray(
        _bisect(
            sol,
            jnp.asarray(lo),
            jnp.asarray(hi),
            jnp.asarray(neuron),
            jnp.asarray(target),
            iterations,
        )
    )
    neuron = np.asarray(neuron)
    return [np.sort(times[neuron == i]) for i in range(n)]


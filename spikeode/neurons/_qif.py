r"""Quadratic integrate-and-fire neurons in phase form (Klos & Memmesheimer 2025).

The voltage of a QIF neuron, `tau dV/dt = V (V - 1) + drive`, blows up to `+inf` in
finite time: that is the spike, after which `V` restarts at `-inf`. In the phase
`theta`, defined by `V = 1/2 + tan(theta / 2)`, the same dynamics are smooth and
bounded,

$$\tau \dot\theta = (1 - \cos\theta) + (1 + \cos\theta)\,(\mathrm{drive} - 1/4),$$

the spike is the crossing of `theta = pi` (where `dtheta/dt = 2/tau > 0` for every
drive, so spike times are never ill-conditioned) and the reset is `theta = -pi`
(`V = -inf`). Spikes therefore move continuously with the parameters: they cannot
vanish inside the trial, only leave or enter it at its end, which is what
[`spikeode.Pseudodynamics`][] exploits.

Closed-form flows use the linearisation `V - 1/2 = -tau u'/u` of the Riccati equation:
`u'' = -(drive - 1/4) u / tau^2` is linear, a spike is a zero of `u`, and
`(cos(theta/2), sin(theta/2))` is parallel to `(u, -tau u')`.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._base import AbstractFlowNeuron, AbstractPhaseNeuron
from ._params import as_param, check_num_neurons, check_positive, ParamLike

_TAYLOR_COS = (1.0, -1 / 2, 1 / 24, -1 / 720, 1 / 40320, -1 / 3628800)
_TAYLOR_SIN = (1.0, -1 / 6, 1 / 120, -1 / 5040, 1 / 362880, -1 / 39916800)


def _horner(x, coeffs):
    out = jnp.zeros_like(x) + coeffs[-1]
    for c in coeffs[-2::-1]:
        out = out * x + c
    return out


def cos_sin_sqrt(x):
    """`(cos(sqrt(x)), sin(sqrt(x))/sqrt(x))`, continued to `x < 0` as
    `(cosh(sqrt(-x)), sinh(sqrt(-x))/sqrt(-x))`: entire functions of `x`, accurate with
    their derivatives at and near 0."""
    small = jnp.abs(x) < 0.05
    xs = jnp.where(small, x, 0.0)
    xl = jnp.where(small, 1.0, x)
    r = jnp.sqrt(jnp.abs(xl))
    pos = xl > 0
    c = jnp.where(pos, jnp.cos(r), jnp.cosh(r))
    s = jnp.where(pos, jnp.sin(r), jnp.sinh(r)) / r
    return (
        jnp.where(small, _horner(xs, _TAYLOR_COS), c),
        jnp.where(small, _horner(xs, _TAYLOR_SIN), s),
    )


def phase_to_voltage(theta: ArrayLike) -> Array:
    """`V = 1/2 + tan(theta/2)` (`+-inf` at `theta = +-pi`)."""
    return 0.5 + jnp.tan(jnp.asarray(theta) / 2)


def voltage_to_phase(v: ArrayLike) -> Array:
    """`theta = 2 atan(V - 1/2)`, in `[-pi, pi]`."""
    return 2 * jnp.arctan(jnp.asarray(v) - 0.5)


def _uv(theta):
    """`(u, p) = (cos(theta/2), sin(theta/2))`, so that `V - 1/2 = p/u`."""
    return jnp.cos(theta / 2), jnp.sin(theta / 2)


# The phase of (u, p) is read off against the fixed direction at angle _CUT/2, so
# that it is continuous on (_CUT - 2 pi, _CUT + 2 pi) = (-1.1 pi, 2.9 pi): from below
# the reset value -pi (which round-off cannot push across atan2's cut) to past the
# spike at pi. A step must end before a neuron that spiked in it reaches 2.9 pi,
# i.e. before x = V - 1/2 climbs from -inf to tan(0.45 pi) (`_WRAP_X`).
_CUT = 0.9 * np.pi
_WRAP_X = float(np.tan(0.45 * np.pi))
_RU, _RP = float(np.cos(_CUT / 2)), float(np.sin(_CUT / 2))


def _phase(u, p):
    """The phase `theta` in `(-1.1 pi, 2.9 pi)` with `(cos(theta/2), sin(theta/2))`
    parallel to `(u, p)`."""
    return _CUT + 2 * jnp.arctan2(_RU * p - _RP * u, _RU * u + _RP * p)


def _check_drive(name, drive, n):
    """The pseudodynamics drive as a parameter; it must exceed 1/4 (tonic firing)."""
    drive = as_param("drive", drive, n)
    msg = f"{name} pseudodynamics: `drive` must exceed 1/4 so that the neuron fires."
    if isinstance(drive, jax.core.Tracer):
        return eqx.error_if(drive, jnp.any(~(drive > 0.25)), msg)
    if np.any(~(np.asarray(drive) > 0.25)):
        raise ValueError(f"{msg} Got {np.asarray(drive)}.")
    return drive


class _AbstractPhaseForm(AbstractPhaseNeuron):
    """Shared parts of the models in the phase `theta` (`V = 1/2 + tan(theta/2)`,
    state column 0): condition, reset, resting phase, no refractoriness."""

    @property
    def refractory_period(self) -> Float[Array, ""]:
        """None: 0."""
        return jnp.zeros(())

    def condition(self, t, y):
        return y[:, 0] - jnp.pi

    def reset(self, y, fired):
        return y.at[:, 0].set(jnp.where(fired, -jnp.pi, y[:, 0]))

    @staticmethod
    def _resting_phase(n, dtype):
        return jnp.full((n,), voltage_to_phase(0.0), dtype)


class ThetaNeuron(_AbstractPhaseForm, AbstractFlowNeuron):
    r"""Theta neurons with delta-pulse synapses (Klos & Memmesheimer's deep networks):

    $$\tau \dot V = V(V-1) + I_0 + \tau \sum_k w_k \delta(t - t_k),$$

    i.e. a presynaptic spike of weight `w` makes `V` jump by `w`. Integrated exactly
    in the phase `theta` (`V = 1/2 + tan(theta/2)`); state column `(theta,)`. With
    `bias > 1/4` the neuron fires periodically with period
    `tau * pi / sqrt(bias - 1/4)`; below, it is excitable (rest at
    `V = (1 - sqrt(1 - 4 bias))/2`, threshold at `(1 + sqrt(1 - 4 bias))/2`).

    **Arguments** (scalars or per-neuron arrays, all differentiable):

    - `num_neurons`: population size.
    - `tau`: time constant (> 0).
    - `bias`: the constant drive `I_0`.

    The initial state is `V = 0` (`theta = -2 atan(1/2)`).
    """

    num_neurons: int = eqx.field(static=True)
    tau: Float[Array, "..."]
    bias: Float[Array, "..."]

    def __init__(self, num_neurons: int, tau: ParamLike = 1.0, bias: ParamLike = 0.0):
        n = self.num_neurons = check_num_neurons("ThetaNeuron", num_neurons)
        self.tau = check_positive("ThetaNeuron tau", as_param("tau", tau, n))
        self.bias = as_param("bias", bias, n)

    def check(self):
        return eqx.tree_at(lambda m: m.tau, self, check_positive("ThetaNeuron tau", self.tau))

    @property
    def state_size(self) -> int:
        return 1

    def init_state(self):
        dtype = jnp.result_type(self.tau, self.bias)
        return self._resting_phase(self.num_neurons, dtype)[:, None]

    def vector_field(self, t, y, refractory):
        c = jnp.cos(y[:, 0])
        return ((1 - c + (1 + c) * (self.bias - 0.25)) / self.tau)[:, None]

    def flow(self, t0, y0, t1, refractory):
        # (u, p) = (u, -tau u') obeys d/ds (u, p) = (-p, eta u), s = (t - t0)/tau.
        eta = self.bias - 0.25
        s = (t1 - t0) / self.tau
        c, sinc = cos_sin_sqrt(eta * s**2)
        sig = s * sinc
        u0, p0 = _uv(y0[:, 0])
        u = u0 * c - p0 * sig
        p = p0 * c + eta * u0 * sig
        return _phase(u, p)[:, None]

    def safe_step_end(self, t0, y0, t_max, refractory):
        eta = self.bias - 0.25
        pos = eta > 0
        root = jnp.sqrt(jnp.where(pos, eta, jnp.where(eta < 0, -eta, 1.0)))
        # eta > 0: psi = angle of (sqrt(eta) u, p) advances at the rate sqrt(eta)/tau
        # and passes odd multiples of pi/2 with theta/2 (tan(theta/2) = sqrt(eta)
        # tan(psi)). End where theta = 2.75 pi: after the neuron's next spike (so this
        # never ends a segment without a spike), before the phase's range ends.
        half = y0[:, 0] / 2
        psi0 = jnp.arctan2(jnp.sin(half), root * jnp.cos(half))
        a = 0.375 * jnp.pi  # theta/2 = 1.375 pi = a + pi
        psi1 = jnp.arctan2(jnp.sin(a), root * jnp.cos(a)) + jnp.pi
        wrap = t0 + self.tau * (psi1 - psi0) / root
        # eta < 0: no second spike after a first; bound the growth of cosh.
        growth = t0 + 30.0 * self.tau / root
        ends = jnp.where(pos, wrap, jnp.where(eta < 0, growth, jnp.inf))
        return jnp.minimum(t_max, jnp.min(ends))

    def receive(self, y, weights):
        # V -> V + w, i.e. tan(theta/2) -> tan(theta/2) + w (u >= 0 keeps the result
        # in [-pi, pi] also where round-off makes cos(-pi/2) negative).
        u, p = _uv(y[:, 0])
        u = jnp.maximum(u, 0.0)
        return (2 * jnp.arctan2(p + weights * u, u))[:, None]

    def pseudodynamics(self, drive):
        drive = _check_drive("ThetaNeuron", drive, self.num_neurons)
        return eqx.tree_at(lambda m: m.bias, self, drive)


class AbstractQIF(_AbstractPhaseForm):
    r"""Quadratic integrate-and-fire neurons with exponential current synapses
    (Klos & Memmesheimer 2025), in phase form: what [`spikeode.neurons.ClosedFormQIF`][]
    and [`spikeode.neurons.GeneralQIF`][] share (see [`spikeode.QIF`][], which builds
    either).

    $$\tau_m \dot V = V(V - 1) + I + b,\qquad \tau_s \dot I = -I,$$

    a presynaptic spike of weight `w` adds `w` to `I`; a spike is `V` reaching `+inf`,
    after which `V` restarts at `-inf`. Integrated in the phase `theta`
    (`V = 1/2 + tan(theta/2)`); state columns `(theta, I)`. At rest (`b = 0`) `V = 0`;
    `V = 1` is the threshold of the unstable fixed point. The initial state is `V = 0`,
    `I = 0`.
    """

    num_neurons: eqx.AbstractVar[int]
    tau_mem: eqx.AbstractVar[Float[Array, "..."]]
    tau_syn: eqx.AbstractVar[Float[Array, "..."]]
    bias: eqx.AbstractVar[Float[Array, "..."]]

    @property
    def state_size(self) -> int:
        return 2

    def init_state(self):
        dtype = jnp.result_type(self.tau_mem)
        theta = self._resting_phase(self.num_neurons, dtype)
        return jnp.stack([theta, jnp.zeros_like(theta)], axis=1)

    def vector_field(self, t, y, refractory):
        theta, i = y[:, 0], y[:, 1]
        c = jnp.cos(theta)
        dtheta = (1 - c + (1 + c) * (i + self.bias - 0.25)) / self.tau_mem
        return jnp.stack([dtheta, -i / self.tau_syn], axis=1)

    def receive(self, y, weights):
        return y.at[:, 1].add(weights)

    def pseudodynamics(self, drive):
        drive = _check_drive("QIF", drive, self.num_neurons)
        return GeneralQIF(self.num_neurons, self.tau_mem, self.tau_syn, drive)


class ClosedFormQIF(AbstractQIF, AbstractFlowNeuron):
    r"""QIF neurons with `tau_syn = tau_mem / 2` and no bias, whose flow has a closed
    form (the linearised equation is Bessel's of order 1/2, whose solutions are
    elementary): [`spikeode.ExactSolver`][] makes spike times exact to round-off.
    `so.QIF(num_neurons, tau_mem)` builds it.

    **Arguments** (scalars or per-neuron arrays, all differentiable):

    - `num_neurons`: population size.
    - `tau_mem`: membrane time constant (> 0).

    `tau_syn` (`tau_mem / 2`) and `bias` (0) are properties, tied to `tau_mem`.
    """

    num_neurons: int = eqx.field(static=True)
    tau_mem: Float[Array, "..."]

    def __init__(self, num_neurons: int, tau_mem: ParamLike = 1.0):
        n = self.num_neurons = check_num_neurons("QIF", num_neurons)
        self.tau_mem = check_positive("QIF tau_mem", as_param("tau_mem", tau_mem, n))

    @property
    def tau_syn(self) -> Float[Array, "..."]:
        """The synaptic time constant, `tau_mem / 2`."""
        return self.tau_mem / 2

    @property
    def bias(self) -> Float[Array, "..."]:
        """The constant drive, 0."""
        return jnp.zeros_like(self.tau_mem)

    def check(self):
        return eqx.tree_at(lambda m: m.tau_mem, self, check_positive("QIF tau_mem", self.tau_mem))

    def flow(self, t0, y0, t1, refractory):
        # In s = (t - t0)/tau_m, u'' = (1/4 - I(s)) u with I(s) = I0 exp(-2 s). The
        # solutions exp(s/2) C(I(s)) and exp(-s/2) S(I(s)), with C(x) = cos(sqrt x),
        # S(x) = sin(sqrt x)/sqrt x, have Wronskian -1; here both are scaled by
        # exp(-s/2) (the phase only needs the direction of (u, p = -u')).
        s = (t1 - t0) / self.tau_mem
        u0, p0 = _uv(y0[:, 0])
        i0 = y0[:, 1]
        c0, s0 = cos_sin_sqrt(i0)
        alpha = u0 * (c0 - s0 / 2) - p0 * s0
        beta = (c0 / 2 + i0 * s0) * u0 + c0 * p0
        i = i0 * jnp.exp(-2 * s)
        c, sn = cos_sin_sqrt(i)
        decay = jnp.exp(-s)
        u = alpha * c + beta * decay * sn
        p = -(alpha * (c / 2 + i * sn) + beta * decay * (sn / 2 - c))
        return jnp.stack([_phase(u, p), i], axis=1)

    def safe_step_end(self, t0, y0, t_max, refractory):
        # I decays monotonically, so eta = I - 1/4 <= max(I0, 0) - 1/4 =: eta_max on
        # the step. By comparison with dx/ds = x^2 + eta_max, going from a spike
        # (x = -inf) to x = _WRAP_X takes at least (pi/2 + atan(X/r))/r, r = sqrt(eta_max).
        eta_max = jnp.maximum(y0[:, 1], 0.0) - 0.25
        pos = eta_max > 0
        r = jnp.sqrt(jnp.where(pos, eta_max, 1.0))
        gap = self.tau_mem * (0.5 * jnp.pi + jnp.arctan(_WRAP_X / r)) / r
        return jnp.minimum(t_max, t0 + jnp.min(jnp.where(pos, gap, jnp.inf)))


class GeneralQIF(AbstractQIF):
    r"""QIF neurons with any synaptic time constant and bias, without a closed-form
    flow: integrated numerically (`diffrax.Tsit5` with tight tolerances by default).
    `so.QIF(num_neurons, tau_mem, tau_syn, bias)` builds it when `tau_syn` or `bias` is
    given; the pseudodynamics of every QIF is one.

    **Arguments** (scalars or per-neuron arrays, all differentiable):

    - `num_neurons`: population size.
    - `tau_mem`: membrane time constant (> 0).
    - `tau_syn`: synaptic time constant (> 0); default `tau_mem / 2` (a parameter of
      its own, not tied to `tau_mem`).
    - `bias`: constant drive `b`.

    Integrated in the unwrapped phase, whose condition crosses zero only upwards, so
    the solver's step-end checks cannot miss a spike (`safe_step_end` is the default).
    """

    num_neurons: int = eqx.field(static=True)
    tau_mem: Float[Array, "..."]
    tau_syn: Float[Array, "..."]
    bias: Float[Array, "..."]

    def __init__(
        self,
        num_neurons: int,
        tau_mem: ParamLike = 1.0,
        tau_syn: ParamLike | None = None,
        bias: ParamLike = 0.0,
    ):
        n = self.num_neurons = check_num_neurons("QIF", num_neurons)
        self.tau_mem = check_positive("QIF tau_mem", as_param("tau_mem", tau_mem, n))
        if tau_syn is None:
            tau_syn = self.tau_mem / 2
        self.tau_syn = check_positive("QIF tau_syn", as_param("tau_syn", tau_syn, n))
        self.bias = as_param("bias", bias, n)

    def check(self):
        tau_mem = check_positive("QIF tau_mem", self.tau_mem)
        tau_syn = check_positive("QIF tau_syn", self.tau_syn)
        return eqx.tree_at(lambda m: (m.tau_mem, m.tau_syn), self, (tau_mem, tau_syn))


def QIF(
    num_neurons: int,
    tau_mem: ParamLike = 1.0,
    tau_syn: ParamLike | None = None,
    bias: ParamLike | None = None,
) -> AbstractQIF:
    r"""Quadratic integrate-and-fire neurons with exponential current synapses
    (Klos & Memmesheimer 2025):

    $$\tau_m \dot V = V(V - 1) + I + b,\qquad \tau_s \dot I = -I,$$

    a presynaptic spike of weight `w` adds `w` to `I`; a spike is `V` reaching `+inf`,
    after which `V` restarts at `-inf`. Integrated in the phase `theta`
    (`V = 1/2 + tan(theta/2)`); state columns `(theta, I)`. At rest (`b = 0`) `V = 0`;
    `V = 1` is the threshold of the unstable fixed point.

    With the defaults `tau_syn = tau_mem / 2` and no bias, the flow has a closed form
    (the linearised equation is Bessel's of order 1/2, whose solutions are elementary)
    and [`spikeode.ExactSolver`][] makes spike times exact to round-off: the model is
    a [`spikeode.neurons.ClosedFormQIF`][]. Passing `tau_syn` or `bias` explicitly
    gives the general model, a [`spikeode.neurons.GeneralQIF`][], integrated
    numerically (`diffrax.Tsit5` with tight tolerances by default). Both are
    [`spikeode.neurons.AbstractQIF`][]s.

    **Arguments** (scalars or per-neuron arrays, all differentiable):

    - `num_neurons`: population size.
    - `tau_mem`: membrane time constant (> 0).
    - `tau_syn`: synaptic time constant (> 0); default `tau_mem / 2` (closed form).
    - `bias`: constant drive `b`; default none (closed form).

    The initial state is `V = 0`, `I = 0`.
    """
    if tau_syn is None and bias is None:
        return ClosedFormQIF(num_neurons, tau_mem)
    return GeneralQIF(num_neurons, tau_mem, tau_syn, 0.0 if bias is None else bias)

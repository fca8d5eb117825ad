"""Losses and regularisers on spike trains and states."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, Real

from ._spikes import SpikeTrain
from .neurons._params import is_concrete as _is_concrete


def first_spike_times(train: SpikeTrain, t_silent: ArrayLike) -> Float[Array, "*batch neurons"]:
    """First spike time of each neuron, with `t_silent` for neurons that did not fire.

    Silent neurons get `t_silent` (typically the end of the trial) as a constant, so
    they receive no gradient; see `first_spike_loss`'s regulariser for one remedy.
    """
    t = train.first_spike_times()
    return jnp.where(jnp.isfinite(t), t, t_silent)


def first_spike_loss(
    train: SpikeTrain,
    label: Int[ArrayLike, "*#batch"],
    *,
    t_silent: ArrayLike,
    tau0: ArrayLike,
    alpha: ArrayLike = 0.0,
    tau1: ArrayLike = 1.0,
) -> Float[Array, "*batch"]:
    """Cross-entropy of first-spike times, the earliest neuron being the prediction
    (Goeltz et al. 2021; Wunderlich & Pehle 2021):

    $$-\\log \\frac{e^{-t_y/\\tau_0}}{\\sum_k e^{-t_k/\\tau_0}}
       + \\alpha\\,(e^{t_y/\\tau_1} - 1),$$

    the second term (optional) rewarding an early spike of the correct neuron.

    **Arguments:**

    - `train`: the output layer's spikes (one sample, or a batch: leading axes).
    - `label`: the correct class (an output neuron index), one per sample.
    - `t_silent`: first-spike time given to silent neurons (e.g. the trial end).
    - `tau0`: temperature of the softmax over `-t`.
    - `alpha`, `tau1`: weight and time scale of the early-spike regulariser.

    **Returns:** the loss, one value per sample (a scalar for one sample).
    """
    label = _check_label("first_spike_loss", label, train.num_neurons)
    t = first_spike_times(train, t_silent)
    loss = _cross_entropy(-t / tau0, label)
    t_label = jnp.take_along_axis(t, jnp.broadcast_to(label, t.shape[:-1])[..., None], -1)
    return loss + alpha * jnp.expm1(t_label[..., 0] / tau1)


def missing_spike_loss(
    train: SpikeTrain,
    v_final: Float[ArrayLike, "*batch neurons"],
    label: Int[ArrayLike, "*#batch"],
    *,
    threshold: ArrayLike = 1.0,
) -> Float[Array, "*batch"]:
    r"""A gradient for a correct output neuron that did not fire: its distance to the
    threshold at the end of the trial,

    $$\max(0,\ \vartheta - v_y(t_1))\quad\text{if neuron } y \text{ is silent, else } 0.$$

    A silent neuron has no spike time, so `first_spike_loss` treats it as firing at
    the constant `t_silent` and gives it no gradient (and the cross-entropy then
    pushes the other neurons later, so that whole outputs can fall silent for
    good). Its final voltage $v_y(t_1)$ (`Simulation.y_final[..., 0]` for `LIF`)
    depends smoothly on the weights, and raising it brings the neuron back to
    threshold. Add it to `first_spike_loss` with a weight.

    **Arguments:**

    - `train`: the output layer's spikes (may be batched: leading axes).
    - `v_final`: the output neurons' voltages at the end of the trial.
    - `label`: the correct class (an output neuron index), one per sample.
    - `threshold`: the firing threshold.

    **Returns:** the loss, one value per sample (a scalar for one sample).
    """
    name = "missing_spike_loss"
    _check_train(name, train)
    label = _check_label(name, label, train.num_neurons)
    v_final = jnp.asarray(v_final)
    if v_final.shape[-1:] != (train.num_neurons,):
        raise ValueError(
            f"{name}: `v_final` has shape {v_final.shape}; expected (..., "
            f"{train.num_neurons}) for {train.num_neurons} neurons."
        )
    silent = train.counts() == 0
    gap = jnp.where(silent, jnp.maximum(0.0, threshold - v_final), 0.0)
    index = jnp.broadcast_to(label, gap.shape[:-1])[..., None]
    return jnp.take_along_axis(gap, index, -1)[..., 0]


def silent_neuron_loss(
    train: SpikeTrain,
    v_final: Float[ArrayLike, "*batch neurons"],  # (batch, neurons): checked below
    *,
    threshold: ArrayLike = 1.0,
) -> Float[Array, ""]:
    r"""A gradient for neurons that fired for no sample of a batch (dead hidden
    neurons): their mean distance to threshold at the end of the trial,

    $$\frac{1}{B N}\sum_{b}\sum_{i\ \mathrm{silent}} \max(0,\ \vartheta - v_{b,i}(t_1)),$$

    where neuron $i$ is silent if it fired for none of the $B$ samples and $N$ is the
    number of neurons. A silent neuron has no spike times, so no loss of spike times
    gives it a gradient and it stays silent for good; its final voltage depends
    smoothly on its input weights, and raising it brings the neuron back (unlike
    count-based activity regularisers, whose gradient is zero). Zero when every
    neuron fired for some sample.

    **Arguments:**

    - `train`: the layer's spikes for a batch (leading axis: samples).
    - `v_final`: the layer's voltages at the end of the trial, shape `(batch,
      neurons)` (`Simulation.y_final[..., 0]` for `LIF`).
    - `threshold`: the firing threshold.

    **Returns:** the loss (a scalar).
    """
    name = "silent_neuron_loss"
    _check_train(name, train)
    v_final = jnp.asarray(v_final)
    counts = train.counts()
    if counts.ndim != 2 or v_final.shape != counts.shape:
        raise ValueError(
            f"{name}: expected a batch of trains, shape (batch, neurons), and `v_final` "
            f"of the same shape; got trains of shape {counts.shape} and `v_final` of "
            f"shape {v_final.shape}."
        )
    silent = jnp.all(counts == 0, axis=0)
    gap = jnp.where(silent, jnp.maximum(0.0, threshold - v_final), 0.0)
    return jnp.mean(gap)


def first_spike_prediction(train: SpikeTrain) -> Int[Array, "*batch"]:
    """Index of the earliest-firing neuron (ties and all-silent: the lowest index)."""
    return jnp.argmin(train.first_spike_times(), axis=-1)


def activity_regulariser(
    counts: Real[ArrayLike, "*batch neurons"],
    *,
    lower: ArrayLike = 0.0,
    lower_weight: ArrayLike = 0.0,
    upper: ArrayLike = jnp.inf,
    upper_weight: ArrayLike = 0.0,
) -> Float[Array, ""]:
    """Zenke & Vogels' (2021) activity regularisers on spike counts `zeta_i`:
    a per-neuron lower bound `lower_weight * mean_i max(0, lower - zeta_i)^2` and a
    population upper bound `upper_weight * max(0, mean_i zeta_i - upper)`.

    Spike counts are piecewise constant in the parameters, so in an exact-gradient
    setting these terms have zero gradient; they are reported as diagnostics, and
    drive learning only through surrogate or pseudo-spike methods.
    """
    counts = jnp.asarray(counts, jnp.result_type(float))
    low = lower_weight * jnp.mean(jnp.maximum(0.0, lower - counts) ** 2)
    high = upper_weight * jnp.maximum(0.0, jnp.mean(counts) - upper)
    return low + high


# ----------------------------------------------------------------------------- helpers
def _check_train(name: str, train) -> None:
    if not isinstance(train, SpikeTrain):
        raise TypeError(f"{name}: expected a SpikeTrain, got {type(train).__name__}.")


def _check_same_neurons(name: str, train: SpikeTrain, target) -> None:
    _check_train(name, target)
    if train.num_neurons != target.num_neurons:
        raise ValueError(
            f"{name}: `train` has {train.num_neurons} neurons but `target` has "
            f"{target.num_neurons}; expected the same population."
        )


def _lead(x: Array, ndim: int) -> Array:
    """`x` with leading axes of length 1 up to `ndim` axes (explicit rank promotion,
    as NumPy broadcasting would do it)."""
    return jnp.reshape(x, (1,) * (ndim - x.ndim) + x.shape)


def _check_scalar(fn: str, arg: str, x: ArrayLike, *, positive: bool) -> Array:
    """`x` as a floating scalar array; a clear error (eagerly when concrete, else via
    `equinox.error_if` inside `jit`) unless it is finite (and positive)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    if x.ndim != 0:
        raise ValueError(f"{fn}: `{arg}` must be a scalar, got shape {x.shape}.")
    what = "positive and finite" if positive else "finite"
    if _is_concrete(x):
        xv = np.asarray(x)
        if not np.isfinite(xv) or (positive and not xv > 0):
            raise ValueError(f"{fn}: `{arg}` must be {what}; got {xv}.")
        return x
    bad = ~jnp.isfinite(x) | ((x <= 0) if positive else False)
    return eqx.error_if(x, bad, f"{fn}: `{arg}` must be {what}.")


def _check_label(name: str, label: ArrayLike, num_classes: int) -> Array:
    """`label` as an integer array with entries in `[0, num_classes)`."""
    label = jnp.asarray(label)
    if not jnp.issubdtype(label.dtype, jnp.integer):
        raise TypeError(f"{name}: `label` must be an integer class index, got {label.dtype}.")
    msg = f"{name}: `label` must lie in [0, {num_classes})"
    if _is_concrete(label):
        lv = np.asarray(label)
        if np.any(lv < 0) or np.any(lv >= num_classes):
            raise ValueError(f"{msg}; got {lv}.")
        return label
    return eqx.error_if(label, jnp.any((label < 0) | (label >= num_classes)), msg + ".")


def _cross_entropy(logits: Array, label: Array) -> Array:
    """`-log softmax(logits)[label]` over the last axis, for any leading batch axes."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    label = jnp.broadcast_to(label, logp.shape[:-1])
    return -jnp.take_along_axis(logp, label[..., None], axis=-1)[..., 0]


# -------------------------------------------------------------- spike-time distances
def spike_time_mse(
    train: SpikeTrain, target: SpikeTrain, *, t_missing: ArrayLike
) -> Float[Array, "*batch"]:
    r"""Mean squared error between the spike times of `train` and those of `target`,
    matched by rank: the $k$-th spike $a_{ik}$ of neuron $i$ is paired with the $k$-th
    target spike $b_{ik}$ of the same neuron. Where one of the two has fewer spikes,
    the unmatched spikes are paired with `t_missing` (e.g. the end of the trial), so
    that the loss is defined, and pulls spikes in or out, when the counts differ:

    $$\frac{1}{P}\sum_i \sum_{k < \max(c_i, d_i)} (\bar a_{ik} - \bar b_{ik})^2,
      \qquad \bar a_{ik} = \begin{cases} a_{ik} & k < c_i \\
      t_\text{missing} & \text{otherwise,}\end{cases}$$

    with $c_i$, $d_i$ the spike counts of neuron $i$ in `train` and `target`,
    $\bar b$ likewise, and $P = \sum_i \max(c_i, d_i)$ the number of pairs (the loss
    is `0` when both trains are empty).

    The gradient reaches the spike times of `train` (and `t_missing`); padding never
    enters the arithmetic. Where a spike count changes the loss jumps: through the
    pairing, and through $P$ (even when a spike enters or leaves at `t_missing`,
    where its own term vanishes).

    **Arguments:**

    - `train`: the spikes to score, e.g. a [`spikeode.Simulation`][]'s `spikes`. May be
      batched (leading axes).
    - `target`: the desired spikes, a `SpikeTrain` with the same `num_neurons` (any
      capacity; batch axes must broadcast against those of `train`).
    - `t_missing`: the time given to the missing partner of an unmatched spike
      (finite).

    **Returns:** the loss, one value per sample (a scalar for unbatched trains).
    """
    name = "spike_time_mse"
    _check_train(name, train)
    _check_same_neurons(name, train, target)
    t_missing = _check_scalar(name, "t_missing", t_missing, positive=False)

    k = max(train.capacity, target.capacity)
    dtype = jnp.result_type(train.times, target.times, t_missing)

    def per_neuron(tr):
        times = tr.to_per_neuron(tr.capacity).astype(dtype)
        pad = [(0, 0)] * (times.ndim - 1) + [(0, k - tr.capacity)]
        times = jnp.pad(times, pad, constant_values=jnp.inf)
        counts = tr.counts()
        # Mask by rank (not by isfinite), so that NaN spike times propagate.
        mask = _lead(jnp.arange(k, dtype=counts.dtype), times.ndim) < counts[..., None]
        return jnp.where(mask, times, t_missing), counts

    a, ca = per_neuron(train)
    b, cb = per_neuron(target)
    # (a batch of trains against one target, or the converse)
    a, b = _lead(a, max(a.ndim, b.ndim)), _lead(b, max(a.ndim, b.ndim))
    ca, cb = _lead(ca, a.ndim - 1), _lead(cb, a.ndim - 1)
    num_pairs = jnp.sum(jnp.maximum(ca, cb), axis=-1)
    total = jnp.sum((a - b) ** 2, axis=(-2, -1))
    return total / jnp.maximum(num_pairs, 1).astype(dtype)


def first_spikes_mse(
    train: SpikeTrain,
    target_times: Float[ArrayLike, "..."],  # (*batch, neurons, k): checked below
) -> Float[Array, "*batch"]:
    r"""Mean squared error between the first `k` spike times of every neuron and
    `target_times[..., i, :]` (Klos & Memmesheimer's spike-time loss):

    $$\frac{1}{N k}\sum_i \sum_{j < k} (t_{ij} - t^*_{ij})^2.$$

    Every neuron must have at least `k` spikes, which
    [`spikeode.Pseudodynamics`][] provides (pseudospikes after the trial end stand in
    for missing spikes); then the loss is continuous in the parameters and a silent
    neuron still gets a gradient. A neuron with fewer than `k` spikes is an error
    (inside `jit` via `equinox.error_if`): simulate the pseudodynamics longer.

    **Arguments:**

    - `train`: the spikes to score (may be batched).
    - `target_times`: target times, shape `(..., num_neurons, k)` (batch axes must
      broadcast against those of `train`).

    **Returns:** the loss, one value per sample.
    """
    name = "first_spikes_mse"
    _check_train(name, train)
    target = jnp.asarray(target_times)
    if target.ndim < 2 or target.shape[-2] != train.num_neurons:
        raise ValueError(
            f"{name}: `target_times` has shape {target.shape}; expected "
            f"(..., {train.num_neurons}, k) for {train.num_neurons} neurons."
        )
    k = target.shape[-1]
    if k > train.capacity:
        raise ValueError(
            f"{name}: {k} target spikes per neuron but the train holds at most "
            f"{train.capacity} spikes."
        )
    times = train.to_per_neuron(train.capacity)[..., :k]
    times = eqx.error_if(
        times,
        jnp.any(train.counts() < k),
        f"{name}: a neuron has fewer than {k} spikes; use Pseudodynamics and simulate "
        "long enough after the trial end.",
    )
    return jnp.mean((times - target) ** 2, axis=(-2, -1))


def van_rossum_distance(
    train: SpikeTrain,
    target: SpikeTrain,
    *,
    tau: ArrayLike,
    t1: ArrayLike | None = None,
) -> Float[Array, "*batch"]:
    r"""Squared van Rossum (2001) distance between `train` and `target`, summed over
    neurons, in closed form.

    Each neuron's spikes are filtered with a causal exponential kernel,
    $f(t) = \sum_i \Theta(t - a_i)\, e^{-(t - a_i)/\tau}$ for `train` and likewise
    $g$ for `target`; the distance is

    $$D^2 = \frac{1}{\tau}\int_{-\infty}^{t_1} (f(t) - g(t))^2\,dt,$$

    summed over neurons (only spikes of the same neuron interact). With this
    normalisation a single unmatched spike contributes `1/2`. With `t1=None` the
    integral runs to infinity and

    $$D^2 = \tfrac12 \sum_{i,j} e^{-|a_i - a_j|/\tau}
           + \tfrac12 \sum_{i,j} e^{-|b_i - b_j|/\tau}
           - \sum_{i,j} e^{-|a_i - b_j|/\tau};$$

    with a finite `t1` each pair term $e^{-|x - y|/\tau}$ becomes
    $e^{-|x - y|/\tau} - e^{-(2t_1 - x - y)/\tau}$ and spikes at or after `t1` are
    left out (this is continuous as a spike leaves the window through `t1`).

    $D^2$ (not $D$) is returned: it is smooth in the spike times except where two
    spikes of the same neuron coincide, where $|x - y|$ has a kink; there (in
    particular at the minimum `train == target`, where the gradient is then zero) the
    symmetric, zero subgradient of $|x - y|$ is used. The diagonal terms $i = j$ are
    constants and are not differentiated. Cost and memory grow as
    `capacity_train * capacity_target` (and the squares of the capacities).
    Rounding may make $D^2$ slightly negative (~1e-16) for nearly identical trains.

    **Arguments:**

    - `train`: the spikes to score (may be batched: leading axes).
    - `target`: a `SpikeTrain` with the same `num_neurons` (any capacity; batch axes
      must broadcast against those of `train`).
    - `tau`: time constant of the kernel (positive).
    - `t1`: end of the integration window, or `None` for the infinite-time form.

    **Returns:** $D^2$, one value per sample (a scalar for unbatched trains).
    """
    name = "van_rossum_distance"
    _check_train(name, train)
    _check_same_neurons(name, train, target)
    tau = _check_scalar(name, "tau", tau, positive=True)
    if t1 is not None:
        t1 = _check_scalar(name, "t1", t1, positive=False)
    dtype = jnp.result_type(train.times, target.times, tau)
    # A finite placeholder for padding (and spikes after t1), applied before any
    # arithmetic: every exponent below is then <= 0 and every gradient finite.
    fill = jnp.zeros((), dtype) if t1 is None else jnp.asarray(t1, dtype)

    def events(tr):
        mask = tr.valid
        if t1 is not None:
            mask = mask & (tr.times < t1)
        return jnp.where(mask, tr.times.astype(dtype), fill), tr.neurons, mask

    def pair_sum(x, y, same):
        (tx, ix, mx), (ty, iy, my) = x, y
        # (a batch of trains against one target, or the converse)
        r = max(tx.ndim, ty.ndim)
        tx, ix, mx, ty, iy, my = (_lead(e, r) for e in (tx, ix, mx, ty, iy, my))
        mask = (ix[..., :, None] == iy[..., None, :]) & mx[..., :, None] & my[..., None, :]
        d = tx[..., :, None] - ty[..., None, :]
        if same:  # the diagonal: |0| = 0 as a constant, no derivative of |x| at 0
            d = jnp.where(jnp.eye(tx.shape[-1], dtype=bool), 0.0, d)
        d = jnp.where(mask, d, 0.0)
        # |d| with the zero subgradient at d == 0 (`jnp.abs` would give +1 there)
        dist = jnp.where(d == 0, 0.0, jnp.abs(d))
        kern = jnp.exp(-dist / tau)
        if t1 is not None:
            kern = kern - jnp.exp(-((t1 - tx)[..., :, None] + (t1 - ty)[..., None, :]) / tau)
        return jnp.sum(jnp.where(mask, kern, 0.0), axis=(-2, -1))

    a, b = events(train), events(target)
    aa, bb, ab = pair_sum(a, a, True), pair_sum(b, b, True), pair_sum(a, b, False)
    r = ab.ndim
    return 0.5 * _lead(aa, r) + 0.5 * _lead(bb, r) - ab


# ----------------------------------------------------------------- max-over-time readout
def max_voltage_loss(
    ys: Float[ArrayLike, "*batch save neurons state"] | None,  # None: a clear error
    label: Int[ArrayLike, "*#batch"],
    *,
    column: int = 0,
) -> Float[Array, "*batch"]:
    r"""Cross-entropy of a max-over-time readout (Zenke & Vogels 2021): the output of
    neuron $k$ is its largest voltage over the save times, $m_k = \max_s v_k(t_s)$,
    and

    $$-\log \frac{e^{m_y}}{\sum_k e^{m_k}}.$$

    The maximum is taken over the grid of save times (pass a dense `save_ts` to
    [`spikeode.simulate`][]), so the loss is piecewise smooth in the parameters: its
    gradient flows through the state at the arg-max save time and is exact wherever
    that arg-max does not change. States are recorded before jumps, so the voltage
    of a neuron that fires is reset at its spikes and its maximum stays below the
    threshold; this readout is usually applied to a non-spiking output layer
    (e.g. a very high threshold).

    **Arguments:**

    - `ys`: states at the save times, `Simulation.ys`, shape
      `(save, neurons, state)` (or with leading batch axes).
    - `label`: the correct class (an output neuron index), one per sample.
    - `column`: the state column holding the voltage (`0` for `LIF`).

    **Returns:** the loss, one value per sample (a scalar for one sample).
    """
    name = "max_voltage_loss"
    v = _voltage(name, ys, column)
    label = _check_label(name, label, v.shape[-1])
    return _cross_entropy(jnp.max(v, axis=-2), label)


def max_voltage_prediction(
    ys: Float[ArrayLike, "*batch save neurons state"] | None, *, column: int = 0
) -> Int[Array, "*batch"]:
    """Index of the neuron with the largest voltage over the save times (ties: the
    lowest index); the prediction matching `max_voltage_loss`."""
    v = _voltage("max_voltage_prediction", ys, column)
    return jnp.argmax(jnp.max(v, axis=-2), axis=-1)


def _voltage(name: str, ys, column: int) -> Array:
    if ys is None:
        raise ValueError(
            f"{name}: `ys` is None; simulate with `save_ts` to record the states."
        )
    ys = jnp.asarray(ys)
    if ys.ndim < 3:
        raise ValueError(
            f"{name}: `ys` must have shape (save, neurons, state), got {ys.shape}."
        )
    if ys.shape[-3] == 0:
        raise ValueError(f"{name}: `ys` holds no save times.")
    if not isinstance(column, int) or not -ys.shape[-1] <= column < ys.shape[-1]:
        raise ValueError(
            f"{name}: `column` must be an int index into the {ys.shape[-1]} state "
            f"columns, got {column!r}."
        )
    return ys[..., column]


# -------------------------------------------------------------------- spike counts
def spike_count_loss(
    train: SpikeTrain, label: Int[ArrayLike, "*#batch"], *, scale: ArrayLike = 1.0
) -> Float[Array, "*batch"]:
    r"""Cross-entropy of the spike counts $c_k$ of the output neurons, the most
    active neuron being the prediction:

    $$-\log \frac{e^{s\,c_y}}{\sum_k e^{s\,c_k}}.$$

    Spike counts are piecewise constant in the parameters, so with exact gradients
    this loss has **zero gradient** with respect to the network (almost everywhere;
    undefined where a count changes). It is meant for evaluation, and for training
    only with surrogate-gradient or pseudo-spike methods that give the counts a
    gradient; for exact-gradient training use a loss of spike times (e.g.
    `first_spike_loss`, `spike_time_mse`) or of the voltage (`max_voltage_loss`).

    **Arguments:**

    - `train`: the output layer's spikes (may be batched: leading axes).
    - `label`: the correct class (an output neuron index), one per sample.
    - `scale`: inverse temperature `s` of the softmax (positive).

    **Returns:** the loss, one value per sample (a scalar for one sample).
    """
    name = "spike_count_loss"
    _check_train(name, train)
    scale = _check_scalar(name, "scale", scale, positive=True)
    label = _check_label(name, label, train.num_neurons)
    dtype = jnp.result_type(train.times, scale)
    return _cross_entropy(scale * train.counts().astype(dtype), label)


def spike_count_prediction(train: SpikeTrain) -> Int[Array, "*batch"]:
    """Index of the neuron with the most spikes (ties, including all-silent: the
    lowest index); the prediction matching `spike_count_loss`."""
    _check_train("spike_count_prediction", train)
    return jnp.argmax(train.counts(), axis=-1)

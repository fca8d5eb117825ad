"""Every bad input gives a clear error: the exception type and a message that names
the problem.

Checks that can only run on concrete values raise `ValueError` at construction or
call time; checks on array values are made with `equinox.error_if`, which raises
`equinox.EquinoxRuntimeError` (eagerly or under `equinox.filter_jit`); under plain
`jax.jit` JAX re-raises it with the original message inside, as
`jax.errors.JaxRuntimeError` or (once the executable has run successfully before)
as `ValueError`, so the type is only pinned down under `filter_jit`.
"""

from __future__ import annotations

import re

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest
from helpers import JitRuntimeErr, RuntimeErr

import spikeode as so

W2 = jnp.ones((2, 2))


def _train(times, ids, num_neurons=2):
    """A SpikeTrain built directly by the constructor (no sorting, no checks)."""
    return so.SpikeTrain(
        jnp.asarray(times, jnp.float64), jnp.asarray(ids, jnp.int32), num_neurons
    )


def _simulate(inputs, model=None, **kw):
    model = so.LIF(2) if model is None else model
    return so.simulate(model, 0.1, inputs, W2, max_spikes=5, **kw)


# ------------------------------------------------------------------ spike buffer overflow

BIAS, TAU = 1.5, 0.02
PERIOD = TAU * np.log(BIAS / (BIAS - 1.0))  # ~ 0.022: 9 spikes in [0, 0.2]


def _overflowing(throw):
    model = so.LIF(1, tau_mem=TAU, bias=BIAS)
    return so.simulate(model, 0.2, max_spikes=3, throw=throw)


def test_overflow_raises():
    with pytest.raises(RuntimeErr, match=r"more than max_spikes=3 spikes.*max_spikes"):
        _overflowing(throw=True)


def test_overflow_flag_without_throw():
    sim = _overflowing(throw=False)
    assert bool(sim.overflow)
    assert bool(sim.result == so.RESULTS.max_spikes_reached)
    times = np.asarray(sim.spikes.times)
    # the buffer holds exactly the first max_spikes spikes, correctly; nothing is NaN
    assert not np.any(np.isnan(times))
    assert int(sim.spikes.num_spikes) == 3
    np.testing.assert_allclose(times, PERIOD * np.arange(1, 4), rtol=0, atol=1e-10)
    np.testing.assert_array_equal(np.asarray(sim.spikes.neurons), 0)
    assert np.all(np.isfinite(np.asarray(sim.y_final)))
    assert np.all(np.isfinite(np.asarray(sim.slopes)))


# ------------------------------------------------------ failures as results (throw=False)


def _result_cases():
    """`(name, simulate kwargs, expected result, error pattern)` for every failure."""
    lif = so.LIF(1, tau_mem=TAU, bias=BIAS)
    syn = so.Synapses.from_dense(jnp.zeros((1, 1)), 0.0)
    delayed = so.Synapses.from_dense(jnp.ones((1, 1)) * 0.01, 0.05)
    bisect = optx.Bisection(rtol=0.0, atol=0.0)  # never converges: a failed root find
    R = so.RESULTS
    return [
        ("spikes-event", dict(model=lif, max_spikes=3, w_rec=syn),
         R.max_spikes_reached, "max_spikes=3"),
        ("per-neuron", dict(model=so.LIF(2, tau_mem=TAU, bias=BIAS), max_spikes=20,
                            loop=so.PerNeuronLoop(2)),
         R.max_spikes_per_neuron_reached, "max_spikes_per_neuron=2"),
        ("pending-coupled", dict(model=lif, max_spikes=20, w_rec=delayed,
                                 loop=so.CoupledLoop(max_pending=1)),
         R.max_pending_reached, "max_pending=1"),
        ("pending-event", dict(model=lif, max_spikes=20, w_rec=delayed,
                               loop=so.EventDrivenLoop(max_pending=1)),
         R.max_pending_reached, "max_pending=1"),
        ("root-coupled", dict(model=lif, max_spikes=20, root_finder=bisect, loop=so.CoupledLoop()),
         R.root_find_failed, "root find"),
        ("root-event", dict(model=lif, max_spikes=20, root_finder=bisect, w_rec=syn),
         R.root_find_failed, "root find"),
        ("segments-coupled", dict(model=lif, max_spikes=20, max_segments=3, loop=so.CoupledLoop()),
         R.max_segments_reached, "max_segments"),
        ("segments-event", dict(model=lif, max_spikes=20, max_segments=3, w_rec=syn),
         R.max_segments_reached, "max_segments"),
        # two neurons firing together (same drive) in one window of room for one spike
        ("window-spikes", dict(model=so.LIF(2, tau_mem=TAU, bias=BIAS), max_spikes=20,
                               w_rec=so.Synapses.from_dense(jnp.zeros((2, 2)), 0.001),
                               loop=so.WindowedLoop(max_window_spikes=1)),
         R.max_window_spikes_reached, "max_window_spikes=1"),
    ]  # fmt: skip


@pytest.mark.parametrize("case", _result_cases(), ids=lambda c: c[0])
def test_failures_as_results(case):
    """Each failure is raised by name (`throw=True`) or returned as its own
    `Simulation.result` (`throw=False`): a full buffer is told apart from a failed
    root find or an exhausted loop; only the last two make spike times NaN."""
    _, kw, expected, pattern = case
    kw = dict(kw)
    model = kw.pop("model")
    sim = so.simulate(model, 0.2, throw=False, **kw)
    assert bool(sim.result == expected), sim.result
    R = so.RESULTS
    buffer = expected in (R.max_spikes_reached, R.max_spikes_per_neuron_reached,
                          R.max_pending_reached)  # fmt: skip
    assert bool(sim.overflow) == (buffer or expected == R.max_window_spikes_reached)
    # a full spike or arrival buffer keeps the spikes up to there; anything else
    # leaves them meaningless (NaN)
    assert np.isnan(np.asarray(sim.spikes.times)).any() == (not buffer)
    with pytest.raises(RuntimeErr, match=pattern):
        so.simulate(model, 0.2, **kw)


def test_successful_result_under_vmap():
    sims = jax.vmap(lambda b: so.simulate(
        so.LIF(1, tau_mem=TAU, bias=b), 0.2, max_spikes=5, throw=False
    ))(jnp.array([BIAS, 0.5]))  # fmt: skip
    np.testing.assert_array_equal(
        np.asarray(sims.result == so.RESULTS.max_spikes_reached), [True, False]
    )
    np.testing.assert_array_equal(np.asarray(sims.result == so.RESULTS.successful),
                                  [False, True])


# ------------------------------------------------------------ NaN or infinite values


@pytest.mark.parametrize(
    "bad, value",
    [("w_in", np.nan), ("w_rec", np.inf), ("synapses", np.nan), ("parameter", np.inf),
     ("y0", np.nan)],
)  # fmt: skip
def test_nonfinite_weights_parameters_state(bad, value):
    """NaN or infinite weights, parameters (also traced ones, as training reaches them)
    or initial states raise an error naming them, in every loop, instead of silently
    giving a network without spikes."""
    inputs = so.SpikeTrain.from_per_neuron([[0.01]], 1)

    @eqx.filter_jit
    def run(x):
        w_in = jnp.ones((1, 2)).at[0, 1].set(x) if bad == "w_in" else jnp.ones((1, 2))
        bias = jnp.full((2,), BIAS).at[1].set(x) if bad == "parameter" else BIAS
        w = jnp.zeros((2, 2)).at[0, 1].set(x if bad in ("w_rec", "synapses") else 0.1)
        w_rec = so.Synapses.from_dense(w, 0.0) if bad == "synapses" else w
        y0 = jnp.zeros((2, 2)).at[1, 0].set(x) if bad == "y0" else None
        model = so.LIF(2, tau_mem=TAU, bias=bias)
        return so.simulate(model, 0.1, inputs, w_in, w_rec=w_rec, y0=y0, max_spikes=10)

    pattern = {"w_in": "`w_in`", "w_rec": "`w_rec`", "synapses": "`w_rec.weight`",
               "parameter": r"the parameter LIF\.bias", "y0": "`y0`"}[bad]  # fmt: skip
    with pytest.raises(RuntimeErr, match=pattern + " has NaN or infinite entries"):
        run(value)
    run(0.5)  # the same function with a finite value runs


# ---------------------------------------------------------------------- input spike times


def test_unsorted_input_times():
    with pytest.raises(RuntimeErr, match="not sorted"):
        _simulate(_train([0.02, 0.01], [0, 1]))
    with pytest.raises(RuntimeErr, match="sorted"):
        _train([0.05, 0.01, 0.03], [1, 0, 0]).validate()


def test_sorted_fixes_unsorted():
    # the error's advice works (and validate does not reject good trains)
    train = _train([0.02, 0.01], [0, 1]).sorted().validate(t0=0.0)
    np.testing.assert_array_equal(np.asarray(train.times), [0.01, 0.02])
    np.testing.assert_array_equal(np.asarray(train.neurons), [1, 0])


def test_input_before_t0():
    with pytest.raises(RuntimeErr, match="must not precede the start time"):
        _simulate(so.SpikeTrain.from_lists([[-0.01, 0.02], []]))
    with pytest.raises(RuntimeErr, match="must not precede the start time"):
        _simulate(so.SpikeTrain.from_lists([[0.01, 0.05], []]), t0=0.03)


def test_nan_input_time():
    with pytest.raises(RuntimeErr, match="NaN"):
        _simulate(_train([0.01, np.nan], [0, 1]))
    with pytest.raises(ValueError, match="finite"):
        so.SpikeTrain.from_lists([[0.01, np.nan], []])
    with pytest.raises(ValueError, match="NaN"):
        so.SpikeTrain.from_per_neuron(np.array([[0.01, np.nan], [0.02, np.inf]]))


def test_infinite_time_of_a_real_spike():
    with pytest.raises(RuntimeErr, match="infinite time"):
        _simulate(_train([0.01, np.inf], [0, 1]))
    with pytest.raises(ValueError, match="finite"):
        so.SpikeTrain.from_lists([[np.inf], []])


@pytest.mark.parametrize("bad_id", [3, 7, -1])
def test_spike_ids_out_of_range(bad_id):
    with pytest.raises(RuntimeErr, match=re.escape("neuron ids must lie in [0, 2)")):
        _simulate(_train([0.01, 0.02], [0, bad_id]))


def test_padding_before_spikes():
    # A padding slot with a finite time (here before a spike) is rejected.
    with pytest.raises(RuntimeErr, match="padding id 2 has a finite time"):
        _simulate(_train([0.01, 0.02], [2, 0]))


def test_spike_train_shape_mismatch():
    with pytest.raises(ValueError, match=re.escape("`neurons` has shape (1,)")):
        so.SpikeTrain(jnp.array([0.01, 0.02]), jnp.array([0], jnp.int32), 2)
    with pytest.raises(ValueError, match="num_neurons"):
        so.SpikeTrain(jnp.array([0.01]), jnp.array([0], jnp.int32), 0)


def test_from_lists_over_capacity():
    with pytest.raises(ValueError, match="3 spikes do not fit into capacity 2"):
        so.SpikeTrain.from_lists([[0.01, 0.02], [0.03]], capacity=2)
    with pytest.raises(ValueError, match="do not fit into capacity 1"):
        so.SpikeTrain.from_per_neuron(np.array([[0.01, 0.02], [np.inf, np.inf]]), capacity=1)


# ------------------------------------------------------------------------ model parameters


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(tau_mem=0.0), r"tau_mem` must be positive"),
        (dict(tau_mem=-0.02), r"tau_mem` must be positive"),
        (dict(tau_syn=-1.0), r"tau_syn` must be positive"),
        (dict(tau_syn=jnp.array([0.005, 0.0])), r"tau_syn` must be positive"),
        (dict(refractory_period=-1e-3), r"refractory_period` must be non-negative"),
        (dict(tau_mem=np.nan), r"tau_mem` contains NaN"),
    ],
)
def test_bad_time_constants_at_construction(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        so.LIF(2, **kwargs)


@pytest.mark.parametrize(
    "kwargs", [dict(v_reset=1.0), dict(v_reset=1.5), dict(v_reset=jnp.array([0.0, 1.0])),
               dict(threshold=-0.5)]
)
def test_reset_not_below_threshold(kwargs):
    with pytest.raises(ValueError, match="`v_reset` must lie below `threshold`"):
        so.LIF(2, **kwargs)


@pytest.mark.parametrize("name", ["tau_mem", "tau_syn", "threshold", "v_reset", "bias",
                                  "refractory_period"])
def test_parameter_of_wrong_length(name):
    value = jnp.full((2,), 0.01 if name != "threshold" else 1.0)
    with pytest.raises(
        ValueError, match=rf"`{name}` has shape \(2,\); expected a scalar or shape \(3,\)"
    ):
        so.LIF(3, **{name: value})


# Invalid parameters reached inside jit (e.g. by training) are caught at run time.
# One compiled function serves all the cases below (same shapes and tree structure).


@eqx.filter_jit
def _simulate_jit(model, inputs):
    return so.simulate(model, 0.1, inputs, W2, max_spikes=5).spikes.times


_GOOD_INPUTS = so.SpikeTrain.from_lists([[0.01], [0.02]])


_PARAMS = ("tau_mem", "tau_syn", "threshold", "v_reset", "bias", "refractory_period")


def _with(**changes):
    """A valid LIF(2) with some parameters replaced (possibly by invalid values).
    Every parameter is set to a strongly typed float64 scalar, so all variants share
    one compilation of `_simulate_jit`."""
    model = so.LIF(2, bias=0.5)
    values = {k: changes.get(k, getattr(model, k)) for k in _PARAMS}
    return eqx.tree_at(
        lambda m: tuple(getattr(m, k) for k in _PARAMS),
        model,
        tuple(jnp.asarray(values[k], jnp.float64) for k in _PARAMS),
    )


def test_jit_baseline_runs():
    times = _simulate_jit(_with(tau_mem=0.01), _GOOD_INPUTS)
    assert times.shape == (5,)
    assert not np.any(np.isnan(np.asarray(times)))


@pytest.mark.parametrize(
    "changes, pattern",
    [
        (dict(tau_mem=-0.01), r"tau_mem` must be positive"),
        (dict(tau_mem=0.0), r"tau_mem` must be positive"),
        (dict(tau_syn=-1.0), r"tau_syn` must be positive"),
        (dict(tau_mem=np.nan), r"tau_mem` must be positive"),
        (dict(refractory_period=-1e-3), r"refractory_period` must be non-negative"),
        (dict(v_reset=1.0), r"`v_reset` must lie below `threshold`"),
    ],
)
def test_bad_parameters_inside_jit(changes, pattern):
    with pytest.raises(RuntimeErr, match=pattern):
        jax.block_until_ready(_simulate_jit(_with(**changes), _GOOD_INPUTS))


@pytest.mark.parametrize(
    "inputs, pattern",
    [
        (_train([0.02, 0.01], [0, 1]), "not sorted"),
        (_train([-0.01, 0.01], [0, 1]), "must not precede the start time"),
        (_train([0.01, np.nan], [0, 1]), "NaN"),
        (_train([0.01, 0.02], [0, 5]), re.escape("neuron ids must lie in [0, 2)")),
    ],
    ids=["unsorted", "before_t0", "nan", "bad_id"],
)
def test_bad_inputs_inside_jit(inputs, pattern):
    with pytest.raises(RuntimeErr, match=pattern):
        jax.block_until_ready(_simulate_jit(_with(tau_mem=0.01), inputs))


def test_spike_id_equal_to_num_neurons_with_a_finite_time():
    # Id 2 in a 2-neuron train is the padding marker, but padding is documented to
    # carry time +inf; a finite time with that id is an out-of-range spike (e.g.
    # 1-based ids) and must not be dropped silently.
    with pytest.raises(RuntimeErr, match="neuron ids|padding"):
        jax.block_until_ready(_simulate_jit(_with(), _train([0.01, 0.02], [0, 2])))


def test_negative_tau_under_plain_jax_jit():
    @jax.jit
    def run(tau):
        model = eqx.tree_at(lambda m: m.tau_mem, so.LIF(2, bias=1.5), tau)
        return so.simulate(model, 0.1, max_spikes=10).spikes.times

    assert np.all(np.isfinite(np.asarray(run(jnp.asarray(0.02)))[:1]))
    with pytest.raises(JitRuntimeErr, match=r"`LIF tau_mem` must be positive"):
        jax.block_until_ready(run(jnp.asarray(-0.02)))


# ---------------------------------------------------------------------- shape mismatches


def test_w_in_wrong_shape():
    inputs = so.SpikeTrain.from_lists([[0.01], [0.02]])
    with pytest.raises(ValueError, match=r"`w_in` has shape \(3, 2\); expected \(2, 3\)"):
        so.simulate(so.LIF(3), 0.1, inputs, jnp.ones((3, 2)), max_spikes=5)
    with pytest.raises(ValueError, match=r"`w_in` has shape \(2,\); expected \(2, 3\)"):
        so.simulate(so.LIF(3), 0.1, inputs, jnp.ones((2,)), max_spikes=5)


def test_missing_w_in():
    with pytest.raises(ValueError, match="without `w_in`"):
        so.simulate(so.LIF(2), 0.1, _GOOD_INPUTS, max_spikes=5)


@pytest.mark.parametrize("shape", [(3,), (2, 2), (3, 2, 1), (2, 3)])
def test_y0_wrong_shape(shape):
    with pytest.raises(ValueError, match=r"`y0` has shape .*; expected \(3, 2\)"):
        so.simulate(so.LIF(3), 0.1, y0=jnp.zeros(shape), max_spikes=5)


def test_w_rec_wrong_shape():
    with pytest.raises(ValueError, match=r"`w_rec` has shape \(3, 2\); expected \(3, 3\)"):
        so.simulate(so.LIF(3), 0.1, w_rec=jnp.zeros((3, 2)), max_spikes=5)


# ------------------------------------------------------------------ other call arguments


def _bad_int(name, value):
    """The error of a capacity `name` that is not a positive int: the library's
    `ValueError`; for a float, the annotations' run-time check of the tests
    (tests/conftest.py) may raise first, a `TypeError` that names the argument."""
    if isinstance(value, int):
        return pytest.raises(ValueError, match=f"`{name}` must be a positive int")
    return pytest.raises(
        (ValueError, TypeError), match=f"`{name}` must be a positive int|parameter '{name}'"
    )


@pytest.mark.parametrize("max_spikes", [0, -1, 2.0])
def test_bad_max_spikes(max_spikes):
    with _bad_int("max_spikes", max_spikes):
        so.simulate(so.LIF(2), 0.1, max_spikes=max_spikes)


@pytest.mark.parametrize(
    "make, name, value",
    [(so.CoupledLoop, "max_pending", 0),
     (so.PerNeuronLoop, "max_spikes_per_neuron", 2.0),
     (so.EventDrivenLoop, "max_pending", -1),
     (so.WindowedLoop, "max_window_spikes", 0),
     (so.WindowedLoop, "max_window_events", 1.5),
     (so.DirectAdjoint, "checkpoints", 0),
     (so.EventPropAdjoint, "checkpoints", -2)],
)  # fmt: skip
def test_bad_loop_and_adjoint_capacities(make, name, value):
    with _bad_int(name, value):
        make(**{name: value})


def test_loop_and_adjoint_of_the_wrong_kind():
    """A string loop (the old API) or a Diffrax adjoint is refused with what to pass
    (or, first, by the annotations' run-time check of the tests, tests/conftest.py,
    with a `TypeError` that names the argument)."""
    with pytest.raises(TypeError, match="`loop` must be a spikeode.AbstractLoop|parameter 'loop'"):
        so.simulate(so.LIF(2), 0.1, max_spikes=5, loop="coupled")
    with pytest.raises(
        TypeError, match=r"DirectAdjoint\(solver_adjoint=...\)|parameter 'adjoint'"
    ):
        so.simulate(so.LIF(2), 0.1, max_spikes=5, adjoint=diffrax.ForwardMode())


def test_t1_not_after_t0():
    with pytest.raises(RuntimeErr, match="`t1` must be greater than `t0`"):
        so.simulate(so.LIF(2), 0.1, t0=0.1, max_spikes=5)


@pytest.mark.parametrize("save_ts", [[0.05, 0.01], [-0.01, 0.05], [0.05, 0.2]])
def test_bad_save_ts(save_ts):
    with pytest.raises(RuntimeErr, match=r"`save_ts` must be sorted and lie in \[t0, t1\]"):
        so.simulate(so.LIF(2), 0.1, max_spikes=5, save_ts=jnp.asarray(save_ts))

"""SpikeTrain conversions, and the event loop with other Diffrax solvers and root
finders."""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest

import spikeode as so


def test_conversions_round_trip():
    lists = [[0.3, 0.1], [], [0.2, 0.25, 0.05]]
    train = so.SpikeTrain.from_lists(lists, capacity=8)
    assert train.capacity == 8 and int(train.num_spikes) == 5
    np.testing.assert_array_equal(np.asarray(train.neurons[:5]), [2, 0, 2, 2, 0])
    assert np.all(np.diff(np.asarray(train.times)[:5]) >= 0)
    np.testing.assert_array_equal(np.asarray(train.counts()), [2, 0, 3])
    np.testing.assert_allclose(np.asarray(train.first_spike_times()), [0.1, np.inf, 0.05])
    per = np.asarray(train.to_per_neuron(3))
    np.testing.assert_allclose(per[0], [0.1, 0.3, np.inf])
    np.testing.assert_allclose(per[1], [np.inf] * 3)
    np.testing.assert_allclose(per[2], [0.05, 0.2, 0.25])
    again = so.SpikeTrain.from_per_neuron(per, capacity=8)
    np.testing.assert_array_equal(np.asarray(again.times), np.asarray(train.times))
    for a, b in zip(train.to_lists(), lists):
        np.testing.assert_allclose(a, sorted(b))
    raster = np.asarray(train.to_raster(0.0, 0.4, 8))  # bins of 0.05
    assert raster.shape == (8, 3) and raster.sum() == 5
    assert raster[1, 2] == 1 and raster[2, 0] == 1 and raster[6, 0] == 1
    back = so.SpikeTrain.from_raster(raster, 0.0, 0.05)
    np.testing.assert_array_equal(np.asarray(back.counts()), [2, 0, 3])
    with pytest.raises(Exception, match="more than 2 spikes"):
        train.to_per_neuron(2)


def test_batched_conversions_and_sorting():
    a = so.SpikeTrain.from_lists([[0.1], [0.2, 0.3]], capacity=4)
    b = so.SpikeTrain.from_lists([[0.05, 0.4], []], capacity=4)
    batch = jax.tree_util.tree_map(lambda x, y: jnp.stack([x, y]), a, b)
    np.testing.assert_array_equal(np.asarray(batch.counts()), [[1, 2], [2, 0]])
    np.testing.assert_allclose(np.asarray(batch.first_spike_times()), [[0.1, 0.2], [0.05, np.inf]])
    shuffled = so.SpikeTrain(a.times[::-1], a.neurons[::-1], 2)
    np.testing.assert_array_equal(np.asarray(shuffled.sorted().times), np.asarray(a.times))
    grad = jax.grad(lambda t: jnp.sum(so.SpikeTrain(t, a.neurons, 2).first_spike_times()))(a.times)
    np.testing.assert_allclose(np.asarray(grad), [1, 1, 0, 0])


def _input_driven():
    rng = np.random.default_rng(5)
    inputs = so.SpikeTrain.from_per_neuron(np.sort(rng.uniform(0, 0.05, (6, 3)), axis=1))
    w_in = jnp.asarray(rng.normal(0.5, 0.5, (6, 4)))
    neuron = so.LIF(4, tau_mem=0.01, tau_syn=0.004, bias=0.8)
    return neuron, inputs, w_in


def test_numerical_solver_and_other_root_finder_agree_with_exact():
    neuron, inputs, w_in = _input_driven()
    # compiled (once per solver and root finder) rather than run op by op
    run = eqx.filter_jit(lambda kw: so.simulate(neuron, 0.08, inputs, w_in, max_spikes=64, **kw))
    exact = run({})
    assert int(exact.spikes.num_spikes) >= 8
    tsit = run(dict(
        solver=diffrax.Tsit5(),
        stepsize_controller=diffrax.PIDController(rtol=1e-11, atol=1e-11, dtmax=1e-3),
    ))  # fmt: skip
    bisect = run(dict(
        root_finder=optx.Bisection(rtol=1e-13, atol=1e-13, expand_if_necessary=True),
    ))  # fmt: skip
    for other, tol in ((tsit, 1e-8), (bisect, 1e-12)):
        np.testing.assert_array_equal(
            np.asarray(other.spikes.neurons), np.asarray(exact.spikes.neurons)
        )
        valid = np.asarray(exact.spikes.valid)
        err = np.max(
            np.abs(np.asarray(other.spikes.times)[valid] - np.asarray(exact.spikes.times)[valid])
        )
        assert err <= tol, err


@pytest.mark.parametrize("neuron", [so.AdaptiveLIF(1), so.ExpIF(1), so.QIF(1, bias=0.5)])
def test_exact_solver_needs_a_flow(neuron):
    # models without the capability (not AbstractFlowNeuron) are refused, by name
    assert not isinstance(neuron, so.AbstractFlowNeuron)
    name = type(neuron).__name__
    with pytest.raises(ValueError, match=f"closed-form.*{name}"):
        so.simulate(neuron, 0.1, max_spikes=2, solver=so.ExactSolver())


def test_exact_solver_as_a_diffrax_solver_matches_the_loop():
    # ExactSolver in a plain diffrax.diffeqsolve with an Event (one step of the flow,
    # Diffrax's root find on its interpolation) finds the loop's first spike.
    from spikeode._segment import neuron_vector_field, SegmentArgs

    neuron = so.LIF(2, tau_mem=0.02, tau_syn=0.005, bias=jnp.array([1.5, 2.0]))
    y0 = neuron.init_state()
    refractory = jnp.zeros(2, bool)
    loop = eqx.filter_jit(lambda neuron: so.simulate(neuron, 0.1, max_spikes=64))(neuron)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(neuron_vector_field), so.ExactSolver(), 0.0, 0.1, None, y0,
        SegmentArgs(neuron, refractory),
        stepsize_controller=diffrax.StepTo(jnp.array([0.0, 0.1])),
        event=diffrax.Event(
            lambda t, y, args, **kw: jnp.max(args.neuron.condition(t, y)),
            root_finder=so.BracketedNewton(), direction=True,
        ),
        saveat=diffrax.SaveAt(t1=True, dense=True),
    )  # fmt: skip
    t_spike = float(sol.ts[-1])
    assert abs(t_spike - float(loop.spikes.times[0])) <= 1e-14
    assert int(loop.spikes.neurons[0]) == 1
    # the dense output is the flow
    t_mid = 0.5 * t_spike
    np.testing.assert_allclose(
        np.asarray(sol.evaluate(t_mid)), np.asarray(neuron.flow(0.0, y0, t_mid, refractory)),
        rtol=1e-14, atol=1e-15,
    )


@pytest.mark.parametrize("guess", ["none", "below", "above", "root", "outside", "nan"])
def test_bracketed_newton_from_a_guess(guess):
    """`find_root` with `BracketedNewton` finds a LIF-like crossing (closed-form root)
    from any starting point: a guess inside the bracket shrinks it first, one outside
    (or NaN) is ignored; a good guess saves iterations."""
    from spikeode._root_finder import find_root

    b, v0, theta, tau = 1.1, 0.0, 1.0, 0.02
    fn = lambda s, _: b - theta - (b - v0) * jnp.exp(-s / tau)  # noqa: E731
    root = tau * np.log((b - v0) / (b - theta))  # 0.0479...
    lower, upper = 0.0, 1.0
    y0 = {"none": upper, "below": root - 5e-3, "above": root + 5e-3, "root": root,
          "outside": 2.0, "nan": np.nan}[guess]  # fmt: skip
    solver = so.BracketedNewton()
    x, ok = jax.jit(lambda y: find_root(solver, fn, y, dict(lower=lower, upper=upper)))(y0)
    assert bool(ok)
    assert abs(float(x) - root) < 1e-15

    def iterations(y):
        f = lambda s, a: (fn(s, a), None)  # noqa: E731
        f_struct = jax.ShapeDtypeStruct((), jnp.float64)
        opts = dict(lower=lower, upper=upper)
        state = solver.init(f, jnp.asarray(y), None, opts, f_struct, None, frozenset())
        for k in range(100):
            if bool(solver.terminate(f, y, None, opts, state, frozenset())[0]):
                return k
            _, state, _ = solver.step(f, y, None, opts, state, frozenset())
        raise AssertionError("no convergence")

    if guess in ("below", "above"):
        assert iterations(y0) < iterations(upper) - 2

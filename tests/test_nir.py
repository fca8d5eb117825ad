"""spikeode.nir: import and export of NIR graphs, spike trains as nir.EventData.

The real NIR files in tests/data/nir/ (provenance and licences in its README.md) are
read as they are; the spikeode networks are written with `nir.write` and read back with
`nir.read`. Every simulation here runs through a few compiled functions shared between
tests (one per network structure)."""

import importlib
import pathlib
import sys
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spikeode as so
from spikeode import nn

nir = pytest.importorskip("nir")
from spikeode.nir import (  # noqa: E402  (after the skip when nir is missing)
    from_event_data,
    from_nir,
    NIRConversionError,
    NIRNetwork,
    to_event_data,
    to_nir,
)

DATA = pathlib.Path(__file__).resolve().parent / "data" / "nir"
CONVENTIONS = ["dirac", "jump", ("step", 1e-4)]


def _write_read(graph, tmp_path, name="graph.nir"):
    path = tmp_path / name
    nir.write(path, graph)
    return nir.read(path)


# One compiled function per network structure: every spike train of every layer.
@eqx.filter_jit
def _run(net, inputs, t1):
    return tuple(sim.spikes for sim in net(inputs, t1))


@eqx.filter_jit
def _run_batch(net, inputs, t1):
    return jax.vmap(lambda x: tuple(sim.spikes for sim in net(x, t1)))(inputs)


@eqx.filter_jit
def _voltage(net, inputs, t1, save_ts):
    return net(inputs, t1, save_ts=save_ts)[0].ys[:, :, 0]


def _assert_same_spikes(a, b, *, min_spikes, tol=1e-12):
    """Two tuples of spike trains (one per layer): same neurons in the same order,
    times within `tol`."""
    total = 0
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.neurons, y.neurons)
        valid = np.asarray(x.valid)
        if valid.any():
            assert np.max(np.abs(np.asarray(x.times)[valid] - np.asarray(y.times)[valid])) < tol
        total += int(valid.sum())
    assert total > min_spikes
    return total


def _assert_same_params(a, b, rtol):
    """Same structure; every leaf equal (`rtol=0`) or within `rtol`."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        if rtol == 0:
            np.testing.assert_array_equal(x, y)
        else:
            np.testing.assert_allclose(x, y, rtol=rtol, atol=0)


# --------------------------------------------------------------------- the module
def test_import_error_without_nir(monkeypatch):
    monkeypatch.setitem(sys.modules, "nir", None)  # `import nir` raises ImportError
    monkeypatch.delitem(sys.modules, "spikeode.nir")
    with pytest.raises(ImportError, match=r"pip install spikeode\[nir\]"):
        importlib.import_module("spikeode.nir")


# ----------------------------------------------------------------- real NIR files
def _braille_weights(path):
    """The braille file's arrays in float64, straight from `nir.read`."""
    g = nir.read(path)
    nodes = dict(g.nodes)
    if "lif1" in nodes and isinstance(nodes["lif1"], nir.NIRGraph):
        sub = nodes["lif1"].nodes
        lif1, rec = sub["lif1"], sub["lin"]
    else:
        lif1, rec = nodes["lif1.lif"], nodes["lif1.w_rec"]
    f = lambda x: np.asarray(x, np.float64)
    bias = lambda node: f(node.bias) if isinstance(node, nir.Affine) else 0.0
    return dict(
        W1=f(nodes["fc1"].weight), b1=bias(nodes["fc1"]), Wr=f(rec.weight), br=bias(rec),
        W2=f(nodes["fc2"].weight), b2=bias(nodes["fc2"]), lif1=lif1, lif2=nodes["lif2"],
    )


@pytest.mark.parametrize("name", ["braille_noDelay_bias_zero", "braille_noDelay_noBias_subtract"])
def test_braille_imports(name):
    kappa = 1e-4
    flat = from_nir(DATA / f"{name}.nir", max_spikes=64, spike_convention=("step", kappa))
    sub = from_nir(
        DATA / f"{name}_subgraph.nir", max_spikes=64, spike_convention=("step", kappa)
    )
    assert bool(eqx.tree_equal(flat, sub))  # recurrence flat or as a subgraph
    hidden, out = flat.layers
    assert isinstance(hidden, nn.RecurrentLayer) and isinstance(out, nn.SpikingLayer)
    assert isinstance(hidden.neuron, so.LIF) and isinstance(out.neuron, so.LIF)
    ref = _braille_weights(DATA / f"{name}.nir")
    f = lambda x: np.asarray(x, np.float64)
    for layer, node, w, w_rec, b in (
        (hidden, ref["lif1"], ref["W1"], ref["Wr"], ref["b1"] + ref["br"]),
        (out, ref["lif2"], ref["W2"], None, ref["b2"]),
    ):
        r, w_in, tau_s = f(node.r), f(node.w_in), f(node.tau_syn)
        gain = kappa * r * w_in / tau_s
        # w[pre, post] = kappa r w_in W[post, pre] / tau_syn: transposed and scaled
        np.testing.assert_allclose(layer.w_in, (gain[:, None] * w).T, rtol=1e-15)
        if w_rec is not None:
            np.testing.assert_allclose(layer.w_rec, (gain[:, None] * w_rec).T, rtol=1e-15)
        np.testing.assert_array_equal(layer.neuron.tau_syn, tau_s)
        np.testing.assert_array_equal(layer.neuron.tau_mem, f(node.tau_mem))
        np.testing.assert_array_equal(layer.neuron.threshold, f(node.v_threshold))
        np.testing.assert_allclose(layer.neuron.bias, f(node.v_leak) + r * w_in * b, rtol=1e-15)
    assert hidden.w_in.shape == (12, hidden.neuron.num_neurons)
    assert out.w_in.shape == (hidden.neuron.num_neurons, 7)
    if "bias_zero" in name:  # Affine biases (fc1 and w_rec summed): their transient
        i0 = flat.initial_current
        np.testing.assert_allclose(
            i0[0], -f(ref["lif1"].r) * f(ref["lif1"].w_in) * (ref["b1"] + ref["br"]), rtol=1e-15
        )
        np.testing.assert_allclose(
            i0[1], -f(ref["lif2"].r) * f(ref["lif2"].w_in) * ref["b2"], rtol=1e-15
        )
    else:
        assert flat.initial_current == (None, None)


def test_discrete_signature_warning():
    path = DATA / "braille_noDelay_noBias_subtract.nir"
    with pytest.warns(UserWarning, match=r"dt = 0\.0001.*spike_convention=\('step', 0\.0001\)"):
        net = from_nir(path, max_spikes=8)
    # "dirac" was used: a spike of integral 1 is 1e4 times the step's
    step = from_nir(path, max_spikes=8, spike_convention=("step", 1e-4))
    np.testing.assert_allclose(net.layers[0].w_in, 1e4 * step.layers[0].w_in, rtol=1e-14)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_nir(path, max_spikes=8, spike_convention="dirac")  # given: no warning
        from_nir(DATA / "two_lif_neurons.nir", max_spikes=8)  # no discrete signature


def test_two_lif_neurons_shows_the_convention():
    # LIF1 (v_leak 1.2 > threshold 1) fires every tau ln 6; each spike reaches LIF2
    # (threshold 20) through a weight 1: a jump of r W / tau = 100 under "dirac", of
    # dt r W / tau = 0.01 under ("step", 1e-4)
    empty = so.SpikeTrain.empty(1, 1)
    t1 = 0.1
    runs = {}
    for conv in ["dirac", ("step", 1e-4)]:
        net = from_nir(DATA / "two_lif_neurons.nir", max_spikes=16, spike_convention=conv)
        assert all(isinstance(layer.neuron, so.DeltaLIF) for layer in net.layers)
        runs[str(conv)] = [s.to_lists()[0] for s in _run(net, empty, t1)]
    first, second = runs["dirac"]
    period = 0.01 * np.log(6.0)
    np.testing.assert_allclose(first, period * np.arange(1, 6), rtol=1e-12)
    np.testing.assert_array_equal(second, first)  # fires on every input, at once
    first_step, second_step = runs[str(("step", 1e-4))]
    np.testing.assert_array_equal(first_step, first)
    assert second_step.size == 0  # never


def test_lif_norse_imports_as_delta_lif():
    net = from_nir(DATA / "lif_norse.nir", max_spikes=4)  # Affine(1) -> LIF(tau 2.5 ms)
    (layer,) = net.layers
    assert isinstance(layer.neuron, so.DeltaLIF)
    np.testing.assert_allclose(layer.neuron.tau_mem, [2.5e-3], rtol=1e-7)
    np.testing.assert_allclose(layer.neuron.threshold, [0.1], rtol=1e-7)
    # "dirac": a spike through W = 1 moves v by r W / tau = 400
    np.testing.assert_allclose(layer.w_in, [[400.0]], rtol=1e-6)


def test_bad_files_give_clear_errors(tmp_path):
    # Rockpool's file: NIR's own type check refuses its Output of shape (1, 1, 1)
    with pytest.raises(ValueError, match=r"could not read the NIR file .*lif_rockpool.*type"):
        from_nir(DATA / "lif_rockpool.nir", max_spikes=4)
    graph = nir.read(DATA / "lif_rockpool.nir", type_check=False)
    with pytest.raises(ValueError, match=r"'output' \(Output\) has shape \(1, 1, 1\).*\(1,\)"):
        from_nir(graph, max_spikes=4)
    # not an HDF5 file at all
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"this is not HDF5")
    with pytest.raises(ValueError, match="could not read the NIR file"):
        from_nir(bad, max_spikes=4)
    # an edge naming a missing node (as NIR's own broken subgraph files do)
    graph = nir.NIRGraph(
        nodes={
            "in": nir.Input(np.array([2])),
            "w": nir.Linear(weight=np.ones((2, 2))),
            "out": nir.Output(np.array([2])),
        },
        edges=[("in", "w"), ("w", "lif"), ("lif", "out")],
        type_check=False,
    )
    with pytest.raises(ValueError, match=r"names the node 'lif', which the graph does not"):
        from_nir(graph, max_spikes=4)


def test_cnn_names_conv2d():
    with pytest.raises(NIRConversionError, match=r"NIR node '0' \(Conv2d\) is not supported"):
        from_nir(DATA / "cnn_sinabs.nir", max_spikes=4)


# --------------------------------------------------------- hand-built graphs
def _cuba(n=1, **kw):
    p = dict(tau_syn=3e-3, tau_mem=10e-3, r=2.0, v_leak=0.3, v_threshold=1e4, w_in=1.5)
    p.update(kw)
    return nir.CubaLIF(**{k: np.full(n, v, np.float64) for k, v in p.items()})


def _chain(*middle, n_in=1, type_check=True):
    """Input -> middle[0] -> ... -> Output, named n0, n1, ..."""
    nodes = {"input": nir.Input(np.array([n_in]))}
    names = ["input"]
    for k, node in enumerate(middle):
        nodes[f"n{k}"] = node
        names.append(f"n{k}")
    size = int(np.asarray(middle[-1].output_type["output"]).reshape(-1)[0])
    nodes["output"] = nir.Output(np.array([size]))
    names.append("output")
    edges = list(zip(names[:-1], names[1:]))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=type_check)


SAVE_TS = jnp.linspace(0.0005, 0.04, 80)
T_SPIKE = 0.002


@pytest.mark.parametrize("weights", ["Linear", "Affine"])
@pytest.mark.parametrize("conv", CONVENTIONS)
def test_cubalif_psp_matches_closed_form(conv, weights):
    # Input -> Linear(W) or Affine(W, b) -> CubaLIF, one input spike at T_SPIKE; NIR's
    # equations: tau_s dI/dt = -I + w_in (W kappa delta(t - T_SPIKE) + b),
    # tau_m dv/dt = v_leak - v + r I,  from I = v = 0
    W, tau_s, tau_m, r, w_in, v_leak = 0.7, 3e-3, 10e-3, 2.0, 1.5, 0.3
    if weights == "Linear":
        b, node = 0.0, nir.Linear(weight=np.array([[W]]))
    else:  # the bias's transient through the synapse: the initial current
        b, node = 0.2, nir.Affine(weight=np.array([[W]]), bias=np.array([0.2]))
    net = from_nir(_chain(node, _cuba()), max_spikes=4, spike_convention=conv)
    assert (net.initial_current[0] is None) == (weights == "Linear")
    kappa = {"dirac": 1.0, "jump": tau_s}.get(conv, 1e-4)
    t = np.asarray(SAVE_TS)
    s = t - T_SPIKE
    k = tau_s / (tau_s - tau_m)
    decay_m, decay_s = np.exp(-t / tau_m), np.exp(-t / tau_s)
    v_bias = r * w_in * b * ((1 - decay_m) - k * (decay_s - decay_m))
    jump = kappa * w_in * W / tau_s  # of I, at T_SPIKE
    v_psp = np.where(s > 0, r * jump * k * (np.exp(-s / tau_s) - np.exp(-s / tau_m)), 0.0)
    expected = v_leak * (1 - np.exp(-t / tau_m)) + v_bias + v_psp
    inputs = so.SpikeTrain.from_lists([[T_SPIKE]])
    v = np.asarray(_voltage(net, inputs, 0.04, SAVE_TS))[:, 0]
    np.testing.assert_allclose(v, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("conv", CONVENTIONS)
def test_delta_lif_and_if_jumps_match_closed_form(conv):
    # LIF: tau dv/dt = v_leak - v + r (W x + b); IF: dv/dt = r (W x + b), in a file
    # whose time unit is the millisecond (time_scale 1e-3)
    W, b, tau, r, v_leak = 0.7, 0.2, 10.0, 2.0, 0.3
    kappa = {"dirac": 1.0}.get(str(conv), 1e-4)
    t = np.asarray(SAVE_TS)
    s = t - T_SPIKE
    affine = nir.Affine(weight=np.array([[W]]), bias=np.array([b]))
    one = lambda v: np.array([v], np.float64)
    lif = nir.LIF(tau=one(tau), r=one(r), v_leak=one(v_leak), v_threshold=one(100.0))
    net = from_nir(_chain(affine, lif), max_spikes=4, spike_convention=conv, time_scale=1e-3)
    kappa_lif = tau if conv == "jump" else kappa
    tau_s = tau * 1e-3
    expected = (v_leak + r * b) * (1 - np.exp(-t / tau_s)) + np.where(
        s > 0, kappa_lif * r * W / tau * np.exp(-s / tau_s), 0.0
    )
    inputs = so.SpikeTrain.from_lists([[T_SPIKE]])
    v = np.asarray(_voltage(net, inputs, 0.04, SAVE_TS))[:, 0]
    np.testing.assert_allclose(v, expected, rtol=1e-12, atol=1e-14)
    if_node = nir.IF(r=one(r), v_threshold=one(100.0))
    net = from_nir(_chain(affine, if_node), max_spikes=4, spike_convention=conv, time_scale=1e-3)
    assert isinstance(net.layers[0].neuron, so.DeltaIF)
    kappa_if = 1.0 if conv == "jump" else kappa
    expected = r * b * t / 1e-3 + np.where(s > 0, kappa_if * r * W, 0.0)
    v = np.asarray(_voltage(net, inputs, 0.04, SAVE_TS))[:, 0]
    np.testing.assert_allclose(v, expected, rtol=1e-12, atol=1e-14)


def test_unsupported_graphs_name_the_node():
    lin = lambda o, i: nir.Linear(weight=np.ones((o, i)))
    # a Delay node
    delay = nir.Delay(delay=np.ones(1))
    with pytest.raises(NIRConversionError, match=r"'n0' \(Delay\) is not supported"):
        from_nir(_chain(delay, lin(1, 1), _cuba()), max_spikes=4)
    # a weighted (analog) output
    with pytest.raises(NIRConversionError, match=r"Output 'output' receives 'n1' through"):
        from_nir(_chain(lin(1, 1), _cuba(), lin(1, 1)), max_spikes=4)
    # a population feeding two others (branching)
    nodes = {
        "input": nir.Input(np.array([1])), "w0": lin(1, 1), "a": _cuba(), "w1": lin(1, 1),
        "b": _cuba(), "w2": lin(1, 1), "c": _cuba(),
        "o1": nir.Output(np.array([1])), "o2": nir.Output(np.array([1])),
    }
    edges = [("input", "w0"), ("w0", "a"), ("a", "w1"), ("w1", "b"), ("a", "w2"),
             ("w2", "c"), ("b", "o1"), ("c", "o2")]
    with pytest.raises(NIRConversionError, match=r"2 Output nodes"):
        from_nir(nir.NIRGraph(nodes=nodes, edges=edges), max_spikes=4)
    del nodes["o2"]
    edges = edges[:-1] + [("c", "b")]
    with pytest.raises(NIRConversionError, match=r"'a' \(CubaLIF\) feeds \['b', 'c'\]"):
        from_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), max_spikes=4)
    # a skip connection: the Input feeds two populations
    nodes = {
        "input": nir.Input(np.array([1])), "w0": lin(1, 1), "a": _cuba(), "w1": lin(1, 1),
        "b": _cuba(), "w2": lin(1, 1), "output": nir.Output(np.array([1])),
    }
    edges = [("input", "w0"), ("w0", "a"), ("a", "w1"), ("w1", "b"), ("input", "w2"),
             ("w2", "b"), ("b", "output")]
    with pytest.raises(NIRConversionError, match=r"'input' \(Input\) feeds \['a', 'b'\]"):
        from_nir(nir.NIRGraph(nodes=nodes, edges=edges), max_spikes=4)
    # weight shapes that disagree with the population
    with pytest.raises(ValueError, match=r"'n1' \(CubaLIF\) has 1 neurons but its input"):
        from_nir(_chain(lin(2, 1), _cuba(), type_check=False), max_spikes=4)


def test_bad_arguments():
    graph = _chain(nir.Linear(weight=np.ones((1, 1))), _cuba())
    for conv in ["step", ("step", 0.0), ("step", float("nan")), ("euler", 1e-4), "Dirac"]:
        with pytest.raises(ValueError, match=r"`spike_convention` must be 'dirac', 'jump'"):
            from_nir(graph, max_spikes=4, spike_convention=conv)
    with pytest.raises(ValueError, match="`time_scale` must be a finite number > 0"):
        from_nir(graph, max_spikes=4, time_scale=0.0)
    with pytest.raises(ValueError, match=r"`max_spikes` has 2 entries for 1 layers"):
        from_nir(graph, max_spikes=[4, 4])
    bad = _chain(nir.Linear(weight=np.ones((1, 1))), _cuba(v_reset=2e4))
    with pytest.raises(ValueError, match=r"'n1' \(CubaLIF\): LIF: `v_reset` must lie below"):
        from_nir(bad, max_spikes=4)
    with pytest.raises(ValueError, match=r"'n1' \(CubaLIF\): `tau_syn` must be > 0"):
        from_nir(_chain(nir.Linear(weight=np.ones((1, 1))), _cuba(tau_syn=0.0)), max_spikes=4)


# ------------------------------------------------------------------- export
def _per(n, lo, hi):
    return jnp.linspace(lo, hi, n)


def _lif(n):
    return so.LIF(
        n,
        tau_mem=_per(n, 8e-3, 20e-3),
        tau_syn=_per(n, 2e-3, 6e-3),
        threshold=_per(n, 0.8, 1.2),
        v_reset=_per(n, -0.2, 0.1),
        bias=_per(n, 0.1, 0.5),
    )


def _lif_network():
    k = jax.random.split(jax.random.key(1), 3)
    layers = [
        nn.RecurrentLayer(3, 6, max_spikes=64, neuron=_lif(6), w_mean=2.0, w_std=1.0,
                          w_rec_mean=-0.1, w_rec_std=0.3, key=k[0]),
        nn.SpikingLayer(6, 4, max_spikes=64, neuron=_lif(4), w_mean=1.5, w_std=1.0, key=k[1]),
        nn.RecurrentLayer(4, 3, max_spikes=64, neuron=_lif(3), w_mean=2.0, w_std=1.0,
                          w_rec_std=0.3, key=k[2]),
    ]
    return NIRNetwork(tuple(layers), (None,) * 3)


def _delta_network():
    k = jax.random.split(jax.random.key(2), 2)
    first = so.DeltaLIF(
        5, tau_mem=_per(5, 5e-3, 15e-3), threshold=_per(5, 0.9, 1.1),
        v_reset=_per(5, -0.1, 0.1), bias=_per(5, 0.2, 0.6),
    )
    second = so.DeltaIF(3, threshold=_per(3, 0.8, 1.0), v_reset=_per(3, -0.1, 0.0),
                        bias=_per(3, 20.0, 40.0))
    layers = [
        nn.SpikingLayer(3, 5, max_spikes=64, neuron=first, w_mean=0.4, w_std=0.3, key=k[0]),
        nn.RecurrentLayer(5, 3, max_spikes=64, neuron=second, w_mean=0.3, w_std=0.1,
                          w_rec_mean=-0.1, w_rec_std=0.05, key=k[1]),
    ]
    return NIRNetwork(tuple(layers), (None,) * 2)


NETWORKS = {"lif": _lif_network, "delta": _delta_network}
T1 = 0.06
INPUTS = so.SpikeTrain.from_lists(
    [np.sort(np.random.default_rng(k).uniform(0.0, T1, 8)) for k in range(3)]
)
_REFERENCE = {}


def _reference(kind):
    """The original network and its spike trains (computed once)."""
    if kind not in _REFERENCE:
        net = NETWORKS[kind]()
        _REFERENCE[kind] = net, _run(net, INPUTS, T1)
    return _REFERENCE[kind]


@pytest.mark.parametrize("recurrent", ["flat", "subgraph"])
@pytest.mark.parametrize("conv", CONVENTIONS)
@pytest.mark.parametrize("kind", ["lif", "delta"])
def test_round_trip(kind, conv, recurrent, tmp_path):
    net, spikes = _reference(kind)
    graph = _write_read(to_nir(net, spike_convention=conv, recurrent=recurrent), tmp_path)
    if recurrent == "subgraph":
        assert any(isinstance(node, nir.NIRGraph) for node in graph.nodes.values())
    assert graph.metadata["spike_convention"] == (conv if isinstance(conv, str) else "step")
    back = from_nir(graph, max_spikes=64, spike_convention=conv)
    # parameters: bit for bit under "dirac" and "jump" (the gains are exactly 1); the
    # step profile's gains dt (tau_m/dt)(tau_s/dt)(dt/tau_m)/tau_s are 1 to rounding
    _assert_same_params(net, back, 0 if isinstance(conv, str) else 1e-15)
    _assert_same_spikes(spikes, _run(back, INPUTS, T1), min_spikes=30)


def test_round_trip_with_time_scale(tmp_path):
    net, spikes = _reference("lif")
    graph = _write_read(to_nir(net, time_scale=1e-3), tmp_path)  # milliseconds
    np.testing.assert_allclose(
        graph.nodes["layer1"].tau_mem, 1e3 * np.asarray(net.layers[1].neuron.tau_mem), rtol=1e-15
    )
    assert graph.metadata["time_scale"] == 1e-3
    back = from_nir(graph, max_spikes=64, time_scale=1e-3)
    _assert_same_params(net, back, 1e-15)
    _assert_same_spikes(spikes, _run(back, INPUTS, T1), min_spikes=30)


def test_export_sequential_and_layers():
    net, _ = _reference("lif")
    a = to_nir(nn.Sequential(net.layers))
    b = to_nir(net)
    assert sorted(a.nodes) == sorted(b.nodes) and a.edges == b.edges
    single = to_nir(net.layers[1])
    assert sorted(single.nodes) == ["input", "layer0", "layer0_in", "output"]
    weight = single.nodes["layer0_in"].weight
    np.testing.assert_array_equal(weight, np.asarray(net.layers[1].w_in).T)
    # canonical Dirac profile: r = 1, w_in = tau_syn, v_leak = bias
    node = single.nodes["layer0"]
    np.testing.assert_array_equal(node.r, np.ones(4))
    np.testing.assert_array_equal(node.w_in, np.asarray(net.layers[1].neuron.tau_syn))
    np.testing.assert_array_equal(node.v_leak, np.asarray(net.layers[1].neuron.bias))


def test_alpha_if_exports_as_equivalent_lif(tmp_path):
    tau = jnp.array([2e-3, 3e-3, 5e-3])
    layer = nn.SpikingLayer(
        3, 3, max_spikes=32, neuron=so.AlphaIF(3, tau=tau, threshold=0.5),
        w_mean=100.0, w_std=25.0, key=jax.random.key(3),
    )
    back = from_nir(_write_read(to_nir(layer), tmp_path), max_spikes=32)
    (lif,) = back.layers
    assert isinstance(lif.neuron, so.LIF)
    np.testing.assert_array_equal(lif.neuron.tau_mem, tau)
    np.testing.assert_array_equal(lif.neuron.tau_syn, tau)
    np.testing.assert_allclose(lif.w_in, layer.w_in * tau[None, :], rtol=1e-15)
    _assert_same_spikes(
        _run(NIRNetwork((layer,), (None,)), INPUTS, T1), _run(back, INPUTS, T1), min_spikes=5
    )


def test_export_errors_name_the_layer():
    key = jax.random.key(0)
    lif = so.LIF(2, refractory_period=1e-3)
    with pytest.raises(NIRConversionError, match=r"layer 0 \(SpikingLayer\).*refractory"):
        to_nir(nn.SpikingLayer(2, 2, max_spikes=4, neuron=lif, key=key))
    qif = nn.SpikingLayer(2, 2, max_spikes=4, neuron=so.QIF(2), key=key)
    ok = nn.SpikingLayer(2, 2, max_spikes=4, key=key)
    with pytest.raises(NIRConversionError, match=r"layer 1 .*QIF.*no quadratic"):
        to_nir(nn.Sequential([ok, qif]))
    for model, what in [
        (so.AdaptiveLIF(2), "adaptive"),
        (so.ExpIF(2), "exponential"),
        (so.ThetaNeuron(2), "theta"),
        (so.ExcInhLIF(2), "two synaptic currents"),
        (so.NonLeakyIF(2), "non-leaky"),
    ]:
        with pytest.raises(NIRConversionError, match=what):
            to_nir(nn.SpikingLayer(2, 2, max_spikes=4, neuron=model, key=key))
    with pytest.raises(NIRConversionError, match="input delays"):
        to_nir(nn.SpikingLayer(2, 2, max_spikes=4, input_delays=1e-3, key=key))
    with pytest.raises(NIRConversionError, match="recurrent delays"):
        to_nir(nn.RecurrentLayer(2, 2, max_spikes=4, delays=1e-3, key=key))
    with pytest.raises(NIRConversionError, match="FirstSpikeLayer"):
        to_nir(nn.FirstSpikeLayer(2, 2, key=key))
    with pytest.raises(ValueError, match="`recurrent` must be"):
        to_nir(ok, recurrent="nested")
    with pytest.raises(ValueError, match="no layers"):
        to_nir(nn.Sequential([]))


def test_nir_network_checks():
    net, _ = _reference("lif")
    assert isinstance(net.sequential, nn.Sequential) and net.sequential.layers == net.layers
    with pytest.raises(ValueError, match=r"3 layers but 2 initial currents"):
        NIRNetwork(net.layers, (None, None))
    with pytest.raises(ValueError, match=r"layer 1's initial current has shape \(3,\)"):
        NIRNetwork(net.layers, (None, jnp.zeros(3), None))
    with pytest.raises(TypeError, match="`y0` is set per layer"):
        net(INPUTS, T1, y0=jnp.zeros((6, 2)))


# ------------------------------------------------------------------- spike data
def test_event_data_round_trip(tmp_path):
    trains = [
        so.SpikeTrain.from_lists([[0.1, 0.3], [0.2], []], capacity=5),
        so.SpikeTrain.from_lists([[], [0.05], [0.05, 0.4]], capacity=5),
    ]
    batch = jax.tree.map(lambda *x: jnp.stack(x), *trains)
    data = to_event_data(batch, t_max=0.5)
    assert data.idx.shape == (2, 5) and data.n_neurons == 3 and data.t_max == 0.5
    np.testing.assert_array_equal(data.idx[0], [0, 1, 0, -1, -1])
    assert np.all(np.isinf(data.time[data.idx < 0]))
    graph_data = nir.NIRGraphData(nodes={"layer0": nir.NIRNodeData({"spikes": data})})
    nir.write_data(tmp_path / "spikes.h5", graph_data)
    read = nir.read_data(tmp_path / "spikes.h5").nodes["layer0"].observables["spikes"]
    back = from_event_data(read, capacity=5)
    assert bool(eqx.tree_equal(back, batch))
    one = to_event_data(trains[1], t_max=0.5)  # unbatched: one sample
    assert one.idx.shape == (1, 5)
    # unsorted events are sorted; the capacity defaults to the fullest sample
    shuffled = nir.EventData(
        idx=np.array([[2, 0, -1]]), time=np.array([[0.3, 0.1, np.inf]]), n_neurons=3, t_max=1.0
    )
    train = from_event_data(shuffled)
    np.testing.assert_array_equal(train.times, [[0.1, 0.3]])
    np.testing.assert_array_equal(train.neurons, [[0, 2]])
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 3\)"):
        from_event_data(nir.EventData(np.array([[3]]), np.array([[0.1]]), 3, 1.0))
    with pytest.raises(ValueError, match="more than capacity 1"):
        from_event_data(shuffled, capacity=1)


# --------------------------------------- exact reference for a discrete peer (item 4)
BRAILLE = DATA / "braille_noDelay_bias_zero.nir"
GRID = 1e-4  # the discrete peers' step (the file's dt signature), and the input grid
T_BRAILLE = 0.02


def _poisson_patterns(num, seed, rate=100.0):
    """Input rasters `[pattern, step, input]` of Poisson spikes on the 1e-4 grid."""
    steps = int(round(T_BRAILLE / GRID))
    return np.random.default_rng(seed).random((num, steps, 12)) < rate * GRID


def _as_trains(raster):
    times = np.where(raster, (np.arange(raster.shape[1]) * GRID)[None, :, None], np.inf)
    capacity = int(raster.sum(axis=(1, 2)).max())
    trains = [so.SpikeTrain.from_per_neuron(t.T, capacity=capacity) for t in times]
    return jax.tree.map(lambda *x: jnp.stack(x), *trains)


def _euler_braille(raster, h, kappa=GRID):
    """NIR's discrete semantics for the braille graph, straight from the file: forward
    Euler of the CubaLIF equations with step `h` (NIR's reference implementation,
    paper/03_rnn/extras/debug_CubaLIF/nir_reference_impl.py, with reset to v_reset),
    a spike of integral `kappa` as a value `kappa / h` held for one step, the recurrent
    spikes arriving one step later (as in every discrete peer).

    Returns each layer's spike times `[pattern][neuron]` (the end of the step)."""
    ref = _braille_weights(BRAILLE)
    f = lambda x: np.asarray(x, np.float64)
    pars = [
        {k: f(getattr(ref[name], k))
         for k in ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in")}
        for name in ("lif1", "lif2")
    ]
    m = int(round(GRID / h))
    num = raster.shape[0]
    n1, n2 = ref["W1"].shape[0], ref["W2"].shape[0]
    state = [np.zeros((num, n)) for n in (n1, n1, n2, n2)]  # I1, v1, I2, v2
    z1 = np.zeros((num, n1))
    amp = kappa / h
    events = ([], [])
    for j in range(int(round(T_BRAILLE / h))):
        x1 = ref["b1"] + ref["br"] + amp * (z1 @ ref["Wr"].T)
        if j % m == 0:
            x1 = x1 + amp * (raster[:, j // m, :] @ ref["W1"].T)
        zs = []
        for layer, x in ((0, x1), (1, None)):
            p = pars[layer]
            if x is None:
                x = ref["b2"] + amp * (zs[0] @ ref["W2"].T)
            i_old, v = state[2 * layer], state[2 * layer + 1]
            state[2 * layer] = i_old + h / p["tau_syn"] * (-i_old + p["w_in"] * x)
            v = v + h / p["tau_mem"] * (p["v_leak"] - v + p["r"] * i_old)
            z = v > p["v_threshold"]
            state[2 * layer + 1] = np.where(z, p["v_reset"], v)
            zs.append(z.astype(np.float64))
            if z.any():
                events[layer].append(((j + 1) * h, np.nonzero(z)))
        z1 = zs[0]
    out = []
    for layer, n in ((0, n1), (1, n2)):
        lists = [[[] for _ in range(n)] for _ in range(num)]
        for t, (pattern, neuron) in events[layer]:
            for a, b in zip(pattern, neuron):
                lists[a][b].append(t)
        out.append([[np.array(x) for x in p] for p in lists])
    return out


def _compare(euler, exact, tol=GRID):
    """Spike-count difference, first divergence and first-spike error of two runs.

    - `count`: sum over patterns and neurons of |spike-count difference|, over the
      exact spikes.
    - `first_divergence`: per pattern, the earliest spike (either layer, either run)
      whose counterpart (the same neuron's spike of the same rank in the other run)
      is missing or more than `tol` away (`+inf`: none).
    - `first_spike`: |time difference| of each neuron's first spike (both runs fire).
    """
    layers = []  # per layer: exact spikes, Euler spikes, sum of |count difference|
    first_div = []
    first_spike = []
    for layer_e, layer_x in zip(euler, exact):
        layers.append([0, 0, 0])
        for p, (pe, px) in enumerate(zip(layer_e, layer_x)):
            if len(first_div) <= p:
                first_div.append(np.inf)
            for a, b in zip(pe, px):
                layers[-1][0] += b.size
                layers[-1][1] += a.size
                layers[-1][2] += abs(a.size - b.size)
                k = min(a.size, b.size)
                bad = np.nonzero(np.abs(a[:k] - b[:k]) > tol)[0]
                if bad.size:
                    first_div[p] = min(first_div[p], a[bad[0]], b[bad[0]])
                elif a.size != b.size:
                    first_div[p] = min(first_div[p], (a if a.size > b.size else b)[k])
                if k:
                    first_spike.append(abs(a[0] - b[0]))
    return dict(
        count=sum(x[2] for x in layers) / sum(x[0] for x in layers),
        layers=layers,
        first_divergence=np.array(first_div),
        first_spike=np.array(first_spike),
    )


@pytest.fixture(scope="module")
def braille():
    net = from_nir(BRAILLE, max_spikes=[1500, 4000], spike_convention=("step", GRID))
    return net


def _exact_lists(net, raster, chunk=8):
    """spikeode's exact spike trains `[layer][pattern][neuron]`, in chunks of
    `chunk` patterns (one compiled function for any number of patterns)."""
    out = ([], [])
    for start in range(0, raster.shape[0], chunk):
        part = raster[start: start + chunk]
        spikes = _run_batch(net, _as_trains(part), T_BRAILLE)
        for layer, s in enumerate(spikes):
            for k in range(part.shape[0]):
                out[layer].append(jax.tree.map(lambda x: x[k], s).to_lists())
    return out


def _convergence_table(net, raster):
    exact = _exact_lists(net, raster)
    rows = {}
    for h in (1e-4, 1e-5, 1e-6):
        rows[h] = _compare(_euler_braille(raster, h), exact)
    return rows


def _assert_converges(rows):
    hs = sorted(rows, reverse=True)
    counts = [rows[h]["count"] for h in hs]
    errors = [np.median(rows[h]["first_spike"]) for h in hs]
    divergence = [np.median(rows[h]["first_divergence"]) for h in hs]
    # the discrete peers' dt = 1e-4 is far from exact; the Euler reference approaches
    # the exact trains as h shrinks: first spikes to first order in h, counts and the
    # first divergence steadily
    assert counts[0] > 0.3
    assert counts[0] > counts[1] > counts[2] and counts[2] < 0.1
    assert errors[0] > 5 * errors[1] > 25 * errors[2]
    assert errors[2] < 2e-6
    assert divergence[0] < divergence[1] < divergence[2]


def test_braille_exact_reference_for_a_discrete_peer(braille):
    rows = _convergence_table(braille, _poisson_patterns(8, seed=0))
    _assert_converges(rows)


def test_braille_round_trip_with_affine_biases(braille, tmp_path):
    # the Affine biases' transient (initial current) survives export and import
    assert all(i0 is not None for i0 in braille.initial_current)
    graph = _write_read(to_nir(braille, spike_convention=("step", GRID)), tmp_path)
    assert isinstance(graph.nodes["layer0_in"], nir.Affine)
    back = from_nir(graph, max_spikes=[1500, 4000], spike_convention=("step", GRID))
    _assert_same_params(braille, back, 1e-15)
    inputs = _as_trains(_poisson_patterns(8, seed=0))
    _assert_same_spikes(
        _run_batch(braille, inputs, T_BRAILLE), _run_batch(back, inputs, T_BRAILLE),
        min_spikes=10000,
    )


@pytest.mark.slow
def test_braille_exact_reference_few_hundred_patterns(braille):
    rows = _convergence_table(braille, _poisson_patterns(300, seed=1))
    hidden, output = rows[1e-6]["layers"]
    print(f"\nexact spikes: hidden {hidden[0]}, output {output[0]} (300 patterns)")
    print("h      | Euler spikes hidden, output | sum |count diff| / exact: hidden, output, "
          "all | first divergence median, min | first-spike |dt| median, p90")
    for h, row in rows.items():
        (hx, he, hd), (ox, oe, od) = row["layers"]
        fd, fs = row["first_divergence"], row["first_spike"]
        print(
            f"{h:<6g} | {he}, {oe} | {hd / hx:.3f}, {od / ox:.3f}, {row['count']:.3f} | "
            f"{np.median(fd) * 1e3:.3f} ms, {np.min(fd) * 1e3:.3f} ms | "
            f"{np.median(fs):.2e} s, {np.percentile(fs, 90):.2e} s"
        )
    _assert_converges(rows)

"""Import and export of spiking networks in the Neuromorphic Intermediate Representation
(NIR, https://neuroir.org): `to_nir`, `from_nir`, and spike trains as `nir.EventData`.

NIR describes a network as a graph of continuous-time nodes (neurons as ODEs with a
threshold and reset, weights as linear maps) without a time step, an initial state or a
refractory period; spikeode's exact event loop simulates exactly these equations. The
mapping (docs/nir.md has the algebra):

| spikeode | NIR |
|---|---|
| `LIF` (and `AlphaIF`, as the equivalent `LIF`) | `CubaLIF` |
| `DeltaLIF` | `LIF` (input acts on `v` directly) |
| `DeltaIF` | `IF` |
| `w_in`, `w_rec` (`[pre, post]`) | `Linear` (or `Affine`) weight `[post, pre]` |
| `RecurrentLayer` | a cycle `neurons -> Linear -> neurons`, flat or as a 4-node subgraph |
| `nn.Sequential` of layers | a chain `Input -> weights -> neurons -> ... -> Output` |
| `SpikeTrain` | `nir.EventData` |

What a spike *is* in NIR is not stored in the file: `spike_convention` says it ("dirac",
a Dirac delta of integral 1, NIR's continuous-time meaning; `("step", dt)`, a value 1 held
for one step of `dt`, as discrete-time peers such as snnTorch export; "jump", a spike
adds its weight times the node's input gain to the state it drives).

Needs the optional dependency `nir` (`pip install spikeode[nir]`).
"""

import math
import os
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

try:
    import nir
except ImportError as err:  # pragma: no cover (tested with `nir` hidden)
    raise ImportError(
        "spikeode.nir needs the `nir` package (NIR >= 1.0.8); install it with "
        "`pip install spikeode[nir]`."
    ) from err

from . import __version__, nn
from ._simulation import Simulation
from ._spikes import SpikeTrain
from ._synapses import Synapses
from ._typing import RealScalarLike
from .neurons import AbstractNeuron, AlphaIF, DeltaIF, DeltaLIF, LIF

__all__ = [
    "from_event_data",
    "from_nir",
    "NIRConversionError",
    "NIRNetwork",
    "to_event_data",
    "to_nir",
]

# `spike_convention`: "dirac", "jump" or ("step", dt).
SpikeConvention = str | tuple[str, RealScalarLike]

_CONVENTION_HELP = "'dirac', 'jump' or ('step', dt) with a finite dt > 0"


class NIRConversionError(NotImplementedError):
    """A model, layer or NIR node that has no counterpart on the other side (a
    refractory period, a neuron model NIR has no node for, a convolution, a branching
    graph, ...). The message names the node or layer and the reason."""


# ------------------------------------------------------------------------ the model
class NIRNetwork(eqx.Module):
    """A chain of layers imported from NIR, with the initial synaptic current of each
    layer: what [`spikeode.nir.from_nir`][] returns.

    Calling it runs the layers one after another like [`spikeode.nn.Sequential`][];
    a layer with an `initial_current` starts from the state `(v, I) = (0, I0)`
    instead of rest. That is how the constant input of an `Affine` bias through a
    `CubaLIF` synapse is simulated exactly: from `I_N = 0` at the start, NIR's
    synaptic current approaches `w_in b` with time constant `tau_syn`, which in
    spikeode is the bias `r w_in b` (in the neuron's `bias`) plus an `I` column
    starting at `I0 = -r w_in b` and decaying.

    **Fields:**

    - `layers`: the layers ([`spikeode.nn.SpikingLayer`][] or
      [`spikeode.nn.RecurrentLayer`][]), each fed by the previous one's spikes.
    - `initial_current`: per layer, `I(t0)` of shape `(neurons,)` (a `LIF` layer), or
      `None` (the layer starts at rest).
    """

    layers: tuple[nn.SpikingLayer | nn.RecurrentLayer, ...]
    initial_current: tuple[Float[Array, " _neurons"] | None, ...]

    def __check_init__(self):
        if len(self.layers) != len(self.initial_current):
            raise ValueError(
                f"NIRNetwork: {len(self.layers)} layers but {len(self.initial_current)} "
                "initial currents; expected one entry (an array or None) per layer."
            )
        for k, (layer, i0) in enumerate(zip(self.layers, self.initial_current)):
            if i0 is None:
                continue
            n = layer.neuron.num_neurons
            if not isinstance(layer.neuron, LIF) or jnp.shape(i0) != (n,):
                raise ValueError(
                    f"NIRNetwork: layer {k}'s initial current has shape {jnp.shape(i0)} "
                    f"for a {type(layer.neuron).__name__} layer; expected shape ({n},) "
                    "and a LIF layer (the only model with a synaptic current here)."
                )

    @property
    def sequential(self) -> nn.Sequential:
        """The layers as an [`spikeode.nn.Sequential`][], every layer starting at rest
        (the same network without the transients of the `Affine` biases)."""
        return nn.Sequential(self.layers)

    def __call__(
        self, inputs: SpikeTrain, t1: RealScalarLike, *, t0: RealScalarLike = 0.0, **kwargs: Any
    ) -> tuple[Simulation, ...]:
        """Run all layers on one input train over `[t0, t1]`.

        **Arguments:**

        - `inputs`: an unbatched [`spikeode.SpikeTrain`][] (use `jax.vmap` for batches).
        - `t1`, `t0`: the time window; NIR's time 0 is `t0`.
        - `**kwargs`: passed to every layer (and so to [`spikeode.simulate`][]), except
          `y0`, which this network sets.

        **Returns:** the tuple of every layer's [`spikeode.Simulation`][].

        **Raises:** `TypeError` if `y0` is passed.
        """
        if "y0" in kwargs:
            raise TypeError(
                "NIRNetwork: `y0` is set per layer from `initial_current`; do not pass it."
            )
        out = []
        spikes = inputs
        for layer, i0 in zip(self.layers, self.initial_current):
            if i0 is not None:
                y0 = jnp.stack([jnp.zeros_like(i0), i0], axis=1)
                kwargs_k = dict(kwargs, y0=y0)
            else:
                kwargs_k = kwargs
            sim = layer(spikes, t1, t0=t0, **kwargs_k)
            out.append(sim)
            spikes = sim.spikes
        return tuple(out)


# ------------------------------------------------------------------ spike convention
def _parse_convention(spike_convention) -> tuple[str, float | None]:
    """`("dirac" | "jump", None)` or `("step", dt)`, or a `ValueError`."""
    if isinstance(spike_convention, str):
        if spike_convention in ("dirac", "jump"):
            return spike_convention, None
    elif (
        isinstance(spike_convention, tuple)
        and len(spike_convention) == 2
        and isinstance(spike_convention[0], str)
        and spike_convention[0] == "step"
    ):
        dt = float(spike_convention[1])
        if math.isfinite(dt) and dt > 0:
            return "step", dt
    raise ValueError(
        f"`spike_convention` must be {_CONVENTION_HELP}; got {spike_convention!r}."
    )


def _check_time_scale(time_scale) -> float:
    s = float(time_scale)
    if not (math.isfinite(s) and s > 0):
        raise ValueError(f"`time_scale` must be a finite number > 0; got {time_scale!r}.")
    return s


def _kappa(kind: str, dt: float | None, tau) -> np.ndarray | float:
    """The integral of one spike, in the file's time unit, for a node whose input
    acts with time constant `tau` (`None` for `IF`: a jump moves `v` by `r W`)."""
    if kind == "dirac":
        return 1.0
    if kind == "step":
        return dt
    return 1.0 if tau is None else tau


# ----------------------------------------------------------------------- export
def _f64(x, n: int | None = None) -> np.ndarray:
    """A parameter as a float64 NumPy array (broadcast to `(n,)` if given)."""
    a = np.asarray(x, dtype=np.float64)
    return a if n is None else np.broadcast_to(a, (n,)).copy()


def _export_neuron(where: str, neuron: AbstractNeuron):
    """`(kind, params, factor)`: `kind` in {"cuba", "delta_lif", "delta_if"}, the
    parameters as float64 arrays of shape `(n,)`, and the per-neuron factor that turns
    the layer's weights into those of the equivalent model (`AlphaIF` -> `LIF`:
    `tau`; else 1)."""
    n = neuron.num_neurons
    name = type(neuron).__name__
    refractory = _f64(neuron.refractory_period, n)
    if np.any(refractory != 0):
        raise NIRConversionError(
            f"{where}: the {name} model has a refractory period ({np.max(refractory):g}); "
            "NIR has no refractory period (its nodes reset and integrate at once). Set "
            "`refractory_period=0` to export."
        )
    exported = {
        LIF: ("cuba", ("tau_mem", "tau_syn", "bias", "threshold", "v_reset")),
        DeltaLIF: ("delta_lif", ("tau_mem", "bias", "threshold", "v_reset")),
        DeltaIF: ("delta_if", ("bias", "threshold", "v_reset")),
    }
    if type(neuron) in exported:
        kind, fields = exported[type(neuron)]
        return kind, {f: _f64(getattr(neuron, f), n) for f in fields}, np.ones(n)
    if type(neuron) is AlphaIF:
        # dv/dt = -v/tau + I, dI/dt = -I/tau is LIF(tau, tau) with I_LIF = tau I
        tau = _f64(neuron.tau, n)
        p = dict(
            tau_mem=tau,
            tau_syn=tau,
            bias=np.zeros(n),
            threshold=_f64(neuron.threshold, n),
            v_reset=_f64(neuron.v_reset, n),
        )
        return "cuba", p, tau
    reasons = {
        "NonLeakyIF": "a non-leaky membrane driven by an exponential synapse is no single "
        "NIR node",
        "ExcInhLIF": "its two synaptic currents, chosen by the sign of each weight, are "
        "no NIR node",
        "AdaptiveLIF": "NIR 1.0 has no adaptive neuron (adaptation current)",
        "ExpIF": "NIR 1.0 has no exponential integrate-and-fire neuron",
        "ThetaNeuron": "NIR 1.0 has no quadratic integrate-and-fire (theta) neuron",
    }
    reason = reasons.get(name)
    if reason is None and "QIF" in name:
        reason = "NIR 1.0 has no quadratic integrate-and-fire neuron"
    if reason is None:
        reason = "NIR 1.0 has no node for this model"
    raise NIRConversionError(
        f"{where}: cannot export the {name} model: {reason}. Exportable: LIF, AlphaIF, "
        "DeltaLIF, DeltaIF."
    )


def _weight_node(weight: np.ndarray, bias: np.ndarray | None):
    if bias is None:
        return nir.Linear(weight=weight)
    return nir.Affine(weight=weight, bias=bias)


def _export_layer(where, layer, i0, kind_conv, dt, s):
    """`(neurons node, input weight node, recurrent weight node or None)`."""
    if isinstance(layer, nn.FirstSpikeLayer):
        raise NIRConversionError(
            f"{where}: a FirstSpikeLayer passes on only each neuron's first spike; NIR "
            "has no such node. Export a SpikingLayer with the same model instead."
        )
    if not isinstance(layer, (nn.SpikingLayer, nn.RecurrentLayer)):
        raise NIRConversionError(
            f"{where}: cannot export a {type(layer).__name__}; expected a SpikingLayer or "
            "RecurrentLayer."
        )
    if layer.input_delays is not None:
        raise NIRConversionError(
            f"{where}: the layer has input delays; the exporter writes no NIR Delay "
            "nodes. Remove the delays to export."
        )
    kind, p, w_factor = _export_neuron(where, layer.neuron)
    n = layer.neuron.num_neurons
    w_in = _f64(layer.w_in) * w_factor[None, :]
    w_rec = None
    if isinstance(layer, nn.RecurrentLayer):
        if layer.delays is not None:
            raise NIRConversionError(
                f"{where}: the layer has recurrent delays; the exporter writes no NIR "
                "Delay nodes. Remove the delays to export."
            )
        rec = layer.w_rec
        if isinstance(rec, Synapses):
            weights, delays = rec.to_dense()
            if np.any(np.asarray(delays) != 0):
                raise NIRConversionError(
                    f"{where}: the recurrent Synapses have transmission delays; the "
                    "exporter writes no NIR Delay nodes."
                )
            rec = weights
        w_rec = _f64(rec) * w_factor[None, :]
    bias_in = None  # the Affine bias of the input node (None: Linear)
    if kind == "cuba":
        tau_s = p["tau_syn"] / s
        tau_m = p["tau_mem"] / s
        i0 = np.zeros(n) if i0 is None else _f64(i0, n)
        if kind_conv == "dirac":
            r, w_gain, scale = np.ones(n), tau_s, np.ones(n)
        elif kind_conv == "jump":
            r, w_gain, scale = np.ones(n), np.ones(n), np.ones(n)
        else:  # the profile discrete-time peers (snnTorch) write
            r, w_gain, scale = tau_m / dt, tau_s / dt, dt / tau_m
        node = nir.CubaLIF(
            tau_syn=tau_s,
            tau_mem=tau_m,
            r=r,
            v_leak=p["bias"] + i0,
            v_threshold=p["threshold"],
            v_reset=p["v_reset"],
            w_in=w_gain,
        )
        if np.any(i0 != 0):
            bias_in = -i0 / (r * w_gain)
    else:
        if i0 is not None:
            raise NIRConversionError(
                f"{where}: an initial current needs a LIF layer (got "
                f"{type(layer.neuron).__name__})."
            )
        scale = np.ones(n)
        if kind == "delta_lif":
            tau = p["tau_mem"] / s
            if kind_conv == "dirac":
                r = tau  # a jump of kappa r W / tau = W
            elif kind_conv == "jump":
                r = np.ones(n)
            else:  # snnTorch's Leaky profile
                r = tau / dt
            node = nir.LIF(
                tau=tau,
                r=r,
                v_leak=p["bias"],
                v_threshold=p["threshold"],
                v_reset=p["v_reset"],
            )
        else:
            r = np.full(n, 1.0 / dt) if kind_conv == "step" else np.ones(n)
            node = nir.IF(r=r, v_threshold=p["threshold"], v_reset=p["v_reset"])
            if np.any(p["bias"] != 0):
                # NIR's IF has no leak term: the drive comes in as an Affine bias,
                # dv/dt_file = r b, i.e. dv/dt = r b / time_scale
                bias_in = p["bias"] * s / r
    ff = _weight_node(scale[:, None] * w_in.T, bias_in)
    rec_node = None if w_rec is None else nir.Linear(weight=scale[:, None] * w_rec.T)
    return node, ff, rec_node


def _layers_to_export(model) -> list[tuple[Any, Any]]:
    if isinstance(model, NIRNetwork):
        return list(zip(model.layers, model.initial_current))
    if isinstance(model, nn.Sequential):
        return [(layer, None) for layer in model.layers]
    if isinstance(model, (nn.SpikingLayer, nn.RecurrentLayer, nn.FirstSpikeLayer)):
        return [(model, None)]
    raise NIRConversionError(
        f"to_nir: cannot export a {type(model).__name__}; expected a SpikingLayer, "
        "RecurrentLayer, nn.Sequential of them, or a NIRNetwork."
    )


def to_nir(
    model: nn.SpikingLayer | nn.RecurrentLayer | nn.FirstSpikeLayer | nn.Sequential | NIRNetwork,
    *,
    spike_convention: SpikeConvention = "dirac",
    time_scale: RealScalarLike = 1.0,
    recurrent: str = "flat",
    metadata: dict[str, Any] | None = None,
) -> nir.NIRGraph:
    """Export a spikeode network as a NIR graph (write it with
    `nir.write(path, graph)`).

    The graph is a chain `input -> layer0_in -> layer0 -> ... -> output`: per layer a
    weight node `layer<k>_in` (`Linear`, or `Affine` when a bias or initial current
    must be carried), the neurons `layer<k>` (`CubaLIF` for `LIF` and `AlphaIF`, `LIF`
    for `DeltaLIF`, `IF` for `DeltaIF`) and, for a recurrent layer, the cycle
    `layer<k> -> layer<k>_rec -> layer<k>` (or, with `recurrent="subgraph"`, a
    4-node subgraph `layer<k>` holding `input`, `neurons`, `w_rec`, `output`). Weights
    are transposed to NIR's `[post, pre]`. Every parameter is written as a float64
    array of shape `(neurons,)`.

    For a `LIF` layer with weights `w`, bias `b` and time constants `tau_syn`,
    `tau_mem`: `CubaLIF(tau_syn, tau_mem, r, v_leak=b, w_in)`, `Linear(weight)` with
    `r = 1, w_in = tau_syn, weight = w.T` ("dirac"), `r = w_in = 1, weight = w.T`
    ("jump"), or `r = tau_mem/dt, w_in = tau_syn/dt, weight = (dt/tau_mem) w.T`
    (`("step", dt)`, the profile snnTorch writes), so that [`spikeode.nir.from_nir`][]
    with the same convention gives the model back.

    **Arguments:**

    - `model`: a [`spikeode.nn.SpikingLayer`][], [`spikeode.nn.RecurrentLayer`][],
      an [`spikeode.nn.Sequential`][] of them, or a [`spikeode.nir.NIRNetwork`][].
    - `spike_convention`: what a spike means in the written graph: `"dirac"` (NIR's
      continuous-time meaning, the default), `"jump"` or `("step", dt)`, with `dt` in
      the file's time unit.
    - `time_scale`: spikeode time units per time unit of the file: time constants
      are written as `tau / time_scale` (e.g. `1e-3` to write milliseconds from a
      model in seconds).
    - `recurrent`: `"flat"` (a cycle in the top-level graph, as the braille files) or
      `"subgraph"` (the 4-node subgraph snnTorch, Spyx and Rockpool read).
    - `metadata`: extra entries for the graph's metadata (strings or numbers). The
      exporter writes `source`, `spike_convention`, `dt` (step convention) and
      `time_scale`.

    **Returns:** a `nir.NIRGraph` (type-checked).

    **Raises:**

    - [`spikeode.nir.NIRConversionError`][] for what NIR cannot express, naming the
      layer: a refractory period, a model without NIR node (`QIF`, `ThetaNeuron`,
      `AdaptiveLIF`, `ExpIF`, `ExcInhLIF`, `NonLeakyIF`), delays, a
      `FirstSpikeLayer`.
    - `ValueError` for an invalid `spike_convention`, `time_scale` or `recurrent`, or
      a model without layers.
    """
    kind, dt = _parse_convention(spike_convention)
    s = _check_time_scale(time_scale)
    if recurrent not in ("flat", "subgraph"):
        raise ValueError(f"`recurrent` must be 'flat' or 'subgraph'; got {recurrent!r}.")
    layers = _layers_to_export(model)
    if not layers:
        raise ValueError("to_nir: the model has no layers; nothing to export.")
    n_in = int(layers[0][0].w_in.shape[0])
    nodes: dict[str, Any] = {"input": nir.Input(np.array([n_in]))}
    edges: list[tuple[str, str]] = []
    prev = "input"
    for k, (layer, i0) in enumerate(layers):
        name = f"layer{k}"
        where = f"to_nir: layer {k} ({type(layer).__name__})"
        node, ff, rec = _export_layer(where, layer, i0, kind, dt, s)
        n = layer.neuron.num_neurons
        nodes[f"{name}_in"] = ff
        edges.append((prev, f"{name}_in"))
        if rec is None:
            nodes[name] = node
        elif recurrent == "flat":
            nodes[name] = node
            nodes[f"{name}_rec"] = rec
            edges += [(name, f"{name}_rec"), (f"{name}_rec", name)]
        else:
            nodes[name] = nir.NIRGraph(
                nodes={
                    "input": nir.Input(np.array([n])),
                    "neurons": node,
                    "w_rec": rec,
                    "output": nir.Output(np.array([n])),
                },
                edges=[
                    ("input", "neurons"),
                    ("neurons", "w_rec"),
                    ("w_rec", "neurons"),
                    ("neurons", "output"),
                ],
                metadata={},
            )
        edges.append((f"{name}_in", name))
        prev = name
    n_out = int(layers[-1][0].neuron.num_neurons)
    nodes["output"] = nir.Output(np.array([n_out]))
    edges.append((prev, "output"))
    meta: dict[str, Any] = {
        "source": f"spikeode {__version__}",
        "spike_convention": kind,
        "time_scale": s,
    }
    if dt is not None:
        meta["dt"] = dt
    meta.update(metadata or {})
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


# ----------------------------------------------------------------------- import
_WEIGHTS = (nir.Linear, nir.Affine, nir.Scale, nir.Flatten)
_NEURONS = (nir.CubaLIF, nir.LIF, nir.IF)
_UNSUPPORTED = {
    "Conv1d": "convolutions are not supported (spikeode's layers are dense "
    "populations of 1-d shape)",
    "Conv2d": "convolutions are not supported (spikeode's layers are dense "
    "populations of 1-d shape)",
    "SumPool2d": "pooling is not supported (spikeode's layers are dense populations "
    "of 1-d shape)",
    "AvgPool2d": "pooling is not supported (spikeode's layers are dense populations "
    "of 1-d shape)",
    "Delay": "the importer does not map NIR Delay nodes to spikeode delays",
    "Threshold": "a bare threshold (no membrane, no reset) has no spikeode model",
    "I": "non-spiking integrators (analog outputs) are not supported",
    "LI": "non-spiking leaky integrators (analog outputs) are not supported",
    "CubaLI": "non-spiking leaky integrators (analog outputs) are not supported",
}


def _describe(name: str, node) -> str:
    return f"NIR node '{name}' ({type(node).__name__})"


def _flatten_graph(graph, prefix: str = ""):
    """Nodes and edges with every subgraph inlined: node names prefixed with the
    subgraph's path (`sub.node`), edges to a subgraph entering its `Input`, edges from
    it leaving its `Output`; the inner `Input`/`Output` nodes stay as pass-throughs
    (their names are returned in the third item)."""
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    passthrough: set[str] = set()
    entry: dict[str, str] = {}
    exit_: dict[str, str] = {}
    for name, node in graph.nodes.items():
        full = prefix + str(name)
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges, sub_pass = _flatten_graph(node, full + ".")
            ins = [k for k, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [k for k, v in node.nodes.items() if isinstance(v, nir.Output)]
            if len(ins) != 1 or len(outs) != 1:
                raise NIRConversionError(
                    f"NIR subgraph '{full}' has {len(ins)} Input and {len(outs)} Output "
                    "nodes; spikeode imports subgraphs with exactly one of each."
                )
            entry[full] = f"{full}.{ins[0]}"
            exit_[full] = f"{full}.{outs[0]}"
            passthrough |= sub_pass | {entry[full], exit_[full]}
            for k in sub_nodes:
                if k in nodes:
                    raise ValueError(f"NIR graph: two nodes are both named '{k}'.")
            nodes.update(sub_nodes)
            edges += sub_edges
        else:
            if full in nodes:
                raise ValueError(f"NIR graph: two nodes are both named '{full}'.")
            nodes[full] = node
    for a, b in graph.edges:
        a, b = prefix + str(a), prefix + str(b)
        for end in (a, b):
            if end not in nodes and end not in entry:
                raise ValueError(
                    f"NIR graph: the edge ({a!r}, {b!r}) names the node {end!r}, which "
                    "the graph does not have (a malformed file?)."
                )
        edges.append((exit_.get(a, a), entry.get(b, b)))
    return nodes, edges, passthrough


def _contract(nodes, edges, passthrough):
    """Remove pass-through nodes, connecting each predecessor to each successor."""
    for name in passthrough:
        preds = [a for a, b in edges if b == name]
        succs = [b for a, b in edges if a == name]
        edges = [(a, b) for a, b in edges if name not in (a, b)]
        edges += [(a, b) for a in preds for b in succs]
        del nodes[name]
    return nodes, edges


def _bfs_order(nodes, edges) -> list[str]:
    """Node names from the Input nodes along the edges, then the rest."""
    order: list[str] = []
    queue = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    seen = set(queue)
    while queue:
        k = queue.pop(0)
        order.append(k)
        for a, b in edges:
            if a == k and b not in seen:
                seen.add(b)
                queue.append(b)
    return order + sorted(k for k in nodes if k not in seen)


def _check_supported(nodes, order):
    for name in order:
        node = nodes[name]
        type_name = type(node).__name__
        if isinstance(node, (nir.Input, nir.Output) + _NEURONS + _WEIGHTS):
            if isinstance(node, nir.Flatten):
                shape = (node.input_type or {}).get("input")
                shape = None if shape is None else tuple(int(x) for x in np.ravel(shape))
                if shape is None or len(shape) != 1:
                    raise NIRConversionError(
                        f"{_describe(name, node)} flattens an input of shape "
                        f"{shape if shape is not None else 'unknown'}; only 1-d "
                        "populations are supported (a Flatten of a 1-d input is an "
                        "identity)."
                    )
            continue
        reason = _UNSUPPORTED.get(type_name, "unknown node type")
        raise NIRConversionError(f"{_describe(name, node)} is not supported: {reason}.")


def _population_params(name: str, node) -> dict[str, np.ndarray]:
    """The node's parameters as float64 arrays of one shape `(n,)`, checked."""
    fields = {
        nir.CubaLIF: ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
        nir.LIF: ("tau", "r", "v_leak", "v_threshold", "v_reset"),
        nir.IF: ("r", "v_threshold", "v_reset"),
    }[type(node)]
    p = {}
    for f in fields:
        value = getattr(node, f)
        if value is None and f == "v_reset":
            value = np.zeros_like(np.asarray(node.v_threshold))
        p[f] = np.asarray(value, dtype=np.float64)
    shapes = {f: v.shape for f, v in p.items()}
    shape = p["v_threshold"].shape
    if len(shape) != 1 or any(s != shape for s in shapes.values()):
        raise ValueError(
            f"{_describe(name, node)}: parameters of shapes {shapes}; expected one 1-d "
            "shape (neurons,) for all (spikeode populations are 1-d)."
        )
    for f, v in p.items():
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{_describe(name, node)}: `{f}` is not finite: {v}.")
    for f in ("tau_syn", "tau_mem", "tau"):
        if f in p and np.any(p[f] <= 0):
            raise ValueError(
                f"{_describe(name, node)}: `{f}` must be > 0; got {p[f]}."
            )
    return p


def _weights_of(name: str, node, dim: int):
    """`(W, b)` of a weight node acting on a signal of size `dim`."""
    if isinstance(node, nir.Flatten):
        return np.eye(dim), np.zeros(dim)
    if isinstance(node, nir.Scale):
        scale = np.asarray(node.scale, dtype=np.float64)
        if scale.shape != (dim,):
            raise ValueError(
                f"{_describe(name, node)}: scale of shape {scale.shape} on a signal of "
                f"size {dim}; expected shape ({dim},)."
            )
        return np.diag(scale), np.zeros(dim)
    weight = np.asarray(node.weight, dtype=np.float64)
    if weight.ndim != 2 or weight.shape[1] != dim:
        raise ValueError(
            f"{_describe(name, node)}: weight of shape {weight.shape} on a signal of "
            f"size {dim}; expected shape (outputs, {dim})."
        )
    bias = np.zeros(weight.shape[0])
    if isinstance(node, nir.Affine):
        bias = np.asarray(node.bias, dtype=np.float64)
        if bias.shape != (weight.shape[0],):
            raise ValueError(
                f"{_describe(name, node)}: bias of shape {bias.shape}; expected "
                f"({weight.shape[0]},)."
            )
    if not (np.all(np.isfinite(weight)) and np.all(np.isfinite(bias))):
        raise ValueError(f"{_describe(name, node)}: weights or bias are not finite.")
    return weight, bias


class _Path(NamedTuple):
    """A run of weight nodes (`names`, in signal order) from `source` to `target`."""

    source: str
    target: str
    names: tuple[str, ...]


def _trace(start_edge, nodes, preds, succs, forward: bool) -> _Path:
    """Follow an edge through weight nodes (each with one input and one output) to the
    first node that is not a weight node."""
    a, b = start_edge
    names: list[str] = []
    cur = b if forward else a
    while isinstance(nodes[cur], _WEIGHTS):
        if cur in names:
            raise NIRConversionError(
                f"NIR graph: a cycle through weight nodes only ({' -> '.join(names)}), "
                "without neurons."
            )
        names.append(cur)
        ins, outs = preds[cur], succs[cur]
        if len(ins) != 1 or len(outs) != 1:
            raise NIRConversionError(
                f"{_describe(cur, nodes[cur])} has {len(ins)} inputs and {len(outs)} "
                "outputs; branching graphs are not supported (every weight node must "
                "have one input and one output)."
            )
        cur = outs[0] if forward else ins[0]
    if forward:
        return _Path(source=a, target=cur, names=tuple(names))
    return _Path(source=cur, target=b, names=tuple(reversed(names)))


def _compose(path: _Path, nodes, dim: int):
    """`(W, b)` of the path on a signal of size `dim`."""
    weight, bias = np.eye(dim), np.zeros(dim)
    for name in path.names:
        w, b = _weights_of(name, nodes[name], weight.shape[0])
        weight, bias = w @ weight, w @ bias + b
    return weight, bias


def _size(name, node) -> int:
    if isinstance(node, nir.Input):
        shape = tuple(int(x) for x in np.asarray(node.input_type["input"]).reshape(-1))
        if len(shape) != 1:
            raise NIRConversionError(
                f"{_describe(name, node)} has shape {shape}; spikeode's spike "
                "trains are 1-d (an Input of shape (n,))."
            )
        return int(shape[0])
    return int(np.asarray(node.v_threshold).shape[0])


def _chain(nodes, edges):
    """The populations in order, each with its feed-forward path (from the Input or
    the previous population) and its recurrent paths; raises for any other shape."""
    preds = {k: [a for a, b in edges if b == k] for k in nodes}
    succs = {k: [b for a, b in edges if a == k] for k in nodes}
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    outputs = [k for k, v in nodes.items() if isinstance(v, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NIRConversionError(
            f"NIR graph has {len(inputs)} Input nodes {inputs} and {len(outputs)} Output "
            f"nodes {outputs}; spikeode imports chains with one of each."
        )
    chain = []
    cur = inputs[0]
    visited = {cur}
    while not isinstance(nodes[cur], nir.Output):
        outs = [_trace((cur, b), nodes, preds, succs, forward=True) for b in succs[cur]]
        targets = sorted({p.target for p in outs if p.target != cur})
        if len(targets) != 1:
            raise NIRConversionError(
                f"{_describe(cur, nodes[cur])} feeds {targets or 'nothing'}; spikeode "
                "imports chains in which each node feeds exactly one next population "
                "(or the Output): branching graphs and skip connections are not "
                "supported."
            )
        nxt = targets[0]
        if nxt in visited:
            raise NIRConversionError(
                f"NIR graph: '{cur}' feeds the earlier population '{nxt}'; feedback "
                "between populations is not supported (only a population's own cycle)."
            )
        if isinstance(nodes[nxt], nir.Output):
            through = [n for p in outs if p.target == nxt for n in p.names]
            if through:
                raise NIRConversionError(
                    f"NIR graph: the Output '{nxt}' receives '{cur}' through weight "
                    f"nodes {through} (an analog signal); spikeode's outputs are spikes "
                    "of the last population."
                )
            if isinstance(nodes[cur], nir.Input):
                raise NIRConversionError("NIR graph: the Input feeds the Output; no neurons.")
            break
        ins = [_trace((a, nxt), nodes, preds, succs, forward=False) for a in preds[nxt]]
        ff = [p for p in ins if p.source != nxt]
        rec = [p for p in ins if p.source == nxt]
        sources = sorted({p.source for p in ff})
        if sources != [cur]:
            raise NIRConversionError(
                f"{_describe(nxt, nodes[nxt])} receives input from {sources}; spikeode "
                f"imports chains in which it receives only from '{cur}' (and itself)."
            )
        chain.append((nxt, ff, rec))
        visited.add(nxt)
        visited.update(n for p in ins for n in p.names)
        cur = nxt
    visited.add(outputs[0])
    unused = sorted(k for k in nodes if k not in visited)
    if unused:
        raise NIRConversionError(
            f"NIR graph: nodes {unused} are not on the chain from the Input to the "
            "Output; spikeode imports chains only."
        )
    out_node = nodes[outputs[0]]
    out_shape = tuple(int(x) for x in np.asarray(out_node.output_type["output"]).reshape(-1))
    n_last = _size(cur, nodes[cur])
    if out_shape != (n_last,):
        raise ValueError(
            f"{_describe(outputs[0], out_node)} has shape {out_shape} but the last "
            f"population '{cur}' has {n_last} neurons; expected shape ({n_last},)."
        )
    return inputs[0], chain


def _discrete_signature(pops) -> float | None:
    """The `dt` of a discrete-time export (`r = tau_mem/dt`, `w_in = tau_syn/dt` for
    CubaLIF, `r = tau/dt` for LIF, one `dt` for every node, smaller than every time
    constant), or `None`."""
    ratios, taus = [], []
    for node in pops:
        if isinstance(node, nir.CubaLIF):
            p = {f: np.asarray(getattr(node, f), np.float64) for f in
                 ("tau_mem", "tau_syn", "r", "w_in")}
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios += [p["tau_mem"] / p["r"], p["tau_syn"] / p["w_in"]]
            taus += [p["tau_mem"], p["tau_syn"]]
        elif isinstance(node, nir.LIF):
            tau, r = np.asarray(node.tau, np.float64), np.asarray(node.r, np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios.append(tau / r)
            taus.append(tau)
    if not ratios:
        return None
    ratio = np.concatenate([np.ravel(x) for x in ratios])
    tau = np.concatenate([np.ravel(x) for x in taus])
    if ratio.size == 0 or not np.all(np.isfinite(ratio)) or np.any(ratio <= 0):
        return None
    dt = float(np.median(ratio))
    if np.max(np.abs(ratio / dt - 1)) < 1e-3 and dt < 0.99 * np.min(tau):
        return dt
    return None


def _import_layer(name, node, ff, rec, nodes, n_in, kind, dt, s, max_spikes, dtype):
    """The spikeode layer and initial current of one population node."""
    p = _population_params(name, node)
    n = p["v_threshold"].shape[0]
    w_ff, b = np.zeros((n, n_in)), np.zeros(n)
    for path in ff:
        w, bb = _compose(path, nodes, n_in)
        if w.shape[0] != n:
            raise ValueError(
                f"{_describe(name, node)} has {n} neurons but its input path through "
                f"{list(path.names)} has {w.shape[0]} outputs."
            )
        w_ff, b = w_ff + w, b + bb
    w_rec = None
    for path in rec:
        w, bb = _compose(path, nodes, n)
        if w.shape[0] != n:
            raise ValueError(
                f"{_describe(name, node)} has {n} neurons but its recurrent path through "
                f"{list(path.names)} has {w.shape[0]} outputs."
            )
        w_rec = w if w_rec is None else w_rec + w
        b = b + bb
    i0 = None
    asarr = lambda x: jnp.asarray(x, dtype)
    try:
        if isinstance(node, nir.CubaLIF):
            tau_s = p["tau_syn"]
            # one spike of weight W moves I_N by kappa w_in W / tau_syn, and I = r I_N
            gain = _kappa(kind, dt, tau_s) * p["r"] * p["w_in"] / tau_s
            current = p["r"] * p["w_in"] * b  # the Affine biases through the synapse
            neuron = LIF(
                n,
                tau_mem=asarr(s * p["tau_mem"]),
                tau_syn=asarr(s * tau_s),
                threshold=asarr(p["v_threshold"]),
                v_reset=asarr(p["v_reset"]),
                bias=asarr(p["v_leak"] + current),
            )
            if np.any(current != 0):
                i0 = asarr(-current)
        elif isinstance(node, nir.LIF):
            tau = p["tau"]
            gain = _kappa(kind, dt, tau) * p["r"] / tau  # a spike moves v by this * W
            neuron = DeltaLIF(
                n,
                tau_mem=asarr(s * tau),
                threshold=asarr(p["v_threshold"]),
                v_reset=asarr(p["v_reset"]),
                bias=asarr(p["v_leak"] + p["r"] * b),
            )
        else:
            gain = _kappa(kind, dt, None) * p["r"]  # a spike moves v by this * W
            neuron = DeltaIF(
                n,
                threshold=asarr(p["v_threshold"]),
                v_reset=asarr(p["v_reset"]),
                bias=asarr(p["r"] * b / s),
            )
    except ValueError as err:
        raise ValueError(f"{_describe(name, node)}: {err}") from err
    w_in = asarr((gain[:, None] * w_ff).T)
    key = jax.random.key(0)  # (the constructors' random weights are replaced below)
    if w_rec is None:
        layer = nn.SpikingLayer(
            n_in, n, max_spikes=max_spikes, neuron=neuron, dtype=dtype, key=key
        )
        layer = eqx.tree_at(lambda m: m.w_in, layer, w_in)
    else:
        layer = nn.RecurrentLayer(
            n_in, n, max_spikes=max_spikes, neuron=neuron, dtype=dtype, key=key
        )
        w_rec = asarr((gain[:, None] * w_rec).T)
        layer = eqx.tree_at(lambda m: (m.w_in, m.w_rec), layer, (w_in, w_rec))
    return layer, i0, n


def from_nir(
    graph_or_path: nir.NIRGraph | str | os.PathLike,
    *,
    max_spikes: int | Sequence[int],
    spike_convention: SpikeConvention | None = None,
    time_scale: RealScalarLike = 1.0,
    dtype=None,
) -> NIRNetwork:
    """Import a NIR graph as a spikeode network.

    The graph must be a chain `Input -> weights -> neurons -> weights -> neurons ...
    -> Output` (after inlining subgraphs): "weights" is a run of `Linear`, `Affine`,
    `Scale` nodes (or a `Flatten` of a 1-d signal), composed into one matrix; "neurons"
    is a `CubaLIF` (imported as [`spikeode.LIF`][]), `LIF` ([`spikeode.DeltaLIF`][])
    or `IF` ([`spikeode.DeltaIF`][]) node, optionally with its own cycle through
    weight nodes (flat, or as a subgraph `{input, neurons, w_rec, output}`), which
    becomes a [`spikeode.nn.RecurrentLayer`][]. Fan-in is summed (as NIR specifies).

    A spike of input `j` onto neuron `i` through a weight `W[i, j]` becomes the
    spikeode weight `w[j, i] = gain_i W[i, j]`, with `kappa` the integral of a spike
    in the file's time unit (1 for "dirac", `dt` for `("step", dt)`, the node's input
    time constant for "jump", 1 for an `IF` under "jump"):

    - `CubaLIF`: `gain = kappa r w_in / tau_syn` (a kick of spikeode's `I = r I_N`);
      `bias = v_leak + r w_in b` for the summed `Affine` biases `b`, whose transient
      through the synapse is the layer's initial current `-r w_in b` (exact).
    - `LIF`: `gain = kappa r / tau` (a jump of `v`); `bias = v_leak + r b`.
    - `IF`: `gain = kappa r`; `bias = r b / time_scale` (`dv/dt`).

    Time constants become `time_scale * tau`. NIR's `v_reset` is spikeode's reset
    potential (in continuous time "reset to" and "subtract threshold" agree); NIR
    stores no initial state, and every layer starts at `v = 0`.

    **Arguments:**

    - `graph_or_path`: a `nir.NIRGraph`, or the path of a NIR (HDF5) file, read with
      `nir.read`.
    - `max_spikes`: the output spike capacity of every layer (an int), or one per
      layer.
    - `spike_convention`: `"dirac"`, `"jump"` or `("step", dt)` (`dt` in the file's
      time unit). `None` (the default) means `"dirac"`, with a `UserWarning` when the
      parameters carry the signature of a discrete-time export (`r = tau_mem/dt`,
      `w_in = tau_syn/dt` for one `dt`, as snnTorch writes them).
    - `time_scale`: spikeode time units per time unit of the file (e.g. `1e-3` for a
      file in milliseconds read into a model in seconds; a file's "step" units times
      the step).
    - `dtype`: floating dtype of the parameters and weights (default: JAX's default
      float).

    **Returns:** a [`spikeode.nir.NIRNetwork`][]: the layers and each layer's
    initial current (`None` where no `Affine` bias feeds a `CubaLIF`).

    **Raises:**

    - [`spikeode.nir.NIRConversionError`][] naming the node and the reason for every
      unsupported node (`Conv1d`/`Conv2d`, pooling, `Delay`, `Threshold`, `I`, `LI`,
      `CubaLI`, a multi-dimensional `Flatten` or `Input`) and every unsupported
      topology (branches, skip connections, feedback between populations, several
      inputs or outputs, weighted outputs).
    - `ValueError` for a file that cannot be read (with `nir.read`'s reason), a
      malformed graph (edges naming missing nodes, shapes that disagree, an `Output`
      whose shape is not the last population's) or invalid parameters (time
      constants <= 0, `v_reset >= v_threshold`, non-finite values), and for invalid
      arguments.
    """
    if isinstance(graph_or_path, nir.NIRGraph):
        graph = graph_or_path
    else:
        try:
            graph = nir.read(graph_or_path)
        except Exception as err:
            raise ValueError(
                f"from_nir: could not read the NIR file {os.fspath(graph_or_path)!r}: "
                f"{type(err).__name__}: {err}. (Files that fail only NIR's type check "
                "can be read with `nir.read(path, type_check=False)` and the graph "
                "passed instead.)"
            ) from err
    if spike_convention is None:
        kind, dt = "dirac", None
    else:
        kind, dt = _parse_convention(spike_convention)
    s = _check_time_scale(time_scale)
    dtype = jnp.result_type(float) if dtype is None else dtype
    nodes, edges, passthrough = _flatten_graph(graph)
    nodes, edges = _contract(dict(nodes), edges, passthrough)
    _check_supported(nodes, _bfs_order(nodes, edges))
    input_name, chain = _chain(nodes, edges)
    if isinstance(max_spikes, int):
        capacities = [max_spikes] * len(chain)
    else:
        capacities = [int(m) for m in max_spikes]
        if len(capacities) != len(chain):
            raise ValueError(
                f"from_nir: `max_spikes` has {len(capacities)} entries for {len(chain)} "
                "layers; expected one per layer (or a single int)."
            )
    if spike_convention is None:
        sig = _discrete_signature([nodes[name] for name, _, _ in chain])
        if sig is not None:
            declared = graph.metadata.get("spike_convention") if graph.metadata else None
            note = f" (the graph's metadata says spike_convention={declared!r})" if declared else ""
            warnings.warn(
                f"from_nir: the graph's parameters carry the signature of a discrete-time "
                f"export with dt = {sig:.6g} (r = tau_mem/dt, w_in = tau_syn/dt, as "
                f"snnTorch writes them){note}, but no `spike_convention` was given: "
                "importing with 'dirac' (a spike of integral 1). If the network was "
                f"trained in discrete time, pass spike_convention=('step', {sig:.6g}).",
                UserWarning,
                stacklevel=2,
            )
    layers, currents = [], []
    n_in = _size(input_name, nodes[input_name])
    for (name, ff, rec), m in zip(chain, capacities):
        layer, i0, n_in = _import_layer(
            name, nodes[name], ff, rec, nodes, n_in, kind, dt, s, m, dtype
        )
        layers.append(layer)
        currents.append(i0)
    return NIRNetwork(tuple(layers), tuple(currents))


# ------------------------------------------------------------------------ spike data
def to_event_data(spikes: SpikeTrain, t_max: RealScalarLike) -> nir.EventData:
    """A spike train as `nir.EventData` (events of `n_neurons` neurons, padded with
    index `-1` and time `+inf`).

    **Arguments:**

    - `spikes`: a [`spikeode.SpikeTrain`][], unbatched (one sample) or with one batch
      axis (samples).
    - `t_max`: the end of the recording (e.g. the simulation's `t1`).

    **Returns:** `nir.EventData` with `idx` and `time` of shape `(samples, capacity)`.

    **Raises:** `ValueError` for a train with more than one batch axis.
    """
    times = np.asarray(spikes.times, dtype=np.float64)
    ids = np.asarray(spikes.neurons)
    if times.ndim == 1:
        times, ids = times[None], ids[None]
    if times.ndim != 2:
        raise ValueError(
            f"to_event_data: the train has batch shape {times.shape[:-1]}; expected no "
            "batch axis or one (samples)."
        )
    pad = ids >= spikes.num_neurons
    idx = np.where(pad, -1, ids).astype(np.int64)
    return nir.EventData(
        idx=idx,
        time=np.where(pad, np.inf, times),
        n_neurons=int(spikes.num_neurons),
        t_max=float(t_max),
    )


def from_event_data(
    data: nir.EventData, *, capacity: int | None = None, dtype=None
) -> SpikeTrain:
    """`nir.EventData` as a batched [`spikeode.SpikeTrain`][] (one train per sample,
    events sorted by time, ties keeping their order).

    **Arguments:**

    - `data`: `nir.EventData` (`idx`, `time` of shape `(samples, events)`; index `-1`
      marks padding).
    - `capacity`: slots per train (default: the most events of any sample).
    - `dtype`: floating dtype of the times (default: JAX's default float).

    **Returns:** a `SpikeTrain` with batch axis `samples`; take one sample with
    `jax.tree.map(lambda x: x[i], train)`.

    **Raises:** `ValueError` for valued events (`nir.ValuedEventData`: spikeode spikes
    carry no value), shapes other than `(samples, events)`, indices outside
    `[-1, n_neurons)`, NaN or infinite times of events, or more events than
    `capacity`.
    """
    if isinstance(data, nir.ValuedEventData):
        raise ValueError(
            "from_event_data: ValuedEventData carries a value per event; spikeode's "
            "spikes have none. Pass plain nir.EventData."
        )
    idx = np.asarray(data.idx)
    time = np.asarray(data.time, dtype=np.float64)
    if idx.ndim != 2 or idx.shape != time.shape:
        raise ValueError(
            f"from_event_data: `idx` {idx.shape} and `time` {time.shape}; expected equal "
            "shapes (samples, events)."
        )
    n = int(data.n_neurons)
    if np.any((idx < -1) | (idx >= n)):
        raise ValueError(
            f"from_event_data: indices must lie in [0, {n}) (or be -1 for padding); got "
            f"values in [{idx.min()}, {idx.max()}]."
        )
    valid = idx >= 0
    if np.any(valid & ~np.isfinite(time)):
        raise ValueError("from_event_data: an event has a NaN or infinite time.")
    counts = valid.sum(axis=1)
    most = int(counts.max()) if counts.size else 0
    capacity = most if capacity is None else int(capacity)
    if most > capacity:
        raise ValueError(
            f"from_event_data: a sample has {most} events, more than capacity {capacity}."
        )
    samples = idx.shape[0]
    out_t = np.full((samples, capacity), np.inf)
    out_i = np.full((samples, capacity), n, dtype=np.int32)
    for k in range(samples):
        t, i = time[k][valid[k]], idx[k][valid[k]]
        order = np.argsort(t, kind="stable")
        out_t[k, : t.size] = t[order]
        out_i[k, : t.size] = i[order]
    dtype = jnp.result_type(float) if dtype is None else dtype
    return SpikeTrain(jnp.asarray(out_t, dtype), jnp.asarray(out_i, jnp.int32), n)

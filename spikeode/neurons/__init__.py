"""Neuron models: the contract, its capabilities and their implementations."""

from ._adaptive import AdaptiveLIF as AdaptiveLIF
from ._base import (
    AbstractFirstSpikeNeuron as AbstractFirstSpikeNeuron,
    AbstractFlowNeuron as AbstractFlowNeuron,
    AbstractNeuron as AbstractNeuron,
    AbstractPhaseNeuron as AbstractPhaseNeuron,
    ExpPolynomial as ExpPolynomial,
)
from ._closed_form import AlphaIF as AlphaIF, NonLeakyIF as NonLeakyIF
from ._delta import DeltaIF as DeltaIF, DeltaLIF as DeltaLIF
from ._diffusion import (
    AbstractDiffusionNeuron as AbstractDiffusionNeuron,
    DiffusionNoise as DiffusionNoise,
)
from ._eif import ExpIF as ExpIF
from ._escape import (
    AbstractHazard as AbstractHazard,
    EscapeNoise as EscapeNoise,
    ExponentialHazard as ExponentialHazard,
)
from ._exc_inh_lif import ExcInhLIF as ExcInhLIF
from ._lif import LIF as LIF
from ._qif import (
    AbstractQIF as AbstractQIF,
    ClosedFormQIF as ClosedFormQIF,
    GeneralQIF as GeneralQIF,
    phase_to_voltage as phase_to_voltage,
    QIF as QIF,
    ThetaNeuron as ThetaNeuron,
    voltage_to_phase as voltage_to_phase,
)

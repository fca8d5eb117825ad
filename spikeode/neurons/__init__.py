"""Neuron models: the contract and its implementations."""

from ._adaptive import AdaptiveLIF as AdaptiveLIF
from ._base import AbstractNeuron as AbstractNeuron, ExpPolynomial as ExpPolynomial
from ._closed_form import AlphaIF as AlphaIF, NonLeakyIF as NonLeakyIF
from ._eif import ExpIF as ExpIF
from ._exc_inh_lif import ExcInhLIF as ExcInhLIF
from ._lif import LIF as LIF
from ._qif import (
    phase_to_voltage as phase_to_voltage,
    QIF as QIF,
    ThetaNeuron as ThetaNeuron,
    voltage_to_phase as voltage_to_phase,
)

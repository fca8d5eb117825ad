"""Neuron models: the contract and its implementations."""

from ._base import AbstractNeuron as AbstractNeuron
from ._lif import LIF as LIF
from ._closed_form import AlphaIF as AlphaIF, NonLeakyIF as NonLeakyIF

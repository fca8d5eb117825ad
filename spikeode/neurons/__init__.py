"""Neuron models: the contract and its implementations."""

from ._base import AbstractNeuron as AbstractNeuron
from ._lif import LIF as LIF

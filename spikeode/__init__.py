"""spikeode: spiking neural networks as ODEs with events, with exact gradients."""

from . import data as data, losses as losses, nn as nn, smooth as smooth
from ._adjoint import EventPropAdjoint as EventPropAdjoint
from ._first_spike import first_spikes as first_spikes
from ._fitting import (
    AbstractObjective as AbstractObjective,
    fit as fit,
    FitResult as FitResult,
    LogLikelihoodObjective as LogLikelihoodObjective,
    Recording as Recording,
    SpikeDistanceObjective as SpikeDistanceObjective,
)
from ._gradcheck import (
    check_grads as check_grads,
    GradCheckReport as GradCheckReport,
    LeafReport as LeafReport,
)
from ._gradients import (
    AbstractAdjoint as AbstractAdjoint,
    DirectAdjoint as DirectAdjoint,
    ForwardMode as ForwardMode,
)
from ._likelihood import log_likelihood as log_likelihood
from ._loops import (
    AbstractLoop as AbstractLoop,
    CoupledLoop as CoupledLoop,
    EventDrivenLoop as EventDrivenLoop,
    PerNeuronLoop as PerNeuronLoop,
    WindowedLoop as WindowedLoop,
)
from ._results import RESULTS as RESULTS
from ._root_finder import BracketedNewton as BracketedNewton
from ._simulate import Pseudodynamics as Pseudodynamics, simulate as simulate
from ._simulation import Simulation as Simulation
from ._solver import ExactSolver as ExactSolver
from ._spikes import SpikeTrain as SpikeTrain
from ._synapses import Synapses as Synapses
from ._verify import CheckResult as CheckResult
from .neurons import (
    AbstractDiffusionNeuron as AbstractDiffusionNeuron,
    AbstractFirstSpikeNeuron as AbstractFirstSpikeNeuron,
    AbstractFlowNeuron as AbstractFlowNeuron,
    AbstractHazard as AbstractHazard,
    AbstractNeuron as AbstractNeuron,
    AbstractPhaseNeuron as AbstractPhaseNeuron,
    AdaptiveLIF as AdaptiveLIF,
    AlphaIF as AlphaIF,
    DeltaIF as DeltaIF,
    DeltaLIF as DeltaLIF,
    DiffusionNoise as DiffusionNoise,
    EscapeNoise as EscapeNoise,
    ExcInhLIF as ExcInhLIF,
    ExpIF as ExpIF,
    ExponentialHazard as ExponentialHazard,
    LIF as LIF,
    NonLeakyIF as NonLeakyIF,
    QIF as QIF,
    ThetaNeuron as ThetaNeuron,
)

__version__ = "0.1.0"

"""Network library shared by every agent: observation encoders, MLPs, value heads, noisy layers, actors, critics."""

from classic_rl.nets.deterministic import DeterministicActor, EnsembleLinear, QCritic
from classic_rl.nets.mixers import QMixer, VDNMixer
from classic_rl.nets.mlp import MLP, DuelingHead, ObsEncoder, QNetwork
from classic_rl.nets.noisy import NoisyLinear, noise_scale, reset_noise
from classic_rl.nets.policy import Actor, Categorical, Critic, DiagGaussian

__all__ = ["MLP", "DuelingHead", "NoisyLinear", "noise_scale", "ObsEncoder", "QNetwork", "reset_noise"]
__all__ += ["Actor", "Categorical", "Critic", "DiagGaussian"]
__all__ += ["DeterministicActor", "EnsembleLinear", "QCritic", "QMixer", "VDNMixer"]

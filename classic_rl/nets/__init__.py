"""Network library shared by every agent: observation encoders, MLPs, value heads."""

from classic_rl.nets.mlp import MLP, ObsEncoder, QNetwork

__all__ = ["MLP", "ObsEncoder", "QNetwork"]

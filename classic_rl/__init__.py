"""classic_rl: reinforcement learning on batched torch environments."""

__version__ = "0.1.0"

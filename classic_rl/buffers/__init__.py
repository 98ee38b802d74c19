"""Storage shared by agents: the replay-buffer family (uniform, prioritized) and n-step windows."""

from classic_rl.buffers.nstep import NStepTransition, NStepWindow, nstep_return
from classic_rl.buffers.prioritized import PrioritizedReplayBuffer
from classic_rl.buffers.replay import Batch, ReplayBuffer
from classic_rl.buffers.rollout import Rollout, RolloutBuffer, RolloutCollector
from classic_rl.buffers.sum_tree import SumTree

__all__ = ["Batch", "NStepTransition", "NStepWindow", "PrioritizedReplayBuffer", "ReplayBuffer", "SumTree",
           "nstep_return"]
__all__ += ["Rollout", "RolloutBuffer", "RolloutCollector"]

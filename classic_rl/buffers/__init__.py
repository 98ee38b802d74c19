"""Storage shared by agents: replay buffers (off-policy)."""

from classic_rl.buffers.replay import Batch, ReplayBuffer

__all__ = ["Batch", "ReplayBuffer"]

"""Batched multi-agent environments: several agents per env, each acting on its own observation."""

from classic_rl.envs.multiagent.pettingzoo import PettingZooVectorEnv
from classic_rl.envs.multiagent.simple_spread import SimpleSpread

MULTI_AGENT_ENVS = {"simple_spread": SimpleSpread}

__all__ = ["MULTI_AGENT_ENVS", "PettingZooVectorEnv", "SimpleSpread"]

"""Evaluation with the deterministic policy, and video recording of an episode."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from classic_rl.agents.base import Agent
from classic_rl.config import UserError
from classic_rl.envs.base import VectorEnv
from classic_rl.envs.tabular import TabularVectorEnv
from classic_rl.envs.torch_env import TorchVectorEnv


@torch.no_grad()
def evaluate(agent: Agent, env: VectorEnv, episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Run the first episode of each of `episodes` envs (env.num_envs >= episodes) with act(explore=False).

    Returns (returns [episodes], lengths [episodes]) as numpy arrays.
    """
    obs, _ = env.reset(seed=seed)
    n = env.num_envs
    returns = torch.zeros(n, device=env.device)
    lengths = torch.zeros(n, dtype=torch.int64, device=env.device)
    running = torch.ones(n, dtype=torch.bool, device=env.device)
    while running[:episodes].any():
        obs, reward, terminated, truncated, _ = env.step(agent.act(obs, explore=False))
        returns += reward * running
        lengths += running.long()
        running &= ~(terminated | truncated)
    return returns[:episodes].cpu().numpy(), lengths[:episodes].cpu().numpy()


@torch.no_grad()
def record_video(agent: Agent, env: VectorEnv, path: Path, seed: int, fps: int = 30) -> int:
    """Record one deterministic episode to an mp4 at `path`; returns the number of frames.

    Torch-native envs (classic control, toy text) render through their Gymnasium twin by copying the state in.
    """

    try:
        import imageio.v2 as imageio
    except ImportError:
        raise UserError("eval.video=true needs imageio: pip install 'classic_rl[video]'") from None
    obs, _ = env.reset(seed=seed)
    if isinstance(env, TorchVectorEnv):
        twin = gym.make(env.spec.id, render_mode="rgb_array")
        twin.reset(seed=seed)

        def frame() -> np.ndarray:
            twin.unwrapped.state = env.state[0].double().cpu().numpy()
            return twin.render()
    elif isinstance(env, TabularVectorEnv):
        twin = gym.make(env.spec.id, render_mode="rgb_array", **env.kwargs)
        twin.reset(seed=seed)

        def frame() -> np.ndarray:
            twin.unwrapped.s = int(env.state[0])
            return twin.render()
    else:
        twin = None
        inner = env.env.envs[0]  # the adapter's first Gymnasium env, made with render_mode="rgb_array"

        def frame() -> np.ndarray:
            return inner.render()

    frames = [frame()]
    while True:
        obs, _, terminated, truncated, _ = env.step(agent.act(obs, explore=False))
        if bool(terminated[0] | truncated[0]):
            break
        frames.append(frame())
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(path, frames, fps=fps)
    if twin is not None:
        twin.close()
    return len(frames)

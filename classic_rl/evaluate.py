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

    Returns (returns [episodes], lengths [episodes]) as numpy arrays; on a multi-agent env an
    episode's return is the team's, the sum of every agent's rewards.
    """
    obs, _ = env.reset(seed=seed)
    n = env.num_envs
    returns = torch.zeros(n, device=env.device)
    lengths = torch.zeros(n, dtype=torch.int64, device=env.device)
    running = torch.ones(n, dtype=torch.bool, device=env.device)
    wait = slice(None) if env.spec.round_reward else slice(episodes)  # round rewards come when all rows end
    while running[wait].any():
        obs, reward, terminated, truncated, info = env.step(agent.act(obs, explore=False))
        if reward.dim() > 1:  # [N, A]: the team's reward
            reward = reward.sum(-1)
        returns += reward * running
        lengths += running.long()
        running &= ~(terminated | truncated)
        if "round_reward" in info:
            returns += info["round_reward"]
    return returns[:episodes].cpu().numpy(), lengths[:episodes].cpu().numpy()


def answer_of(completion: str) -> str:
    """What maj@k votes on: the completion's last number, else its stripped text."""
    from classic_rl.envs.text_tasks import parse_number

    number = parse_number(completion)
    return f"{number:g}" if number is not None else completion.strip()


@torch.no_grad()
def evaluate_samples(agent: Agent, env: VectorEnv, episodes: int, seed: int, k: int,
                     correct: float) -> dict[str, float]:
    """Text envs: k sampled completions (act(explore=True), one lock-step round each) for each of the
    first `episodes` held-out prompts. pass@k: the fraction of prompts with at least one correct
    completion (reward >= `correct`); maj@k: the fraction whose most frequent answer (`answer_of`;
    a tie goes to the answer seen first) is correct. The greedy round's samples stay in `last_samples`."""
    greedy = getattr(env, "last_samples", [])
    rewards, answers = [], []
    for i in range(k):
        obs, _ = env.reset(seed=seed + 1 + i)
        info: dict = {}
        while "round_reward" not in info:
            obs, _, _, _, info = env.step(agent.act(obs, explore=True))
        samples = env.last_samples[:episodes]
        rewards.append([s["reward"] for s in samples])
        answers.append([answer_of(s["completion"]) for s in samples])
    env.last_samples = greedy
    passed = majority = 0
    for j in range(episodes):
        votes: dict[str, list[float]] = {}
        for i in range(k):
            votes.setdefault(answers[i][j], []).append(rewards[i][j])
        passed += any(r >= correct for rs in votes.values() for r in rs)
        top = max(votes.values(), key=len)  # dicts keep insertion order: max keeps the first of equals
        majority += any(r >= correct for r in top)
    return {f"pass@{k}": passed / episodes, f"maj@{k}": majority / episodes}


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

"""Reference policies on simple_spread: the returns a learned policy should be read against.

  random       every agent picks one of the 5 actions uniformly
  assignment   landmarks are assigned to agents at each step by the minimum-total-distance matching
               (scipy's linear_sum_assignment on the global state); each agent then takes the discrete
               action whose force points most along a PD control toward its landmark (no-op when close)

Returns per episode (25 steps, 3 agents), mean over `--episodes` episodes:
  team_return          the sum over agents and steps of the env's rewards (classic_rl's episode return)
  agent_return         team_return / A: one agent's episode return
  coverage_return      the sum over steps of -sum_l min_a |p_a - l| (the shared term alone)
  collisions           agent pairs in contact, summed over steps

    python experiments/multiagent_reference.py --episodes 1000
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from classic_rl.envs import make  # noqa: E402
from classic_rl.envs.multiagent.simple_spread import DAMPING, DIRECTIONS  # noqa: E402
from classic_rl.files import atomic_write_text  # noqa: E402

RESULTS = ROOT / "experiments" / "results"


def assignment_actions(env) -> torch.Tensor:
    """[N, A] discrete actions of the assignment policy, from the env's world."""
    from scipy.optimize import linear_sum_assignment

    pos, vel, landmarks = env.agent_pos.numpy(), env.agent_vel.numpy(), env.landmark_pos.numpy()  # [N, A, 2]
    targets = np.empty_like(pos)
    for i in range(pos.shape[0]):
        cost = np.linalg.norm(pos[i][:, None] - landmarks[i][None], axis=-1)  # [A, L]
        rows, cols = linear_sum_assignment(cost)
        targets[i, rows] = landmarks[i, cols]
    # PD control: brake with the velocity the damping leaves, aim at the landmark
    wanted = (targets - pos) - vel * (1 - DAMPING) * 0.6
    directions = np.asarray(DIRECTIONS)  # [5, 2]
    score = wanted @ directions.T  # [N, A, 5]
    score[..., 0] = 0.02  # no-op wins once nothing points usefully toward the target
    return torch.as_tensor(score.argmax(-1))


def run(policy: str, episodes: int, num_envs: int, seed: int) -> dict[str, float]:
    env = make("simple_spread", num_envs=num_envs, seed=seed)
    env.reset(seed=seed)
    generator = torch.Generator().manual_seed(seed)
    team, coverage, collisions = [], [], []
    while len(team) < episodes:
        episode_reward = torch.zeros(num_envs)
        episode_coverage = torch.zeros(num_envs)
        episode_collisions = torch.zeros(num_envs)
        for _ in range(env.max_cycles):
            if policy == "random":
                actions = torch.randint(0, 5, (num_envs, env.num_agents), generator=generator)
            else:
                actions = assignment_actions(env)
            _, reward, _, truncated, info = env.step(actions)
            episode_reward += reward.sum(-1)
            final = info["final_obs"]  # [N, A, 18]: landmarks relative to each agent at columns 4..9
            to_landmarks = final[:, :, 4: 4 + 2 * env.num_agents].reshape(num_envs, env.num_agents, -1, 2)
            episode_coverage -= to_landmarks.norm(dim=-1).min(dim=1).values.sum(-1)
            others = final[:, :, 4 + 2 * env.num_agents: 4 + 4 * env.num_agents - 2].reshape(num_envs, env.num_agents, -1, 2)
            episode_collisions += (others.norm(dim=-1) < 0.3).sum((1, 2)) / 2
        assert truncated.all()
        team += episode_reward.tolist()
        coverage += episode_coverage.tolist()
        collisions += episode_collisions.tolist()
    team, coverage, collisions = (np.asarray(x[:episodes]) for x in (team, coverage, collisions))
    return {"policy": policy, "episodes": episodes, "team_return": round(float(team.mean()), 2),
            "team_return_std": round(float(team.std()), 2), "agent_return": round(float(team.mean()) / env.num_agents, 2),
            "coverage_return": round(float(coverage.mean()), 2), "collisions": round(float(collisions.mean()), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--num-envs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "multiagent_reference")
    args = parser.parse_args()
    records = [run(p, args.episodes, args.num_envs, args.seed) for p in ("random", "assignment")]
    for r in records:
        print(json.dumps(r))
    meta = {"command": " ".join(["python", *sys.argv]), "machine": platform.machine(), "torch": torch.__version__}
    atomic_write_text(args.out.with_suffix(".json"), json.dumps({"meta": meta, "records": records}, indent=1))
    lines = ["# simple_spread reference policies", "", f"`{meta['command']}`; 3 agents, 25-step episodes, local_ratio "
             "0.5. team return = the sum over agents and steps of the env's rewards.", "",
             "| policy | team return | ± std | per agent | coverage term | collisions |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['policy']} | {r['team_return']} | {r['team_return_std']} | {r['agent_return']} | "
              f"{r['coverage_return']} | {r['collisions']} |" for r in records]
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

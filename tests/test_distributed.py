"""Data parallelism (classic_rl/distributed.py): two ranks (gloo, spawned here, CPU), each with half of
the envs' rollout, take the update one process takes on the whole rollout; statistics over the batch
are taken over both ranks; agents that run in one process refuse several."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from classic_rl import agents, distributed, envs
from classic_rl.config import UserError
from classic_rl.normalize import RunningMeanStd
from classic_rl.returns import normalize_advantage
from tests.conftest import collect

NUM_ENVS, STEPS = 8, 16
CONFIGS = {
    "ppo": {"name": "ppo", "rollout_steps": STEPS, "epochs": 3, "minibatches": 1, "hidden_sizes": [16],
            "target_kl": 10.0, "clip_value": 0.2},
    "a2c": {"name": "a2c", "rollout_steps": STEPS, "hidden_sizes": [16], "normalize_advantage": True},
}


def agent_for(name: str, num_envs: int):
    return agents.make(agents.make_config(CONFIGS[name]), envs.make("CartPole-v1", num_envs=num_envs).spec, seed=0)


def _worker(rank: int, world: int, store: str, rollouts: dict, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        results = {}
        shard = slice(rank * NUM_ENVS // world, (rank + 1) * NUM_ENVS // world)
        for name, storage in rollouts.items():
            agent = agent_for(name, NUM_ENVS // world)
            for key, value in storage.items():
                agent.rollout.buffer.storage[key].copy_(value[:, shard])
            agent.rollout.buffer.pos = STEPS
            agent.update()
            results[name] = {k: v.clone() for k, v in [*agent.actor.state_dict().items(),
                                                       *(("critic." + k, v) for k, v in agent.critic.state_dict().items())]}
        data = torch.arange(12.0).reshape(6, 2) ** 1.5  # rank r holds rows 3r..3r+2
        stats = RunningMeanStd((2,))
        stats.update(data[3 * rank: 3 * rank + 3])
        advantage = normalize_advantage(data[3 * rank: 3 * rank + 3, 0])
        results["stats"] = {"mean": stats.mean, "var": stats.var, "count": torch.tensor(stats.count),
                            "advantage": advantage, "world": torch.tensor(distributed.world_size())}
        try:
            agents.make(agents.make_config({"name": "dqn"}), envs.make("CartPole-v1", num_envs=2).spec)
            results["refusal"] = ""
        except UserError as err:
            results["refusal"] = str(err)
        torch.save(results, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """(rollouts collected by one process on 8 envs, what each of 2 ranks computed from its 4 envs)."""
    tmp = tmp_path_factory.mktemp("ranks")
    rollouts = {}
    for name in CONFIGS:
        agent = agent_for(name, NUM_ENVS)
        collect(agent, envs.make("CartPole-v1", num_envs=NUM_ENVS, seed=0), STEPS)
        rollouts[name] = {k: v.clone() for k, v in agent.rollout.buffer.storage.items()}
    mp.spawn(_worker, args=(2, str(tmp / "store"), rollouts, str(tmp / "out")), nprocs=2, join=True)
    return rollouts, [torch.load(tmp / f"out.{r}") for r in range(2)]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_two_ranks_update_as_one_process_on_the_concatenated_rollout(two_ranks, name):
    rollouts, ranks = two_ranks
    single = agent_for(name, NUM_ENVS)
    for key, value in rollouts[name].items():
        single.rollout.buffer.storage[key].copy_(value)
    single.rollout.buffer.pos = STEPS
    before = {k: v.clone() for k, v in single.actor.state_dict().items()}
    single.update()
    expected = {**single.actor.state_dict(), **{"critic." + k: v for k, v in single.critic.state_dict().items()}}
    for r in ranks:
        for k, v in expected.items():
            torch.testing.assert_close(r[name][k], v, atol=1e-6, rtol=0)
    assert any(not torch.equal(before[k], v) for k, v in single.actor.state_dict().items())  # it did learn


def test_statistics_over_the_batch_are_taken_over_every_rank(two_ranks):
    _, ranks = two_ranks
    data = torch.arange(12.0).reshape(6, 2) ** 1.5
    whole = RunningMeanStd((2,))
    whole.update(data)
    expected_advantage = normalize_advantage(data[:, 0])
    for r, out in enumerate(ranks):
        stats = out["stats"]
        assert int(stats["world"]) == 2 and int(stats["count"]) == 6
        torch.testing.assert_close(stats["mean"], whole.mean)
        torch.testing.assert_close(stats["var"], whole.var)
        torch.testing.assert_close(stats["advantage"], expected_advantage[3 * r: 3 * r + 3])


def test_agents_that_run_in_one_process_refuse_several_in_one_line(two_ranks):
    _, ranks = two_ranks
    for out in ranks:
        assert out["refusal"].startswith("agent=dqn runs in one process; 2 processes started (torchrun)")
        assert out["refusal"].endswith("or use an agent that can: a2c, ppo") and "\n" not in out["refusal"]


def test_one_process_is_world_size_one():
    assert not distributed.initialized() and distributed.world_size() == 1 and distributed.rank() == 0
    x = torch.randn(5)
    assert distributed.all_reduce_sum(x) is x
    mean, std = distributed.mean_std(x)
    assert torch.equal(mean, x.mean()) and torch.equal(std, x.std())

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
from tests.conftest import collect, collect_round

NUM_ENVS, STEPS = 8, 16
CONFIGS = {
    "ppo": {"name": "ppo", "rollout_steps": STEPS, "epochs": 3, "minibatches": 1, "hidden_sizes": [16],
            "target_kl": 10.0, "clip_value": 0.2},
    "a2c": {"name": "a2c", "rollout_steps": STEPS, "hidden_sizes": [16], "normalize_advantage": True},
    # complete episodes only: a different number of used steps on each rank
    "reinforce": {"name": "reinforce", "rollout_steps": STEPS, "hidden_sizes": [16], "normalize_advantage": True},
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
        assert out["refusal"].endswith("or use an agent that can: reinforce, a2c, ppo, grpo, dpo, reward_model")
        assert "\n" not in out["refusal"]


# ------------------------------------------------------------------ GRPO on a tiny language model
# a small lr: Adam divides by |g|, so a gradient near zero that differs in its last bits (sums in another
# order) moves its parameter by up to lr; the gradients themselves are compared to 1e-6
GRPO_CONFIGS = {
    "grpo": {"name": "grpo", "lr": 1e-4, "num_iterations": 2},
    "grpo_token_batch_kl": {"name": "grpo", "lr": 1e-4, "loss_agg": "token_mean", "scale_rewards": "batch",
                            "beta": 0.05, "num_iterations": 2, "micro_batch_size": 3},
    # PPO with a value head on the language model: GAE per token, advantages normalised over all ranks,
    # token means over all ranks' tokens, a KL penalty in the reward
    "ppo_lm": {"name": "ppo", "lr": 1e-5, "epochs": 2, "minibatches": 1, "micro_batch_size": 3,
               "kl_reward_coef": 0.05, "target_kl": 10.0},
}


def lm_agent_for(config: dict, num_envs: int, group_size: int = 4):
    """(agent, text-digits env): groups of `group_size` completions, a fresh tiny GPT-2 (the same on every rank)."""
    from classic_rl.config import ModelConfig
    from classic_rl.lm.model import load

    lm = load(ModelConfig(name="tiny"), "cpu", seed=0)
    env = envs.make("text-digits", num_envs=num_envs, group_size=group_size, tokenizer=lm.tokenizer, max_new_tokens=5,
                    chat_template=False, seed=0)
    return agents.make(agents.make_config(config), env.spec, seed=0, lm=lm), env


def grpo_for(name: str, num_envs: int):
    return lm_agent_for(GRPO_CONFIGS[name], num_envs)


def grpo_update(agent, storage: dict, pos: int, rows: slice) -> tuple[dict, list]:
    """Update `agent` on rows `rows` of a recorded round; its parameters after, and each step's gradient."""
    buffer = agent.collector.buffer
    buffer.storage = {key: value[:, rows].clone() for key, value in storage.items()}
    buffer.pos = pos
    agent.collector.finished.fill_(True)
    grads, step = [], agent.optimizer.step

    def recorded_step():
        grads.append(torch.cat([p.grad.flatten() for p in agent.params]).clone())
        step()
    agent.optimizer.step = recorded_step
    agent.update()
    return {k: v.detach().clone() for k, v in agent.policy.named_parameters()}, grads


def ranks_take_the_update(tmp_path, worker, key: str, storage: dict, pos: int, expected: dict, expected_grads: list):
    """`worker` on 2 spawned ranks, each updating on its half of the recorded round: every rank's gradient at
    every optimiser step and its parameters after equal one process's on the whole round."""
    mp.spawn(worker, args=(2, str(tmp_path / "store"), {key: (storage, pos)}, str(tmp_path / "out")), nprocs=2,
             join=True)
    for r in range(2):
        params, grads = torch.load(tmp_path / f"out.{r}")[key]
        assert len(grads) == len(expected_grads) == 2
        for g, e in zip(grads, expected_grads):
            torch.testing.assert_close(g, e, atol=1e-6, rtol=1e-5)
        for k, v in expected.items():  # within a tenth of an Adam step: Adam divides by √v, so float-order
            # differences of near-zero gradients (one process scores both groups in one packed forward,
            # a rank its own) move single entries by about 1e-6
            torch.testing.assert_close(params[k], v, atol=1e-5, rtol=0)


def _grpo_worker(rank: int, world: int, store: str, rounds: dict, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        half = NUM_ENVS // world
        torch.save({name: grpo_update(grpo_for(name, half)[0], storage, pos, slice(rank * half, (rank + 1) * half))
                    for name, (storage, pos) in rounds.items()}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("name", list(GRPO_CONFIGS))
def test_two_ranks_take_the_grpo_update_of_one_process_on_both_ranks_groups(tmp_path, name):
    """One process's round of 2 groups; each rank updates on one group (tiny GPT-2): the same gradients
    at every step and the same parameters as one process on both groups (GRPO, and PPO on the LM)."""
    pytest.importorskip("transformers")
    agent, env = grpo_for(name, NUM_ENVS)
    start = {k: v.detach().clone() for k, v in agent.policy.named_parameters()}
    collect_round(agent, env)
    pos = agent.collector.buffer.pos
    storage = {k: v[:pos].clone() for k, v in agent.collector.buffer.storage.items()}
    # shorter completions on the second rank (unequal token counts), and rewards that differ in both groups
    storage["active"][2:, 5:] = False
    storage["reward"].zero_()
    storage["reward"][storage["active"].sum(0) - 1, torch.arange(NUM_ENVS)] = torch.tensor(
        [0.0, 1.0, 0.0, 0.5, 1.0, 0.0, 0.2, 0.7])
    expected, expected_grads = grpo_update(agent, storage, pos, slice(None))
    ranks_take_the_update(tmp_path, _grpo_worker, name, storage, pos, expected, expected_grads)
    assert max(g.abs().max() for g in expected_grads) > 1e-3
    lr = GRPO_CONFIGS[name]["lr"]
    assert max((expected[k] - v).abs().max() for k, v in start.items()) > lr / 2  # it did learn


# ------------------------------------------------------------------ DPO and the reward model
DPO_ONLINE = {"name": "dpo", "lr": 1e-4, "epochs": 2}
# 4 groups of 2 completions, 2 on each rank; the rewards make each group a pair or a tie
ONLINE_REWARDS = {
    "unequal_pairs": [1.0, 0.0, 0.5, 0.5, 0.0, 1.0, 0.2, 0.7],  # rank 0: one pair, rank 1: two
    "a_rank_without_pairs": [0.3, 0.3, 0.5, 0.5, 0.0, 1.0, 0.7, 0.2],  # rank 0: none, rank 1: two
}


def _dpo_online_worker(rank: int, world: int, store: str, rounds: dict, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        half = NUM_ENVS // world
        torch.save({name: grpo_update(lm_agent_for(DPO_ONLINE, half, 2)[0], storage, pos,
                                      slice(rank * half, (rank + 1) * half))
                    for name, (storage, pos) in rounds.items()}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("case", list(ONLINE_REWARDS))
def test_two_ranks_take_the_online_dpo_update_of_one_process_on_all_pairs(tmp_path, case):
    """Each rank pairs its own groups (a different number of pairs, or none): the same gradients at every
    epoch and the same parameters as one process on all ranks' pairs."""
    pytest.importorskip("transformers")
    agent, env = lm_agent_for(DPO_ONLINE, NUM_ENVS, 2)
    start = {k: v.detach().clone() for k, v in agent.policy.named_parameters()}
    collect_round(agent, env)
    pos = agent.collector.buffer.pos
    storage = {k: v[:pos].clone() for k, v in agent.collector.buffer.storage.items()}
    storage["reward"].zero_()
    storage["reward"][storage["active"].sum(0) - 1, torch.arange(NUM_ENVS)] = torch.tensor(ONLINE_REWARDS[case])
    expected, expected_grads = grpo_update(agent, storage, pos, slice(None))
    ranks_take_the_update(tmp_path, _dpo_online_worker, case, storage, pos, expected, expected_grads)
    assert max((expected[k] - v).abs().max() for k, v in start.items()) > 1e-4  # it did learn


def pair_file(path) -> str:
    import json
    import random

    rng = random.Random(0)
    rows = [{"prompt": f"Write some digits ({i % 5}):", "chosen": "".join(rng.choice("0123456789") for _ in range(1 + i % 4)),
             "rejected": "".join(rng.choice("abcdefgh ") for _ in range(2 + i % 3))} for i in range(12)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


OFFLINE_CONFIGS = {
    "dpo": {"name": "dpo", "lr": 1e-4, "batch_size": 4, "epochs": 2},
    "reward_model": {"name": "reward_model", "lr": 1e-4, "batch_size": 4, "center_coef": 0.01, "eval_fraction": 0.2},
}


def offline_updates(name: str, pairs: str, updates: int = 3) -> tuple[dict, list, list]:
    """(parameters after `updates` updates, the gradient of every optimiser step, each update's stats)."""
    agent = lm_agent_for({**OFFLINE_CONFIGS[name], "pairs": pairs}, 4, 2)[0]
    grads, step = [], agent.optimizer.step

    def recorded_step():
        grads.append(torch.cat([p.grad.flatten() for p in agent.params]).clone())
        step()
    agent.optimizer.step = recorded_step
    stats = [agent.update() for _ in range(updates)]
    assert agent.env_steps == updates * 4  # pairs of all ranks
    return {k: v.detach().clone() for k, v in agent.policy.named_parameters()}, grads, stats


def _offline_worker(rank: int, world: int, store: str, pairs: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        results = {name: offline_updates(name, pairs) for name in OFFLINE_CONFIGS}
        try:
            lm_agent_for({**OFFLINE_CONFIGS["dpo"], "pairs": pairs, "batch_size": 5}, 4, 2)
            results["refusal"] = ""
        except Exception as err:  # noqa: BLE001 - the message is the assertion
            results["refusal"] = str(err)
        torch.save(results, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_ranks_take_offline_dpo_and_reward_model_steps_of_one_process_on_the_whole_batch(tmp_path):
    """Every rank draws the same batch of pairs and takes its half: the gradients, parameters and logged
    statistics of one process on the whole batch."""
    pytest.importorskip("transformers")
    pairs = pair_file(tmp_path / "pairs.jsonl")
    expected = {name: offline_updates(name, pairs) for name in OFFLINE_CONFIGS}
    mp.spawn(_offline_worker, args=(2, str(tmp_path / "store"), pairs, str(tmp_path / "out")), nprocs=2, join=True)
    for r in range(2):
        out = torch.load(tmp_path / f"out.{r}")
        for name, (params, grads, stats) in expected.items():
            got_params, got_grads, got_stats = out[name]
            assert len(got_grads) == len(grads) >= 3
            for g, e in zip(got_grads, grads):
                torch.testing.assert_close(g, e, atol=1e-6, rtol=1e-5)
            for k, v in params.items():  # as in ranks_take_the_update: within a tenth of an Adam step
                torch.testing.assert_close(got_params[k], v, atol=1e-5, rtol=0)
            for got, want in zip(got_stats, stats):  # means over the whole batch
                for key in ("loss", "accuracy", "margin", "rewards/accuracies", "rewards/margins"):
                    if key in want:
                        assert got[key] == pytest.approx(want[key], abs=1e-5), (name, key)
        assert "config key 'agent.batch_size' = 5 is not divisible by the 2 processes" in out["refusal"]


def test_one_process_is_world_size_one():
    assert not distributed.initialized() and distributed.world_size() == 1 and distributed.rank() == 0
    x = torch.randn(5)
    assert distributed.all_reduce_sum(x) is x
    mean, std = distributed.mean_std(x)
    assert torch.equal(mean, x.mean()) and torch.equal(std, x.std())


# ------------------------------------------------------------------ torchrun -m classic_rl
def torchrun(*args: str, cwd, nproc: int = 2, script: tuple[str, ...] = ("-m", "classic_rl")):
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
                           "--standalone", *script, "device=cpu", "logger.progress=false", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


PPO_RUN = ("agent=ppo", "env=CartPole-v1", "env.num_envs=8", "train.total_steps=2048", "eval.every_steps=1024",
           "eval.episodes=4", "agent.rollout_steps=32", "agent.minibatches=2")


def test_torchrun_trains_one_run_written_by_rank_0_and_repeats_exactly(tmp_path):
    import json

    from classic_rl import checkpoint as ckpt

    for name in ("a", "b"):
        proc = torchrun(*PPO_RUN, f"hydra.run.dir={tmp_path / name}", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.count("classic_rl: train ppo") == 1 and ", 2 processes" in proc.stdout  # rank 0 speaks
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["env_steps"] == 2048 and summary["updates"] == 2048 // (8 * 32)
    assert ckpt.load(tmp_path / "a" / "checkpoint.pt")["world_size"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no files of the other rank anywhere

    def learned(name):
        rows = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k.startswith(("train/loss", "train/entropy", "eval/"))} for r in rows]
    assert learned("a") == learned("b") and any("train/loss" in r for r in learned("a"))


def test_torchrun_fine_tunes_a_language_model_with_grpo_each_rank_on_its_own_groups(tmp_path):
    """Completions end at different steps on each rank: the ranks meet at the updates only."""
    import json

    pytest.importorskip("transformers")
    proc = torchrun("agent=grpo", "env=text-digits", "env.num_envs=16", "env.group_size=8", "env.max_new_tokens=8",
                    "env.chat_template=false", "model=tiny", "train.total_steps=600", "eval.every_steps=300",
                    "eval.episodes=4", "logger.log_every_steps=1", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if "train/reward_mean" in r]
    assert summary["env_steps"] >= 600 and len(train) == summary["updates"] >= 2
    # each round is 16 prompts' completions over both ranks: between 16 (one token each) and 16 x 8 tokens
    steps = [r["step"] for r in train]
    assert all(16 <= b - a <= 16 * 8 for a, b in zip([0] + steps, steps))


def test_torchrun_runs_the_python_api_and_every_rank_gets_the_run(tmp_path):
    """`classic_rl.train(...)` in a script started by torchrun: one run (default directory), written by
    rank 0; every rank's result holds its summary, directory and trained policy."""
    import json

    (tmp_path / "train_script.py").write_text(
        "import json, os, sys\n"
        "import classic_rl\n"
        "result = classic_rl.train(*sys.argv[1:])\n"
        "out = {'run_dir': str(result.run_dir), 'env_steps': result.summary['env_steps'],\n"
        "       'policy': type(result.policy).__name__}\n"
        "open(f'rank{os.environ[\"RANK\"]}.json', 'w').write(json.dumps(out))\n")
    proc = torchrun(*PPO_RUN, cwd=tmp_path, script=("train_script.py",))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0] == ranks[1] and ranks[0]["env_steps"] == 2048 and ranks[0]["policy"] == "Policy"
    runs = list((tmp_path / "runs").glob("*/*"))
    assert [str(r.relative_to(tmp_path)) for r in runs] == [ranks[0]["run_dir"]]  # one run directory
    assert json.loads((runs[0] / "summary.json").read_text())["env_steps"] == 2048


def test_torchrun_trains_a_reward_model_each_rank_on_half_of_every_batch(tmp_path):
    import json

    pytest.importorskip("transformers")
    pairs = pair_file(tmp_path / "pairs.jsonl")
    args = ("agent=reward_model", f"agent.pairs={pairs}", "agent.batch_size=4", "agent.lr=1e-3", "env=text-digits",
            "env.chat_template=false", "model=tiny", "train.total_steps=48", "eval.every_steps=24", "eval.episodes=4")
    proc = torchrun(*args, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["env_steps"] == 48 and summary["updates"] == 12 and len(summary["evaluations"]) == 2
    bad = torchrun(*args, "agent.batch_size=5", f"hydra.run.dir={tmp_path / 'bad'}", cwd=tmp_path)
    errors = [line for line in bad.stderr.splitlines() if line.startswith("classic_rl: error:")]
    assert bad.returncode != 0 and len(errors) == 2 and all("'agent.batch_size' = 5 is not divisible" in e for e in errors)
    assert not (tmp_path / "bad").exists()


def test_sigterm_on_one_rank_stops_every_rank_with_a_checkpoint_and_the_run_resumes(tmp_path):
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from classic_rl import checkpoint as ckpt

    run = tmp_path / "run"
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "classic_rl",
            "device=cpu", "logger.progress=false", *PPO_RUN[:-4], "train.total_steps=100000000",
            "eval.every_steps=100000000", "logger.log_every_steps=256", f"hydra.run.dir={run}"]
    proc = subprocess.Popen(args, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not ((run / "metrics.jsonl").exists() and (run / "metrics.jsonl").stat().st_size):
            time.sleep(0.2)
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        ranks = {int(dict(e.split("=", 1) for e in Path(f"/proc/{c}/environ").read_text().split("\0") if "=" in e)
                     ["RANK"]): int(c) for c in children}
        os.kill(ranks[1], signal.SIGTERM)  # rank 1 only: rank 0 learns it at the next update
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode != 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["interrupted"] and summary["interrupted_by"] == "SIGTERM" and summary["env_steps"] < 100000000
    assert ckpt.load(run / "checkpoint.pt")["trainer"]["env_steps"] == summary["env_steps"]
    assert out.count("SIGTERM: stopped at env step") == 1 and f"resume={run}" in out  # rank 0's line only
    resumed = torchrun(f"resume={run}", f"train.total_steps={summary['env_steps'] + 512}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((run / "summary.json").read_text())["env_steps"] == summary["env_steps"] + 512


@pytest.mark.parametrize("args, message", [
    ((*PPO_RUN, "env.num_envs=7"), "env.num_envs = 7 is not divisible by the 2 processes torchrun started"),
    (("agent=dqn", "env=CartPole-v1", "train.total_steps=512"),
     "agent=dqn runs in one process; 2 processes started (torchrun)"),
])
def test_torchrun_bad_input_is_one_line_on_every_rank_and_writes_nothing(tmp_path, args, message):
    import tempfile
    from pathlib import Path

    def rank_dirs():  # the other ranks' temporary run and Hydra directories
        return set(Path(tempfile.gettempdir()).glob("classic_rl-rank*"))
    before = rank_dirs()
    proc = torchrun(*args, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("classic_rl: error:")]
    assert len(errors) == 2 and all(message in line for line in errors), proc.stderr[-3000:]
    assert not (tmp_path / "run").exists() and rank_dirs() <= before


def test_a_run_resumes_only_on_as_many_processes_as_it_trained_on(tmp_path):
    import classic_rl

    assert torchrun(*PPO_RUN, f"hydra.run.dir={tmp_path / 'two'}", cwd=tmp_path).returncode == 0
    with pytest.raises(UserError, match=r"trained on 2 processes, not 1; resume it with torchrun --nproc_per_node=2"):
        classic_rl.train(f"resume={tmp_path / 'two'}", "train.total_steps=4096", run_dir=tmp_path / "one")
    assert not (tmp_path / "one").exists()

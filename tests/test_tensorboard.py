"""TensorBoard: a run's event file holds exactly the scalar tags the docs' table (docs/run-outputs.md) documents for its
agent, and its hyperparameters for the HParams view in the same directory."""

import re

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from classic_rl.config import LoggerConfig
from classic_rl.logger import HPARAM_METRICS, Logger, flatten_hparams
from classic_rl.run import main
from tests.conftest import ROOT, small_config

PAGE = (ROOT / "docs" / "run-outputs.md").read_text()  # the TensorBoard table
DOCS = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))])
TAG = re.compile(r"`((?:train|eval|perf|hparams)/\w+)`")
TB_ON = {"tensorboard": True, "log_every_steps": 250}
CONFIGS = {  # dqn: never solved in 3000 env steps; ppo: solved at its first evaluation (threshold 5)
    "dqn": small_config(agent={"lr": 0.002}, train={"total_steps": 3000}, eval={"every_steps": 1000},
                        logger=TB_ON),
    "ppo": {**small_config(env={"reward_threshold": 5.0}, train={"total_steps": 2048},
                           eval={"every_steps": 1024}, logger=TB_ON),
            "agent": {"name": "ppo", "lr": 0.0007, "rollout_steps": 64, "hidden_sizes": [32, 32]}},
}


def scalar_table() -> list[tuple[set[str], list[str]]]:
    """The rows of the docs' TensorBoard scalar table: (tags, "written by" entries)."""
    section = PAGE.split("## TensorBoard")[1].split("\n## ")[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and TAG.search(cells[0]):
            rows.append((set(TAG.findall(cells[0])), re.split(r",\s*(?![^()]*\))", cells[1])))
    return rows


def documented(agent: str) -> tuple[set[str], set[str]]:
    """(tags a run of `agent` with its default options writes, tags it may write), per the docs' table."""
    required, allowed = set(), set()
    for tags, entries in scalar_table():
        for entry in entries:
            if entry.split(" (")[0] in ("all", agent):
                allowed |= tags
                if "(only" not in entry:
                    required |= tags
    return required, allowed


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def run(request, tmp_path_factory):
    """(agent, config, summary, run dir, its tb/ loaded): one short CartPole training per agent."""
    agent, cfg = request.param, CONFIGS[request.param]
    run_dir = tmp_path_factory.mktemp(agent)
    summary = main(cfg, run_dir)
    events = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    return agent, cfg, summary, run_dir, events


def test_readme_table_parses():
    required, allowed = documented("dqn")
    assert {"train/loss", "eval/return_mean", "hparams/final_return"} <= required
    assert "train/noise_scale" in allowed - required and "train/policy_loss" not in allowed


def test_every_scalar_is_documented_for_its_agent(run):
    agent, _, _, _, events = run
    required, allowed = documented(agent)
    written = set(events.Tags()["scalars"])
    assert required - written == set(), f"documented for {agent} but not written"
    assert written - allowed == set(), f"written by {agent} but not documented for it in docs/run-outputs.md"


def test_every_tag_the_docs_name_is_in_the_table():
    in_table = set().union(*(tags for tags, _ in scalar_table()))
    assert set(TAG.findall(DOCS)) - in_table == set()
    assert set(HPARAM_METRICS) <= in_table


def test_hparams_in_the_scalars_directory(run):
    agent, cfg, summary, run_dir, events = run
    assert [p.name for p in (run_dir / "tb").iterdir() if p.is_dir()] == []  # no add_hparams subfolder
    content = {tag.split("/")[-1]: HParamsPluginData.FromString(data)
               for tag, data in events.PluginTagToContent("hparams").items()}
    assert set(content) == {"experiment", "session_start_info", "session_end_info"}
    experiment = content["experiment"].experiment
    assert {m.name.tag for m in experiment.metric_infos} == set(HPARAM_METRICS)
    hparams = content["session_start_info"].session_start_info.hparams
    assert {info.name for info in experiment.hparam_infos} == set(hparams)
    assert hparams["agent.lr"].number_value == cfg["agent"]["lr"]
    assert hparams["agent.name"].string_value == agent
    assert hparams["agent.hidden_sizes"].string_value == "[32, 32]"
    assert hparams["env.id"].string_value == "CartPole-v1"
    assert hparams["env.num_envs"].number_value == 2 and hparams["seed"].number_value == 0
    assert hparams["train.total_steps"].number_value == cfg["train"]["total_steps"]
    assert hparams["env.max_episode_steps"].string_value == "null"
    assert "agent.gamma" in hparams and not any(k.startswith("hydra") for k in hparams)  # defaults too

    final = events.Scalars("hparams/final_return")
    assert [(e.step, e.value) for e in final] == [(summary["env_steps"], pytest.approx(summary["eval_return_mean"]))]
    solved = {"hparams/solved_at_step", "hparams/solved_at_cpu_seconds"} & set(events.Tags()["scalars"])
    if agent == "ppo":
        assert summary["solved_at_step"] == 1024 and events.Scalars("hparams/solved_at_step")[0].value == 1024
        assert solved == {"hparams/solved_at_step", "hparams/solved_at_cpu_seconds"}
    else:
        assert summary["solved_at_step"] is None and solved == set()


def test_flatten_hparams():
    config = {"agent": {"lr": 1e-3, "hidden_sizes": [64, 64], "lr_end": None, "double": True},
              "env": {"id": "CartPole-v1", "kwargs": {"map_name": "8x8"}}, "seed": 3, "hydra": {"run": {}},
              "other": object()}
    assert flatten_hparams(config) == {"agent.lr": 1e-3, "agent.hidden_sizes": "[64, 64]", "agent.lr_end": "null",
                                       "agent.double": True, "env.id": "CartPole-v1", "env.kwargs.map_name": "8x8",
                                       "seed": 3}


def test_no_tensorboard_no_events(tmp_path):
    logger = Logger(tmp_path, LoggerConfig(tensorboard=False, progress=False), total_steps=10)
    logger.hparams({"agent": {"lr": 1e-3}})
    logger.hparam_metrics(10, {"eval_return_mean": 1.0, "solved_at_step": None})
    logger.close()
    assert not (tmp_path / "tb").exists()


@pytest.mark.parametrize("agent", ["mappo", "qmix"])
def test_multi_agent_runs_write_the_documented_scalars(tmp_path, agent):
    extra = {"learning_starts": 200, "train_freq": 16} if agent == "qmix" else {"rollout_steps": 25}
    cfg = {"agent": {"name": agent, "hidden_sizes": [16], **extra}, "env": {"id": "simple_spread", "num_envs": 8},
           "seed": 0, "device": "cpu", "train": {"total_steps": 1600}, "eval": {"every_steps": 800, "episodes": 2},
           "logger": {"progress": False, **TB_ON}}
    main(cfg, tmp_path)
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    required, allowed = documented(agent)
    written = set(events.Tags()["scalars"])
    assert required - written == set(), f"documented for {agent} but not written"
    assert written - allowed == set(), f"written by {agent} but not documented for it in docs/run-outputs.md"

"""The loop, its logs, checkpoints, exact resume, Ctrl-C, and mode=eval."""

import csv
import json
import signal
import subprocess
import time

import pytest
import torch

from classic_rl import checkpoint as ckpt
from classic_rl.config import UserError
from classic_rl.run import main
from tests.conftest import CLI, ROOT, cli_env, small_config


def q_params(run_dir):
    return ckpt.load(run_dir / "checkpoint.pt")["agent"]["q"]


def episode_rows(run_dir):
    with open(run_dir / "episodes.csv") as f:
        return [(r["env_step"], r["return"], r["length"]) for r in csv.DictReader(f)]


def test_run_writes_every_log(tmp_path):
    cfg = small_config(logger={"tensorboard": True})
    summary = main(cfg, tmp_path)
    for name in ("episodes.csv", "metrics.jsonl", "summary.json", "checkpoint.pt", "config.yaml"):
        assert (tmp_path / name).exists(), name
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    for key in ("agent", "env", "seed", "env_steps", "train_seconds", "wall_seconds", "eval_return_mean",
                "eval_return_std", "eval_episodes", "solved_at_step", "solved_at_seconds"):
        assert key in on_disk
    assert on_disk["env_steps"] == 1000 and summary["eval_episodes"] == 2
    assert 0 < on_disk["train_seconds"] <= on_disk["wall_seconds"]
    rows = episode_rows(tmp_path)
    # every env step lands in exactly one episode: finished lengths never exceed the steps taken
    assert rows and sum(int(r[2]) for r in rows) <= 1000
    assert all(float(r[1]) == float(r[2]) for r in rows)  # CartPole: return == length
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any("train/loss" in m for m in metrics) and any("eval/return_mean" in m for m in metrics)
    assert [e["env_step"] for e in summary["evaluations"]] == [500, 1000]


def test_seeded_runs_are_identical(tmp_path):
    main(small_config(), tmp_path / "a")
    main(small_config(), tmp_path / "b")
    for k, v in q_params(tmp_path / "a").items():
        assert torch.equal(v, q_params(tmp_path / "b")[k])
    assert episode_rows(tmp_path / "a") == episode_rows(tmp_path / "b")
    main(small_config(seed=1), tmp_path / "c")
    assert episode_rows(tmp_path / "a") != episode_rows(tmp_path / "c")


@pytest.mark.parametrize("env_id", ["CartPole-v1", "FrozenLake-v1"])
def test_resume_equals_uninterrupted(tmp_path, env_id):
    full = small_config(env={"id": env_id}, train={"total_steps": 1200})
    main(full, tmp_path / "full")
    main(small_config(env={"id": env_id}, train={"total_steps": 600}), tmp_path / "part")
    resumed = small_config(env={"id": env_id}, train={"total_steps": 1200}, resume=str(tmp_path / "part"))
    summary = main(resumed, tmp_path / "resumed")
    assert summary["env_steps"] == 1200
    for k, v in q_params(tmp_path / "full").items():
        assert torch.equal(v, q_params(tmp_path / "resumed")[k]), k
    assert episode_rows(tmp_path / "full") == episode_rows(tmp_path / "resumed")


def test_resume_rejects_other_env_and_missing_checkpoint(tmp_path):
    main(small_config(train={"total_steps": 200}), tmp_path / "a")
    with pytest.raises(UserError, match="config key 'env.id' = 'Acrobot-v1' differs from the run's 'CartPole-v1'"):
        main(small_config(env={"id": "Acrobot-v1"}, resume=str(tmp_path / "a")), tmp_path / "b")
    with pytest.raises(UserError, match="checkpoint not found"):
        main(small_config(resume=str(tmp_path / "missing")), tmp_path / "c")


def test_ctrl_c_saves_checkpoint_and_resume_matches(tmp_path):
    args = ["env.num_envs=4", "train.total_steps=400000", "eval.every_steps=0", "logger.progress=false",
            "agent.learning_starts=500", "agent.hidden_sizes=[32,32]"]
    proc = subprocess.Popen([*CLI, *args, f"hydra.run.dir={tmp_path}/run"], env=cli_env(), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    metrics = tmp_path / "run" / "metrics.jsonl"
    while time.time() < deadline and not (metrics.exists() and metrics.stat().st_size > 0):
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    sent = time.time()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err  # 128 + SIGINT, as a shell reports a Ctrl-C
    assert time.time() - sent < 10
    assert f"python -m classic_rl resume={tmp_path}/run" in out + err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["interrupted"] and 0 < summary["env_steps"] < 400000
    stopped_at = summary["env_steps"]
    assert episode_rows(tmp_path / "run")  # flushed
    assert ckpt.load(tmp_path / "run")["trainer"]["env_steps"] == stopped_at

    # resume to a fixed end and compare with an uninterrupted run of the same length
    end = stopped_at + 400
    common = [a for a in args if not a.startswith("train.total_steps")] + [f"train.total_steps={end}"]
    for name, extra in (("resumed", [f"resume={tmp_path}/run"]), ("full", [])):
        done = subprocess.run([*CLI, *common, *extra, f"hydra.run.dir={tmp_path}/{name}"], env=cli_env(),
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    for k, v in q_params(tmp_path / "full").items():
        assert torch.equal(v, q_params(tmp_path / "resumed")[k]), k
    assert episode_rows(tmp_path / "full") == episode_rows(tmp_path / "resumed")


def test_eval_mode_loads_checkpoint_and_records_video(tmp_path):
    main(small_config(train={"total_steps": 300}), tmp_path / "train")
    result = main(small_config(mode="eval", checkpoint=str(tmp_path / "train"), eval={"episodes": 3, "video": True}),
                  tmp_path / "eval")
    assert result["eval_episodes"] == 3
    assert (tmp_path / "eval" / "eval.json").exists()
    video = tmp_path / "eval" / "videos" / "eval.mp4"
    assert video.stat().st_size > 1000 and result["video_frames"] >= 8

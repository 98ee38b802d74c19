"""A run is the user's data: checkpoints never run code, bad input never destroys a run, signals stop
cleanly with the conventional exit codes, files are atomic, divergence is never silent."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from classic_rl import checkpoint as ckpt
from classic_rl.config import ConfigError, UserError
from classic_rl.files import RunLock
from classic_rl.run import RunDiverged, finished_summary, main
from tests.conftest import CLI, ROOT, cli_env, load_experiment, small_config

QUIET = ["logger.progress=false", "device=cpu"]


class Exploit:
    """Unpickling this runs a shell command: what a crafted checkpoint.pt would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def cli(*args, cwd=ROOT, timeout=300):
    return subprocess.run([*CLI, *args], env=cli_env(), cwd=cwd, capture_output=True, text=True, timeout=timeout)


def one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("classic_rl: error:"), proc.stderr[-2000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def snapshot(run_dir):
    """Every file of a run directory, byte for byte."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """A finished CLI run with non-default settings."""
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    done = cli("agent.hidden_sizes=[16]", "env.num_envs=2", "train.total_steps=400", "eval.every_steps=0",
               "eval.episodes=2", "agent.learning_starts=100", *QUIET, f"hydra.run.dir={run_dir}")
    assert done.returncode == 0, done.stderr[-2000:]
    return run_dir


# ------------------------------------------------------------------ 1. checkpoints never run code
def test_a_crafted_checkpoint_is_refused_without_running_its_code(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil" / "checkpoint.pt"
    evil.parent.mkdir()
    torch.save({"format": ckpt.FORMAT, "config": Exploit(marker), "trainer": {}, "agent": {}, "env": {}, "rng": {}},
               evil)
    with pytest.raises(UserError, match="refused"):
        ckpt.load(evil)
    for args in ([f"resume={evil}"], ["mode=eval", f"checkpoint={evil}"]):
        one_line_error(cli(*args, *QUIET, f"hydra.run.dir={tmp_path}/out"), "refused")
        assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_a_torch_file_that_is_not_a_checkpoint_is_one_line(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    one_line_error(cli("mode=eval", f"checkpoint={path}", *QUIET), "not a classic_rl checkpoint")


def test_checkpoints_hold_only_tensors_and_plain_values(tmp_path):
    """Every agent family's checkpoint (replay buffers, rollouts, normalizers, RNG states) loads with
    weights_only=True, and the global RNG states round-trip exactly."""
    main(small_config(train={"total_steps": 300}), tmp_path / "dqn")
    ppo = small_config(train={"total_steps": 300})
    ppo["agent"] = {"name": "ppo", "rollout_steps": 16, "normalize_obs": True, "normalize_reward": True}
    main(ppo, tmp_path / "ppo")
    main(small_config(env={"id": "CartPole-v1", "num_envs": 2, "backend": "gymnasium"},
                      train={"total_steps": 300}), tmp_path / "adapter")
    for run in ("dqn", "ppo", "adapter"):
        torch.load(tmp_path / run / "checkpoint.pt", weights_only=True)
    import random

    import numpy as np

    state = ckpt.rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1))
    ckpt.set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected


def test_gymnasium_adapter_runs_resume_with_fresh_seeded_episodes(tmp_path):
    adapter = {"id": "CartPole-v1", "num_envs": 2, "backend": "gymnasium"}
    main(small_config(env=adapter, train={"total_steps": 400}), tmp_path / "a")
    resumed = [main(small_config(env=adapter, train={"total_steps": 800}, resume=str(tmp_path / "a")),
                    tmp_path / name)["env_steps"] for name in ("b", "c")]
    assert resumed == [800, 800]
    rows = [[r.rsplit(",", 1)[0] for r in (tmp_path / d / "episodes.csv").read_text().splitlines()] for d in "bc"]
    assert rows[0] == rows[1] and len(rows[0]) > 20  # the same fresh episodes (seconds column aside)


# ------------------------------------------------------------------ 2. a failed resume destroys nothing
def test_failed_resumes_leave_the_run_byte_for_byte_intact(cli_run):
    before = snapshot(cli_run)
    one_line_error(cli(f"resume={cli_run}", "agent.lr=0.5", *QUIET), "'agent.lr'", "differs")
    one_line_error(cli(f"resume={cli_run}", "agent=double_dqn", *QUIET), "agent=double_dqn", "preset")
    one_line_error(cli(f"resume={cli_run}", "seed=3", *QUIET), "'seed'")
    assert snapshot(cli_run) == before


def test_bare_resume_takes_the_runs_own_config(cli_run, tmp_path):
    """The run used agent.hidden_sizes=[16]: a bare resume=DIR must not rebuild the default network."""
    done = cli(f"resume={cli_run}", "train.total_steps=600", *QUIET, f"hydra.run.dir={tmp_path}/more")
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "more" / "summary.json").read_text())
    assert summary["env_steps"] == 600
    config = json.loads(json.dumps(ckpt.load(tmp_path / "more")["config"]))
    assert config["agent"]["hidden_sizes"] == [16] and config["train"]["total_steps"] == 600


def test_resume_rejects_an_unsafe_key_in_python_too(tmp_path):
    main(small_config(train={"total_steps": 200}), tmp_path / "a")
    with pytest.raises(UserError, match="'agent.gamma'"):
        main(small_config(agent={"gamma": 0.5}, train={"total_steps": 400}, resume=str(tmp_path / "a")), tmp_path / "b")
    assert not (tmp_path / "b").exists()
    summary = main(small_config(train={"total_steps": 400}, eval={"episodes": 3}, resume=str(tmp_path / "a")),
                   tmp_path / "a")  # in place, with a safe change
    assert summary["env_steps"] == 400 and summary["eval_episodes"] == 3


# ------------------------------------------------------------------ 3. no silent overwrite, one process per run
def test_a_new_run_never_overwrites_another(cli_run, tmp_path):
    before = snapshot(cli_run)
    one_line_error(cli("train.total_steps=200", *QUIET, f"hydra.run.dir={cli_run}"), "already holds a run",
                   "resume=")
    assert snapshot(cli_run) == before
    main(small_config(train={"total_steps": 200}), tmp_path / "a")
    with pytest.raises(UserError, match="already holds a run"):
        main(small_config(train={"total_steps": 200}), tmp_path / "a")


def test_a_live_lock_refuses_and_a_stale_one_is_taken_over(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".lock").write_text(f"{sleeper.pid}\n")
        with pytest.raises(UserError, match=f"in use by process {sleeper.pid}"):
            main(small_config(train={"total_steps": 200}), tmp_path)
        assert not (tmp_path / "config.yaml").exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    main(small_config(train={"total_steps": 200}), tmp_path)  # its process is gone: the lock is stale
    assert not (tmp_path / ".lock").exists()
    with RunLock(tmp_path) as lock:
        assert lock.path.read_text().strip() == str(os.getpid())


def test_benchmark_runs_a_repeated_seed_once_and_keeps_its_cell_configs_to_itself(tmp_path, monkeypatch):
    bench = load_experiment("benchmark")
    seen = {}

    def fake_run(cmd, **kwargs):
        searchpath = next(c for c in cmd if c.startswith("hydra.searchpath="))[len("hydra.searchpath=[file://"):-1]
        seen["conf"] = searchpath
        seen["cells"] = sorted(p.name for p in (bench.Path(searchpath) / "cell").iterdir())
        seen["seeds"] = next(c for c in cmd if c.startswith("seed="))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nseeds: [0, 0, 1]\nthresholds: {CartPole-v1: 20}\n"
                     "groups: [{agents: [ppo], envs: [CartPole-v1]}]\n")
    bench.main([str(suite), "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--reps", "10"])
    assert seen["seeds"] == "seed=0,1" and seen["cells"] == ["ppo_CartPole-v1.yaml"]
    assert bench.Path(seen["conf"]).parent == tmp_path / "runs" / "_conf" and not bench.Path(seen["conf"]).exists()


def test_skip_finished_continues_a_run_that_a_signal_stopped(tmp_path):
    cfg = small_config(train={"total_steps": 400}, skip_finished=True)
    main(cfg, tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    (tmp_path / "summary.json").write_text(json.dumps({**summary, "interrupted": True}))  # as a SIGTERM leaves it
    rows = (tmp_path / "episodes.csv").read_text()
    again = main(cfg, tmp_path)
    assert not again["interrupted"] and again["env_steps"] == 400
    assert (tmp_path / "episodes.csv").read_text() == rows  # continued from its checkpoint, not retrained


# ------------------------------------------------------------------ 4. SIGTERM is Ctrl-C
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143)])
def test_sigterm_saves_flushes_and_exits_143(tmp_path, sig, code):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([*CLI, "env.num_envs=4", "train.total_steps=400000", "eval.every_steps=0",
                             "agent.learning_starts=500", "agent.hidden_sizes=[32,32]", *QUIET,
                             f"hydra.run.dir={run_dir}"],
                            env=cli_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    episodes = run_dir / "episodes.csv"
    deadline = time.time() + 120
    while time.time() < deadline and not (episodes.exists() and len(episodes.read_text().splitlines()) > 2):
        time.sleep(0.2)
    assert len(episodes.read_text().splitlines()) > 2  # episode rows reach the disk while the run goes on
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["interrupted"] and summary["interrupted_by"] == "SIGTERM"
    assert ckpt.load(run_dir)["trainer"]["env_steps"] == summary["env_steps"]
    assert f"continue with: python -m classic_rl resume={run_dir}" in out + err


def test_ctrl_c_stops_a_whole_sweep_and_a_closed_console_stops_nothing(tmp_path):
    proc = subprocess.Popen([*CLI, "--multirun", "seed=0,1", "env.num_envs=4", "train.total_steps=400000",
                             "eval.every_steps=0", "agent.learning_starts=500", *QUIET,
                             f"hydra.sweep.dir={tmp_path}", "hydra.sweep.subdir=seed${seed}"],
                            env=cli_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "seed0" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.stat().st_size > 0):
        time.sleep(0.2)
    proc.stdout.close()  # whoever read the console is gone
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    assert proc.returncode == 130
    assert json.loads((tmp_path / "seed0" / "summary.json").read_text())["interrupted"]
    assert not (tmp_path / "seed1").exists()  # the sweep stopped with its job


# ------------------------------------------------------------------ 5. atomic, durable files
def test_a_failed_checkpoint_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    ckpt.save(path, {"x": torch.ones(2)})
    before = path.read_bytes()

    def broken(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError):
        ckpt.save(path, {"x": torch.zeros(2)})
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_resume_drops_a_cut_last_log_line_cleans_temp_files_and_keeps_wall_time(tmp_path, capsys):
    part = main(small_config(train={"total_steps": 600}), tmp_path)
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"step": 6')
    with (tmp_path / "episodes.csv").open("a") as f:
        f.write("61")
    (tmp_path / ".tmp-checkpoint.pt-abc123").write_bytes(b"stale")
    capsys.readouterr()
    summary = main(small_config(train={"total_steps": 1000}, resume=str(tmp_path)), tmp_path)
    out = capsys.readouterr().out
    assert "metrics.jsonl: dropped its last line" in out and "episodes.csv: dropped its last line" in out
    assert not list(tmp_path.glob(".tmp-*"))
    for line in (tmp_path / "metrics.jsonl").read_text().splitlines():
        json.loads(line)
    assert summary["wall_seconds"] > part["wall_seconds"] > 0


# ------------------------------------------------------------------ 6. divergence is never silent
@pytest.mark.parametrize("key, value", [("agent.lr", math.inf), ("train.total_steps", math.inf),
                                        ("agent.gamma", math.nan), ("eval.episodes", math.inf)])
def test_inf_and_nan_are_rejected_for_numbers(key, value):
    from classic_rl.run import load_config

    section, name = key.split(".")
    cfg = small_config(**{section: {name: value}})
    with pytest.raises(ConfigError, match=f"'{key}'"):
        load_config(cfg)


def test_a_non_finite_loss_ends_the_run_as_diverged(tmp_path, monkeypatch):
    from classic_rl.agents.dqn import DQN

    update = DQN.update

    def poisoned(self):
        stats = update(self)
        return {**stats, "loss": math.nan} if self.env_steps >= 700 else stats

    monkeypatch.setattr(DQN, "update", poisoned)
    cfg = small_config(train={"total_steps": 1000, "checkpoint_every_steps": 400})
    with pytest.raises(RunDiverged, match="train/loss was not finite at env step 7"):
        main(cfg, tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["diverged"]["what"] == "train/loss" and 700 <= summary["diverged"]["step"] < 720
    assert ckpt.load(tmp_path)["trainer"]["env_steps"] == 400  # the last good checkpoint, not overwritten
    assert finished_summary(tmp_path, cfg) is None  # skip_finished never counts it as finished
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any(isinstance(m.get("train/loss"), float) and math.isnan(m["train/loss"]) for m in logged)


def test_benchmark_counts_a_diverged_run_as_failed(tmp_path):
    bench = load_experiment("benchmark")
    run_dir = bench.run_dir(tmp_path, "dqn", "CartPole-v1", 0)
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps({"interrupted": False, "evaluations": [],
                                                      "diverged": {"step": 700, "what": "train/loss"}}))
    summaries, problems = bench.collect(tmp_path, "dqn", "CartPole-v1", [0])
    assert summaries == [] and problems == {0: "diverged: train/loss not finite at env step 700"}


# ------------------------------------------------------------------ 7. ignored inputs are errors, before any file
def test_misplaced_keys_and_bad_model_dirs_fail_before_a_run_directory_exists(tmp_path, cli_run):
    work = tmp_path / "work"
    work.mkdir()
    one_line_error(cli(f"checkpoint={cli_run}", *QUIET, cwd=work), "checkpoint=", "mode=eval", "resume=")
    one_line_error(cli("mode=eval", f"checkpoint={cli_run}", f"resume={cli_run}", *QUIET, cwd=work), "resume=",
                   "checkpoint=")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{not json")
    one_line_error(cli("agent=grpo", "env=text-digits", "env.group_size=2", "env.num_envs=2", "model=path",
                       f"model.path={model}", *QUIET, cwd=work), f"model path {model} could not be loaded")
    one_line_error(cli("agent=dqn", "env=Pendulum-v1", *QUIET, cwd=work), "agent=dqn cannot run on env=Pendulum-v1")
    assert not (work / "runs").exists()
    with pytest.raises(UserError, match="cannot run on env=Pendulum-v1"):
        main(small_config(env={"id": "Pendulum-v1"}), tmp_path / "api")
    assert not (tmp_path / "api").exists()


def test_atomic_files_get_the_usual_permissions(tmp_path):
    from classic_rl.files import atomic_write_text

    mask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "summary.json", "{}")
    finally:
        os.umask(mask)
    assert (tmp_path / "summary.json").stat().st_mode & 0o777 == 0o644

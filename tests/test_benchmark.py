"""experiments/benchmark.py: the statistics (known answers), the suite configs, and real suites through
Hydra's joblib and Ray launchers (failed runs reported, finished runs skipped on a re-run)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import ROOT, load_experiment


@pytest.fixture(scope="module")
def bench():
    return load_experiment("benchmark")


def summary(seed, returns, cpu, every=1000):
    evals = [{"env_step": every * (i + 1), "return_mean": r, "train_cpu_seconds": c} for i, (r, c) in
             enumerate(zip(returns, cpu))]
    return {"seed": seed, "evaluations": evals, "eval_return_mean": returns[-1], "env_steps": every * len(returns),
            "train_cpu_seconds": cpu[-1], "wall_seconds": 2 * cpu[-1], "_episodes": [1.0] * 5 + [10.0] * 10}


def test_iqm_is_the_mean_of_the_middle_half(bench):
    assert bench.iqm(np.array([1.0, 2.0, 3.0, 4.0, 100.0])) == pytest.approx(3.0)  # drops 1 and 100
    assert bench.iqm(np.arange(8.0)) == pytest.approx(3.5)                          # mean of 2, 3, 4, 5
    cols = bench.iqm(np.array([[0.0, 10.0], [1.0, 10.0], [2.0, 10.0], [3.0, 10.0]]), axis=0)
    np.testing.assert_allclose(cols, [1.5, 10.0])


def test_iqm_interval_brackets_the_point_and_shrinks_with_agreement(bench):
    rng = np.random.default_rng(0)
    spread = rng.normal(0.0, 10.0, size=(10, 1))
    point, ci = bench.iqm_interval(spread, reps=500)
    assert ci[0, 0] <= point[0] <= ci[1, 0] and ci[1, 0] - ci[0, 0] > 1.0
    point, ci = bench.iqm_interval(np.full((10, 1), 7.0), reps=200)
    assert point[0] == pytest.approx(7.0) and ci[0, 0] == pytest.approx(7.0) and ci[1, 0] == pytest.approx(7.0)


def test_aggregate_cell_thresholds_and_missing_runs(bench):
    runs = [summary(0, [100, 475, 500], [1.0, 2.0, 3.0]),   # reached at 2000 steps / 2.0 CPU-s, stays
            summary(1, [480, 300, 200], [1.0, 2.0, 3.0]),   # reached at 1000 / 1.0, falls back
            summary(2, [10, 20, 30], [1.0, 2.0, 3.0])]      # never
    row = bench.aggregate_cell("ppo", "CartPole-v1", 475.0, runs, {3: "failed: boom", 4: "missing"}, reps=200)
    assert (row["seeds"], row["finished"], row["reached"], row["stays"]) == (5, 3, 2, 1)
    assert row["median_steps_to_threshold"] is None            # 1000, 2000, inf, inf, inf: median not reached
    assert row["final_iqm"] == pytest.approx(730 / 3)           # 3 runs: 25% of 3 rounds down to no cut
    assert row["problems"] == {"3": "failed: boom", "4": "missing"}
    assert row["runs"][0]["train_return_last10"] == pytest.approx(10.0)  # episodes.csv's last 10 returns
    assert row["curve"]["env_step"] == [1000, 2000, 3000]
    row = bench.aggregate_cell("ppo", "CartPole-v1", 475.0, runs, {}, reps=200)
    assert row["median_steps_to_threshold"] == 2000 and row["median_cpu_seconds_to_threshold"] == 2.0


def test_classic_suite_cells_compose_and_validate(bench):
    """Every cell of conf/suite/classic.yaml is a valid `python -m classic_rl agent=A env=E` config."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from classic_rl.compose import register_resolvers
    from classic_rl.run import load_config

    register_resolvers()  # ${vector_steps:K} of the tuned configs
    suite = bench.load_suite("classic")
    pairs = bench.cells(suite)
    assert len(pairs) == len(set(pairs)) > 30
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        for agent, env in pairs:
            cfg = compose(config_name="config", overrides=[f"agent={agent}", f"env={env}"])
            run_cfg, agent_cfg = load_config(OmegaConf.to_container(cfg, resolve=True))
            assert run_cfg.env.id == env
            assert (ROOT / "conf" / "tuned" / f"{agent}_{env}.yaml").is_file(), f"{agent} on {env} has no tuned config"


def test_unknown_suite_is_a_one_line_error():
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "benchmark.py"), "nope", "--aggregate-only"],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0 and "no suite 'nope'" in proc.stderr and "classic" in proc.stderr


def tiny_suite(tmp_path):
    suite = {"name": "tiny", "seeds": [0, 1], "thresholds": {"CartPole-v1": 20.0, "Pendulum-v1": -200.0},
             "overrides": ["train.total_steps=4096", "eval.every_steps=2048", "eval.episodes=4",
                           "logger.tensorboard=false"],
             "groups": [{"agents": ["ppo", "a2c"], "envs": ["CartPole-v1"]},
                        {"agents": ["dqn"], "envs": ["Pendulum-v1"]}],   # dqn cannot act on Pendulum: fails
             "cell_overrides": {"a2c_CartPole-v1": ["train.total_steps=2048"]}}  # this cell only
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def run_benchmark(tmp_path, *extra):
    return subprocess.run([sys.executable, str(ROOT / "experiments" / "benchmark.py"), str(tiny_suite(tmp_path)),
                           "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--reps", "200", *extra],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)


def check_tiny_results(tmp_path, proc):
    assert proc.returncode == 1, proc.stderr[-2000:]          # the failing cell makes the suite exit 1
    result = json.loads((tmp_path / "out" / "tiny.json").read_text())
    rows = {(r["agent"], r["env"]): r for r in result["rows"]}
    assert rows["ppo", "CartPole-v1"]["finished"] == 2 and rows["a2c", "CartPole-v1"]["finished"] == 2
    assert {r["env_steps"] for r in rows["ppo", "CartPole-v1"]["runs"]} == {4096}   # the suite's overrides
    assert {r["env_steps"] for r in rows["a2c", "CartPole-v1"]["runs"]} == {2048}   # and the cell's own
    failed = rows["dqn", "Pendulum-v1"]
    assert failed["finished"] == 0 and set(failed["problems"]) == {"0", "1"}
    assert "needs discrete actions" in failed["problems"]["0"]
    table = (tmp_path / "out" / "tiny.md").read_text()
    assert "dqn Pendulum-v1 seed 1: failed" in table and "| ppo |" in table
    assert (tmp_path / "out" / "tiny_CartPole-v1.png").stat().st_size > 5000
    assert "dqn Pendulum-v1 seed 0: failed" in proc.stderr


@pytest.mark.slow
def test_suite_with_joblib_reports_failures_and_skips_finished_runs(tmp_path):
    proc = run_benchmark(tmp_path, "--launcher", "joblib", "--jobs", "2")
    check_tiny_results(tmp_path, proc)
    done = tmp_path / "runs" / "ppo_CartPole-v1" / "seed1" / "summary.json"
    first = (done.read_text(), done.stat().st_mtime_ns)
    proc = run_benchmark(tmp_path, "--launcher", "joblib", "--jobs", "2")   # again: nothing new to train
    check_tiny_results(tmp_path, proc)
    assert (done.read_text(), done.stat().st_mtime_ns) == first            # the same run, not a new one
    log = (tmp_path / "runs" / "benchmark.log").read_text()
    assert log.count("already holds a finished run of this config") == 4   # ppo, a2c x 2 seeds, second pass
    assert "hydra/launcher=joblib" in log


@pytest.mark.slow
def test_suite_on_a_local_ray_cluster(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    proc = run_benchmark(tmp_path, "--launcher", "ray", "--ray-address", "local", "--jobs", "2")
    check_tiny_results(tmp_path, proc)
    log = (tmp_path / "runs" / "benchmark.log").read_text()
    assert "Ray Launcher is launching 6 jobs" in log and "Started a local Ray instance" in log


def test_curve_interpolates_seeds_evaluated_at_different_steps(bench):
    a = summary(0, [0.0, 100.0, 200.0], [1.0, 2.0, 3.0], every=1000)    # steps 1000, 2000, 3000
    b = summary(1, [0.0, 300.0], [1.0, 2.0], every=1500)                # steps 1500, 3000
    c = bench.curve([a, b], reps=100, points=3)
    assert c["env_step"] == [1500, 2250, 3000]                          # the range both seeds cover
    # a at 1500/2250/3000: 50, 125, 200; b: 0, 150, 300; IQM of two values is their mean
    np.testing.assert_allclose(c["iqm"], [25.0, 137.5, 250.0])
    assert all(lo <= m <= hi for lo, m, hi in zip(c["low"], c["iqm"], c["high"]))

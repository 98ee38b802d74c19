"""experiments/tune.py: a tiny Optuna study end to end, resuming, pruning, one-line errors; the trainer's
evaluation callback it relies on."""

import json
import signal

import pytest
from types import SimpleNamespace
import yaml

from classic_rl import run
from tests.conftest import load_experiment, small_config

optuna = pytest.importorskip("optuna")

# PPO on 4 CartPole envs, 512 env steps (8 rollouts of 64, 2 gradient steps each), an evaluation (2 episodes)
# every 128: a run takes a fraction of a second
TINY = ["agent=ppo", "env=CartPole-v1", "device=cpu", "env.num_envs=4", "agent.rollout_steps=16",
        "agent.epochs=1", "agent.minibatches=2", "agent.lr_decay_steps=512", "train.total_steps=512",
        "eval.every_steps=128", "eval.episodes=2", "eval.early_stop=true"]


@pytest.fixture(scope="module")
def tune():
    return load_experiment("tune")


def space_file(tmp_path, **changes):
    data = {"overrides": TINY, "seeds": [0], "verify_seeds": [7], "objective": {"unsolved_penalty": 100.0},
            "pruner": {"type": "median", "n_startup_trials": 1}, "sampler": {"type": "random", "seed": 0},
            "space": {"agent.lr": {"type": "float", "low": 1.0e-3, "high": 3.0e-3, "log": True}}}
    data.update(changes)
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def intermediate_values_are_coherent(trial):
    """Reported values never go up, and a completed trial's last one is its objective."""
    values = [v for _, v in sorted(trial.intermediate_values.items())]
    assert values and all(a >= b for a, b in zip(values, values[1:])), values
    if trial.state == optuna.trial.TrialState.COMPLETE:
        assert values[-1] == pytest.approx(trial.value)


def test_tiny_study_completes_writes_results_and_resumes(tune, tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    args = ["--space", str(space_file(tmp_path)), "--trials", "2", "--storage", storage, "--study-name", "tiny",
            "--out-dir", str(tmp_path)]
    report = tune.main(args)
    first = json.loads((tmp_path / "tune_tiny.json").read_text())
    md = (tmp_path / "tune_tiny.md").read_text()
    assert first["counts"]["total"] == 2 and first == json.loads(json.dumps(report))
    assert [t["state"] for t in first["trials"]] == ["complete", "complete"]
    assert first["trials"][0]["params"] == {"agent.lr": 0.0015}  # trial 0 is the default configuration
    assert first["defaults"] == {"agent.lr": 0.0015}
    assert first["best"]["params"]["agent.lr"] in [t["params"]["agent.lr"] for t in first["trials"]]
    assert min(t["value"] for t in first["trials"]) == first["best"]["value"]
    verification = first["verification"]
    assert verification["seeds"] == [7]
    for name in ("default", "best"):
        assert [r["seed"] for r in verification[name]["runs"]] == [7]
    assert "## Verification on seeds [7]" in md and "| 0 | complete |" in md and "| 1 | complete |" in md
    out = capsys.readouterr().out
    assert "trial 0:" in out and "trial 1:" in out and "best at least as fast" in out

    study = optuna.load_study(study_name="tiny", storage=storage)
    for trial in study.trials:
        intermediate_values_are_coherent(trial)

    # the same command again: the study resumes, the earlier trials are kept as they were
    tune.main([*args[:3], "1", *args[4:], "--no-verify"])
    second = json.loads((tmp_path / "tune_tiny.json").read_text())
    assert second["counts"]["total"] == 3 and second["verification"] is None
    assert second["trials"][:2] == first["trials"]
    assert "0 earlier" not in capsys.readouterr().out.splitlines()[0]  # "2 earlier trial(s)"
    assert len(optuna.load_study(study_name="tiny", storage=storage).trials) == 3


def test_median_pruner_prunes_a_run_behind_the_completed_trials(tune, tmp_path):
    """Trial 0 reaches its (lowered) threshold at its first evaluation; trial 1 cannot reach 1000 on CartPole,
    so at its first evaluation it reports the penalty, above the median: it must be pruned right there."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    path = space_file(tmp_path, enqueue_default=False, space={
        "env.reward_threshold": {"type": "categorical", "choices": [1.0, 1000.0]}})
    study = optuna.create_study(study_name="prune", storage=storage, direction="minimize")
    study.enqueue_trial({"env.reward_threshold": 1.0})
    study.enqueue_trial({"env.reward_threshold": 1000.0})
    report = tune.main(["--space", str(path), "--trials", "2", "--storage", storage, "--study-name", "prune",
                        "--out-dir", str(tmp_path), "--no-verify"])
    solved, pruned = report["trials"]
    assert solved["state"] == "complete" and solved["solved"] == 1 and solved["value"] < 100
    assert pruned["state"] == "pruned" and pruned["value"] == 100.0
    assert pruned["note"].startswith("seed 0 at env step 128")  # its first evaluation
    trials = optuna.load_study(study_name="prune", storage=storage).trials
    assert list(trials[1].intermediate_values) == [1]
    for trial in trials:
        intermediate_values_are_coherent(trial)
    assert "| 1 | pruned |" in (tmp_path / "tune_prune.md").read_text()


def test_reporter_values_and_pruning_without_runs(tune):
    """The callback alone, fed evaluation records: the values it reports, its fill-in, and MedianPruner."""
    study = optuna.create_study(direction="minimize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    penalty = 10.0

    def feed(trial, runs):
        reporter = tune.Reporter(trial, len(runs), penalty, every_steps=100, total_steps=400)
        for records in runs:
            reporter.start_seed(threshold=475.0)
            for step, ret, cpu in records:
                reporter.on_evaluation({"env_step": step, "return_mean": ret, "train_cpu_seconds": cpu})
            solved = next((cpu for _, ret, cpu in records if ret >= 475), None)
            reporter.end_seed({"solved_at_cpu_seconds": solved})
        return reporter

    # two seeds; seed 0 solves at its 2nd evaluation (0.4 CPU-s, early stop), seed 1 at its 3rd (0.9)
    good = study.ask()
    reporter = feed(good, [[(100, 50, 0.2), (200, 480, 0.4)], [(100, 30, 0.3), (210, 100, 0.6), (300, 500, 0.9)]])
    assert reporter.value() == pytest.approx((0.4 + 0.9) / 2)  # the objective: mean over the seeds
    study.tell(good, reporter.value())
    k = reporter.last_index + 1  # steps per seed
    assert study.trials[0].intermediate_values == pytest.approx({
        1: (10 + 10) / 2, 2: (0.4 + 10) / 2, 3: (0.4 + 10) / 2, 4: (0.4 + 10) / 2,  # seed 1 not run: penalty
        k + 1: (0.4 + 10) / 2, k + 2: (0.4 + 10) / 2, k + 3: (0.4 + 0.9) / 2, k + 4: (0.4 + 0.9) / 2})

    # a second trial still below the threshold at the step where the first had solved: pruned there
    slow = study.ask()
    with pytest.raises(optuna.TrialPruned, match="seed 0 at env step 200"):
        feed(slow, [[(100, 60, 0.1), (200, 100, 0.2), (300, 480, 0.3)], [(100, 480, 0.1)]])
    # one as good as the first at every step is not pruned
    tie = study.ask()
    feed(tie, [[(100, 50, 0.2), (200, 480, 0.4)], [(100, 30, 0.3), (200, 100, 0.6), (300, 500, 0.8)]])


@pytest.mark.parametrize("change, expected", [
    ({"space": {"agent.lrr": {"type": "float", "low": 1e-3, "high": 1e-2}}}, "unknown key 'agent.lrr'"),
    ({"space": {"agent.lr": {"type": "float", "low": 1e-2, "high": 1e-3}}}, "low=0.01 >= high=0.001"),
    ({"space": {"agent.lr": {"type": "float", "low": 0.0, "high": 1e-3, "log": True}}}, "needs low > 0"),
    ({"space": {"agent.lr": {"type": "uniform", "low": 0.0, "high": 1e-3}}}, "use type: float, int or categorical"),
    ({"space": {"agent.epochs": {"type": "int", "low": 1, "high": 4, "choices": [1]}}}, "unknown field(s) choices"),
    ({"space": {"agent.epochs": {"type": "categorical", "choices": []}}}, "needs a non-empty list"),
    ({"space": {"agent.gae_lambda": {"type": "float", "low": 0.9, "high": 1.5}}}, "value 1.5 is not allowed"),
    ({"space": {"agent": {"type": "categorical", "choices": ["ppo"]}}}, "is a config section"),
    ({"objective": {}}, "objective must be {unsolved_penalty"),
    ({"pruner": {"type": "median", "n_startup_trial": 1}}, "pruner median (MedianPruner) rejects"),
    ({"sampler": {"type": "grid"}}, "sampler must be a mapping with type: tpe | random"),
    ({"budget": 3}, "unknown top-level key(s) budget"),
])
def test_bad_space_file_is_one_line_error(tune, tmp_path, capsys, change, expected):
    with pytest.raises(SystemExit) as exit_info:
        tune.main(["--space", str(space_file(tmp_path, **change)), "--trials", "1",
                   "--storage", f"sqlite:///{tmp_path / 'x.db'}", "--out-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tune: error: ") and expected in err, err
    assert not (tmp_path / "x.db").exists()  # nothing ran, no study created


def test_missing_or_broken_space_file_is_one_line_error(tune, tmp_path, capsys):
    for path, expected in ((tmp_path / "nope.yaml", "does not exist; pass --space PATH"),
                           (tmp_path / "broken.yaml", "is not valid YAML")):
        if path.name == "broken.yaml":
            path.write_text("space: {agent.lr: [\n")
        with pytest.raises(SystemExit) as exit_info:
            tune.main(["--space", str(path), "--trials", "1", "--out-dir", str(tmp_path)])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.count("\n") == 1 and expected in err, err


def test_on_evaluation_callback_sees_every_evaluation(tmp_path):
    seen = []
    summary = run.main(small_config(), tmp_path, callbacks=[SimpleNamespace(on_evaluation=seen.append)])
    assert seen == summary["evaluations"] and [e["env_step"] for e in seen] == [500, 1000]
    assert {"env_step", "return_mean", "train_cpu_seconds"} <= set(seen[0])


def test_on_evaluation_callback_exception_propagates_with_logger_and_envs_closed(tmp_path, monkeypatch):
    closed = []
    make_env, logger_close = run.make_env, run.Logger.close

    def spy_env(*args, **kwargs):
        env = make_env(*args, **kwargs)
        env_close = env.close
        env.close = lambda: (closed.append("env"), env_close())[1]
        return env

    monkeypatch.setattr(run, "make_env", spy_env)
    monkeypatch.setattr(run.Logger, "close", lambda self: (closed.append("logger"), logger_close(self))[1])

    class Stop(Exception):
        pass

    def stop(record):
        raise Stop(record["env_step"])

    handler = signal.getsignal(signal.SIGINT)
    for at_start in (False, True):  # also the evaluation before training (eval.at_start)
        closed.clear()
        with pytest.raises(Stop, match="^0$" if at_start else "^500$"):
            run.main(small_config(eval={"at_start": at_start}), tmp_path / str(at_start),
                     callbacks=[SimpleNamespace(on_evaluation=stop)])
        assert sorted(closed) == ["env", "env", "logger"]
        assert not (tmp_path / str(at_start) / "summary.json").exists()
        assert signal.getsignal(signal.SIGINT) is handler  # the trainer's Ctrl-C handler is gone again

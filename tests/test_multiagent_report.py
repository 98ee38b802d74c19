"""experiments/multiagent_agents.py: the per-agent report (seeds at the threshold, steps and seconds to it,
IQM with its bootstrap CI) on made-up run summaries, and the plot of early-stopped seeds."""

import pytest

from conftest import load_experiment


def summary(finals, solved_step, solved_seconds, every=500_000):
    evals = [{"env_step": every * (i + 1), "return_mean": r} for i, r in enumerate(finals)]
    return {"eval_return_mean": finals[-1], "env_steps": every * len(finals), "train_seconds": 10.0 * len(finals),
            "solved_at_step": solved_step, "solved_at_seconds": solved_seconds, "evaluations": evals}


def test_report_counts_seeds_at_the_threshold_and_the_iqm_drops_the_outer_quarters(tmp_path):
    ma = load_experiment("multiagent_agents")
    runs = [summary([-30.0, -22.4], 1_000_000, 20.0), summary([-30.0, -25.0, -22.0], 1_500_000, 30.0),
            summary([-40.0, -35.0], None, None), summary([-30.0, -23.0], None, None)]
    r = ma.report("mappo", runs, reps=200, confirmed=[-22.0, -23.0, -35.0, -24.0])
    assert r["solved_seeds"] == 2
    assert r["solved_at_step_by_seed"] == [1_000_000, 1_500_000, None, None]
    assert r["env_steps_by_seed"] == [1_000_000, 1_500_000, 1_000_000, 1_000_000]
    assert r["team_return"] == pytest.approx((-22.4 - 22.0 - 35.0 - 23.0) / 4, abs=0.01)
    assert r["team_return_iqm"] == pytest.approx((-22.4 - 23.0) / 2, abs=0.01)  # the middle two of four
    low, high = r["team_return_iqm_ci"]
    assert -35.0 <= low <= r["team_return_iqm"] <= high <= -22.0
    assert r["confirmed_mean"] == pytest.approx(-26.0)
    assert r["best_eval_by_seed"] == [-22.4, -22.0, -35.0, -23.0]
    ma.plot([r], [{"policy": "random", "team_return": -80.0}], -22.5, tmp_path / "curves.png")  # seeds of any length
    assert (tmp_path / "curves.png").stat().st_size > 0

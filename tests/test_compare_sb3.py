"""experiments/compare_sb3.py: per-run records -> table rows and ratios, known answers (no SB3 needed)."""

import importlib.util
import math
import sys

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def cmp():
    sys.path.insert(0, str(ROOT / "experiments"))
    spec = importlib.util.spec_from_file_location("compare_sb3", ROOT / "experiments" / "compare_sb3.py")
    module = importlib.util.module_from_spec(spec)
    had_sb3 = "stable_baselines3" in sys.modules
    spec.loader.exec_module(module)
    assert had_sb3 or "stable_baselines3" not in sys.modules  # SB3 is imported lazily, by the runner only
    return module


def record(seed, returns, cpu, every=1000, library="classic_rl"):
    """A run evaluated after every `every` env steps with these mean returns and cumulative CPU-seconds."""
    evals = [{"env_step": every * (i + 1), "return_mean": r, "train_cpu_seconds": c} for i, (r, c) in
             enumerate(zip(returns, cpu))]
    return {"library": library, "seed": seed, "env_steps": every * len(returns), "train_cpu_seconds": cpu[-1],
            "evaluations": evals}


def test_run_stats_first_evaluation_at_threshold_and_final(cmp):
    r = cmp.run_stats(record(3, [100, 475, 400, 500], [1.0, 2.0, 3.0, 4.0]), 475.0)
    assert r == {"seed": 3, "env_steps": 4000, "train_cpu_seconds": 4.0, "steps_to_threshold": 2000,
                 "cpu_seconds_to_threshold": 2.0, "final_return": 500, "stays_solved": True}
    r = cmp.run_stats(record(0, [-300, -150, -250], [1.0, 2.0, 3.0]), -200.0)  # reached, then lost
    assert (r["steps_to_threshold"], r["stays_solved"]) == (2000, False)
    r = cmp.run_stats(record(0, [10, 20], [1.0, 2.0]), 475.0)
    assert r["steps_to_threshold"] is None and r["cpu_seconds_to_threshold"] is None


def test_aggregate_counts_unreached_seeds_as_infinitely_slow(cmp):
    runs = [record(0, [475, 500], [1.0, 2.0]),            # solved at 1000 steps / 1.0 s, stays
            record(1, [100, 480, 300], [1.0, 3.0, 5.0]),   # solved at 2000 / 3.0 s, not at the end
            record(2, [100, 200], [2.0, 4.0])]             # never
    side = cmp.aggregate(runs, 475.0)
    assert (side["seeds"], side["solved"], side["stays_solved"]) == (3, 2, 1)
    assert side["median_steps_to_threshold"] == 2000      # median of 1000, 2000, inf
    assert side["median_cpu_seconds_to_threshold"] == 3.0
    assert side["final_return_mean"] == pytest.approx((500 + 300 + 200) / 3)
    assert side["final_return_std"] == pytest.approx(math.sqrt(((500 - 1000 / 3) ** 2 + (300 - 1000 / 3) ** 2
                                                               + (200 - 1000 / 3) ** 2) / 3))
    assert side["train_cpu_seconds_per_1k_steps"] == pytest.approx(5.0 / 3)  # median of 1, 5/3, 2
    # two of three unreached: the median itself is unreached
    side = cmp.aggregate(runs[:1] + [record(1, [0], [1.0]), record(2, [0], [1.0])], 475.0)
    assert side["median_steps_to_threshold"] is None and side["solved"] == 1


def test_compare_ratios_are_sb3_over_classic(cmp):
    classic = [record(s, [475], [2.0], every=1000) for s in range(3)]
    sb3 = [record(s, [100, 475], [3.0, 6.0], every=2000, library="sb3") for s in range(3)]
    row = cmp.compare("ppo", "CartPole-v1", classic, sb3, 475.0)
    assert row["ratio_sb3_over_classic"]["median_steps_to_threshold"] == pytest.approx(4000 / 1000)
    assert row["ratio_sb3_over_classic"]["median_cpu_seconds_to_threshold"] == pytest.approx(6.0 / 2.0)
    assert row["ratio_sb3_over_classic"]["train_cpu_seconds_per_1k_steps"] == pytest.approx(1.5 / 2.0)
    # one side missing (a classic_rl agent not written yet): the row exists, ratios are None
    row = cmp.compare("ddpg", "Pendulum-v1", [], sb3, -200.0, note="not available")
    assert row["classic_rl"] is None and set(row["ratio_sb3_over_classic"].values()) == {None}
    text = cmp.markdown([row])
    assert "not run" in text and text.count("\n") == 5  # header, rule, two sides, ratio line


def test_zoo_entries_cover_every_pair(cmp):
    assert set(cmp.ZOO) == set(cmp.PAIRS) and set(cmp.THRESHOLDS) == {e for _, e in cmp.PAIRS}


def test_zoo_linear_schedule_and_noise(cmp):
    pytest.importorskip("stable_baselines3")
    kwargs = cmp._sb3_kwargs("ppo", cmp.ZOO[("ppo", "CartPole-v1")], None)
    assert kwargs["learning_rate"](1.0) == pytest.approx(1e-3) and kwargs["learning_rate"](0.25) == pytest.approx(2.5e-4)
    assert kwargs["clip_range"](0.5) == pytest.approx(0.1) and kwargs["n_epochs"] == 20
    kwargs = cmp._sb3_kwargs("td3", cmp.ZOO[("td3", "Pendulum-v1")], 1)
    assert kwargs["action_noise"]._sigma.tolist() == [0.1] and kwargs["policy_kwargs"] == {"net_arch": [400, 300]}

"""RLHF on text-arith with SmolLM2-135M-Instruct: a Bradley-Terry reward model from preference pairs,
GRPO against it, offline DPO from the same pairs, and TRL's RewardTrainer / DPOTrainer side by side.

    python experiments/lm_pairs.py --out PAIRS          # the pairs (the model's own samples), first
    python experiments/lm_rlhf.py --pairs PAIRS         # all parts
    python experiments/lm_rlhf.py --pairs PAIRS --only rm grpo_rm   # some parts (rm is needed by grpo_rm)
    python experiments/lm_rlhf.py --pairs PAIRS --rm-more MORE      # the reward model also trains on the
                                                                    # training pairs of MORE (other prompts)

Parts (each classic_rl part is the README's command, in its own process, 2 torch threads, fp32):
  rm        python -m classic_rl agent=reward_model env=text-arith model=smollm2-135m agent.pairs=PAIRS/pairs.jsonl
            agent.minimal_pairs=PAIRS/minimal.jsonl (conf/tuned/reward_model_text-arith.yaml): held-out
            pairwise accuracy (natural and minimal pairs), seconds per step, peak memory.
  grpo_rm   python -m classic_rl agent=grpo env=text-arith model=smollm2-135m env.reward_model=RM_RUN
            env.missing_eos_penalty=5 (--missing-eos-penalty) over twice
            the true-reward run's token budget: held-out greedy accuracy (the true reward) over training,
            the reward model's score and the true reward of the training samples; a plot of the three.
  dpo       python -m classic_rl agent=dpo env=text-arith model=smollm2-135m agent.pairs=PAIRS/pairs.jsonl:
            held-out accuracy before and after offline DPO.
  trl       the same pairs, batch, β, lr, fp32 and threads in TRL's RewardTrainer and DPOTrainer against
            classic_rl's RewardModel and DPO agents, each in its own process: seconds per step (mean of
            --trl-steps steps after one warm-up step), peak resident memory, and the loss of one fixed
            first batch at the start (reward model: both heads set to the same random weights).
Writes experiments/results/lm_rlhf.{md,json} and lm_rlhf_grpo_rm.png.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from lm_grpo import run_classic  # noqa: E402


def peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def metrics(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]


# ---------------------------------------------------------------------------------------------- classic_rl parts
def training_rows(directories: list[Path], out: Path) -> Path:
    """The training-prompt rows (split = train) of more lm_pairs.py directories' pairs.jsonl and
    minimal_train.jsonl, in one file: extra training data for the reward model that never adds to the
    held-out pairs."""
    rows = [line for d in directories for name in ("pairs.jsonl", "minimal_train.jsonl") if (d / name).exists()
            for line in (d / name).read_text().splitlines() if line.strip() and json.loads(line).get("split") == "train"]
    out.write_text("\n".join(rows) + "\n")
    return out


def part_rm(pairs: Path, workdir: Path, threads: int, extra: list[str], run_dir: Path | None = None,
            more: list[Path] | None = None) -> dict[str, Any]:
    """Train the reward model (or, with `run_dir`, read a finished reward-model run) and report it; `more`:
    lm_pairs.py directories whose training-prompt pairs are added to its training pairs."""
    if run_dir is None:
        files = [pairs / "pairs.jsonl", pairs / "minimal_train.jsonl"]
        if more:
            files.append(training_rows(more, workdir / "rm_more_pairs.jsonl"))
        result = run_classic("reward_model", [f"agent.pairs=[{','.join(map(str, files))}]",
                                              f"agent.minimal_pairs={pairs / 'minimal.jsonl'}", *extra], workdir,
                             threads)
        run_dir, command = workdir / "classic_reward_model", result["command"]
    else:
        import yaml

        from classic_rl.run import flatten

        config = flatten(yaml.safe_load((run_dir / "config.yaml").read_text()))
        command = "-m classic_rl " + " ".join(f"{k}={v}" for k, v in config.items() if k.startswith(
            ("agent.pairs", "agent.minimal_pairs", "agent.lr", "train.total_steps", "train.torch_threads", "agent.batch_size",
             "seed")))
    summary = json.loads((run_dir / "summary.json").read_text())
    evals = summary["evaluations"]
    return {"command": command, "run_dir": str(run_dir), "pairs_seen": summary["env_steps"],
            "updates": summary["updates"], "train_seconds": summary["train_seconds"],
            "seconds_per_step": round(summary["train_seconds"] / max(summary["updates"], 1), 3),
            "held_out_accuracy": round(summary["eval_return_mean"], 3),
            "held_out_pairs": summary["eval_episodes"],
            "minimal_pair_accuracy": round(summary.get("eval_minimal_pair_accuracy", float("nan")), 3),
            "curve": [(e["env_step"], round(e["return_mean"], 3), round(e.get("minimal_pair_accuracy", float("nan")), 3))
                      for e in evals],
            "peak_memory_mb": summary["peak_memory_mb"],
            "more_pairs": [{"pairs": str(d), "command": json.loads((d / "summary.json").read_text()).get("command")}
                           for d in more or [] if (d / "summary.json").exists()],
            "more_training_pairs": sum(1 for _ in (workdir / "rm_more_pairs.jsonl").open()) if more else 0}


def part_grpo_rm(rm_dir: Path, workdir: Path, threads: int, budget: int, extra: list[str],
                 reuse: bool = False, missing_eos_penalty: float | None = None) -> dict[str, Any]:
    steps = 2 * budget
    penalty = [] if missing_eos_penalty is None else [f"env.missing_eos_penalty={missing_eos_penalty:g}"]
    result = run_classic("grpo", [f"env.reward_model={rm_dir}", *penalty, f"train.total_steps={steps}",
                                  f"agent.lr_decay_steps={steps}", "eval.every_steps=1000", *extra], workdir, threads,
                         reuse=reuse)
    logged = metrics(workdir / "classic_grpo")
    result["score_curve"] = [(m["step"], round(m["train/reward_mean"], 3)) for m in logged if "train/reward_mean" in m]
    result["true_reward_curve"] = [(m["step"], round(m["train/true_reward_mean"], 3)) for m in logged
                                   if "train/true_reward_mean" in m]
    result["budget"] = budget
    within = [acc for step, _, acc in result["accuracy_curve"] if step <= budget + 100]
    result["best_accuracy_within_budget"] = max(within) if within else None
    result["accuracy_at_budget"] = within[-1] if within else None
    return result


def plot_grpo_rm(result: dict[str, Any], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    steps, score = zip(*result["score_curve"])
    ax.plot(steps, score, color="tab:purple", label="reward-model score (training samples)")
    ax.set_xlabel("env steps (generated tokens)")
    ax.set_ylabel("reward-model score")
    ax.axvline(result["budget"], color="grey", linestyle=":", label="true-reward run's budget")
    right = ax.twinx()
    t_steps, true = zip(*result["true_reward_curve"])
    right.plot(t_steps, true, color="tab:orange", alpha=0.6, label="true reward (training samples)")
    e_steps, _, acc = zip(*result["accuracy_curve"])
    right.plot(e_steps, acc, "o-", color="tab:green", label="held-out greedy accuracy (true)")
    right.set_ylabel("accuracy")
    right.set_ylim(0, 1.02)
    lines = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    ax.legend(lines, labels, loc="lower right", fontsize=8)
    ax.set_title("GRPO against a learned reward model, text-arith, SmolLM2-135M")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def part_dpo(pairs: Path, workdir: Path, threads: int, extra: list[str], steps: int = 480,
             reuse: bool = False) -> dict[str, Any]:
    """Offline DPO on the natural training pairs: `steps` pairs, lr 1e-5 annealed to 0 over them."""
    result = run_classic("dpo", [f"agent.pairs={pairs / 'pairs.jsonl'}", f"train.total_steps={steps}",
                                 "agent.lr=1e-5", "agent.lr_end=0", f"agent.lr_decay_steps={steps}",
                                 f"eval.every_steps={steps}", *extra], workdir, threads, reuse=reuse)
    result["pairs_seen"] = json.loads((workdir / "classic_dpo" / "summary.json").read_text())["env_steps"]
    return result


# ---------------------------------------------------------------------------------------------- TRL side by side
def training_pairs(pairs: Path) -> list[dict[str, Any]]:
    from classic_rl.lm.pairs import read_pairs

    return [r for r in read_pairs(str(pairs / "pairs.jsonl")) if r.get("split", "train") != "eval"]


def templated(tokenizer: Any, rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """TRL's standard (non-conversational) format with the prompt as classic_rl's text env encodes it
    (chat template + generation prompt): both sides then score the same tokens."""
    from classic_rl.envs.text import encode_prompt

    return [{"prompt": tokenizer.decode(encode_prompt(tokenizer, r["prompt"])), "chosen": r["chosen"],
             "rejected": r["rejected"]} for r in rows]


def worker(kind: str, side: str, pairs: Path, steps: int, batch: int, lr: float, beta: float, threads: int,
           out: Path, model: str = "smollm2-135m") -> None:
    """One side of one comparison, in its own process (peak memory is the process's)."""
    import torch

    from classic_rl.config import ModelConfig
    from classic_rl.lm.model import load

    torch.set_num_threads(threads)
    lm = load(ModelConfig(name=model), "cpu", seed=0)
    rows = training_pairs(pairs)
    first = rows[:batch]
    generator = torch.Generator().manual_seed(1)
    head = torch.randn(1, lm.model.config.hidden_size, generator=generator) * 0.02  # the same score head both sides
    times: list[float] = []
    if side == "classic_rl":
        from classic_rl.agents import make, make_config
        from classic_rl.envs import make as make_env
        from classic_rl.losses import bradley_terry_loss

        env = make_env("text-arith", num_envs=16, tokenizer=lm.tokenizer, group_size=8,
                       chat_template=bool(getattr(lm.tokenizer, "chat_template", None)))
        common = {"pairs": str(pairs / "pairs.jsonl"), "batch_size": batch, "lr": lr, "max_completion_tokens": 1024}
        if kind == "rm":
            agent = make(make_config({"name": "reward_model", **common}), env.spec, lm=lm)
            with torch.no_grad():
                agent.policy.value_head.weight.copy_(head)
            agent.data  # reads the pairs
            with torch.no_grad():
                chosen, rejected = agent.rewards(first)
                first_loss = bradley_terry_loss(chosen, rejected)[0].item()
        else:
            from classic_rl.lm.pairs import encode_pairs
            from classic_rl.losses import dpo_loss

            agent = make(make_config({"name": "dpo", "beta": beta, **common}), env.spec, lm=lm)
            b = encode_pairs(lm.tokenizer, first, env.spec.text.chat_template, None, 1024)
            with torch.no_grad():
                score = [agent.policy.sequence_log_prob(b.prompts, c, m, reference=ref) for c, m in
                         ((b.chosen, b.chosen_mask), (b.rejected, b.rejected_mask)) for ref in (False, True)]
                loss, stats = dpo_loss(score[0], score[2], score[1], score[3], beta)
            first_loss = loss.item()
            first_stats = {k: stats[k].item() for k in ("logps/chosen", "logps/rejected")}
        for _ in range(steps + 1):
            t0 = time.perf_counter()
            agent.update()
            times.append(time.perf_counter() - t0)
    else:
        from datasets import Dataset
        from transformers import AutoModelForSequenceClassification, TrainerCallback

        data = Dataset.from_list(templated(lm.tokenizer, rows))

        class Timer(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                self.t0 = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                times.append(time.perf_counter() - self.t0)

        common = dict(output_dir=str(out.parent / f"trl_{kind}"), use_cpu=True, bf16=False, seed=0, max_steps=steps + 1,
                      per_device_train_batch_size=batch, learning_rate=lr, lr_scheduler_type="constant",
                      warmup_steps=0, gradient_checkpointing=False, logging_steps=1, report_to=[], save_strategy="no",
                      dataloader_num_workers=0, max_grad_norm=1.0)
        if kind == "rm":
            from trl import RewardConfig, RewardTrainer

            with tempfile.TemporaryDirectory() as tmp:
                lm.model.save_pretrained(tmp)
                lm.tokenizer.save_pretrained(tmp)
                model = AutoModelForSequenceClassification.from_pretrained(tmp, num_labels=1)
            with torch.no_grad():
                model.score.weight.copy_(head)
            # pad with <|endoftext|> (not the EOS <|im_end|>): the score is read at the EOS, as classic_rl does
            pad = next(t for t in lm.tokenizer.all_special_tokens if t != lm.tokenizer.eos_token)
            config = RewardConfig(**common, pad_token=pad, center_rewards_coefficient=None)
            trainer = RewardTrainer(model=model, args=config, train_dataset=data, processing_class=lm.tokenizer,
                                    callbacks=[Timer()])
        else:
            from trl import DPOConfig, DPOTrainer

            config = DPOConfig(**common, beta=beta, loss_type=["sigmoid"], precompute_ref_log_probs=False)
            reference = copy.deepcopy(lm.model).eval()  # a frozen copy of the start model, as classic_rl's
            trainer = DPOTrainer(model=lm.model, ref_model=reference, args=config, train_dataset=data,
                                 processing_class=lm.tokenizer, callbacks=[Timer()])
        batch_rows = [trainer.train_dataset[i] for i in range(batch)]
        inputs = trainer._prepare_inputs(trainer.data_collator(batch_rows))
        with torch.no_grad():
            loss = trainer.compute_loss(trainer.model, inputs)
        first_loss = float(loss)
        if kind == "dpo":
            metrics_ = {k: v[-1] for k, v in trainer._metrics["train"].items() if k.startswith("logps/")}
            first_stats = metrics_
            trainer._metrics["train"].clear()
        trainer.train()
    record = {"step_seconds": times[1:], "peak_memory_mb": peak_mb(), "first_batch_loss": first_loss}
    if kind == "dpo":
        record["first_batch"] = first_stats
    out.write_text(json.dumps(record))


def run_worker(kind: str, side: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    out = workdir / f"{kind}_{side}.json"
    cmd = [sys.executable, __file__, "--worker", kind, side, "--pairs", str(args.pairs), "--trl-steps",
           str(args.trl_steps), "--batch", str(args.batch), "--lr", str(args.lr), "--beta", str(args.beta),
           "--threads", str(args.threads), "--worker-out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} {side} failed:\n{proc.stderr[-4000:]}")
    record = json.loads(out.read_text())
    record["seconds_per_step"] = round(statistics.mean(record["step_seconds"]), 3)
    record["median_seconds_per_step"] = round(statistics.median(record["step_seconds"]), 3)
    return record


def part_trl(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"steps": args.trl_steps, "batch_pairs": args.batch, "lr": args.lr, "beta": args.beta,
                           "threads": args.threads}
    for kind in ("rm", "dpo"):
        sides = {side: run_worker(kind, side, args, workdir) for side in ("classic_rl", "trl")}
        c, t = sides["classic_rl"], sides["trl"]
        sides["ratio"] = round(c["seconds_per_step"] / t["seconds_per_step"], 3)
        sides["loss_difference"] = abs(c["first_batch_loss"] - t["first_batch_loss"])
        out[kind] = sides
    return out


# ---------------------------------------------------------------------------------------------- report
def report(result: dict[str, Any], hardware: str) -> str:
    lines = ["# RLHF on text-arith: reward model, GRPO against it, offline DPO, TRL side by side", "",
             f"`python experiments/lm_rlhf.py --pairs {result['pairs']}` ({hardware}; pairs from "
             f"`{result.get('pairs_command', 'experiments/lm_pairs.py')}`)", ""]
    if "pair_counts" in result:
        lines += [f"Pairs: {json.dumps(result['pair_counts'])}", ""]
    if rm := result.get("rm"):
        lines += ["## Reward model", "", "| held-out natural pairs | minimal pairs | pairs seen | seconds per step | "
                  "peak memory (MB) |", "|---:|---:|---:|---:|---:|",
                  f"| {rm['held_out_accuracy']} ({rm['held_out_pairs']} pairs) | {rm['minimal_pair_accuracy']} | "
                  f"{rm['pairs_seen']} | {rm['seconds_per_step']} | {rm['peak_memory_mb']} |", "",
                  f"accuracy over training (pairs seen, held-out, minimal): {rm['curve']}", "",
                  *([f"Training pairs also from other prompts ({rm['more_training_pairs']} pairs, training split "
                     "only; none of the task's 100 prompts): " + "; ".join(f"`{m['command']}`" for m in rm["more_pairs"]),
                     ""] if rm.get("more_pairs") else []),
                  f"command: `{rm['command']}`", ""]
    if g := result.get("grpo_rm"):
        lines += ["## GRPO against the reward model", "",
                  f"Held-out greedy accuracy (true reward) {g['accuracy_before']} -> best {g['best_accuracy_within_budget']} "
                  f"within the true-reward run's budget ({g['budget']} tokens), {g['accuracy_after']} after "
                  f"{2 * g['budget']} tokens.", "",
                  f"held-out accuracy (env step, training seconds, accuracy): {g['accuracy_curve']}", "",
                  "![GRPO against the reward model](lm_rlhf_grpo_rm.png)", "",
                  f"command: `{g['command']}`", ""]
    if d := result.get("dpo"):
        lines += ["## Offline DPO on the pairs", "",
                  f"Held-out accuracy {d['accuracy_before']} -> {d['accuracy_after']} ({d['pairs_seen']} pairs seen, "
                  f"{d['train_seconds']} s).", "", f"curve (pairs seen, seconds, accuracy): {d['accuracy_curve']}", "",
                  f"command: `{d['command']}`", ""]
    if t := result.get("trl"):
        lines += ["## Side by side with TRL", "",
                  f"{t['steps']} steps after one warm-up step, {t['batch_pairs']} pairs per step, lr {t['lr']}, "
                  f"β {t['beta']}, fp32, {t['threads']} threads, each side in its own process.", "",
                  "| | classic_rl s/step | TRL s/step | ratio | classic_rl peak MB | TRL peak MB | first-batch loss "
                  "classic_rl | TRL |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for kind, name in (("rm", "reward model (RewardTrainer)"), ("dpo", "DPO (DPOTrainer)")):
            c, tr = t[kind]["classic_rl"], t[kind]["trl"]
            lines.append(f"| {name} | {c['seconds_per_step']} | {tr['seconds_per_step']} | {t[kind]['ratio']} | "
                         f"{c['peak_memory_mb']} | {tr['peak_memory_mb']} | {c['first_batch_loss']:.6f} | "
                         f"{tr['first_batch_loss']:.6f} |")
        lines.append("")
        dc, dt = t["dpo"]["classic_rl"].get("first_batch", {}), t["dpo"]["trl"].get("first_batch", {})
        if dc:
            lines.append(f"DPO first batch, mean sequence log-probs: classic_rl {dc}" + (f", TRL {dt}" if dt else ""))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=Path, required=True, help="a directory written by experiments/lm_pairs.py")
    parser.add_argument("--only", nargs="*", default=["rm", "grpo_rm", "dpo", "trl"])
    parser.add_argument("--rm-more", type=Path, nargs="*", default=[],
                        help="more lm_pairs.py directories (other prompts): their training pairs join the reward "
                             "model's training pairs")
    parser.add_argument("--rm-run", type=Path, help="a finished reward-model run: rm reports it, grpo_rm uses it")
    parser.add_argument("--budget", type=int, default=5000, help="the true-reward GRPO run's tokens (conf/tuned)")
    parser.add_argument("--missing-eos-penalty", type=float, default=5.0,
                        help="grpo_rm: env.missing_eos_penalty (about one standard deviation of the reward model's "
                             "scores); a negative value leaves it unset")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--trl-steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=RESULTS / "lm_rlhf")
    parser.add_argument("--workdir", type=Path, help="keep the runs here (default: a temporary directory)")
    parser.add_argument("--reuse", action="store_true", help="report the finished runs already in --workdir, "
                        "run only the missing ones")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", default="smollm2-135m", help=argparse.SUPPRESS)  # tiny: a quick check of the workers
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every classic_rl part, after --")
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args.pairs, args.trl_steps, args.batch, args.lr, args.beta, args.threads, args.worker_out,
               args.model)
        return
    import platform
    import os

    hardware = f"{platform.machine()}, {os.cpu_count()} CPUs, fp32"
    previous = json.loads(args.out.with_suffix(".json").read_text()) if args.out.with_suffix(".json").exists() else {}
    if "trl" in previous:  # each part keeps the threads it ran with
        previous["trl"].setdefault("threads", previous.get("threads"))
    result: dict[str, Any] = {**previous, "pairs": str(args.pairs), "threads": args.threads}
    summary = args.pairs / "summary.json"
    if summary.exists():
        info = json.loads(summary.read_text())
        result["pair_counts"], result["pairs_command"] = info.get("pairs"), info.get("command")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lm_rlhf_"))
    workdir.mkdir(parents=True, exist_ok=True)
    if "rm" in args.only:
        result["rm"] = part_rm(args.pairs, workdir, args.threads, args.overrides, args.rm_run, args.rm_more)
        print(json.dumps(result["rm"], indent=1), flush=True)
    if "grpo_rm" in args.only:
        rm_dir = args.rm_run or Path(result["rm"]["run_dir"])
        result["grpo_rm"] = part_grpo_rm(rm_dir, workdir, args.threads, args.budget, args.overrides, args.reuse,
                                        None if args.missing_eos_penalty < 0 else args.missing_eos_penalty)
        plot_grpo_rm(result["grpo_rm"], args.out.parent / f"{args.out.name}_grpo_rm.png")
        print(json.dumps({k: v for k, v in result["grpo_rm"].items() if "curve" not in k}, indent=1), flush=True)
    if "dpo" in args.only:
        result["dpo"] = part_dpo(args.pairs, workdir, args.threads, args.overrides, reuse=args.reuse)
        print(json.dumps({k: v for k, v in result["dpo"].items() if k != "reward_curve"}, indent=1), flush=True)
    if "trl" in args.only:
        result["trl"] = part_trl(args, workdir)
        print(json.dumps(result["trl"], indent=1), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    args.out.with_suffix(".md").write_text(report(result, hardware))
    print(f"wrote {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()

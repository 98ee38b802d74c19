"""PPO (Schulman et al. 2017): GAE advantages, then several epochs of minibatch steps on the rollout.

`objective=clip` maximises the clipped surrogate (seeds eq. 1.28), `objective=kl_penalty` the
surrogate minus β KL(π_old || π) with β adapted after every update (seeds eq. 1.27; paper §4), on
lock-step rounds too (per token, over the real tokens).
Discrete (categorical) and continuous (diagonal Gaussian, clipped to the bounds) actions.

Lock-step envs (a text env with a language model, or a classic env with env.group_size > 1): one
round per rollout, minibatches of whole sequences, every mean over real tokens only; on a language
model the critic is a value head on the LM, and `kl_reward_coef` β puts RLHF's per-token penalty
r_t - β log(π/π_ref) into the reward before GAE over the tokens (seeds eq. 1.29).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import torch

from classic_rl.agents.base import Transition, annealed_lr, linear_schedule, one_of, rollout_shape
from classic_rl.optim import adam, clip_grad_norm, micro_batch_backward, set_lr
from classic_rl.buffers.rollout import LockstepCollector, RolloutCollector
from classic_rl import distributed
from classic_rl.config import ConfigError, non_negative, positive, unit_interval
from classic_rl.envs.base import EnvSpec
from classic_rl.losses import (
    adaptive_kl_beta, aggregate_loss, clip_stats, clipped_surrogate, clipped_surrogate_loss, entropy_loss,
    kl_estimate, kl_penalized_reward, kl_penalty_loss, kl_penalty_surrogate, masked, value_loss,
)
from classic_rl.nets.policy import Activation, Actor, ActorCritic, Critic, unsupported_spaces
from classic_rl.normalize import DenormalizedValue, RunningMeanStd
from classic_rl.returns import gae, normalize_advantage


@dataclass(frozen=True)
class PPOConfig:
    name: Literal["ppo"] = "ppo"
    objective: Literal["clip", "kl_penalty"] = "clip"  # the clipped surrogate or the adaptive KL penalty
    gamma: float = field(default=0.99, metadata=unit_interval("discount factor"))
    gae_lambda: float = field(default=0.95, metadata=unit_interval("GAE λ"))
    lr: float = field(default=3e-4, metadata=positive("Adam learning rate"))
    lr_end: Optional[float] = field(default=None, metadata=non_negative("anneal lr linearly to this"))
    lr_decay_steps: int = field(default=0, metadata=non_negative("env steps of the lr annealing"))
    # the rollout by steps (T vector steps; null and no batch_size: 128) or by samples (T x env.num_envs)
    rollout_steps: Optional[int] = field(default=None, metadata=positive("vector steps per rollout (T)"))
    batch_size: Optional[int] = field(default=None, metadata=positive("samples per rollout, all envs"))
    epochs: int = field(default=4, metadata=positive("passes over each rollout"))
    # minibatches by count (null and no minibatch_size: 4) or by samples
    minibatches: Optional[int] = field(default=None, metadata=positive("minibatches per epoch"))
    minibatch_size: Optional[int] = field(default=None, metadata=positive("samples per minibatch"))
    clip_range: float = field(default=0.2, metadata=positive("ε: ratio clipped below at 1 - ε"))
    clip_range_high: Optional[float] = field(default=None, metadata=positive("upper ε (null: clip_range)"))
    clip_range_end: Optional[float] = field(default=None, metadata=positive("anneal clip_range linearly to this"))
    clip_decay_steps: int = field(default=0, metadata=non_negative("env steps of the clip-range annealing"))
    kl_beta: float = field(default=1.0, metadata=positive("initial β of objective=kl_penalty"))
    kl_target: float = field(default=0.01, metadata=positive("KL the adaptive β aims at (kl_penalty)"))
    target_kl: Optional[float] = field(default=None, metadata=positive("stop the epochs once KL exceeds this"))
    normalize_advantage: bool = True  # per minibatch: (A - mean) / std
    clip_value: Optional[float] = field(default=None, metadata=positive("clip V to old V ± this"))
    vf_coef: float = field(default=0.5, metadata=non_negative("value-loss coefficient"))
    ent_coef: float = field(default=0.0, metadata=non_negative("entropy-bonus coefficient"))
    max_grad_norm: float = field(default=0.5, metadata=positive("gradient clipping by global norm"))
    # the critic learns at lr x this: with Adam and separate networks vf_coef barely sets its pace
    critic_lr_scale: float = field(default=1.0, metadata=positive("critic lr / actor lr"))
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])  # actor's and critic's hidden widths
    activation: Activation = "tanh"  # hidden-layer activation (nets/mlp.py)
    log_std_init: float = 0.0  # initial log σ of the Gaussian policy (Box actions)
    normalize_obs: bool = False  # running mean/std of observations
    normalize_reward: bool = False  # divide rewards by the running std of the discounted return
    # the critic learns returns standardised by their running mean/std (MAPPO's value normalisation,
    # Yu et al. 2022 §4); GAE reads its values mapped back to reward units
    normalize_value: bool = False
    kl_reward_coef: float = field(default=0.0, metadata=non_negative(
        "β of the per-token KL penalty in the reward (language models; seeds eq. 1.29)"))
    # lock-step envs: forward/backward this many sequences at a time, gradients summed into one step
    micro_batch_size: Optional[int] = field(default=None, metadata=positive("sequences per forward (null: all)"))

    def __post_init__(self) -> None:
        if any(h <= 0 for h in self.hidden_sizes):
            raise ConfigError(f"config key 'hidden_sizes' = {self.hidden_sizes} must hold positive widths")
        if self.clip_range >= 1:
            raise ConfigError(f"config key 'clip_range' = {self.clip_range} is out of range; allowed: (0, 1)")

    @staticmethod
    def supports(spec: EnvSpec) -> str | None:
        """None if PPO can run on `spec`, else the reason it cannot."""
        if spec.text is not None:
            return None
        return unsupported_spaces(spec.observation_space, spec.action_space)


class PPO:
    off_policy = False
    data_parallel = True  # several ranks (torchrun), each with its own envs or rounds: classic_rl/distributed.py
    accepts_lm = True
    accepts_lockstep = True  # rounds of a lock-step env: every mean over the active rows only

    def __init__(self, cfg: PPOConfig, spec: EnvSpec, seed: int = 0, lm: Any = None,
                 actor: torch.nn.Module | None = None, critic: torch.nn.Module | None = None) -> None:
        """`actor` / `critic`: networks to train in place of the default Actor / Critic on the
        spec's spaces (a multi-agent agent's per-agent rows, agents/mappo.py)."""
        self.cfg, self.spec, self.device = cfg, spec, spec.device
        self.lockstep = spec.lockstep
        self.beta = cfg.kl_beta
        self.env_steps = 0
        self.updates = 0
        if self.lockstep:
            self._init_lockstep(cfg, spec, seed, lm)
            return
        self.rollout_steps, self.minibatches = rollout_shape(cfg, spec.num_envs, 128, 4)
        torch.manual_seed(seed)  # network initialisation
        self.actor = (actor or Actor(spec.observation_space, spec.action_space, cfg.hidden_sizes, cfg.activation,
                                     cfg.log_std_init)).to(self.device)
        self.critic = (critic or Critic(spec.observation_space, cfg.hidden_sizes, cfg.activation)).to(self.device)
        self.value_norm = RunningMeanStd((), self.device) if cfg.normalize_value else None
        self.params = [*self.actor.parameters(), *self.critic.parameters()]
        self.optimizer = adam([{"params": list(self.actor.parameters())},
                                {"params": list(self.critic.parameters()), "lr_scale": cfg.critic_lr_scale}], cfg.lr)
        self.generator = torch.Generator(self.device)
        self.generator.manual_seed(seed + 1)
        collector_critic = self.critic if self.value_norm is None else DenormalizedValue(self.critic, self.value_norm)
        self.rollout = RolloutCollector.for_spec(spec, self.rollout_steps, self.actor, collector_critic, self.generator,
                                                 cfg.normalize_obs, cfg.normalize_reward, cfg.gamma)

    def _init_lockstep(self, cfg: PPOConfig, spec: EnvSpec, seed: int, lm: Any) -> None:
        """Rounds of a lock-step env: the policy has act/evaluate (nets/policy.py, lm/policy.py)."""
        if cfg.normalize_obs or cfg.normalize_reward or cfg.normalize_value:
            raise ConfigError("config keys 'agent.normalize_obs' / 'agent.normalize_reward' / 'agent.normalize_value' "
                              f"are not supported on lock-step env={spec.id}; set them to false")
        if cfg.batch_size is not None:
            raise ConfigError(f"config key 'agent.batch_size' does not apply on lock-step env={spec.id}: a rollout "
                              "is one round (env.num_envs sequences); set it to null")
        # minibatches of whole sequences: by count, or by sequences per minibatch (all ranks' sequences)
        minibatches, minibatch_size = one_of(cfg, "minibatches", "minibatch_size", "the minibatches")
        sequences = spec.num_envs * distributed.world_size()
        self.minibatches = (max(1, sequences // minibatch_size) if minibatch_size is not None
                            else 4 if minibatches is None else minibatches)
        torch.manual_seed(seed)
        reference = cfg.kl_reward_coef > 0
        if spec.text is not None:
            from classic_rl.lm.policy import LMPolicy

            if lm is None:
                raise ConfigError(f"agent=ppo on env={spec.id} needs a language model: pass model=NAME")
            self.policy = LMPolicy(lm, spec.text, lm.temperature, value_head=True, reference=reference)
            value_params = list(self.policy.value_head.parameters())
        else:
            actor = Actor(spec.observation_space, spec.action_space, cfg.hidden_sizes, cfg.activation, cfg.log_std_init)
            critic = Critic(spec.observation_space, cfg.hidden_sizes, cfg.activation)
            self.policy = ActorCritic(actor, critic, reference=reference).to(self.device)
            value_params = list(critic.parameters())
        self.params = self.policy.trainable_parameters()
        value_ids = {id(p) for p in value_params}
        self.optimizer = adam([{"params": [p for p in self.params if id(p) not in value_ids]},
                               {"params": value_params, "lr_scale": cfg.critic_lr_scale}], cfg.lr)
        self.generator = torch.Generator(self.device)
        self.generator.manual_seed(seed + 1)
        self.collector = LockstepCollector.for_spec(spec, self.policy, self.generator)

    # ------------------------------------------------------------------ acting and storage
    def act(self, obs: torch.Tensor, explore: bool = True) -> torch.Tensor:
        return (self.collector if self.lockstep else self.rollout).act(obs, explore)

    def observe(self, t: Transition) -> None:
        self.env_steps += t.reward.shape[0] if t.active is None else int(t.active.sum())
        (self.collector if self.lockstep else self.rollout).observe(t)

    def ready(self) -> bool:
        return self.collector.round_over if self.lockstep else self.rollout.buffer.full

    # ------------------------------------------------------------------ learning
    @property
    def lr(self) -> float:
        return annealed_lr(self.cfg, self.env_steps)

    @property
    def clip_range(self) -> tuple[float, float]:
        """(ε_low, ε_high) now; both annealed by the same factor."""
        c = self.cfg
        end = c.clip_range if c.clip_range_end is None else c.clip_range_end
        low = linear_schedule(c.clip_range, end, c.clip_decay_steps, self.env_steps)
        high = (c.clip_range if c.clip_range_high is None else c.clip_range_high) * low / c.clip_range
        return low, high

    def update(self) -> dict[str, float]:
        c = self.cfg
        set_lr(self.optimizer, self.lr)
        if self.lockstep:
            return self._update_round()
        r = self.rollout.buffer.rollout()
        advantage, returns = gae(r.reward, r.value, r.next_value, r.terminated, r.done, c.gamma, c.gae_lambda)
        old_value = r.value
        if self.value_norm is not None:  # the critic's targets in its own, standardised units
            self.value_norm.update(returns.flatten())
            returns, old_value = self.value_norm.normalize(returns), self.value_norm.normalize(old_value)
        # flatten [T, N] -> [B = T * N]
        samples = (r.obs.flatten(0, 1), r.action.flatten(0, 1), r.log_prob.flatten(), old_value.flatten(),
                   advantage.flatten(), returns.flatten())
        stats: dict[str, torch.Tensor] = {}
        stopped = False
        for _ in range(c.epochs):
            for minibatch in self._minibatches(samples):
                step_stats = self._gradient_step(*minibatch)
                if step_stats is None:  # the policy moved too far from π_old: end this update early
                    stopped = True
                    break
                stats = step_stats
            if stopped:
                break
        out = {k: v.item() for k, v in stats.items()}
        out.update(learning_rate=self.lr, clip_range=self.clip_range[0], early_stop=float(stopped))
        if c.objective == "kl_penalty":
            obs, action, old_log_prob = samples[:3]
            with torch.no_grad():  # KL(π_old || π) over the whole rollout after the update sets the next β
                kl = distributed.mean_over_ranks(kl_estimate(self.actor(obs).log_prob(action) - old_log_prob).mean()).item()
            out.update(approx_kl=kl, kl_beta=self.beta)
            self.beta = adaptive_kl_beta(self.beta, kl, c.kl_target)
        self.rollout.buffer.clear()
        self.updates += 1
        return out

    def _minibatches(self, samples: tuple[torch.Tensor, ...]) -> list[tuple[torch.Tensor, ...]]:
        """One epoch: the samples [B, ...] in a fresh random order, cut into `minibatches` parts.

        One gather per tensor and epoch, then contiguous views: the same split as indexing every
        minibatch with its slice of the permutation, without a gather per minibatch.
        """
        if self.minibatches == 1:
            return [samples]
        order = torch.randperm(samples[0].shape[0], generator=self.generator, device=self.device)
        parts = [x.index_select(0, order).tensor_split(self.minibatches) for x in samples]
        return list(zip(*parts))

    def _gradient_step(
        self, obs: torch.Tensor, action: torch.Tensor, old_log_prob: torch.Tensor, old_value: torch.Tensor,
        advantage: torch.Tensor, returns: torch.Tensor,
    ) -> dict[str, torch.Tensor] | None:
        """One step on a minibatch [b]; None (and no step) once KL exceeds target_kl."""
        c = self.cfg
        dist = self.actor(obs)
        log_prob = dist.log_prob(action)
        if c.normalize_advantage:
            advantage = normalize_advantage(advantage)
        if c.objective == "clip":
            policy_loss, stats = clipped_surrogate_loss(log_prob, old_log_prob, advantage, *self.clip_range)
        else:
            policy_loss, stats = kl_penalty_loss(log_prob, old_log_prob, advantage, self.beta)
        if c.target_kl is not None and distributed.mean_over_ranks(stats["approx_kl"]).item() > c.target_kl:
            return None
        v_loss = value_loss(self.critic(obs), returns, old_value, c.clip_value)
        entropy = dist.entropy().mean()
        loss = policy_loss + c.vf_coef * v_loss + c.ent_coef * entropy_loss(entropy)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients(self.params)  # several ranks: the step on all ranks' minibatches
        grad_norm = clip_grad_norm(self.params, c.max_grad_norm)
        self.optimizer.step()
        return {"loss": loss, "policy_loss": policy_loss, "value_loss": v_loss, "entropy": entropy,
                "grad_norm": grad_norm, **stats}

    # ------------------------------------------------------------------ lock-step rounds
    def _update_round(self) -> dict[str, float]:
        """PPO on one round [T, N]: GAE over its steps (tokens), minibatches of whole sequences."""
        c = self.cfg
        r = self.collector.rollout()
        mask = r.active
        reward = r.reward
        if c.kl_reward_coef > 0:
            ref_log_prob = self.policy.reference_log_prob(r.obs, r.action)
            reward = masked(kl_penalized_reward(reward, r.log_prob, ref_log_prob, c.kl_reward_coef), mask)
        # a text completion ends at EOS or at its length cap, scored whole: neither is bootstrapped;
        # classic envs bootstrap truncation from V(final obs) (stored by the collector)
        ends = r.done if self.spec.text is not None else r.terminated
        advantage, returns = gae(reward, r.value, r.next_value, ends, r.done, c.gamma, c.gae_lambda)
        if c.normalize_advantage:  # over the real steps of the whole round
            advantage = normalize_advantage(advantage, mask)
        n = mask.shape[1]
        stats: dict[str, torch.Tensor] = {}
        stopped = False
        for _ in range(c.epochs):
            order = torch.randperm(n, generator=self.generator, device=self.device)
            for rows in order.tensor_split(min(self.minibatches, n)):
                step = self._round_step(r.obs[:, rows], r.action[:, rows], r.log_prob[:, rows], r.value[:, rows],
                                        advantage[:, rows], returns[:, rows], mask[:, rows])
                if step is None:
                    stopped = True
                    break
                stats = step
            if stopped:
                break
        out = {k: v.item() for k, v in stats.items()}
        returns_per_sequence = masked(r.reward, mask).sum(0)
        out.update(learning_rate=self.lr, clip_range=self.clip_range[0], early_stop=float(stopped),
                   reward_mean=distributed.mean_std(returns_per_sequence)[0].item(),
                   sequence_length=distributed.mean_std(mask.sum(0).float())[0].item())
        if c.kl_reward_coef > 0:
            out["kl_ref"] = token_mean_over_ranks(masked(r.log_prob - ref_log_prob, mask), mask)
        if c.objective == "kl_penalty":  # KL(π_old || π) over the round's real steps sets the next β
            with torch.no_grad():
                log_prob, _, _ = self.policy.evaluate(r.obs, r.action, entropy=False)
                kl = token_mean_over_ranks(masked(kl_estimate(log_prob - r.log_prob), mask), mask)
            out.update(approx_kl=kl, kl_beta=self.beta)
            self.beta = adaptive_kl_beta(self.beta, kl, c.kl_target)
        self.collector.clear()
        self.updates += 1
        return out

    def _round_step(self, obs, action, old_log_prob, old_value, advantage, returns, mask):
        """One gradient step on the sequences of a minibatch, tokens [T, n]; None once KL > target_kl.

        Computed in micro-batches of `micro_batch_size` sequences whose token means share the
        minibatch's token count, so their gradients add up to the minibatch's (less memory)."""
        c = self.cfg
        low, high = self.clip_range
        world = distributed.world_size()
        # the token means' denominator: the minibatch's tokens on all ranks, / world as the gradient average
        # divides again (one process: the minibatch's tokens)
        tokens = (distributed.all_reduce_sum(mask.sum()) / world).clamp(min=1.0 / world)

        def micro_batch(part):
            m = mask[:, part]
            share = m.sum() / tokens  # this micro-batch's part of the minibatch's token means
            log_prob, entropy, value = self.policy.evaluate(obs[:, part], action[:, part], entropy=True)
            log_ratio = log_prob - old_log_prob[:, part]
            if c.objective == "clip":
                surrogate = clipped_surrogate(log_ratio, advantage[:, part], low, high)
            else:
                surrogate = kl_penalty_surrogate(log_ratio, advantage[:, part], self.beta)
            policy_loss = aggregate_loss(surrogate, m, "token_mean", tokens)
            v_loss = value_loss(value, returns[:, part], old_value[:, part], c.clip_value, m)
            ent = entropy[m].mean()
            loss = policy_loss + (c.vf_coef * v_loss + c.ent_coef * entropy_loss(ent)) * share
            stats = {"policy_loss": aggregate_loss(surrogate.detach(), m, "token_mean"), "value_loss": v_loss,
                     "entropy": ent, **clip_stats(log_ratio, low, high, m)}
            return loss, stats

        self.optimizer.zero_grad(set_to_none=True)
        sums = micro_batch_backward(mask, c.micro_batch_size, micro_batch)
        if world > 1:  # the minibatch's statistics over all ranks' tokens: every rank takes the same branch
            loss = distributed.mean_over_ranks(sums.pop("loss"))
            sums = {"loss": loss, **distributed.mean_stats_over_ranks(sums, weight=float(mask.sum()))}
        if c.target_kl is not None and sums["approx_kl"].item() > c.target_kl:
            self.optimizer.zero_grad(set_to_none=True)
            return None
        distributed.average_gradients(self.params)  # several ranks: the step on all ranks' sequences
        sums["grad_norm"] = clip_grad_norm(self.params, c.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)  # no gradients held while generating
        return sums

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        if self.lockstep:
            return {
                "policy": {k: v for k, v in self.policy.state_dict().items() if not k.startswith("reference.")},
                "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(),
                "counters": (self.env_steps, self.updates, self.beta),
                "collector": self.collector.state_dict(include_buffer),
            }
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "counters": (self.env_steps, self.updates, self.beta),
            **self.rollout.state_dict(include_buffer),  # "buffer" (the partial rollout), normalizers
            **({"value_norm": self.value_norm.state_dict()} if self.value_norm is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.lockstep:
            self.policy.load_state_dict(state["policy"], strict=False)  # the reference is rebuilt, never saved
            self.optimizer.load_state_dict(state["optimizer"])
            self.generator.set_state(state["generator"])
            self.env_steps, self.updates, self.beta = state["counters"]
            self.collector.load_state_dict(state["collector"])
            return
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.env_steps, self.updates, self.beta = state["counters"]
        self.rollout.load_state_dict(state)
        if self.value_norm is not None:
            self.value_norm.load_state_dict(state["value_norm"])


def token_mean_over_ranks(values: torch.Tensor, mask: torch.Tensor) -> float:
    """The mean of `values` [T, n] (zeros off the mask) over the real tokens of all ranks."""
    total = distributed.all_reduce_sum(torch.stack([values.sum().double(), mask.sum().double()]))
    return (total[0] / total[1].clamp(min=1)).item()

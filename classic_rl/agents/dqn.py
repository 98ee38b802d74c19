"""DQN (Mnih et al. 2015): ε-greedy acting, experience replay, a target network, Huber TD loss.

Each Rainbow (Hessel et al. 2018) component is a separate flag and they compose freely: `double`
(the target), `dueling` and `noisy` (the network), `prioritized` (the buffer), `n_step` (the returns),
`distributional` (C51: a categorical return distribution and a cross-entropy loss).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import torch

from classic_rl.agents.base import Transition, due_update_rounds, linear_schedule
from classic_rl.buffers import Batch, NStepWindow, PrioritizedReplayBuffer, ReplayBuffer
from classic_rl.config import ConfigError, check, non_negative, positive, unit_interval
from classic_rl.envs.base import EnvSpec
from classic_rl.losses import categorical_loss, categorical_projection, q_learning_loss, td_target
from classic_rl.nets import QNetwork, noise_scale, reset_noise
from classic_rl.optim import adam, clip_grad_norm, set_lr


@dataclass(frozen=True)
class DQNConfig:
    name: Literal["dqn"] = "dqn"
    gamma: float = field(default=0.99, metadata=unit_interval("discount factor"))
    lr: float = field(default=1e-3, metadata=positive("Adam learning rate"))
    lr_end: Optional[float] = field(default=None, metadata=non_negative("anneal lr linearly to this"))
    lr_decay_steps: int = field(default=0, metadata=non_negative("env steps of the lr annealing"))
    # Adam's ε: Rainbow uses 1.5e-4 (Hessel et al. 2018, Table 1); a large ε shrinks the steps once
    # the TD errors (and so the gradients) are small, instead of normalising them back up to lr
    adam_eps: float = field(default=1e-8, metadata=positive("Adam's denominator ε"))
    batch_size: int = field(default=64, metadata=positive("transitions per gradient step"))
    buffer_size: int = field(default=100_000, metadata=positive("replay capacity in transitions"))
    learning_starts: int = field(default=1_000, metadata=non_negative("env steps before learning"))
    train_freq: int = field(default=4, metadata=positive("env steps between update rounds"))
    gradient_steps: int = field(default=1, metadata=positive("gradient steps per update round"))
    # true: the first round after learning_starts also runs the warm-up's learning_starts / train_freq
    # rounds (a burst on the warm-up data); false: rounds start at learning_starts, as SB3 and CleanRL
    catch_up_warmup: bool = False
    target_update_interval: int = field(default=500, metadata=positive("gradient steps between target updates"))
    tau: float = field(default=1.0, metadata=check(lambda v: 0 < v <= 1, "a number in (0, 1]; 1 = hard copy",
                                                             "target update: θ' ← τ θ + (1 - τ) θ'"))
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])  # widths of the MLP's hidden layers
    layer_norm: bool = False  # LayerNorm between each hidden layer and its activation (nets/mlp.py MLP)
    scale_obs: bool = False  # map finite observation bounds onto [-1, 1] at the net's input (nets/mlp.py ObsEncoder)
    epsilon_start: float = field(default=1.0, metadata=unit_interval("ε-greedy: ε at the start"))
    epsilon_end: float = field(default=0.05, metadata=unit_interval("ε after epsilon_decay_steps"))
    epsilon_decay_steps: int = field(default=10_000, metadata=non_negative("env steps of ε annealing"))
    max_grad_norm: float = field(default=10.0, metadata=positive("gradient clipping by global norm"))
    double: bool = False  # online net picks argmax_a' Q(s', a'), target net evaluates it (van Hasselt 2016)
    dueling: bool = False  # Q = V + A - mean(A) (Wang et al. 2016)
    noisy: bool = False  # NoisyLinear layers explore instead of ε-greedy (Fortunato et al. 2018)
    noisy_sigma0: float = field(default=0.5, metadata=positive("initial σ scale of factorized noise"))
    # how many of the last layers are noisy (null: all). The paper's Atari nets keep the conv torso
    # deterministic and make the fully-connected layers noisy; 2 is that split for an MLP.
    noisy_layers: Optional[int] = field(default=None, metadata=check(lambda v: v is None or v >= 1, "null or an integer >= 1"))
    # independent noise for each row of a batch (each env when acting, each sampled transition when
    # learning) instead of the paper's one draw per batch: the gradient then averages over noise
    noisy_per_sample: bool = False
    # false: the target net uses the mean weights (noise off), a lower-variance target than the paper's
    noisy_target: bool = True
    n_step: int = field(default=1, metadata=positive("steps summed in each return"))
    distributional: bool = False  # C51 (Bellemare et al. 2017): a categorical distribution over returns
    num_atoms: int = field(default=51, metadata=check(lambda v: v >= 2, ">= 2", "atoms of the C51 support"))
    v_min: float = -10.0  # the C51 support spans [v_min, v_max]: cover the env's discounted returns
    v_max: float = 10.0  # the upper end of that range
    # scalar Q: clamp the TD target to [v_min, v_max], the range every discounted return lies in (as
    # C51's support does). Q* is inside, so the fixed point is unchanged; over-estimation past it is cut
    clip_target: bool = False
    prioritized: bool = False  # proportional prioritized replay (Schaul et al. 2016)
    priority_alpha: float = field(default=0.6, metadata=unit_interval("priority exponent α"))
    priority_beta_start: float = field(default=0.4, metadata=unit_interval("initial IS exponent β"))
    priority_beta_steps: int = field(default=100_000, metadata=non_negative("env steps of β annealing to 1"))
    priority_eps: float = field(default=1e-6, metadata=positive("added to |TD error|"))

    def __post_init__(self) -> None:
        if self.batch_size > self.buffer_size:
            raise ConfigError(
                f"config key 'batch_size' = {self.batch_size} is larger than 'buffer_size' = "
                f"{self.buffer_size}; allowed: batch_size <= buffer_size"
            )
        if any(h <= 0 for h in self.hidden_sizes):
            raise ConfigError(f"config key 'hidden_sizes' = {self.hidden_sizes} must hold positive widths")
        if (self.distributional or self.clip_target) and not self.v_min < self.v_max:
            raise ConfigError(
                f"config keys 'v_min' = {self.v_min} and 'v_max' = {self.v_max} give an empty value range "
                f"(the C51 support or the target clamp); allowed: v_min < v_max"
            )
        if self.noisy_layers is not None and self.noisy_layers > len(self.hidden_sizes) + 1:
            raise ConfigError(
                f"config key 'noisy_layers' = {self.noisy_layers} is more than the {len(self.hidden_sizes) + 1} "
                f"layers of hidden_sizes {self.hidden_sizes}; allowed: 1 to {len(self.hidden_sizes) + 1} or null"
            )

    @staticmethod
    def supports(spec: EnvSpec) -> str | None:
        """None if DQN can run on `spec`, else the reason it cannot."""
        return None if spec.discrete_actions else f"needs discrete actions, {spec.id} has {spec.action_space}"


class DQN:
    off_policy = True

    def __init__(self, cfg: DQNConfig, spec: EnvSpec, seed: int = 0) -> None:
        self.cfg, self.spec, self.device = cfg, spec, spec.device
        self.num_actions = int(spec.action_space.n)
        torch.manual_seed(seed)  # network initialisation
        support = torch.linspace(cfg.v_min, cfg.v_max, cfg.num_atoms) if cfg.distributional else None  # z [K]
        self.q = QNetwork(
            spec.observation_space, self.num_actions, cfg.hidden_sizes, cfg.dueling,
            cfg.noisy_sigma0 if cfg.noisy else None, cfg.noisy_layers, support,
            scale_obs=cfg.scale_obs, layer_norm=cfg.layer_norm,
        ).to(self.device)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        if cfg.noisy and not cfg.noisy_target:
            self.q_target.eval()  # NoisyLinear in eval mode: the mean weights
        self.params = list(self.q.parameters())
        self.target_params = list(self.q_target.parameters())  # in the order of self.params
        self.optimizer = adam(self.params, cfg.lr, eps=cfg.adam_eps)
        obs_dtype = torch.int64 if spec.discrete_observations else torch.float32
        self.buffer = self.make_buffer(tuple(spec.observation_space.shape), obs_dtype, ())
        self.nstep = NStepWindow(cfg.n_step, cfg.gamma)
        self.generator = torch.Generator(self.device)
        self.generator.manual_seed(seed + 1)
        self.env_steps = 0  # transitions observed
        self.trained_steps = 0  # env steps already paid for by update rounds
        self.gradient_steps = 0

    def make_buffer(self, obs_shape: tuple[int, ...], obs_dtype: torch.dtype,
                    action_shape: tuple[int, ...]) -> ReplayBuffer | PrioritizedReplayBuffer:
        c = self.cfg
        args = (c.buffer_size, obs_shape, obs_dtype, action_shape, torch.int64, self.device)
        return (PrioritizedReplayBuffer(*args, alpha=c.priority_alpha, eps=c.priority_eps) if c.prioritized
                else ReplayBuffer(*args))

    # ------------------------------------------------------------------ acting
    @property
    def epsilon(self) -> float:
        c = self.cfg
        if c.noisy:  # the noisy layers explore
            return 0.0
        return linear_schedule(c.epsilon_start, c.epsilon_end, c.epsilon_decay_steps, self.env_steps)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool = True) -> torch.Tensor:
        if self.cfg.noisy:  # fresh noise for each training step; the mean weights in evaluation
            self.q.train(explore)
            if explore:
                reset_noise(self.q, self.generator, obs.shape[0] if self.cfg.noisy_per_sample else None)
            greedy = self.q(obs).argmax(dim=-1)
            self.q.train(True)
            return greedy
        greedy = self.q(obs).argmax(dim=-1)  # [N]
        if not explore:
            return greedy
        n = greedy.shape[0]
        random_action = torch.randint(self.num_actions, (n,), device=self.device, generator=self.generator)
        explore_mask = torch.rand(n, device=self.device, generator=self.generator) < self.epsilon
        return torch.where(explore_mask, random_action, greedy)

    # ------------------------------------------------------------------ storage
    def observe(self, t: Transition) -> None:
        self.env_steps += t.reward.shape[0]
        self.nstep.push_into(t, self.buffer)  # stores the n-step transition that started n-1 steps ago

    def ready(self) -> bool:
        return self._due_rounds() > 0

    def _due_rounds(self) -> int:
        c = self.cfg
        return due_update_rounds(self.env_steps, self.trained_steps, c.learning_starts, c.train_freq,
                                 c.catch_up_warmup)

    # ------------------------------------------------------------------ learning
    @property
    def lr(self) -> float:
        c = self.cfg
        end = c.lr if c.lr_end is None else c.lr_end
        return linear_schedule(c.lr, end, c.lr_decay_steps, self.env_steps)

    @property
    def beta(self) -> float:
        c = self.cfg
        return linear_schedule(c.priority_beta_start, 1.0, c.priority_beta_steps, self.env_steps)

    @torch.no_grad()
    def target(self, batch: Batch) -> torch.Tensor:
        """y = r + γ^n (1 - terminated) Q_target(s', a*) [B]; a* from the online net when double (eq. 1.13)."""
        next_q = self.q_target(batch.next_obs)  # [B, A]
        if self.cfg.double:
            best = self.q(batch.next_obs).argmax(dim=-1, keepdim=True)  # [B, 1]
            next_value = next_q.gather(1, best).squeeze(1)
        else:
            next_value = next_q.max(dim=-1).values
        target = td_target(batch.reward, next_value, batch.terminated, batch.discount)
        return target.clamp(self.cfg.v_min, self.cfg.v_max) if self.cfg.clip_target else target

    @torch.no_grad()
    def target_distribution(self, batch: Batch) -> torch.Tensor:
        """C51 target m [B, K]: Z(s', a*) shifted by r + γ^n (1 - terminated) z and projected (Alg. 1)."""
        next_probs = self.q_target.log_probs(batch.next_obs).exp()  # [B, A, K]
        next_q = self.q(batch.next_obs) if self.cfg.double else (next_probs * self.q_target.support).sum(-1)
        best = next_q.argmax(dim=-1)  # [B]
        chosen = next_probs[torch.arange(best.shape[0], device=best.device), best]  # [B, K]
        discount = batch.discount * (1.0 - batch.terminated)
        return categorical_projection(chosen, batch.reward, discount, self.q_target.support)

    def loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The TD loss of `batch`, the per-sample priority signal [B] and the mean Q(s, a) of the batch."""
        rows = torch.arange(batch.action.shape[0], device=batch.action.device)
        if self.cfg.distributional:
            log_probs = self.q.log_probs(batch.obs)[rows, batch.action]  # log p(s, a) [B, K]
            loss, stats = categorical_loss(log_probs, self.target_distribution(batch), batch.weights)
            q_taken = (log_probs.detach().exp() * self.q.support).sum(-1)
            return loss, stats["cross_entropy"], q_taken.mean()
        q_taken = self.q(batch.obs)[rows, batch.action]  # Q(s, a) [B]
        loss, stats = q_learning_loss(q_taken, self.target(batch), batch.weights)
        return loss, stats["td_error"], stats["q_mean"]

    def update(self) -> dict[str, float]:
        c = self.cfg
        rounds = self._due_rounds()
        self.trained_steps += rounds * c.train_freq
        set_lr(self.optimizer, self.lr)
        if c.prioritized:
            self.buffer.beta = self.beta
        steps = rounds * c.gradient_steps
        # uniform replay: the update's batches in one draw (the buffer does not change during the update); the
        # same indices as one draw per step, unless noisy nets draw their noise from the generator in between
        batches = None if c.prioritized or c.noisy else iter(self.buffer.sample_many(steps, c.batch_size,
                                                                                       self.generator))
        for _ in range(steps):
            if c.noisy:  # fresh, independent noise for the online and the target net (Fortunato et al. eq. 7)
                rows = c.batch_size if c.noisy_per_sample else None
                reset_noise(self.q, self.generator, rows)
                if c.noisy_target:
                    reset_noise(self.q_target, self.generator, rows)
            batch = self.buffer.sample(c.batch_size, self.generator) if batches is None else next(batches)
            loss, priority, q_mean = self.loss(batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = clip_grad_norm(self.params, c.max_grad_norm)
            self.optimizer.step()
            if c.prioritized:
                self.buffer.update_priorities(batch.indices, priority)
            self.gradient_steps += 1
            if self.gradient_steps % c.target_update_interval == 0:
                self._update_target()
        return {
            "loss": loss.item(),
            "q_mean": q_mean.item(),
            "grad_norm": grad_norm.item(),
            "epsilon": self.epsilon,
            **({"noise_scale": noise_scale(self.q)} if c.noisy else {}),
            "learning_rate": self.lr,
            **({"priority_beta": self.beta} if c.prioritized else {}),
        }

    @torch.no_grad()
    def _update_target(self) -> None:
        # Polyak: θ' <- τ θ + (1 - τ) θ'; τ = 1 is the hard copy of the original DQN
        torch._foreach_lerp_(self.target_params, self.params, self.cfg.tau)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        return {
            "q": self.q.state_dict(),
            "q_target": self.q_target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "counters": (self.env_steps, self.trained_steps, self.gradient_steps),
            "nstep": self.nstep.state_dict(),
            "buffer": self.buffer.state_dict() if include_buffer else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.q.load_state_dict(state["q"])
        self.q_target.load_state_dict(state["q_target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.env_steps, self.trained_steps, self.gradient_steps = state["counters"]
        self.nstep.load_state_dict(state["nstep"])
        if state.get("buffer") is not None:
            self.buffer.load_state_dict(state["buffer"])

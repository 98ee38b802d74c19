"""The one batched environment contract every agent talks to.

Contract (Gymnasium's vector API, same-step auto-reset, everything a torch tensor on `env.device`):

    obs, info = env.reset(seed=None)                      # obs [N, *obs_shape]
    obs, reward, terminated, truncated, info = env.step(actions)
        actions    [N] (discrete, int64) or [N, *act_shape] (continuous, float32)
        obs        [N, *obs_shape]  the observation to act on NEXT (already reset where an episode ended)
        reward     [N] float32
        terminated [N] bool  the episode reached a terminal state: never bootstrap from it
        truncated  [N] bool  the episode was cut (time limit): bootstrap from info["final_obs"]
        info["final_obs"] [N, *obs_shape] the true last observation of episodes that just ended,
                          equal to `obs` where no episode ended.

As in Gymnasium, `terminated` and `truncated` can both be True (a terminal state reached on the
time-limit step); every bootstrap mask uses `terminated` alone, so such a step is not bootstrapped.

Lock-step envs (`spec.lockstep`: the text envs, and classic envs with `env.group_size` > 1) start all N
episodes together and reset them together: a row whose episode ended waits, and `info["active"]` [N]
bool says which rows took a real step (a row's last step is active; its waiting steps are not, with
reward 0 and both flags False). Once every row has ended, the next `obs` starts a new round.
`spec.group_size` G: rows g*G .. g*G+G-1 of a round start from the same state (GRPO's groups).
`spec.round_reward` (the text envs): every step's reward is 0 and the step that ends a round carries
info["round_reward"] [N], each row's reward for its episode, scored for the whole round at once; it
belongs to the row's last active step (the trainer, the evaluation and the lock-step collector put it
there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from classic_rl.config import UserError


@dataclass(frozen=True)
class EnvSpec:
    """What an agent needs to know about an environment before it sees it."""

    id: str
    num_envs: int
    observation_space: gym.Space  # single environment
    action_space: gym.Space  # single environment
    max_episode_steps: int | None
    reward_threshold: float | None
    device: torch.device
    lockstep: bool = False  # episodes start and reset together; info["active"] masks waiting rows
    group_size: int = 1  # G consecutive rows of a round share their start (lock-step envs)
    text: Any = None  # TextSpec of a text-generation env (classic_rl/envs/text.py), else None
    round_reward: bool = False  # rewards come for the whole round in info["round_reward"] (see above)
    num_agents: int = 1  # > 1: a multi-agent env (envs/multiagent): obs [N, A, ...], reward [N, A]
    state_space: gym.Space | None = None  # multi-agent: the global state info["state"] [N, ...] of centralised critics

    @property
    def discrete_actions(self) -> bool:
        return isinstance(self.action_space, gym.spaces.Discrete)

    @property
    def discrete_observations(self) -> bool:
        return isinstance(self.observation_space, gym.spaces.Discrete)


class VectorEnv(Protocol):
    """Batched environment: see the module docstring for the exact contract."""

    spec: EnvSpec
    num_envs: int
    device: torch.device
    single_observation_space: gym.Space
    single_action_space: gym.Space

    def reset(self, seed: int | None = None) -> tuple[torch.Tensor, dict[str, Any]]: ...

    def step(
        self, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]: ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the exact same stream of episodes."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class BatchedEnv(gym.vector.VectorEnv):
    """What every classic_rl batched env also is: a `gymnasium.vector.VectorEnv` with same-step
    auto-reset, torch tensors in and out on `env.device` (as Gymnasium's NumpyToTorch wrapper gives),
    batched `observation_space` / `action_space` beside the single ones, `reset(seed=, options=)`,
    `render()` (no render mode: None) and `close()`, so Gymnasium's vector wrappers and code written
    against Gymnasium's vector API run on it.

    `env.spec` is classic_rl's EnvSpec; `gymnasium.make_vec` stores its registration record in
    `env.registration` instead (the setter below tells them apart). A subclass sets num_envs, device,
    single_observation_space, single_action_space and spec, and calls `checked_actions` in `step`."""

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}
    render_mode = None
    registration: Any = None  # gymnasium.make_vec's EnvSpec of the registered id, if made through it
    _batched: tuple[Any, Any, Any] | None = None

    @property
    def spec(self) -> EnvSpec:  # type: ignore[override]
        return self._spec

    @spec.setter
    def spec(self, value: Any) -> None:
        if isinstance(value, EnvSpec):
            self._spec = value
        else:  # gymnasium.make_vec's record of how it was made
            self.registration = value

    def _batched_spaces(self) -> tuple[gym.Space, gym.Space]:
        key = (self.single_observation_space, self.single_action_space, self.num_envs)
        if self._batched is None or self._batched[0] != key:
            agents = getattr(getattr(self, "_spec", None), "num_agents", 1)
            obs, act = self.single_observation_space, self.single_action_space
            if agents > 1:  # one env's observation and action hold every agent's: [A, ...]
                obs, act = batch_space(obs, agents), batch_space(act, agents)
            self._batched = (key, batch_space(obs, self.num_envs), batch_space(act, self.num_envs))
        return self._batched[1], self._batched[2]

    @property
    def observation_space(self) -> gym.Space:  # type: ignore[override]
        return self._batched_spaces()[0]

    @property
    def action_space(self) -> gym.Space:  # type: ignore[override]
        return self._batched_spaces()[1]

    def render(self) -> None:
        return None

    def close(self, **kwargs: Any) -> None:
        self.closed = True

    def checked_actions(self, actions: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
        """`actions` as this env's tensor: [N] integers of a Discrete space (or [N, A] with A agents),
        [N, *shape] floats of a Box. A torch tensor must already be on env.device; numpy arrays and lists
        are converted. One line naming the expected shape, dtype or device, or the values outside a
        Discrete space (on CUDA checked on the device, without waiting for it)."""
        space = self.single_action_space
        agents = getattr(getattr(self, "_spec", None), "num_agents", 1)
        batch = (self.num_envs,) if agents == 1 else (self.num_envs, agents)
        discrete = isinstance(space, gym.spaces.Discrete)
        shape = batch + (() if discrete else tuple(space.shape or ()))
        name = type(self).__name__
        if isinstance(actions, torch.Tensor):
            if actions.device != self.device:
                raise ActionError(f"{name}.step: actions are on {actions.device}, the env on {self.device}; "
                                  f"move them with actions.to({str(self.device)!r})")
        else:
            actions = torch.as_tensor(np.asarray(actions), device=self.device)
        if tuple(actions.shape) != shape:
            if discrete and tuple(actions.shape) == shape + (1,):
                actions = actions.squeeze(-1)
            else:
                kind = "one integer per env" if discrete else f"one {tuple(space.shape)} action per env"
                raise ActionError(f"{name}.step: actions have shape {tuple(actions.shape)}, expected {shape} "
                                  f"({kind}{', per agent' if agents > 1 else ''})")
        if discrete:
            if actions.dtype.is_floating_point or actions.dtype.is_complex or actions.dtype == torch.bool:
                raise ActionError(f"{name}.step: actions have dtype {actions.dtype}, expected an integer dtype "
                                  f"(torch.int64) for the Discrete({space.n}) action space")
            low, high = int(space.start), int(space.start) + int(space.n) - 1
            if actions.device.type == "cuda":
                torch._assert_async(((actions >= low) & (actions <= high)).all(),
                                    f"{name}.step: actions outside Discrete({space.n}) [{low}, {high}]")
            elif actions.numel():
                least, most = (int(v) for v in torch.aminmax(actions))
                if least < low or most > high:
                    raise ActionError(f"{name}.step: action {least if least < low else most} is outside the "
                                      f"action space Discrete({space.n}); expected integers in [{low}, {high}]")
            return actions if dtype is None else actions.to(dtype)
        if not actions.dtype.is_floating_point:
            raise ActionError(f"{name}.step: actions have dtype {actions.dtype}, expected a floating dtype "
                              f"(torch.float32) for the Box{tuple(space.shape)} action space")
        return actions if dtype is None else actions.to(dtype)


def as_autoreset_mode(value: Any) -> AutoresetMode:
    """Gymnasium's AutoresetMode from itself, its value ("NextStep") or its name in snake case
    ("next_step"); one line for anything else."""
    if isinstance(value, AutoresetMode):
        return value
    by_name = {mode.name.lower(): mode for mode in AutoresetMode}
    if str(value).lower() in by_name:
        return by_name[str(value).lower()]
    try:
        return AutoresetMode(value)
    except ValueError:
        raise UserError(f"autoreset_mode={value!r} is not allowed; same_step or next_step") from None


def check_no_options(options: dict[str, Any] | None, env: Any) -> None:
    """`reset(options=...)`: classic_rl's envs take none (same-step auto-reset has no partial resets)."""
    if options:
        raise UserError(f"{type(env).__name__}.reset takes no options (got {sorted(options)}); pass seed= only")


class ActionError(UserError, ValueError):
    """Actions that do not fit the env's action space, shape, dtype or device (one line)."""

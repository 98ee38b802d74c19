"""One batched torch environment driving a stateless `Dynamics` kernel.

The dynamics object holds the physics as pure tensor functions; this class adds what every
classic-control env shares: a time limit, same-step auto-reset, the true final observation, and a
device-side random generator.

Layout. States are [N, D] tensors stored column by column (strides (1, N)): each state variable is
contiguous over envs, which is what lets a fused step vectorise. Observations built from them keep
that layout, as Gymnasium's own numpy `CartPoleVectorEnv` does (`state.T.astype(...)`): use
`reshape`, not `view`, to flatten them.

Auto-reset. `reset()` draws initial states from `self.generator` with `Dynamics.initial_state`.
The initial state of an episode started by an auto-reset must be cheap to draw inside the step, so
for dynamics that provide `initial_state_from_uniform(u)` it comes from a counter-based hash: the
k-th auto-reset of env i uses noise that is a pure function of (key_i, k), the per-env keys being
drawn from `self.generator` at `reset()`. No random numbers are drawn, no host sync happens, and
the eager and compiled steps give identical results on any device. Dynamics without that method
fall back to one pending initial state per env drawn from the generator, redrawn after use.

Compilation. `compile=True` fuses the whole step (dynamics, time limit, auto-reset, observations)
with TorchInductor, torch.compile's compiler, into one C++/OpenMP (or Triton) kernel. The step is
traced once per input signature with `make_fx` and handed to Inductor directly, skipping
TorchDynamo, whose per-call frame and guard machinery costs as much as the whole fused CartPole
step at thousands of envs. The kernel bakes in the dynamics constants and the time limit: after
changing them call `recompile()`. If compilation fails the env warns and runs eager.
`env.compile=auto` (the default of a run) compiles the training env when the run is long enough to
get the compilation back (`compile_pays`).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterable, Protocol

import gymnasium as gym
import torch
from gymnasium.vector import AutoresetMode

from classic_rl.config import UserError
from classic_rl.envs.base import BatchedEnv, EnvSpec, as_autoreset_mode, check_no_options


# Past this many vector steps (train.total_steps / env.num_envs) compiling the step pays for itself even
# in a process that compiles for the first time with an empty Inductor cache: 16-22 s (5-7 s with the
# cache filled by an earlier run), against 0.2-1.8 ms saved per vector step on the 2-core CPU; the largest
# such crossover measured is 82k vector steps (experiments/results/compile_crossover.md).
COMPILE_AUTO_VECTOR_STEPS = 100_000


def compile_pays(vector_steps: int) -> bool:
    """`env.compile=auto`: compile a run's training env when it takes at least COMPILE_AUTO_VECTOR_STEPS
    vector steps."""
    return vector_steps >= COMPILE_AUTO_VECTOR_STEPS


class Dynamics(Protocol):
    """Physics of one environment family as pure batched functions of a state tensor [N, D].

    Optional: `initial_state_from_uniform(u)`, mapping u ~ U[0, 1)^[N, D] (state dtype) to the
    reset distribution, enables the fast auto-reset (see the module docstring).
    """

    id: str
    state_dim: int
    max_episode_steps: int
    reward_threshold: float | None
    observation_space: gym.spaces.Box
    action_space: gym.Space

    def initial_state(self, n: int, generator: torch.Generator, out: torch.Tensor) -> torch.Tensor:
        """Sample the reset distribution into `out[:n]` (`out` is [>= n, D]) and return that slice."""
        ...

    def step(
        self, state: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(state [N, D], action) -> (next_state [N, D], reward [N], terminated [N] bool)."""
        ...

    def observe(self, state: torch.Tensor) -> torch.Tensor:
        """state [N, D] -> observation [N, *obs_shape] float32, never a view of `state`."""
        ...


def stack_columns(columns: Iterable[torch.Tensor]) -> torch.Tensor:
    """[N, D] tensor from D tensors [N], stored column by column (the env's state layout)."""
    return torch.stack(tuple(columns), dim=0).T


def in_float64(fn: Callable[..., torch.Tensor], *args: torch.Tensor) -> torch.Tensor:
    """fn(*args) evaluated in float64 and returned in the dtype of args[0].

    For transcendental functions and `remainder`: ATen's and Inductor's vectorised versions differ
    in the last bit, which float32 results then inherit. Rounded from float64, float32 results
    agree (eager vs compiled), and they are as close as float32 gets to Gymnasium's float64 math.
    """
    dtype = args[0].dtype
    if dtype == torch.float64:
        return fn(*args)
    return fn(*(a.to(torch.float64) for a in args)).to(dtype)


# ------------------------------------------------------------------------------------------------
# counter-based reset noise: 32-bit integer hashing carried in int64, every product below 2^63

_MASK32 = 0xFFFFFFFF
_WEYL32 = 0x61C88647  # 2^32 / golden ratio (odd)
_MIX32 = 0x45D9F3B


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """Avalanche 32-bit values held in int64 (xor-shift-multiply rounds)."""
    x = x ^ (x >> 16)
    x = (x * _MIX32) & _MASK32
    x = x ^ (x >> 16)
    x = (x * _MIX32) & _MASK32
    return x ^ (x >> 16)


def counter_uniform(key: torch.Tensor, count: torch.Tensor, dim: int, dtype: torch.dtype) -> torch.Tensor:
    """U[0, 1) noise [N, dim] (24 random bits each), a pure function of per-env key and count."""
    column = torch.arange(dim, dtype=torch.int64, device=key.device)[:, None]  # [dim, 1]
    counter = (((count * dim)[None, :] + column) & _MASK32) * _WEYL32 & _MASK32  # [dim, N]
    bits = _mix32(key[None, :] ^ counter) >> 8
    return (bits.to(dtype) * (1.0 / (1 << 24))).T  # [N, dim], stored column by column


class TorchVectorEnv(BatchedEnv):
    """`VectorEnv` over a torch `Dynamics`: tensors in, tensors out, no Python loop over envs; a
    `gymnasium.vector.VectorEnv` (envs/base.py BatchedEnv)."""

    def __init__(
        self,
        dynamics: Dynamics,
        num_envs: int,
        device: str | torch.device = "cpu",
        seed: int = 0,
        max_episode_steps: int | None = None,
        dtype: torch.dtype = torch.float32,
        compile: bool = False,
        autoreset_mode: str | AutoresetMode = AutoresetMode.SAME_STEP,
    ) -> None:
        """`autoreset_mode`: same_step (classic_rl's contract: an ended episode restarts in the step that
        ends it, its last observation in info["final_obs"]) or next_step (Gymnasium's default, which its
        observation wrappers require: the step that ends an episode returns its last observation, the
        next step ignores that env's action and returns the first observation of a new episode with
        reward 0; runs the eager step)."""
        self.dynamics = dynamics
        self.autoreset_mode = as_autoreset_mode(autoreset_mode)
        if self.autoreset_mode not in (AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP):
            raise UserError(f"autoreset_mode={self.autoreset_mode.value!r} is not supported; same_step or next_step")
        if compile and self.autoreset_mode == AutoresetMode.NEXT_STEP:
            raise UserError("compile=True fuses the same-step step; autoreset_mode=next_step runs eager: drop one")
        self.metadata = {**BatchedEnv.metadata, "autoreset_mode": self.autoreset_mode}
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.dtype = dtype
        self.max_episode_steps = max_episode_steps or dynamics.max_episode_steps
        self.single_observation_space = dynamics.observation_space
        self.single_action_space = dynamics.action_space
        self.spec = EnvSpec(
            id=dynamics.id,
            num_envs=num_envs,
            observation_space=dynamics.observation_space,
            action_space=dynamics.action_space,
            max_episode_steps=self.max_episode_steps,
            reward_threshold=dynamics.reward_threshold,
            device=self.device,
        )
        self.compile = compile
        self._kernels: dict[tuple, Callable | None] = {}
        self._counter_reset = hasattr(dynamics, "initial_state_from_uniform")
        self.generator = torch.Generator(self.device)
        self.generator.manual_seed(seed)
        self._start_episodes(initial=self._new_state().zero_())

    # ----------------------------------------------------------------------------------------------
    # public API

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[torch.Tensor, dict[str, Any]]:
        check_no_options(options, self)
        if seed is not None:
            self.generator.manual_seed(seed)
        self._start_episodes()
        return self.dynamics.observe(self.state), {}

    def step(self, actions: torch.Tensor):
        actions = self.checked_actions(actions).contiguous()
        source = (self._reset_key, self._reset_count) if self._counter_reset else (self._fresh,)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            return self._step_next(actions, source)
        kernel = self._kernel(actions) if self.compile else None
        if kernel is None:
            out = self._step_kernel(self.state, self.elapsed, actions, *source)
        else:
            out = kernel([self.state, self.elapsed, actions, *source])
        obs, reward, terminated, truncated, final_obs, self.state, self.elapsed, source = out
        if kernel is not None:  # flags come back as bytes: reinterpret, no copy
            terminated, truncated = terminated.view(torch.bool), truncated.view(torch.bool)
        if self._counter_reset:
            self._reset_count = source
        else:  # source: the done flags
            self._redraw(source.view(torch.bool))
        return obs, reward, terminated, truncated, {"final_obs": final_obs}

    def state_dict(self) -> dict[str, Any]:
        out = {
            "state": self.state.clone(),
            "elapsed": self.elapsed.clone(),
            "generator": self.generator.get_state(),
            "pending": self._pending.clone(),
        }
        if self._counter_reset:
            out["reset_key"], out["reset_count"] = self._reset_key.clone(), self._reset_count.clone()
        else:
            out["fresh"] = self._fresh.clone()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = self._new_state().copy_(state["state"])
        self.elapsed = state["elapsed"].to(self.device, torch.int64).clone()
        self.generator.set_state(state["generator"])
        self._pending = state["pending"].to(self.device, torch.bool).clone() if "pending" in state else \
            torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        if self._counter_reset:
            self._reset_key = state["reset_key"].to(self.device, torch.int64).clone()
            self._reset_count = state["reset_count"].to(self.device, torch.int64).clone()
        else:
            self._fresh = self._new_state().copy_(state["fresh"])

    def recompile(self) -> None:
        """Drop compiled kernels (after changing dynamics constants or the time limit)."""
        self._kernels.clear()

    def close(self, **kwargs: Any) -> None:
        self.closed = True

    # ----------------------------------------------------------------------------------------------
    # the step

    def _step_kernel(self, state, elapsed, actions, *source, compiled: bool = False):
        """The whole step as a pure function of tensors: what `compile=True` fuses."""
        next_state, reward, terminated = self.dynamics.step(state, actions)
        elapsed = elapsed + 1
        truncated = elapsed >= self.max_episode_steps
        done = terminated | truncated
        # eager on CPU: reset only the envs that finished (data-dependent, same values)
        sparse = not compiled and self.device.type == "cpu"
        new_state, source = self._auto_reset(next_state, done, source, sparse)
        if new_state.stride() != (1, self.num_envs):  # keep the column-major layout
            new_state = new_state.T.contiguous().T
        final_obs = self.dynamics.observe(next_state)
        obs = self.dynamics.observe(new_state)
        elapsed = torch.where(done, 0, elapsed)
        reward = reward.to(torch.float32)
        if compiled:  # Inductor's CPU code stores bool tensors slowly and bytes fast
            terminated, truncated = (f.to(torch.float32).to(torch.uint8) for f in (terminated, truncated))
            if source.dtype == torch.bool:
                source = source.to(torch.float32).to(torch.uint8)
        return obs, reward, terminated, truncated, final_obs, new_state, elapsed, source

    def _step_next(self, actions: torch.Tensor, source: tuple[torch.Tensor, ...]):
        """autoreset_mode=next_step: the envs whose episode ended at the previous step start a new one
        instead of stepping (reward 0, neither flag); the others step, and keep their last state when
        their episode ends now."""
        pending = self._pending
        next_state, reward, terminated = self.dynamics.step(self.state, actions)
        elapsed = self.elapsed + 1
        truncated = elapsed >= self.max_episode_steps
        new_state, source = self._auto_reset(next_state, pending, source, self.device.type == "cpu")
        if new_state.stride() != (1, self.num_envs):
            new_state = new_state.T.contiguous().T
        reward = torch.where(pending, 0.0, reward.to(torch.float32))
        terminated, truncated = terminated & ~pending, truncated & ~pending
        self.state, self.elapsed = new_state, torch.where(pending, 0, elapsed)
        if self._counter_reset:
            self._reset_count = source
        else:
            self._redraw(source)
        self._pending = terminated | truncated
        return self.dynamics.observe(new_state), reward, terminated, truncated, {}

    def _auto_reset(self, next_state, done, source, sparse: bool):
        """(state after auto-reset, new reset count | done flags for `_redraw`)."""
        if not self._counter_reset:
            (fresh,) = source
            return torch.where(done[:, None], fresh, next_state), done
        key, count = source
        dim, dtype = self.dynamics.state_dim, next_state.dtype
        if sparse:
            new_state = next_state.clone()
            rows = done.nonzero().squeeze(1)
            if rows.numel():
                noise = counter_uniform(key[rows], count[rows], dim, dtype)
                new_state[rows] = self.dynamics.initial_state_from_uniform(noise)
        else:
            fresh = self.dynamics.initial_state_from_uniform(counter_uniform(key, count, dim, dtype))
            new_state = torch.where(done[:, None], fresh, next_state)
        return new_state, count + done

    def _start_episodes(self, initial: torch.Tensor | None = None) -> None:
        """New episodes everywhere: initial states (drawn unless given) and fresh reset noise."""
        if initial is None:
            initial = self.dynamics.initial_state(self.num_envs, self.generator, self._new_state())
        self.state = initial
        self.elapsed = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self._pending = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)  # next_step mode
        if self._counter_reset:
            self._reset_key = torch.randint(
                0, 1 << 32, (self.num_envs,), generator=self.generator, device=self.device
            )
            self._reset_count = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        else:
            self._fresh = self.dynamics.initial_state(self.num_envs, self.generator, self._new_state())
            self._draws = self._new_state()

    def _redraw(self, done: torch.Tensor) -> None:
        """Generic dynamics: replace the pending initial states just used, from the generator."""
        k = int(done.sum())
        if k:
            self._fresh[done] = self.dynamics.initial_state(k, self.generator, self._draws)

    def _new_state(self) -> torch.Tensor:
        return torch.empty(
            self.dynamics.state_dim, self.num_envs, device=self.device, dtype=self.dtype
        ).T

    # ----------------------------------------------------------------------------------------------
    # compilation

    def _kernel(self, actions: torch.Tensor) -> Callable | None:
        """The compiled step for the current input signature (None: run eager).

        The kernel trusts its inputs' sizes, strides and dtypes: the env's own tensors are put
        back into their layout here if someone replaced them, and actions select a kernel.
        """
        if self.state.stride() != (1, self.num_envs) or self.state.dtype != self.dtype:
            self.state = self._new_state().copy_(self.state)
        if self.elapsed.dtype != torch.int64 or not self.elapsed.is_contiguous():
            self.elapsed = self.elapsed.to(torch.int64).contiguous()
        key = (actions.dtype, actions.shape, self.max_episode_steps)
        kernel = self._kernels.get(key, False)
        if kernel is False:
            source = (self._reset_key, self._reset_count) if self._counter_reset else (self._fresh,)
            kernel = self._kernels[key] = self._compile((self.state, self.elapsed, actions, *source))
        return kernel

    def _compile(self, args: tuple[torch.Tensor, ...]) -> Callable | None:
        """Trace the step with make_fx, compile it with Inductor; returns f(list of tensors)."""

        def step(*tensors):
            return self._step_kernel(*tensors, compiled=True)

        try:
            from torch._functorch import config as functorch_config
            from torch._guards import TracingContext, tracing
            from torch._inductor.compile_fx import compile_fx, compile_fx_inner
            from torch._subclasses.fake_tensor import FakeTensorMode
            from torch.fx.experimental.proxy_tensor import make_fx
            from torch.fx.experimental.symbolic_shapes import ShapeEnv

            inner = []

            def keep_inner(*a, **kw):
                inner.append(compile_fx_inner(*a, **kw))
                return inner[-1]

            graph = make_fx(step)(*args)
            # size_asserts off: `_kernel` matches the inputs to the traced signature. The tracing
            # context gives Inductor's on-disk graph cache the shape env it needs; AOTAutograd's
            # own cache would skip `keep_inner`, so it stays off.
            with tracing(TracingContext(FakeTensorMode(shape_env=ShapeEnv()))), functorch_config.patch(
                enable_autograd_cache=False
            ):
                outer = compile_fx(graph, list(args), inner_compile=keep_inner, config_patches={"size_asserts": False})
            expected = outer(*args)
            # Calling Inductor's generated module directly skips AOTAutograd's runtime wrapper;
            # use it only if it returns exactly what the wrapped function does.
            if len(inner) == 1 and hasattr(inner[0], "current_callable"):
                direct = inner[0].current_callable
                got = direct(list(args))
                if len(got) == len(expected) and all(
                    g.shape == e.shape and g.stride() == e.stride() and g.dtype == e.dtype and torch.equal(g, e)
                    for g, e in zip(got, expected)
                ):
                    return direct
            return lambda tensors: outer(*tensors)
        except Exception as err:  # Inductor internals moved, or no compiler: try the public API
            try:
                compiled = torch.compile(step, fullgraph=True, dynamic=False)
                compiled(*args)  # compiles now, so that failures surface here
            except Exception as err2:  # toolchain-dependent: no compiler, unsupported op, ...
                warnings.warn(f"TorchVectorEnv: compiling the step failed, running eager ({err2!r})", stacklevel=4)
                return None
            warnings.warn(
                f"TorchVectorEnv: direct Inductor compile failed ({err!r}); using torch.compile", stacklevel=4
            )
            return lambda tensors: compiled(*tensors)

"""classic_rl's batched envs in Gymnasium's registry, under the `classic_rl/` namespace:

    import classic_rl, gymnasium
    envs = gymnasium.make_vec("classic_rl/CartPole-v1", num_envs=4096, vectorization_mode="vector_entry_point",
                              device="cuda", seed=0)

returns the torch-native batched env (a `gymnasium.vector.VectorEnv`: envs/base.py BatchedEnv): the
classic-control envs, the toy-text MDPs and simple_spread. Keyword arguments are `classic_rl.envs.make`'s
(device, seed, max_episode_steps, compile, and an env's own kwargs). `import classic_rl` registers them
(without importing torch); `gymnasium.make_vec("classic_rl:classic_rl/CartPole-v1", ...)` does it too.
"""

from __future__ import annotations

from typing import Any

NAMESPACE = "classic_rl"
CLASSIC_CONTROL = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1")
# Gymnasium's toy-text envs whose whole dynamics are their transition table P (envs/tabular.py)
TOY_TEXT_ENTRY_POINTS = (
    "gymnasium.envs.toy_text.frozen_lake:FrozenLakeEnv",
    "gymnasium.envs.toy_text.taxi:TaxiEnv",
    "gymnasium.envs.toy_text.cliffwalking:CliffWalkingEnv",
)
MULTI_AGENT = ("simple_spread",)


def make_vector(num_envs: int = 1, env_id: str = "CartPole-v1", **kwargs: Any):
    """Gymnasium's vector entry point: `classic_rl.envs.make(env_id, num_envs, **kwargs)`."""
    from classic_rl.envs import make

    return make(env_id, num_envs=num_envs, **kwargs)


def register_envs() -> list[str]:
    """Register every torch-native env as `classic_rl/ID` (once); the registered ids."""
    import gymnasium

    toy_text = [i for i, spec in list(gymnasium.registry.items())
                if "/" not in i and spec.entry_point in TOY_TEXT_ENTRY_POINTS]
    names = []
    for env_id in (*CLASSIC_CONTROL, *toy_text, *MULTI_AGENT):
        name = f"{NAMESPACE}/{env_id}"
        if name not in gymnasium.registry:
            gymnasium.register(id=name, vector_entry_point=make_vector, kwargs={"env_id": env_id})
        names.append(name)
    return names

"""Torch-native classic-control dynamics matching Gymnasium 1.4.0, keyed by Gymnasium id."""

from classic_rl.envs.classic.acrobot import Acrobot
from classic_rl.envs.classic.cartpole import CartPole
from classic_rl.envs.classic.mountain_car import MountainCar, MountainCarContinuous
from classic_rl.envs.classic.pendulum import Pendulum

DYNAMICS: dict[str, type] = {
    cls.id: cls for cls in (CartPole, Acrobot, MountainCar, MountainCarContinuous, Pendulum)
}

__all__ = ["DYNAMICS", "Acrobot", "CartPole", "MountainCar", "MountainCarContinuous", "Pendulum"]

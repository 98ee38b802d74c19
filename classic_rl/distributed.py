"""Data parallelism over the processes of one run (torch.distributed: gloo on CPU, NCCL on CUDA).

K ranks, each with its own shard of the envs: before every optimiser step the gradients are averaged
over the ranks (`average_gradients`), so the ranks take the step one process would take on the
concatenated batch (equal shards, losses that are means over the batch). What the single-process
agent computes over its batch is computed over all ranks' batches: the advantage normalisation's mean
and std (`mean_std`), running observation and return statistics (`all_reduce_sum` in
normalize.RunningMeanStd), and every number that decides what happens next (`mean_over_ranks`: the
KL that stops PPO's epochs), so that the ranks never take different branches.

Without an initialised process group (one process) every function here is the identity: world size 1.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist


_DEVICE = torch.device("cpu")  # where the small tensors of decisions go (NCCL reduces CUDA tensors only)
_OWNED = False  # this module started the process group (and ends it in shutdown)


def launched() -> bool:
    """True in a process that torchrun started as one of several (WORLD_SIZE > 1 in its environment)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device) -> torch.device:
    """Join torchrun's process group (gloo on CPU, NCCL on CUDA) once; the rank's device (cuda:LOCAL_RANK)."""
    global _DEVICE, _OWNED
    if not launched():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        _OWNED = True
    _DEVICE = device
    return device


def shutdown() -> None:
    """End the process group `setup` started (one started by the caller stays)."""
    global _OWNED
    if _OWNED and initialized():
        dist.destroy_process_group()
        _OWNED = False


def is_main() -> bool:
    """Rank 0, the one that writes the run's files (every process when there is one)."""
    return rank() == 0


def any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is True on any: a decision all ranks take together."""
    if world_size() == 1:
        return flag
    return bool(all_reduce_sum(torch.tensor([float(flag)], device=_DEVICE)).item() > 0)


def from_main(flag: bool) -> bool:
    """Rank 0's `flag` on every rank."""
    if world_size() == 1:
        return flag
    value = torch.tensor([float(flag)], device=_DEVICE)
    dist.broadcast(value, src=0)
    return bool(value.item() > 0)


def initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if initialized() else 1


def rank() -> int:
    return dist.get_rank() if initialized() else 0


def from_main_object(obj: Any) -> Any:
    """Rank 0's `obj` (anything picklable) on every rank: `obj` itself in one process."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of `x` over the ranks, as a new tensor (`x` itself in one process)."""
    if world_size() == 1:
        return x
    out = x.clone()
    dist.all_reduce(out)
    return out


def mean_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """The mean of `x` (each rank's value of a statistic) over the ranks."""
    return x if world_size() == 1 else all_reduce_sum(x) / world_size()


def mean_std(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and sample std (torch.std's correction 1) of the elements of `x` on all ranks together."""
    if world_size() == 1:
        return x.mean(), x.std()
    local = x.detach().double()
    n, total, squares = all_reduce_sum(torch.stack([local.new_tensor(local.numel()), local.sum(),
                                                    local.square().sum()]))
    mean = total / n
    var = (squares - n * mean * mean) / (n - 1)
    return mean.to(x.dtype), var.clamp(min=0).sqrt().to(x.dtype)


def shard(x: torch.Tensor) -> torch.Tensor:
    """This rank's contiguous part of `x` along dim 0 (a batch every rank drew the same: all of `x` in one
    process); equal parts when world size divides len(x)."""
    return x if world_size() == 1 else x.tensor_split(world_size())[rank()]


def check_divides(batch_size: int, key: str) -> None:
    """One line when `key` = batch_size cannot be split into equal parts over the ranks."""
    world = world_size()
    if batch_size % world:
        from classic_rl.config import ConfigError

        raise ConfigError(f"config key '{key}' = {batch_size} is not divisible by the {world} processes torchrun "
                          f"started; pass a multiple of {world} (each process takes {key} / {world})")


def mean_stats_over_ranks(stats: dict[str, torch.Tensor], weight: float = 1.0) -> dict[str, torch.Tensor]:
    """Scalar statistics averaged over the ranks with each rank's `weight` (its number of samples), in
    one all-reduce: what one process computes over all ranks' samples, for means."""
    if world_size() == 1 or not stats:
        return stats
    values = torch.stack([torch.as_tensor(v, dtype=torch.float64).reshape(()).cpu() for v in stats.values()])
    total = all_reduce_sum(torch.cat([values * weight, values.new_tensor([weight])]).to(_DEVICE)).cpu()
    mean = total[:-1] / total[-1].clamp(min=1e-12)
    return dict(zip(stats, mean.to(torch.float32)))


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Replace every parameter's gradient by its mean over the ranks: one all-reduce of one flat buffer.
    A parameter without a gradient on this rank (no data reached it) counts as a zero gradient."""
    if world_size() == 1:
        return
    params = list(params)
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    for g, part in zip(grads, flat.split([g.numel() for g in grads])):
        g.copy_(part.view_as(g))

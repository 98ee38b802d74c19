"""Optimizer helpers shared by every agent: fused Adam, cheap global-norm clipping, lr schedules."""

from __future__ import annotations

from typing import Any

import torch


def adam(params: list[torch.nn.Parameter] | list[dict[str, Any]], lr: float,
         weight_decay: float = 0.0, eps: float = 1e-8) -> torch.optim.Optimizer:
    """Adam (AdamW with decoupled `weight_decay` > 0); the fused kernel where this torch has one for
    the device (same update, ~2x cheaper on CPU). `eps` is Adam's denominator term."""
    cls, kwargs = (torch.optim.AdamW, {"weight_decay": weight_decay}) if weight_decay > 0 else (torch.optim.Adam, {})
    kwargs["eps"] = eps
    try:
        return cls(params, lr=lr, fused=True, **kwargs)
    except (RuntimeError, TypeError):  # no fused Adam for this device / torch version
        return cls(params, lr=lr, **kwargs)


def micro_batch_backward(mask: torch.Tensor, micro_batch_size: int | None, loss_fn) -> dict[str, torch.Tensor]:
    """Backward through `loss_fn(part)` -> (loss, stats) for micro-batches `part` of the n sequences
    (the columns of mask [T, n]), `micro_batch_size` at a time (None: all at once).

    Each loss must be its micro-batch's share of the whole batch's loss (divided by the batch's
    denominator), so the gradients add up to the batch's. Returns "loss", the sum of the losses, and
    each stat (a mean over its micro-batch's tokens) as the token-weighted mean over the batch.
    """
    tokens = mask.sum().clamp(min=1)
    sums: dict[str, torch.Tensor] = {}
    for part in torch.arange(mask.shape[1], device=mask.device).split(micro_batch_size or mask.shape[1]):
        loss, stats = loss_fn(part)
        loss.backward()
        share = mask[:, part].sum() / tokens
        sums["loss"] = sums.get("loss", 0.0) + loss.detach()
        for k, v in stats.items():
            sums[k] = sums.get(k, 0.0) + v.detach() * share
    return sums


def clip_grad_norm(params: list[torch.nn.Parameter], max_norm: float) -> torch.Tensor:
    """clip_grad_norm_ (global L2 norm) without its per-call overhead; returns the norm before clipping."""
    if not hasattr(torch.nn.utils, "get_total_norm"):  # torch < 2.6
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    grads = [p.grad for p in params if p.grad is not None]
    total_norm = torch.nn.utils.get_total_norm(grads, foreach=True)
    torch.nn.utils.clip_grads_with_norm_(grads, max_norm, total_norm, foreach=True)
    return total_norm


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every param group's lr to `lr` times its optional "lr_scale" (e.g. a faster critic)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)

"""Pictures of what an agent learned, written into the run directory (matplotlib, Agg canvas, no pyplot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

# per grid world: each action's arrow (dx, dy) in picture coordinates, rows growing downwards
FROZEN_LAKE = [(-1, 0), (0, 1), (1, 0), (0, -1)]  # left, down, right, up
ARROWS: dict[str, list[tuple[int, int]]] = {
    "FrozenLake-v1": FROZEN_LAKE,
    "FrozenLake8x8-v1": FROZEN_LAKE,
    "CliffWalking-v1": [(0, -1), (1, 0), (0, 1), (-1, 0)],  # up, right, down, left
}
TERMINAL = ("H", "G", "C")  # hole, goal, cliff: cells without a decision of their own


def grid_layout(env: Any) -> np.ndarray | None:
    """Cell letters [rows, cols] of a grid world (S start, G goal, H hole, C cliff, . free), else None."""
    envs = getattr(getattr(env, "env", None), "envs", None)  # the Gymnasium adapter's envs
    inner = getattr(env, "mdp", None) or (envs[0].unwrapped if envs else None)  # or the torch toy text's MDP
    if env.spec.id not in ARROWS or inner is None:
        return None
    if env.spec.id.startswith("FrozenLake"):
        return np.char.replace(inner.desc.astype(str), "F", ".")
    rows, cols = inner.shape  # CliffWalking: start bottom left, cliff along the bottom, goal bottom right
    layout = np.full((rows, cols), ".")
    layout[-1, 0], layout[-1, 1:-1], layout[-1, -1] = "S", "C", "G"
    return layout


def policy_figure(q: torch.Tensor, layout: np.ndarray, arrows: list[tuple[int, int]], title: str):
    """Heatmap of V(s) = max_a Q(s, a) with the greedy action's arrow in each cell; q [S, A], S = rows * cols."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    q = q.detach().float().cpu().numpy()
    rows, cols = layout.shape
    value = q.max(axis=1).reshape(rows, cols)
    greedy = q.argmax(axis=1).reshape(rows, cols)  # first maximiser, as act(explore=False)
    undecided = (q.max(axis=1) == q.min(axis=1)).reshape(rows, cols)  # all actions equal: no arrow
    terminal = np.isin(layout, TERMINAL)
    fig = Figure(figsize=(1.0 + 0.75 * cols, 0.6 + 0.75 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.8")  # terminal cells in grey
    image = ax.imshow(np.ma.masked_where(terminal, value), cmap=cmap)
    fig.colorbar(image, ax=ax, label="V(s) = max_a Q(s, a)", shrink=0.9)
    for r in range(rows):
        for c in range(cols):
            if terminal[r, c]:
                ax.text(c, r, layout[r, c], ha="center", va="center", fontsize=12, weight="bold")
                continue
            if layout[r, c] == "S":
                ax.text(c - 0.42, r - 0.42, "S", ha="left", va="top", fontsize=8, color="w", weight="bold")
            if undecided[r, c]:
                ax.plot(c, r, "w.", markersize=4)
                continue
            ax.text(c + 0.45, r + 0.45, f"{value[r, c]:.2g}", ha="right", va="bottom", fontsize=6, color="w")
            dx, dy = arrows[greedy[r, c]]
            ax.arrow(c - 0.3 * dx, r - 0.3 * dy, 0.5 * dx, 0.5 * dy, width=0.05, head_width=0.22,
                     head_length=0.12, length_includes_head=True, color="w", ec="k", lw=0.5)
    ax.set_xticks(np.arange(cols))
    ax.set_yticks(np.arange(rows))
    ax.set_xticks(np.arange(-0.5, cols), minor=True)
    ax.set_yticks(np.arange(-0.5, rows), minor=True)
    ax.grid(which="minor", color="k", linewidth=0.5)
    ax.tick_params(which="both", length=0, labelsize=7)
    ax.set_title(title, fontsize=10)
    return fig


def save_policy_picture(q: torch.Tensor, env: Any, path: Path, title: str = "") -> Path | None:
    """Write the greedy policy and state values of a grid world to `path` (png); None if `env` is no grid."""
    layout = grid_layout(env)
    if layout is None or layout.size != q.shape[0]:
        return None
    fig = policy_figure(q, layout, ARROWS[env.spec.id], f"{title} on {env.spec.id}\ngreedy policy over V(s)".strip())
    fig.savefig(path, dpi=110)
    return path

"""Sample grids: one row per sample, one column per layer, as in the LR-GAN paper's figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .networks import Layers


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """B x C x H x W in [-1, 1] -> B x H x W x 3 uint8."""
    arr = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
    arr = arr.transpose(0, 2, 3, 1)
    if arr.shape[3] == 1:
        arr = np.repeat(arr, 3, axis=3)
    return arr


def mask_to_uint8(masks: torch.Tensor) -> np.ndarray:
    """B x 1 x H x W in [0, 1] -> B x H x W x 3 uint8."""
    return to_uint8(masks * 2 - 1)


def layer_columns(layers: Layers, real: torch.Tensor | None) -> tuple[list[str], list[np.ndarray]]:
    """Return the column titles and B x H x W x 3 arrays: real, background, then per object
    foreground, mask, carved foreground, warped foreground, and the composite last."""
    titles: list[str] = []
    columns: list[np.ndarray] = []
    if real is not None:
        titles.append("real")
        columns.append(to_uint8(real))
    titles.append("background")
    columns.append(to_uint8(layers.background))
    for k in range(layers.foreground.shape[1]):
        suffix = f" {k + 1}" if layers.foreground.shape[1] > 1 else ""
        fg = layers.foreground[:, k]
        mask = layers.mask[:, k]
        # Carved: the appearance where the mask is on, black elsewhere.
        carved = mask * fg + (1 - mask) * -1.0
        titles += [f"foreground{suffix}", f"mask{suffix}", f"carved{suffix}", f"warped{suffix}"]
        columns += [to_uint8(fg), mask_to_uint8(mask), to_uint8(carved), to_uint8(layers.warped_foreground[:, k])]
    titles.append("composite")
    columns.append(to_uint8(layers.composite))
    return titles, columns


def save_grid(layers: Layers, path: str | Path, real: torch.Tensor | None = None, rows: int = 8, gap: int = 2) -> Path:
    """Write a PNG grid: rows are samples, columns are layers; returns the path."""
    _, columns = layer_columns(layers, real)
    n = min(rows, columns[0].shape[0])
    h, w = columns[0].shape[1:3]
    grid = np.full((n * (h + gap) + gap, len(columns) * (w + gap) + gap, 3), 255, dtype=np.uint8)
    for r in range(n):
        for c, col in enumerate(columns):
            y, x = gap + r * (h + gap), gap + c * (w + gap)
            grid[y:y + h, x:x + w] = col[r]
    # Small canvases are enlarged so the grid can be read on screen.
    zoom = max(1, 128 // h)
    image = Image.fromarray(grid)
    if zoom > 1:
        image = image.resize((grid.shape[1] * zoom, grid.shape[0] * zoom), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path

"""Unconditional sampling with an exported sampler, in onnxruntime (no torch)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from .images import save_png
from .layers import image_to_uint8, pose_record
from .model import LayerModel


def make_noise(model: LayerModel, count: int, seed: int, walk: str | None = None) -> np.ndarray:
    """Return count x T x Z standard normal noise.

    walk="background" keeps z_0 (the background code, which the LSTM also reads) for every
    sample and moves the object codes z_1.. in a straight line between two random codes.
    """
    info = model.info
    rng = np.random.default_rng(seed)
    if walk is None:
        return rng.standard_normal((count, info.timesteps, info.noise_dim)).astype(np.float32)
    if walk != "background":
        raise ValueError(f"unknown walk {walk!r}; the supported walk is 'background'")
    if info.timesteps < 2:
        raise ValueError("a background walk needs a model with objects (timesteps >= 2)")
    background = rng.standard_normal(info.noise_dim)
    start = rng.standard_normal((info.timesteps - 1, info.noise_dim))
    end = rng.standard_normal((info.timesteps - 1, info.noise_dim))
    steps = np.linspace(0.0, 1.0, count)[:, None, None]
    objects = (1 - steps) * start[None] + steps * end[None]
    noise = np.concatenate([np.broadcast_to(background, (count, 1, info.noise_dim)), objects], axis=1)
    return noise.astype(np.float32)


def run_sampler(model: LayerModel, noise: np.ndarray, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Run the sampler over noise in batches and concatenate the outputs by name."""
    model.require("sampler")
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(noise), batch_size):
        for name, value in model.run(noise[start:start + batch_size]).items():
            parts.setdefault(name, []).append(value)
    return {name: np.concatenate(values) for name, values in parts.items()}


def mask_image(mask: np.ndarray) -> np.ndarray:
    """1 x H x W in [0, 1] -> H x W uint8."""
    return np.rint(np.clip(mask[0], 0, 1) * 255).astype(np.uint8)


def write_sample(outputs: dict[str, np.ndarray], index: int, folder: Path, model_name: str) -> None:
    """Write one sample's layers: background, per object foreground/mask (before and after the
    warp), each intermediate canvas for T > 2, the composite and pose.json."""
    folder.mkdir(parents=True, exist_ok=True)
    n_objects = outputs["foreground"].shape[1]
    size = outputs["background"].shape[-1]
    save_png(image_to_uint8(outputs["background"][index]), folder / "background.png")
    for k in range(n_objects):
        suffix = f"_{k + 1}"
        save_png(image_to_uint8(outputs["foreground"][index, k]), folder / f"foreground{suffix}.png")
        save_png(mask_image(outputs["mask"][index, k]), folder / f"mask{suffix}.png")
        save_png(image_to_uint8(outputs["warped_foreground"][index, k]), folder / f"warped_foreground{suffix}.png")
        save_png(mask_image(outputs["warped_mask"][index, k]), folder / f"warped_mask{suffix}.png")
    canvases = outputs["canvases"][index]
    for t in range(1, len(canvases) - 1):
        save_png(image_to_uint8(canvases[t]), folder / f"canvas_{t}.png")
    save_png(image_to_uint8(outputs["composite"][index]), folder / "composite.png")
    record = {
        "model": model_name,
        "width": size,
        "height": size,
        "objects": [pose_record(outputs["pose"][index, k], size, size) for k in range(n_objects)],
    }
    (folder / "pose.json").write_text(json.dumps(record, indent=2) + "\n")


def grid_image(outputs: dict[str, np.ndarray], rows: int = 16, gap: int = 2, zoom: int = 3) -> np.ndarray:
    """Rows are samples; columns: background, then per object foreground, mask, carved
    foreground, warped foreground, and the composite (the layout of the LR-GAN paper's figures)."""
    n = min(rows, len(outputs["background"]))
    columns: list[list[np.ndarray]] = []
    for i in range(n):
        row = [image_to_uint8(outputs["background"][i])]
        for k in range(outputs["foreground"].shape[1]):
            fg = outputs["foreground"][i, k]
            mask = outputs["mask"][i, k]
            row.append(image_to_uint8(fg))
            row.append(np.repeat(mask_image(mask)[:, :, None], 3, axis=2))
            row.append(image_to_uint8(mask * fg + (1 - mask) * -1.0))
            row.append(image_to_uint8(outputs["warped_foreground"][i, k]))
        row.append(image_to_uint8(outputs["composite"][i]))
        columns.append(row)
    h, w = columns[0][0].shape[:2]
    grid = np.full((n * (h + gap) + gap, len(columns[0]) * (w + gap) + gap, 3), 255, dtype=np.uint8)
    for r, row in enumerate(columns):
        for c, tile in enumerate(row):
            y, x = gap + r * (h + gap), gap + c * (w + gap)
            grid[y:y + h, x:x + w] = tile
    return np.repeat(np.repeat(grid, zoom, axis=0), zoom, axis=1)


def sample_to_folder(model: LayerModel, count: int, out: Path, seed: int = 0, walk: str | None = None,
                     grid: bool = True) -> dict[str, np.ndarray]:
    """Draw `count` samples and write each to OUT/sample_NNNN/, plus OUT/grid.png.

    Raises FileExistsError when OUT contains files that an earlier `lrgan sample` did not write.
    """
    check_sample_folder(out)
    remove_earlier_samples(out)
    noise = make_noise(model, count, seed, walk)
    outputs = run_sampler(model, noise)
    width = max(4, len(str(count - 1)))
    for i in range(count):
        write_sample(outputs, i, out / f"sample_{i:0{width}d}", model.info.name)
    if grid:
        save_png(grid_image(outputs), out / "grid.png")
    np.save(out / "noise.npy", noise)
    (out / SAMPLE_MARKER).write_text("written by lrgan sample\n")
    return outputs


SAMPLE_MARKER = ".lrgan-samples"


def check_sample_folder(out: Path) -> None:
    """Accept a missing or empty folder, or one an earlier `lrgan sample` wrote (it has the marker)."""
    check_output_folder(out, SAMPLE_MARKER, "lrgan sample")


def check_output_folder(out: Path, marker: str, command: str) -> None:
    """Accept a missing or empty folder, or one that `command` wrote before (it contains `marker`).

    Raises FileExistsError otherwise, so a command never replaces files it did not write.
    """
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file; give a folder")
    if not out.exists() or not any(out.iterdir()) or (out / marker).is_file():
        return
    raise FileExistsError(f"--out {out} already contains files that {command} did not write; choose another folder")


def remove_earlier_samples(out: Path) -> None:
    """Delete the sample folders and grid of an earlier `lrgan sample` run in `out`, so none outlive this run."""
    if not (out / SAMPLE_MARKER).is_file():
        return
    for folder in out.glob("sample_*"):
        if folder.is_dir() and folder.name[len("sample_"):].isdigit():
            shutil.rmtree(folder)
    (out / "grid.png").unlink(missing_ok=True)

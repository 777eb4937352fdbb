"""Scoring an exported decomposer on synthetic MNIST images with known masks, backgrounds and poses.

It runs the ONNX file in onnxruntime, so the number describes exactly what ships.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..decompose.model import LayerModel
from .data import SyntheticMnist, load_mnist
from .metrics import background_gray_mae, mask_iou, pose_summary, psnr

log = logging.getLogger(__name__)


def to_uint8_hwc(batch: np.ndarray) -> np.ndarray:
    """N x C x H x W in [-1, 1] -> N x H x W x C uint8."""
    return np.rint(np.clip((batch.transpose(0, 2, 3, 1) + 1) * 127.5, 0, 255)).astype(np.uint8)


def evaluate_synthetic(model_path: str, kind: str, mnist_dir: str | Path, split: str, count: int,
                       seed: int, out: Path | None = None, batch_size: int = 100,
                       progress: bool = True) -> dict:
    """Decompose `count` synthetic images and score them against their ground truth.

    Returns the means (and a few percentiles) of: mask IoU (union of the warped masks > 0.5
    against the union of the true digit masks), reconstruction PSNR in dB, background gray
    MAE in gray levels, and, for one object, pose errors of the predicted placement against
    the true digit placement: centre distance in pixels, size ratio and rotation in degrees.
    """
    model = LayerModel(model_path)
    model.require("decomposer")
    digits, labels = load_mnist(mnist_dir, split)
    synth = SyntheticMnist(kind, digits, labels, seed=seed)
    if model.info.image_size != synth.spec.size:
        raise ValueError(f"model {model_path} works at {model.info.image_size}px, {kind} images are {synth.spec.size}px")
    count = min(count, len(synth))

    ious, psnrs, maes, center_err, size_ratio, rotation_err, areas = [], [], [], [], [], [], []
    examples = None
    for start in tqdm(range(0, count, batch_size), disable=None if progress else True, desc="evaluate", unit="batch"):
        samples = [synth[i] for i in range(start, min(count, start + batch_size))]
        images = np.stack([s.image for s in samples])
        batch = images.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0
        outputs = model.run(batch)

        union = outputs["warped_mask"][:, :, 0].max(axis=1)
        truth = np.stack([s.mask for s in samples])
        ious.append(mask_iou(union, truth))
        psnrs.append(psnr(to_uint8_hwc(outputs["composite"]).astype(np.float64), images))
        maes.append(background_gray_mae(to_uint8_hwc(outputs["background"]), np.array([s.background_gray for s in samples])))
        areas.append((union > 0.5).mean(axis=(1, 2)))
        if synth.spec.n_digits == 1 and outputs["pose"].shape[1] == 1:
            size = synth.spec.size
            for s, matrix in zip(samples, outputs["pose"][:, 0]):
                predicted = pose_summary(matrix, size, size)
                true = s.poses[0]
                center_err.append(np.hypot(predicted["center_x"] - true.center_x, predicted["center_y"] - true.center_y))
                size_ratio.append(np.sqrt(predicted["scale_x"] * predicted["scale_y"]) / true.size)
                rotation_err.append(abs((predicted["rotation"] - true.rotation + 180) % 360 - 180))
        if examples is None:
            examples = (images[:12], outputs, truth[:12])

    iou = np.concatenate(ious)
    result = {
        "model": str(model_path),
        "data": kind,
        "split": split,
        "seed": seed,
        "images": int(count),
        "mask_iou": float(iou.mean()),
        "mask_iou_median": float(np.median(iou)),
        "mask_iou_p10": float(np.percentile(iou, 10)),
        "share_iou_over_0.5": float((iou > 0.5).mean()),
        "psnr": float(np.concatenate(psnrs).mean()),
        "background_mae": float(np.concatenate(maes).mean()),
        "mask_area_mean": float(np.concatenate(areas).mean()),
    }
    if center_err:
        result.update({
            "pose_center_error_px": float(np.mean(center_err)),
            "pose_size_ratio_median": float(np.median(size_ratio)),
            "pose_rotation_error_deg": float(np.mean(rotation_err)),
        })
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        write_plots(out, iou, np.concatenate(psnrs), examples)
    return result


def write_plots(out: Path, iou: np.ndarray, psnrs: np.ndarray, examples) -> None:
    """Histograms of IoU and PSNR, and a strip of examples: input, true mask, mask, background, composite."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    axes[0].hist(iou, bins=40, range=(0, 1), color="tab:blue")
    axes[0].set_xlabel("mask IoU")
    axes[0].set_ylabel("images")
    axes[0].axvline(iou.mean(), color="k", linestyle="--", label=f"mean {iou.mean():.3f}")
    axes[0].legend()
    finite = psnrs[np.isfinite(psnrs)]
    axes[1].hist(finite, bins=40, color="tab:green")
    axes[1].set_xlabel("reconstruction PSNR (dB)")
    axes[1].axvline(finite.mean(), color="k", linestyle="--", label=f"mean {finite.mean():.1f}")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(out / "histograms.png", dpi=110)
    plt.close(fig)

    if examples is None:
        return
    images, outputs, truth = examples
    n = len(images)
    rows = [
        ("input", images),
        ("true mask", np.repeat(truth[..., None] * 255, 3, axis=3).astype(np.uint8)),
        ("mask", np.repeat(np.rint(outputs["warped_mask"][:n, :, 0].max(axis=1)[..., None] * 255), 3, axis=3).astype(np.uint8)),
        ("background", to_uint8_hwc(outputs["background"][:n])),
        ("composite", to_uint8_hwc(outputs["composite"][:n])),
    ]
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.9, len(rows) * 0.95))
    for r, (title, arr) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(arr[c], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(title, fontsize=7)
    fig.tight_layout(pad=0.2)
    fig.savefig(out / "examples.png", dpi=110)
    plt.close(fig)


def write_synthetic_folder(kind: str, mnist_dir: str | Path, split: str, count: int, seed: int,
                           out: Path, progress: bool = True) -> Path:
    """Write images/, masks/ (per image, union of digits, 8-bit PNG) and truth.json for `count` images."""
    from PIL import Image

    digits, labels = load_mnist(mnist_dir, split)
    synth = SyntheticMnist(kind, digits, labels, seed=seed)
    count = min(count, len(synth))
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    records = []
    width = max(5, len(str(count - 1)))
    for i in tqdm(range(count), disable=None if progress else True, desc=kind, unit="img"):
        s = synth[i]
        name = f"{i:0{width}d}.png"
        Image.fromarray(s.image).save(out / "images" / name)
        Image.fromarray((s.mask * 255).astype(np.uint8)).save(out / "masks" / name)
        records.append({
            "image": f"images/{name}",
            "mask": f"masks/{name}",
            "background_gray": s.background_gray,
            "labels": s.labels,
            "poses": [p.to_dict() for p in s.poses],
        })
    truth = {"data": kind, "split": split, "seed": seed, "count": count,
             "pose_convention": "matrix maps output to source in normalised coordinates; "
                                "the source is the 28x28 digit stretched over the whole canvas",
             "images": records}
    path = out / "truth.json"
    path.write_text(json.dumps(truth, indent=1) + "\n")
    return path


def evaluate_sampler(model_path: str, count: int, seed: int, out: Path | None = None) -> dict:
    """Draw `count` samples from an exported sampler and score their masks and poses.

    Reports the share of objects whose own (unwarped) mask is nearly binary (90 % of pixels
    below 0.1 or above 0.9) and covers between 1 % and 95 % of its canvas. It also
    summarises the six pose parameters. With `out`, it writes their histograms and a
    sample grid.
    """
    from ..decompose.images import save_png
    from ..decompose.sampling import grid_image, make_noise, run_sampler
    from .metrics import nearly_binary

    model = LayerModel(model_path)
    model.require("sampler")
    outputs = run_sampler(model, make_noise(model, count, seed))
    masks = outputs["mask"][:, :, 0]                       # N x K x H x W
    binary = nearly_binary(masks.reshape(-1, *masks.shape[2:]))
    poses = outputs["pose"].reshape(-1, 6)                  # a11 a12 tx a21 a22 ty
    result = {
        "model": str(model_path),
        "samples": int(count),
        "seed": seed,
        "binary_mask_share": float(binary.mean()),
        "mask_area_mean": float((masks > 0.5).mean()),
        "pose_mean": [float(v) for v in poses.mean(axis=0)],
        "pose_std": [float(v) for v in poses.std(axis=0)],
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        save_png(grid_image(outputs, rows=16), out / "samples.png")
        write_pose_histograms(poses, out / "pose_histograms.png")
    return result


def write_pose_histograms(poses: np.ndarray, path: Path) -> None:
    """Plot one histogram per affine parameter (N x 6: a11, a12, tx, a21, a22, ty)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["a11 (x scale)", "a12 (shear)", "tx", "a21 (shear)", "a22 (y scale)", "ty"]
    fig, axes = plt.subplots(2, 3, figsize=(9, 5))
    for ax, values, name in zip(axes.flat, poses.T, names):
        ax.hist(values, bins=40, color="tab:purple")
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

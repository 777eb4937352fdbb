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
    save_example_strip(out / "examples.png", rows, n)


def evaluate_photos(model_path: str, source, name: str, count: int, seed: int, out: Path | None = None,
                    batch_size: int = 64, progress: bool = True) -> dict:
    """Decompose `count` photos without ground truth and describe the split.

    `source` is an image source of the model's size (LfwSource, FolderSource). Reports the
    reconstruction PSNR and the distribution of mask area: the share of pixels whose
    placed mask is above 0.5. A mask under 1 % of the image counts as empty and one over
    95 % as full. Either means that the decomposition has degenerated for that photo.
    """
    model = LayerModel(model_path)
    model.require("decomposer")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(source), size=min(count, len(source)), replace=False))
    psnrs, areas = [], []
    examples = None
    for start in tqdm(range(0, len(chosen), batch_size), disable=None if progress else True, desc="evaluate", unit="batch"):
        batch = source.batch(chosen[start:start + batch_size])
        if model.info.channels == 1 and batch.shape[1] == 3:
            batch = (batch * np.array([0.299, 0.587, 0.114], np.float32)[None, :, None, None]).sum(1, keepdims=True)
        outputs = model.run(batch)
        images = to_uint8_hwc(batch)
        psnrs.append(psnr(to_uint8_hwc(outputs["composite"]).astype(np.float64), images))
        areas.append((outputs["warped_mask"][:, :, 0].max(axis=1) > 0.5).mean(axis=(1, 2)))
        if examples is None:
            examples = (images[:12], {k: v[:12] for k, v in outputs.items()})
    area = np.concatenate(areas)
    result = {
        "model": str(model_path),
        "data": name,
        "seed": seed,
        "images": int(len(area)),
        "psnr": float(np.concatenate(psnrs).mean()),
        "mask_area_mean": float(area.mean()),
        "mask_area_percentiles": {str(q): float(np.percentile(area, q)) for q in (5, 25, 50, 75, 95)},
        "empty_mask_share": float((area < 0.01).mean()),
        "full_mask_share": float((area > 0.95).mean()),
        "degenerate_share": float(((area < 0.01) | (area > 0.95)).mean()),
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        write_area_plots(out, area, examples)
    return result


def write_area_plots(out: Path, area: np.ndarray, examples) -> None:
    """mask_area.png (the histogram, with the empty and full limits) and examples.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.hist(area, bins=50, range=(0, 1), color="tab:blue")
    for limit in (0.01, 0.95):
        ax.axvline(limit, color="tab:red", linestyle=":")
    ax.set_xlabel("mask area (share of pixels with mask > 0.5)")
    ax.set_ylabel("images")
    ax.set_title(f"empty {np.mean(area < 0.01):.1%}, full {np.mean(area > 0.95):.1%}, mean area {area.mean():.2f}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "mask_area.png", dpi=110)
    plt.close(fig)

    images, outputs = examples
    n = len(images)
    mask = np.rint(outputs["warped_mask"][:, :, 0].max(axis=1)[..., None] * 255).astype(np.uint8)
    rows = [
        ("input", images),
        ("mask", np.repeat(mask, 3, axis=3) if images.shape[-1] == 3 else mask),
        ("background", to_uint8_hwc(outputs["background"])),
        ("object", to_uint8_hwc((outputs["warped_foreground"][:, 0] + 1) * outputs["warped_mask"][:, 0] - 1)),
        ("composite", to_uint8_hwc(outputs["composite"])),
    ]
    save_example_strip(out / "examples.png", rows, n)


def save_example_strip(path: Path, rows: list[tuple[str, np.ndarray]], n: int) -> None:
    """Save a grid with one titled row per (title, images) pair and n example columns.

    Images are N x H x W x C uint8; one-channel rows are drawn in gray.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.9, len(rows) * 0.95), squeeze=False)
    for r, (title, arr) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(arr[c].squeeze(), cmap="gray" if arr.shape[-1] == 1 else None, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(title, fontsize=7)
    fig.tight_layout(pad=0.2)
    fig.savefig(path, dpi=110)
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


def evaluate_sampler(model_path: str, count: int, seed: int, out: Path | None = None, *,
                     classifier: str | Path | None = None, data: str | None = None,
                     mnist_dir: str | Path | None = None, real_count: int = 5000,
                     discriminator: str | Path | None = None, inception: str | Path | None = None,
                     compare: str | Path | None = None, match_count: int = 500,
                     progress: bool = True) -> dict:
    """Draw `count` samples from an exported sampler and score them.

    Always: the share of objects whose own (unwarped) mask is nearly binary (90 % of pixels
    below 0.1 or above 0.9) and covers between 1 % and 95 % of its canvas, and the six pose
    parameters. With `classifier`: the contextual Inception Score of the samples and of real
    test images. With `data` as well: the Frechet distance on the classifier's hidden layer
    between samples and real test images. With `discriminator` (a training checkpoint) and
    `data`: 1-NN accuracy on real test images with that discriminator's features. With
    `inception`: the standard Inception Score and, with `data`, FID. With `compare`
    (another sampler): Hungarian matching of `match_count` samples from each. With `out`,
    it writes metrics.json, pose histograms, a sample grid, nearest real neighbours and
    the matched pairs.
    """
    from ..decompose.images import save_png
    from ..decompose.sampling import grid_image
    from . import gan_metrics as gm
    from .metrics import nearly_binary

    model = LayerModel(str(model_path))
    outputs, samples = gm.samples_from(model, count, seed)
    info = model.info
    result: dict = {"model": str(model_path), "samples": int(count), "seed": seed}
    if outputs["mask"].shape[1] > 0:           # T = 1 (DCGAN) has no objects
        masks = outputs["mask"][:, :, 0]                       # N x K x H x W
        binary = nearly_binary(masks.reshape(-1, *masks.shape[2:]))
        poses = outputs["pose"].reshape(-1, 6)                  # a11 a12 tx a21 a22 ty
        placed = outputs["warped_mask"][:, :, 0]
        result.update({
            "binary_mask_share": float(binary.mean()),
            # The same test on the mask as placed on the image, whose soft edges come partly from the warp.
            "binary_warped_mask_share": float(nearly_binary(placed.reshape(-1, *placed.shape[2:])).mean()),
            "mask_area_mean": float((masks > 0.5).mean()),
            "pose_mean": [float(v) for v in poses.mean(axis=0)],
            "pose_std": [float(v) for v in poses.std(axis=0)],
        })
    else:
        poses = None

    real_test = real_train = None
    if data is not None:
        real_test = gm.load_labelled(data, "test", info.image_size, info.channels, real_count, seed=1234,
                                     mnist_dir=mnist_dir, progress=progress)
    if classifier is not None:
        clf, clf_cfg, classes, _ = gm.load_classifier(classifier)
        if clf_cfg.image_size != info.image_size:
            raise ValueError(
                f"classifier {classifier} reads {clf_cfg.image_size}px images but the sampler makes "
                f"{info.image_size}px ones; train a classifier with the sampler's preset"
            )
        probs, feats = gm.classify(clf, gm.to_channels_np(samples, clf_cfg.channels))
        result["contextual_is"], result["contextual_is_std"] = gm.inception_score(probs)
        result["class_histogram"] = np.bincount(probs.argmax(1), minlength=len(classes)).tolist()
        if real_test is not None:
            real_probs, real_feats = gm.classify(clf, gm.to_channels_np(real_test.images, clf_cfg.channels))
            result["real_contextual_is"], result["real_contextual_is_std"] = gm.inception_score(real_probs)
            result["real_classifier_accuracy"] = float((real_probs.argmax(1) == real_test.labels).mean() * 100)
            result["classifier_fid"] = gm.frechet_distance(feats, real_feats)
    if discriminator is not None:
        if data is None:
            raise ValueError("1-NN with --discriminator needs --data: the real images to classify")
        real_train = gm.load_labelled(data, "train", info.image_size, info.channels, 4 * real_count, seed=0,
                                      mnist_dir=mnist_dir, progress=progress)
        train_feats = gm.discriminator_features(discriminator, real_train.images)
        test_feats = gm.discriminator_features(discriminator, real_test.images)
        result["one_nn_accuracy"] = gm.one_nn_accuracy(train_feats, real_train.labels, test_feats, real_test.labels)
    if inception is not None:
        net = gm.LocalInception(inception)
        probs, feats = net.run(samples, progress=progress)
        result["inception_score"], result["inception_score_std"] = gm.inception_score(probs)
        if real_test is not None:
            _, real_feats = net.run(real_test.images, progress=progress)
            result["inception_fid"] = gm.frechet_distance(feats, real_feats)
    matched = None
    if compare is not None:
        match_count = min(match_count, count)
        _, others = gm.samples_from(LayerModel(str(compare)), match_count, seed + 1)
        ours = samples[:match_count]
        if others.shape[1:] != ours.shape[1:]:
            raise ValueError(f"{compare} makes {others.shape[1:]} samples, {model_path} makes {ours.shape[1:]}")
        match, distance = gm.hungarian_match(ours, others)
        result["compare"] = str(compare)
        result["matched_l2_mean"] = float(distance.mean())
        matched = (ours, others[match], distance)

    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        save_png(grid_image(outputs, rows=16), out / "samples.png")
        if poses is not None:
            write_pose_histograms(poses, out / "pose_histograms.png")
        if real_test is not None or real_train is not None:
            pool = real_train if real_train is not None else real_test
            nearest = gm.cosine_neighbours(samples[:24], pool.images)
            save_png(gm.pair_grid(samples[:24], pool.images[nearest]), out / "nearest_real.png")
        if matched is not None:
            ours, theirs, distance = matched
            order = np.argsort(distance)
            pick = order[np.linspace(0, len(order) - 1, 24).round().astype(int)]
            save_png(gm.pair_grid(ours[pick], theirs[pick]), out / "hungarian_pairs.png")
    return result


def evaluate_adversarial(generators: dict[int, str], classifier: str | Path, data: str,
                         mnist_dir: str | Path | None, per_class: int, steps: int, real_count: int,
                         seed: int, out: Path | None = None, progress: bool = True) -> dict:
    """Compute Adversarial Accuracy and Divergence from one sampler per class.

    Each sampler draws `per_class` images labelled with its class. A classifier of the real
    classifier's shape is trained on them for `steps` steps, then both are scored on real
    test images.
    """
    from . import gan_metrics as gm

    real_clf, cfg, classes, _ = gm.load_classifier(classifier)
    unknown = sorted(set(generators) - set(range(len(classes))))
    if unknown:
        raise ValueError(
            f"class index {', '.join(map(str, unknown))} out of range: the classifier has {len(classes)} "
            f"classes, 0 to {len(classes) - 1}"
        )
    missing = sorted(set(range(len(classes))) - set(generators))
    if missing:
        raise ValueError(
            f"no generator for classes {', '.join(classes[k] for k in missing)}; give one per class with --generator"
        )
    images, labels = [], []
    for k, path in sorted(generators.items()):
        sampler = LayerModel(str(path))
        info = sampler.info
        if info.image_size != cfg.image_size:
            raise ValueError(f"{path} makes {info.image_size}px images, the classifier reads {cfg.image_size}px")
        _, samples = gm.samples_from(sampler, per_class, seed + k)
        images.append(gm.to_channels_np(samples, cfg.channels))
        labels.append(np.full(per_class, k, np.int64))
    generated = gm.LabelledImages(np.concatenate(images), np.concatenate(labels), classes)
    gen_clf = gm.train_classifier(generated, cfg, steps, seed=seed, progress=progress)
    real = gm.load_labelled(data, "test", cfg.image_size, cfg.channels, real_count, seed=1234,
                            mnist_dir=mnist_dir, progress=progress)
    result = {"generators": {classes[k]: str(p) for k, p in sorted(generators.items())},
              "per_class": per_class, "classifier_steps": steps, "real_images": len(real.labels)}
    result.update(gm.adversarial_scores(gen_clf, real_clf, real))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
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

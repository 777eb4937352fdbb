"""Face boxes of a decomposer against OpenCV's Haar frontal-face cascade on re-framed held-out LFW photos.

Each held-out photo is re-framed (random zoom and shift, blurred border) so that the face
moves and changes size. On each re-framed photo the cascade and the model each give a box. A fixed box of the
median cascade size at the median cascade position on the original frames is the floor
that any detector must beat. No torch is needed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..decompose.faces import BOX_METHODS, DEFAULT_BOX_METHOD, FaceBox, box_from_mask, draw_box
from ..decompose.layers import full_mask, pose_record, to_model_input
from ..decompose.model import LayerModel
from .lfw import lfw_photos, load_photo, reframe


def haar_detector() -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    detector = cv2.CascadeClassifier(str(path))
    if detector.empty():
        raise RuntimeError(f"cannot load the Haar cascade {path}; opencv-python 4.x ships it")
    return detector


def haar_boxes(detector: cv2.CascadeClassifier, image: np.ndarray) -> list[FaceBox]:
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    found = detector.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(30, 30))
    return [FaceBox(True, int(x), int(y), int(x + w), int(y + h), 1.0) for x, y, w, h in found]


def evaluate_faces(model_name: str, lfw_path: str | Path, count: int, seed: int, out: Path | None = None,
                   batch_size: int = 32, progress: bool = True, method: str = DEFAULT_BOX_METHOD) -> dict:
    """Compare model boxes, Haar boxes and the fixed median box on `count` re-framed held-out photos.

    The model's boxes come from `method` (see box_from_mask); the agreement of every other
    box method is reported too.
    """
    model = LayerModel(model_name)
    model.require("decomposer")
    detector = haar_detector()
    photos = lfw_photos(lfw_path, "test")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(photos), size=min(count, len(photos)), replace=False))

    # The fixed box: median Haar size and position over the original (not re-framed) frames.
    originals = [load_photo(photos[i]) for i in chosen]
    single = [b[0] for b in (haar_boxes(detector, p) for p in originals) if len(b) == 1]
    if not single:
        raise RuntimeError("the Haar cascade found no single face on the original frames")
    median = np.median([[b.x0, b.y0, b.x1, b.y1] for b in single], axis=0).round().astype(int)
    fixed = FaceBox(True, *median.tolist(), 1.0)

    records = []
    haar_seconds = model_seconds = 0.0
    for start in tqdm(range(0, len(chosen), batch_size), disable=None if progress else True, desc="faces", unit="batch"):
        framed = [reframe(originals[j], np.random.default_rng([seed, int(chosen[j])]))[0]
                  for j in range(start, min(len(chosen), start + batch_size))]

        begin = time.perf_counter()
        haar = [haar_boxes(detector, image) for image in framed]
        haar_seconds += time.perf_counter() - begin

        begin = time.perf_counter()
        outputs = model.run(to_model_input(framed, model.info.image_size, model.info.channels))
        placed, boxes = [], []
        for index, image in enumerate(framed):
            height, width = image.shape[:2]
            pose = pose_record(outputs["pose"][index, 0], width, height)
            mask = full_mask(outputs, index, width, height)
            placed.append((mask, pose))
            boxes.append(box_from_mask(mask, pose, method))
        model_seconds += time.perf_counter() - begin

        # The other box methods reuse the placed masks, outside the timing.
        others = [{other: box_from_mask(mask, pose, other) for other in BOX_METHODS} for mask, pose in placed]

        for image, cascade, box, by_method in zip(framed, haar, boxes, others):
            records.append({"image": image, "haar": cascade, "model": box, "by_method": by_method})

    n = len(records)
    one_face = [r for r in records if len(r["haar"]) == 1]
    model_iou = np.array([r["model"].iou(r["haar"][0]) for r in one_face])
    fixed_iou = np.array([fixed.iou(r["haar"][0]) for r in one_face])
    result = {
        "model": str(model_name),
        "photos": n,
        "seed": seed,
        "haar_one_face": len(one_face),
        "box_method": method,
        "model_agrees_iou_0.5": float((model_iou >= 0.5).mean()),
        "fixed_box_agrees_iou_0.5": float((fixed_iou >= 0.5).mean()),
        "model_mean_iou": float(model_iou.mean()),
        "haar_no_face_share": float(np.mean([len(r["haar"]) == 0 for r in records])),
        "model_no_face_share": float(np.mean([not r["model"].found for r in records])),
        "haar_ms_per_image": 1000 * haar_seconds / n,
        "model_ms_per_image": 1000 * model_seconds / n,
        "fixed_box": median.tolist(),
    }
    for other in BOX_METHODS:
        ious = np.array([r["by_method"][other].iou(r["haar"][0]) for r in one_face])
        result[f"{other}_box_agrees_iou_0.5"] = float((ious >= 0.5).mean())
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "faces.json").write_text(json.dumps(result, indent=2) + "\n")
        write_examples(out / "face_examples.png", one_face, model_iou, fixed)
        write_iou_histogram(out / "face_iou.png", model_iou, fixed_iou)
    return result


def write_examples(path: Path, records: list[dict], ious: np.ndarray, fixed: FaceBox, per_row: int = 6) -> None:
    """Two rows of agreements (IoU >= 0.5) and two of disagreements: cascade green, model red, fixed box blue."""
    good = [r for r, iou in zip(records, ious) if iou >= 0.5][:2 * per_row]
    bad = [r for r, iou in zip(records, ious) if iou < 0.5][:2 * per_row]
    tiles = []
    for group in (good, bad):
        for r in group:
            image = draw_box(r["image"], fixed, (60, 60, 255))
            image = draw_box(image, r["haar"][0], (0, 220, 0))
            image = draw_box(image, r["model"], (255, 40, 40))
            tiles.append(cv2.resize(image, (160, 160), interpolation=cv2.INTER_AREA))
        while len(tiles) % per_row:
            tiles.append(np.full((160, 160, 3), 255, dtype=np.uint8))
    if not tiles:
        return
    rows = [np.concatenate(tiles[i:i + per_row], axis=1) for i in range(0, len(tiles), per_row)]
    from PIL import Image

    Image.fromarray(np.concatenate(rows, axis=0)).save(path)


def write_iou_histogram(path: Path, model_iou: np.ndarray, fixed_iou: np.ndarray) -> None:
    """Histograms of the IoU with the cascade's box: the model's boxes and the fixed box."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    bins = np.linspace(0, 1, 41)
    ax.hist(fixed_iou, bins=bins, alpha=0.6, color="tab:blue", label=f"fixed median box ({np.mean(fixed_iou >= 0.5):.0%} >= 0.5)")
    ax.hist(model_iou, bins=bins, alpha=0.6, color="tab:red", label=f"model ({np.mean(model_iou >= 0.5):.0%} >= 0.5)")
    ax.axvline(0.5, color="k", linestyle=":")
    ax.set_xlabel("IoU with the Haar cascade's box")
    ax.set_ylabel("photos")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

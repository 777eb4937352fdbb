"""Face boxes from a decomposer's mask and pose, and the `lrgan faces` folder run."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .images import DEFAULT_MAX_PIXELS, is_lrgan_png, save_png, tagged_png_info
from .inputs import InputFile
from .layers import full_mask, pose_record
from .model import LayerModel
from .runner import RunSummary, run_images

log = logging.getLogger(__name__)

MASK_THRESHOLD = 0.5
MIN_AREA = 0.01   # a component under 1 % of the image is no face
CSV_FIELDS = ["file", "found", "x0", "y0", "x1", "y1", "score", "pose_center_x", "pose_center_y",
              "pose_scale_x", "pose_scale_y", "width", "height"]


@dataclass
class FaceBox:
    """One image's face box in its own pixels (x0, y0 inclusive, x1, y1 exclusive)."""

    found: bool
    x0: int = 0
    y0: int = 0
    x1: int = 0
    y1: int = 0
    score: float = 0.0

    def iou(self, other: "FaceBox") -> float:
        if not (self.found and other.found):
            return 0.0
        ix = max(0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = (self.x1 - self.x0) * (self.y1 - self.y0) + (other.x1 - other.x0) * (other.y1 - other.y0) - inter
        return inter / union if union > 0 else 0.0


BOX_METHODS = ("moments", "component")
DEFAULT_BOX_METHOD = "moments"


def box_from_mask(mask: np.ndarray, pose: dict | None = None, method: str = DEFAULT_BOX_METHOD) -> FaceBox:
    """Return the face box of a placed mask (H x W, values in [0, 1]) in its own pixels.

    "component": the bounding box of the mask's largest connected component above
    MASK_THRESHOLD. When the pose is given, the component that contains the pose's object
    centre wins over a larger one elsewhere. The score is the component's share of all mask
    weight times its mean mask value, in [0, 1].

    "moments": the rectangle whose centre and standard deviations along x and y are those of
    the mask weight (a uniform rectangle of side 2 * sqrt(3) * sigma has deviation sigma).
    A soft mask that seldom crosses 0.5 still gives its full extent this way. The score is
    the mask's mean value inside the box. No face is found when the mask weight adds up to
    less than MIN_AREA of the image.
    """
    if method not in BOX_METHODS:
        raise ValueError(f"box method must be one of {', '.join(BOX_METHODS)}, got {method!r}")
    if method == "moments":
        return box_from_moments(mask)
    return box_from_component(mask, pose)


def box_from_moments(mask: np.ndarray) -> FaceBox:
    height, width = mask.shape
    weight = mask.astype(np.float64)
    total = weight.sum()
    if total < MIN_AREA * height * width:
        return FaceBox(False)
    ys = np.arange(height, dtype=np.float64) + 0.5
    xs = np.arange(width, dtype=np.float64) + 0.5
    column_weight, row_weight = weight.sum(axis=0), weight.sum(axis=1)
    mean_x = float(column_weight @ xs / total)
    mean_y = float(row_weight @ ys / total)
    half_x = np.sqrt(3.0 * float(column_weight @ (xs - mean_x) ** 2 / total))
    half_y = np.sqrt(3.0 * float(row_weight @ (ys - mean_y) ** 2 / total))
    x0, x1 = max(0, int(round(mean_x - half_x))), min(width, int(round(mean_x + half_x)))
    y0, y1 = max(0, int(round(mean_y - half_y))), min(height, int(round(mean_y + half_y)))
    if x1 <= x0 or y1 <= y0:
        return FaceBox(False)
    score = float(weight[y0:y1, x0:x1].mean())
    return FaceBox(True, x0, y0, x1, y1, min(1.0, score))


def box_from_component(mask: np.ndarray, pose: dict | None = None) -> FaceBox:
    height, width = mask.shape
    binary = (mask > MASK_THRESHOLD).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:
        return FaceBox(False)
    areas = stats[1:, cv2.CC_STAT_AREA]
    best = 1 + int(np.argmax(areas))
    if pose is not None:
        cx, cy = (int(round(v)) for v in pose["center_px"])
        if 0 <= cx < width and 0 <= cy < height and labels[cy, cx] > 0:
            candidate = int(labels[cy, cx])
            # The pose's component must still be a sizeable part of the mask.
            if stats[candidate, cv2.CC_STAT_AREA] >= 0.25 * areas.max():
                best = candidate
    if stats[best, cv2.CC_STAT_AREA] < MIN_AREA * height * width:
        return FaceBox(False)
    x, y, w, h = (int(stats[best, k]) for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
    inside = labels == best
    total = float(mask.sum()) or 1.0
    score = float(mask[inside].sum() / total) * float(mask[inside].mean())
    return FaceBox(True, x, y, x + w, y + h, min(1.0, score))


def draw_box(image: np.ndarray, box: FaceBox, color=(0, 255, 0)) -> np.ndarray:
    out = image.copy()
    if box.found:
        thickness = max(1, round(min(image.shape[:2]) / 125))
        cv2.rectangle(out, (box.x0, box.y0), (box.x1 - 1, box.y1 - 1), color, thickness)
    return out


class FaceWriter:
    """Collects one CSV row per image and writes optional crops and drawings."""

    def __init__(self, model: LayerModel, crops: Path | None, draw: Path | None, method: str = DEFAULT_BOX_METHOD):
        self.model = model
        self.crops = crops
        self.draw = draw
        self.method = method
        self.rows: dict[str, dict] = {}

    def target(self, item: InputFile) -> Path:
        folder = self.crops or self.draw
        return folder / f"{item.name}.png" if folder is not None else Path(item.name)

    def files(self, item: InputFile) -> list[Path]:
        files = []
        if self.crops is not None:
            files.append(self.crops / f"{item.name}.png")
        if self.draw is not None:
            files.append(self.draw / f"{item.name}.png")
        return files

    def owns(self, path: Path) -> bool:
        return is_lrgan_png(path)

    @property
    def needs_pixels(self) -> bool:
        return self.crops is not None or self.draw is not None

    def write(self, outputs: dict, index: int, image: np.ndarray, shape: tuple[int, int],
              item: InputFile) -> list[Path]:
        height, width = shape
        mask = full_mask(outputs, index, width, height)
        pose = pose_record(outputs["pose"][index, 0], width, height) if outputs["pose"].shape[1] else None
        box = box_from_mask(mask, pose, self.method)
        self.rows[str(item.path)] = {
            "file": str(item.path), "found": int(box.found), "x0": box.x0, "y0": box.y0, "x1": box.x1, "y1": box.y1,
            "score": round(box.score, 4),
            "pose_center_x": round(pose["center_px"][0], 2) if pose else "",
            "pose_center_y": round(pose["center_px"][1], 2) if pose else "",
            "pose_scale_x": round(pose["scale_x"], 4) if pose else "",
            "pose_scale_y": round(pose["scale_y"], 4) if pose else "",
            "width": width, "height": height,
        }
        written = []
        info = tagged_png_info()
        if self.crops is not None and box.found:
            path = self.crops / f"{item.name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image[box.y0:box.y1, box.x0:box.x1]).save(path, pnginfo=info)
            written.append(path)
        if self.draw is not None:
            path = self.draw / f"{item.name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(draw_box(image, box)).save(path, pnginfo=info)
            written.append(path)
        return written


def is_faces_csv(path: Path) -> bool:
    """True for a CSV file this tool wrote (its header is CSV_FIELDS)."""
    try:
        with open(path, newline="") as f:
            return next(csv.reader(f), None) == CSV_FIELDS
    except (OSError, UnicodeDecodeError, csv.Error):
        return False


def run_faces(arguments: list[str], csv_path: Path, model: LayerModel, crops: Path | None = None,
              draw: Path | None = None, batch_size: int = 32, max_pixels: int = DEFAULT_MAX_PIXELS,
              progress: bool = True, method: str = DEFAULT_BOX_METHOD) -> RunSummary:
    """Find one face box per image and write them to a CSV file (rows in input order).

    Raises FileExistsError when csv_path exists and is not a faces CSV of an earlier run.
    """
    if csv_path.exists() and not is_faces_csv(csv_path):
        raise FileExistsError(f"{csv_path} exists and is not a faces CSV written by lrgan; choose another --out")
    writer = FaceWriter(model, crops, draw, method)
    # Only the crop or drawing folder contains outputs that a folder walk must not read back.
    out = crops or draw
    summary = run_images(arguments, out, model, writer=writer, batch_size=batch_size, max_pixels=max_pixels,
                         progress=progress)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as f:
        table = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        table.writeheader()
        for result in summary.results:
            if result.input in writer.rows:
                table.writerow(writer.rows[result.input])
    return summary


def save_drawing(image: np.ndarray, boxes: list[tuple[FaceBox, tuple[int, int, int]]], path: Path) -> None:
    for box, color in boxes:
        image = draw_box(image, box, color)
    save_png(image, path)

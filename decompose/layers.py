"""Turn model outputs into layers at the input image's own resolution, and write them.

The model gets the whole image resized to its square canvas. Each layer is resized back
to the input's width and height, so layer pixels line up with the input's pixels.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .images import save_png

LAYER_FILES = ("background.png", "foreground.png", "mask.png", "cutout.png", "composite.png", "pose.json")


def to_model_input(images: list[np.ndarray], size: int, channels: int = 3) -> np.ndarray:
    """Resize H x W x 3 uint8 images to size x size and stack as N x C x size x size in [-1, 1].

    With channels=1 the images become gray (ITU-R BT.601 luma), as gray models expect.
    """
    batch = np.empty((len(images), channels, size, size), dtype=np.float32)
    for i, image in enumerate(images):
        h, w = image.shape[:2]
        interpolation = cv2.INTER_AREA if h > size or w > size else cv2.INTER_LINEAR
        small = cv2.resize(image, (size, size), interpolation=interpolation)
        if channels == 1:
            small = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)[:, :, None]
        batch[i] = small.transpose(2, 0, 1) / 127.5 - 1.0
    return batch


def image_to_uint8(chw: np.ndarray) -> np.ndarray:
    """C x H x W in [-1, 1] -> H x W x 3 uint8."""
    hwc = np.clip((chw.transpose(1, 2, 0) + 1.0) * 127.5, 0, 255)
    if hwc.shape[2] == 1:
        hwc = np.repeat(hwc, 3, axis=2)
    return np.rint(hwc).astype(np.uint8)


def resize_float(array: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an H x W or H x W x C float array bilinearly to width x height."""
    return cv2.resize(array.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def full_mask(outputs: dict, index: int, width: int, height: int) -> np.ndarray:
    """Union of batch item `index`'s warped object masks, resized to width x height, in [0, 1]."""
    small = outputs["warped_mask"][index, :, 0]
    union = 1 - np.prod(1 - small, axis=0)
    return np.clip(resize_float(union, width, height), 0, 1)


def pose_record(matrix: np.ndarray, width: int, height: int) -> dict:
    """Describe one 2 x 3 output -> source matrix in the input image's pixels.

    The object's canvas is the whole source square; it lands on the image as a parallelogram.
    scale_x and scale_y are that parallelogram's axis lengths as fractions of the image width
    and height, rotation is in degrees (positive turns clockwise on screen), and the
    translation is the object centre's offset from the image centre in pixels.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    linear, shift = matrix[:, :2], matrix[:, 2]
    placement = np.linalg.inv(linear)
    center = -placement @ shift
    center_x = (center[0] + 1) / 2 * width
    center_y = (center[1] + 1) / 2 * height
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)
    placed = (placement @ (corners - shift).T).T
    xs = (placed[:, 0] + 1) / 2 * width
    ys = (placed[:, 1] + 1) / 2 * height
    return {
        "matrix": matrix.tolist(),
        "matrix_convention": "output -> source, normalised coordinates in [-1, 1], align_corners=False",
        "scale_x": float(np.linalg.norm(placement[:, 0])),
        "scale_y": float(np.linalg.norm(placement[:, 1])),
        "rotation_degrees": float(math.degrees(math.atan2(placement[1, 0], placement[0, 0]))),
        "translation_x_px": float(center_x - width / 2),
        "translation_y_px": float(center_y - height / 2),
        "center_px": [float(center_x), float(center_y)],
        "object_box_px": [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())],
    }


@dataclass
class ImageLayers:
    """The layers of one image at its own resolution (H x W)."""

    background: np.ndarray          # H x W x 3 uint8: original outside the objects, inpainting inside
    foregrounds: list[np.ndarray]   # per object, H x W x 3 uint8: appearance placed on the image
    masks: list[np.ndarray]         # per object, H x W float32 in [0, 1]: placed alpha
    mask: np.ndarray                # H x W float32: union of the object masks
    composite: np.ndarray           # H x W x 3 uint8: the layers composed again
    poses: list[dict]               # per object, pose_record()
    model_background: np.ndarray    # H x W x 3 uint8: the model's whole background, upsampled

    def cutout(self, image: np.ndarray) -> np.ndarray:
        """Return the input's own pixels with the union mask as alpha, H x W x 4 uint8."""
        alpha = np.rint(self.mask * 255).astype(np.uint8)
        return np.dstack([image, alpha])


def build_layers(image: np.ndarray, outputs: dict[str, np.ndarray], index: int) -> ImageLayers:
    """Make full-resolution layers for batch item `index` of a decomposer's outputs."""
    height, width = image.shape[:2]
    n_objects = outputs["warped_mask"].shape[1]
    image_f = image.astype(np.float32)

    # Object layers at the input's resolution.
    masks, foregrounds, poses = [], [], []
    for k in range(n_objects):
        mask = np.clip(resize_float(outputs["warped_mask"][index, k, 0], width, height), 0, 1)
        fg = resize_float(image_to_uint8(outputs["warped_foreground"][index, k]).astype(np.float32), width, height)
        masks.append(mask)
        foregrounds.append(np.clip(np.rint(fg), 0, 255).astype(np.uint8))
        poses.append(pose_record(outputs["pose"][index, k], width, height))
    union = np.zeros((height, width), dtype=np.float32)
    for mask in masks:
        union = 1 - (1 - union) * (1 - mask)

    # Background: the input's own pixels where no object is, the model's inpainting under the objects.
    model_bg = resize_float(image_to_uint8(outputs["background"][index]).astype(np.float32), width, height)
    background = union[:, :, None] * model_bg + (1 - union[:, :, None]) * image_f

    # Recompose in the model's order: background, then each object over it.
    canvas = background
    for mask, fg in zip(masks, foregrounds):
        canvas = mask[:, :, None] * fg.astype(np.float32) + (1 - mask[:, :, None]) * canvas

    return ImageLayers(
        background=np.clip(np.rint(background), 0, 255).astype(np.uint8),
        foregrounds=foregrounds,
        masks=masks,
        mask=union,
        composite=np.clip(np.rint(canvas), 0, 255).astype(np.uint8),
        poses=poses,
        model_background=np.clip(np.rint(model_bg), 0, 255).astype(np.uint8),
    )


def mask_to_uint8(mask: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(mask, 0, 1) * 255).astype(np.uint8)


def write_layers(layers: ImageLayers, image: np.ndarray, folder: Path, source: Path, model_name: str) -> list[Path]:
    """Write one image's layer files into `folder`; returns the written paths.

    With one object: background, foreground, mask, cutout, composite, pose.json. With more,
    foreground.png shows every object layered over black, mask.png is their union, and each
    object also gets foreground_K.png and mask_K.png.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def put(name: str, array: np.ndarray) -> None:
        path = folder / name
        save_png(array, path)
        written.append(path)

    # pose.json first: it marks the folder as lrgan output, so a later run may replace it.
    height, width = image.shape[:2]
    record = {
        "source": str(source),
        "model": model_name,
        "width": width,
        "height": height,
        "objects": layers.poses,
    }
    pose_path = folder / "pose.json"
    pose_path.write_text(json.dumps(record, indent=2) + "\n")
    written.append(pose_path)
    put("background.png", layers.background)
    if len(layers.foregrounds) == 1:
        put("foreground.png", layers.foregrounds[0])
    else:
        stacked = np.zeros_like(image, dtype=np.float32)
        for mask, fg in zip(layers.masks, layers.foregrounds):
            stacked = mask[:, :, None] * fg + (1 - mask[:, :, None]) * stacked
        put("foreground.png", np.clip(np.rint(stacked), 0, 255).astype(np.uint8))
        for k, (mask, fg) in enumerate(zip(layers.masks, layers.foregrounds), start=1):
            put(f"foreground_{k}.png", fg)
            put(f"mask_{k}.png", mask_to_uint8(mask))
    put("mask.png", mask_to_uint8(layers.mask))
    put("cutout.png", layers.cutout(image))
    put("composite.png", layers.composite)

    return written

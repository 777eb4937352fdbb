"""Decomposition metrics against synthetic ground truth. NumPy only, so ONNX models can be scored without torch."""

from __future__ import annotations

import math

import numpy as np


def mask_iou(predicted: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Per-image IoU of (predicted > threshold) against a boolean mask; both N x H x W.

    An image where both masks are empty scores 1.
    """
    pred = predicted > threshold
    truth = truth.astype(bool)
    inter = (pred & truth).sum(axis=(1, 2))
    union = (pred | truth).sum(axis=(1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def psnr(reconstruction: np.ndarray, image: np.ndarray, peak: float = 255.0) -> np.ndarray:
    """Per-image PSNR in dB of N x ... arrays on a 0..peak scale (identical images give inf)."""
    err = ((reconstruction.astype(np.float64) - image.astype(np.float64)) ** 2).reshape(len(image), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(peak**2 / err)


def background_gray_mae(background: np.ndarray, gray: np.ndarray) -> np.ndarray:
    """Per-image mean absolute error, in gray levels, of N x H x W x C backgrounds against a plain level."""
    bg = background.astype(np.float64).reshape(len(background), -1)
    return np.abs(bg - gray.astype(np.float64)[:, None]).mean(axis=1)


def nearly_binary(masks: np.ndarray, low: float = 0.1, high: float = 0.9, share: float = 0.9,
                  min_area: float = 0.01, max_area: float = 0.95) -> np.ndarray:
    """Per-mask flag: at least `share` of pixels below `low` or above `high`, and between
    `min_area` and `max_area` of the pixels on (so neither empty nor covering everything)."""
    flat = masks.reshape(len(masks), -1)
    decided = ((flat < low) | (flat > high)).mean(axis=1) >= share
    area = (flat > 0.5).mean(axis=1)
    return decided & (area > min_area) & (area < max_area)


def pose_summary(matrix: np.ndarray, width: int, height: int) -> dict[str, float]:
    """Describe an output -> source 2 x 3 matrix as the placement of the object on a width x height image.

    The object's own canvas (the whole source square) lands as a parallelogram. The result
    gives its centre in pixels from the top-left corner and that centre's translation from
    the image centre in pixels. It also gives the scale of each source axis as a fraction
    of the image side, and the rotation of the source x axis in degrees (positive is
    clockwise on screen, because y points down).
    """
    linear = np.asarray(matrix, dtype=np.float64)[:, :2]
    shift = np.asarray(matrix, dtype=np.float64)[:, 2]
    det = np.linalg.det(linear)
    if abs(det) < 1e-12:
        raise ValueError(f"pose matrix is singular: {np.asarray(matrix).tolist()}")
    placement = np.linalg.inv(linear)      # source -> output, linear part
    center = -placement @ shift            # where the source origin lands, normalised
    center_x = (center[0] + 1) / 2 * width
    center_y = (center[1] + 1) / 2 * height
    return {
        "center_x": float(center_x),
        "center_y": float(center_y),
        "translation_x": float(center_x - width / 2),
        "translation_y": float(center_y - height / 2),
        "scale_x": float(np.linalg.norm(placement[:, 0])),
        "scale_y": float(np.linalg.norm(placement[:, 1])),
        "rotation": float(math.degrees(math.atan2(placement[1, 0], placement[0, 0]))),
    }


def mask_center(masks: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Centroid (x, y) in pixels of each N x H x W mask above threshold; NaN for an empty mask."""
    n, h, w = masks.shape
    on = masks > threshold
    ys, xs = np.mgrid[0:h, 0:w]
    count = on.sum(axis=(1, 2)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = (on * (xs + 0.5)).sum(axis=(1, 2)) / count
        cy = (on * (ys + 0.5)).sum(axis=(1, 2)) / count
    return np.stack([cx, cy], axis=1)

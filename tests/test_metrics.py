"""Metrics and pose descriptions against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrgan.decompose.layers import pose_record
from lrgan.train.data import placement_matrix
from lrgan.train.metrics import background_gray_mae, mask_iou, nearly_binary, pose_summary, psnr


def test_mask_iou_cases():
    truth = np.zeros((3, 4, 4), dtype=bool)
    truth[:, :2, :2] = True
    predicted = np.zeros((3, 4, 4))
    predicted[0, :2, :2] = 0.9          # exact
    predicted[1, :2, :] = 0.9           # twice too wide
    iou = mask_iou(predicted, truth)
    assert iou[0] == 1.0
    assert iou[1] == pytest.approx(0.5)
    assert iou[2] == 0.0                 # empty prediction


def test_psnr_and_background_mae():
    image = np.full((1, 4, 4, 3), 100.0)
    assert psnr(image + 10, image)[0] == pytest.approx(10 * math.log10(255**2 / 100))
    assert background_gray_mae(np.full((2, 4, 4, 3), 90), np.array([100, 80]))[0] == 10


def test_nearly_binary_rejects_empty_full_and_soft():
    shaped = np.zeros((16, 16))
    shaped[4:12, 4:12] = 1.0
    masks = np.stack([shaped, np.zeros((16, 16)), np.ones((16, 16)), np.full((16, 16), 0.5)])
    assert nearly_binary(masks).tolist() == [True, False, False, False]


@pytest.mark.parametrize("angle", [0.0, 0.3, -0.6])
def test_pose_descriptions_invert_placement(angle):
    """A digit placed by placement_matrix is described back with its centre, size and angle."""
    matrix = placement_matrix(center=(20.0, 14.0), size=24.0, angle=angle, canvas=48)
    summary = pose_summary(matrix, 48, 48)
    assert summary["center_x"] == pytest.approx(20.0)
    assert summary["center_y"] == pytest.approx(14.0)
    assert summary["scale_x"] == pytest.approx(0.5)
    assert summary["rotation"] == pytest.approx(math.degrees(angle))
    record = pose_record(matrix, 48, 48)
    assert record["center_px"] == pytest.approx([20.0, 14.0])
    assert record["translation_x_px"] == pytest.approx(-4.0)
    assert record["rotation_degrees"] == pytest.approx(math.degrees(angle))

"""MNIST IDX reading and the synthetic MNIST-ONE / MNIST-TWO generators."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lrgan.train.data import SyntheticMnist, load_mnist, read_idx


def write_idx(path, array: np.ndarray, compress: bool) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        payload = gzip.compress(payload)
    path.write_bytes(payload)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, compress):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "x-idx3-ubyte"
    write_idx(path, array, compress)
    assert np.array_equal(read_idx(path), array)


def test_read_idx_truncated_names_file(tmp_path):
    path = tmp_path / "short-idx3-ubyte"
    write_idx(path, np.zeros((4, 5, 5), dtype=np.uint8), compress=False)
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)


def test_read_idx_rejects_other_files(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, not IDX")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(path)


def test_load_mnist_real_files(mnist_dir):
    images, labels = load_mnist(mnist_dir, "test")
    assert images.shape == (10000, 28, 28)
    assert labels.shape == (10000,)
    assert set(np.unique(labels)) == set(range(10))


def test_load_mnist_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="t10k-images"):
        load_mnist(tmp_path, "test")


def test_mnist_one_is_deterministic(mnist_test):
    a = SyntheticMnist("mnist-one", *mnist_test, seed=3)
    b = SyntheticMnist("mnist-one", *mnist_test, seed=3)
    c = SyntheticMnist("mnist-one", *mnist_test, seed=4)
    assert np.array_equal(a[17].image, b[17].image)
    assert a[17].background_gray == b[17].background_gray
    assert not np.array_equal(a[17].image, c[17].image)


def test_mnist_one_ground_truth(mnist_test):
    synth = SyntheticMnist("mnist-one", *mnist_test, seed=0)
    for index in range(20):
        sample = synth[index]
        assert sample.image.shape == (32, 32, 3)
        assert 0 <= sample.background_gray <= 200
        # Far from the digit, the image is the plain background gray.
        far = ~dilate(sample.mask, 3)
        assert np.abs(sample.image[far][:, 0].astype(int) - sample.background_gray).max() <= 2
        assert 0.01 < sample.mask.mean() < 0.5
        pose = sample.poses[0]
        assert 0.8 * 28 / 48 - 1e-9 <= pose.size <= 1.2 * 28 / 48 + 1e-9
        assert -45 <= pose.rotation <= 45


def test_mnist_one_pose_matrix_places_digit(mnist_test):
    """Warping the digit stretched over the canvas by the recorded matrix reproduces the mask."""
    digits, labels = mnist_test
    synth = SyntheticMnist("mnist-one", digits, labels, seed=0)
    ious = []
    for index in range(30):
        sample = synth[index]
        digit = torch.tensor(digits[index], dtype=torch.float32)[None, None] / 255
        digit = F.interpolate(digit, size=(32, 32), mode="bilinear", align_corners=False)
        matrix = torch.tensor(sample.poses[0].matrix, dtype=torch.float32)[None]
        grid = F.affine_grid(matrix, [1, 1, 32, 32], align_corners=False)
        placed = F.grid_sample(digit, grid, align_corners=False)[0, 0].numpy() > 0.5
        ious.append((placed & sample.mask).sum() / (placed | sample.mask).sum())
    assert np.mean(ious) > 0.85


def test_mnist_two_digits_in_own_halves(mnist_test):
    synth = SyntheticMnist("mnist-two", *mnist_test, seed=0)
    for index in range(10):
        sample = synth[index]
        assert sample.image.shape == (64, 64, 3)
        assert sample.object_masks.shape == (2, 64, 64)
        assert len(sample.poses) == 2
        assert sample.poses[0].center_x < 32 < sample.poses[1].center_x


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    out = mask.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            out |= np.roll(np.roll(mask, dy, axis=0), dx, axis=1)
    return out


def test_digit_filter_keeps_one_class(mnist_dir):
    from lrgan.train.datasets import make_sources

    train, valid = make_sources("mnist-one", 32, mnist_dir, seed=0, digit=7)
    assert set(train.synth.labels.tolist()) == {7}
    assert set(valid.synth.labels.tolist()) == {7}
    assert 5000 < len(train) < 6000
    with pytest.raises(ValueError, match="class folder"):
        make_sources("/tmp", 32, mnist_dir, seed=0, digit=7)

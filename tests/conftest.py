"""Shared fixtures: the real data folder, tiny configs and a tiny exported model."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
MNIST_DIR = SHARED_DATA / "mnist"


def require_data(path: Path) -> Path:
    """Skip when real data is absent on a user's machine; fail in CI, where it must be present."""
    if path.exists():
        return path
    message = f"real data not found at {path}; it is expected beside the repository as ../shared/data"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return require_data(MNIST_DIR)


def extract_shared(tmp_path_factory, archive_name: str, folder: str) -> Path:
    """Extract an archive of the real data into a new temporary folder and return that folder."""
    import tarfile

    archive = require_data(SHARED_DATA / archive_name)
    target = tmp_path_factory.mktemp(folder)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


@pytest.fixture(scope="session")
def lfw_tree(tmp_path_factory) -> Path:
    """The LFW archive extracted once per session (about 2 seconds)."""
    return extract_shared(tmp_path_factory, "lfw-deepfunneled.tgz", "lfw")


@pytest.fixture(scope="session")
def cifar_tree(tmp_path_factory) -> Path:
    return extract_shared(tmp_path_factory, "cifar10-jpeg.tar.gz", "cifar") / "cifar10-jpeg"


@pytest.fixture(scope="session")
def mnist_test(mnist_dir):
    from lrgan.train.data import load_mnist

    return load_mnist(mnist_dir, "test")


def tiny_overrides(**extra):
    """A narrow network (width 1/16) that runs a step in milliseconds."""
    values = dict(width=0.0625, norm="group", encoder_norm="group")
    values.update(extra)
    return values


@pytest.fixture(scope="session")
def tiny_decomposer(tmp_path_factory) -> Path:
    """An untrained but real conditional mnist-one export, for tests that need any decomposer."""
    import torch

    from lrgan.export.onnx_export import export_generator
    from lrgan.train.config import preset_config
    from lrgan.train.networks import ConditionalGenerator

    torch.manual_seed(0)
    cfg = preset_config("mnist-one", conditional=True, **tiny_overrides())
    path = tmp_path_factory.mktemp("models") / "tiny-decomposer.onnx"
    return export_generator(ConditionalGenerator(cfg), cfg, path, "tiny-decomposer")


def write_photo(path: Path, width: int, height: int, seed: int = 0) -> np.ndarray:
    """Write a smooth RGB test picture with a bright blob, return its pixels."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs / max(width, 1) * 200, ys / max(height, 1) * 200, np.full_like(xs, 90.0)], axis=2)
    cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
    blob = ((xs - cx) ** 2 + (ys - cy) ** 2) < (min(width, height) / 5) ** 2
    base[blob] = 250
    pixels = base.astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels

"""Training data sources. Each gives `len()`, `batch(indices)` -> N x C x H x W float32 in [-1, 1],
and, where ground truth exists, `truth(indices)` for validation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .data import SyntheticMnist, load_mnist
from .lfw import LfwSource

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}

# MNIST-ONE training holds out the last digits of the training file for validation, so the
# test digits stay unseen until the final evaluation.
VALIDATION_DIGITS = 5000


@dataclass
class Truth:
    """Ground truth of a validation batch at the model's size."""

    images: np.ndarray            # N x H x W x 3 uint8
    masks: np.ndarray             # N x H x W bool (union of objects)
    background_gray: np.ndarray   # N
    centers: np.ndarray           # N x K x 2 pixels


class SyntheticSource:
    """MNIST-ONE / MNIST-TWO made on the fly from an MNIST digit range."""

    def __init__(self, kind: str, digits: np.ndarray, labels: np.ndarray, seed: int):
        self.synth = SyntheticMnist(kind, digits, labels, seed=seed)

    def __len__(self) -> int:
        return len(self.synth)

    def batch(self, indices) -> np.ndarray:
        return self.synth.batch(indices)

    def truth(self, indices) -> Truth:
        samples = [self.synth[int(i)] for i in indices]
        return Truth(
            images=np.stack([s.image for s in samples]),
            masks=np.stack([s.mask for s in samples]),
            background_gray=np.array([s.background_gray for s in samples]),
            centers=np.array([[(p.center_x, p.center_y) for p in s.poses] for s in samples]),
        )


def load_square(path: str | Path, image_size: int) -> np.ndarray:
    """Read an image as RGB, centre-crop it to a square and resize it: H x W x 3 uint8."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        im = im.crop((left, top, left + side, top + side)).resize((image_size, image_size), Image.BICUBIC)
        return np.asarray(im)


class FolderSource:
    """Every image under a folder, resized (shorter side) and centre-cropped to a square."""

    def __init__(self, folder: str | Path, image_size: int):
        self.folder = Path(folder)
        self.paths = sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.paths:
            raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found under {self.folder}")
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> np.ndarray:
        return load_square(self.paths[index], self.image_size)

    def batch(self, indices) -> np.ndarray:
        images = np.stack([self.load(int(i)) for i in indices])
        return images.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0


def make_sources(data: str, image_size: int, mnist_dir: str | Path | None, seed: int,
                 lfw_path: str | Path | None = None, reframe: bool = True, valid_folder: str | Path | None = None,
                 digit: int | None = None):
    """Return (training source, validation source or None) for a data name or folder.

    `digit` keeps only that MNIST class, for the one-generator-per-class runs behind
    Adversarial Accuracy.
    """
    if digit is not None and data not in ("mnist-one", "mnist-two"):
        raise ValueError(f"--digit works with --data mnist-one or mnist-two, not {data!r}; give a class folder instead")
    if data == "lfw":
        if lfw_path is None:
            raise ValueError("--lfw PATH is required for --data lfw: the LFW archive or its extracted tree")
        train = LfwSource(lfw_path, image_size, "train", reframed=reframe, seed=seed)
        valid = LfwSource(lfw_path, image_size, "test", reframed=reframe, seed=seed + 1)
        return train, valid
    if data in ("mnist-one", "mnist-two"):
        if mnist_dir is None:
            raise ValueError(f"--mnist DIR is required for --data {data}: the folder with the MNIST IDX files")
        digits, labels = load_mnist(mnist_dir, "train")
        cut = len(digits) - VALIDATION_DIGITS
        keep = np.ones(len(labels), bool) if digit is None else labels == digit
        head, tail = keep.copy(), keep.copy()
        head[cut:] = False
        tail[:cut] = False
        train = SyntheticSource(data, digits[head], labels[head], seed=seed)
        valid = SyntheticSource(data, digits[tail], labels[tail], seed=seed + 1)
        if train.synth.spec.size != image_size:
            raise ValueError(
                f"--data {data} makes {train.synth.spec.size}x{train.synth.spec.size} images but the "
                f"model is {image_size}x{image_size}; use the {data} preset"
            )
        return train, valid
    folder = Path(data)
    if not folder.is_dir():
        raise ValueError(f"--data must be mnist-one, mnist-two, lfw or an image folder; {data!r} is none of them")
    valid = FolderSource(valid_folder, image_size) if valid_folder else None
    return FolderSource(folder, image_size), valid

"""MNIST IDX reading and the MNIST-ONE / MNIST-TWO synthesizers with their ground truth.

Every synthetic image is a pure function of (seed, index), so a data set needs no storage
and a resumed run gets the same images. Each sample records what the model should find: the
true digit mask, the background gray level and the pose of each digit.
"""

from __future__ import annotations

import gzip
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzipped or not) into an array of its stored shape and type."""
    path = Path(path)
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    type_code, ndim = data[2], data[3]
    if type_code not in IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX element type 0x{type_code:02x}")
    header_end = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:header_end])
    dtype = np.dtype(IDX_DTYPES[type_code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header_end != expected:
        raise ValueError(
            f"{path}: IDX header promises {expected} bytes of data for shape {shape}, "
            f"file has {len(data) - header_end}; the file is truncated or corrupt"
        )
    return np.frombuffer(data, dtype=dtype, offset=header_end).reshape(shape)


MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def load_mnist(folder: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST digits (N x 28 x 28 uint8) and labels (N) from a folder of IDX files."""
    folder = Path(folder)
    if split not in MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    arrays = []
    for stem in MNIST_FILES[split]:
        candidates = [folder / f"{stem}.gz", folder / stem]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise FileNotFoundError(
                f"MNIST file {stem}[.gz] not found in {folder}; pass the folder that contains the IDX files"
            )
        arrays.append(read_idx(found))
    images, labels = arrays
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{folder}: MNIST {split} images {images.shape} and labels {labels.shape} do not match")
    return images, labels


@dataclass
class DigitPose:
    """Placement of one digit, in pixels of the final image and in the model's affine convention.

    The reference object is the 28 x 28 digit stretched over the whole canvas, so ``matrix``
    is the output -> source 2 x 3 matrix that turns that canvas into the placed digit.
    """

    center_x: float      # digit centre, pixels from the left edge of the final image
    center_y: float      # digit centre, pixels from the top edge
    size: float          # digit side as a fraction of the image side
    rotation: float      # degrees, positive turns the digit clockwise on screen (y points down)
    matrix: np.ndarray   # 2 x 3, output -> source, normalised coordinates

    def to_dict(self) -> dict:
        return {
            "center_x": self.center_x,
            "center_y": self.center_y,
            "size": self.size,
            "rotation": self.rotation,
            "matrix": self.matrix.tolist(),
        }


@dataclass
class Sample:
    """One synthetic image and its ground truth (all at the final image size)."""

    image: np.ndarray        # H x W x 3 uint8
    mask: np.ndarray         # H x W bool, union of the digit masks
    object_masks: np.ndarray  # K x H x W bool, one per digit
    background_gray: int     # gray level of the plain background, 0..255
    poses: list[DigitPose]
    labels: list[int]


def placement_matrix(center: tuple[float, float], size: float, angle: float, canvas: float) -> np.ndarray:
    """Return the output -> source matrix of a digit of side `size` px at `center` px, turned by `angle` rad.

    Placement (source -> output) is: shrink the full canvas to size/canvas, rotate, move the
    centre. The model's matrix is its inverse.
    """
    s = size / canvas
    cx = 2 * center[0] / canvas - 1
    cy = 2 * center[1] / canvas - 1
    cos, sin = math.cos(angle), math.sin(angle)
    # Inverse of [s R | c]: (1/s) R^T (p - c).
    inv = np.array([[cos, sin], [-sin, cos]]) / s
    t = -inv @ np.array([cx, cy])
    return np.array([[inv[0, 0], inv[0, 1], t[0]], [inv[1, 0], inv[1, 1], t[1]]], dtype=np.float64)


def render_digit(digit: np.ndarray, canvas: int, center, scale: float, angle: float) -> np.ndarray:
    """Draw a 28 x 28 digit on a canvas x canvas float alpha map in [0, 1]."""
    src_center = (digit.shape[1] / 2, digit.shape[0] / 2)
    m = cv2.getRotationMatrix2D(src_center, -math.degrees(angle), scale)
    m[0, 2] += center[0] - src_center[0]
    m[1, 2] += center[1] - src_center[1]
    alpha = cv2.warpAffine(
        digit.astype(np.float32) / 255.0, m, (canvas, canvas), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0.0,
    )
    return np.clip(alpha, 0.0, 1.0)


@dataclass(frozen=True)
class SynthSpec:
    """Recipe of one synthetic data set."""

    name: str
    canvas: int          # side of the canvas the digits are drawn on
    size: int            # side of the final image
    n_digits: int
    scale_range: tuple[float, float] = (0.8, 1.2)
    angle_range: tuple[float, float] = (-math.pi / 4, math.pi / 4)
    gray_range: tuple[int, int] = (0, 200)


SYNTH_SPECS = {
    "mnist-one": SynthSpec("mnist-one", canvas=48, size=32, n_digits=1),
    "mnist-two": SynthSpec("mnist-two", canvas=78, size=64, n_digits=2),
}


class SyntheticMnist:
    """MNIST-ONE or MNIST-TWO images made on demand from a digit array.

    Index i uses digit i (and i + N/2 for the second digit of MNIST-TWO) and random
    placement drawn from numpy's generator seeded with (seed, i), so any image can be
    recreated from its index alone.
    """

    def __init__(self, kind: str, digits: np.ndarray, labels: np.ndarray, seed: int = 0, length: int | None = None):
        if kind not in SYNTH_SPECS:
            raise ValueError(f"unknown synthetic data set {kind!r}; choose one of {', '.join(SYNTH_SPECS)}")
        self.spec = SYNTH_SPECS[kind]
        self.digits = digits
        self.labels = labels
        self.seed = seed
        self.length = len(digits) if length is None else length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < self.length:
            raise IndexError(index)
        spec = self.spec
        rng = np.random.default_rng([self.seed, index])
        gray = int(rng.integers(spec.gray_range[0], spec.gray_range[1] + 1))
        n = len(self.digits)
        canvas = np.full((spec.canvas, spec.canvas), float(gray), dtype=np.float32)
        alphas, poses, labels = [], [], []
        for k in range(spec.n_digits):
            digit_index = (index + k * (n // spec.n_digits)) % n
            digit = self.digits[digit_index]
            scale = float(rng.uniform(*spec.scale_range))
            angle = float(rng.uniform(*spec.angle_range))
            side = 28 * scale
            # MNIST-TWO keeps digit k in its own half of the canvas (left, then right).
            if spec.n_digits == 1:
                lo_x, hi_x = side / 2, spec.canvas - side / 2
            else:
                half = spec.canvas / 2
                lo_x, hi_x = k * half + side / 2, (k + 1) * half - side / 2
                lo_x, hi_x = min(lo_x, hi_x), max(lo_x, hi_x)
            cx = float(rng.uniform(lo_x, hi_x))
            cy = float(rng.uniform(side / 2, spec.canvas - side / 2))
            alpha = render_digit(digit, spec.canvas, (cx, cy), scale, angle)
            canvas = canvas * (1 - alpha) + 255.0 * alpha
            alphas.append(alpha)
            ratio = spec.size / spec.canvas
            poses.append(DigitPose(
                center_x=cx * ratio, center_y=cy * ratio, size=side / spec.canvas,
                rotation=math.degrees(angle),
                matrix=placement_matrix((cx, cy), side, angle, spec.canvas),
            ))
            labels.append(int(self.labels[digit_index]))

        # Resize to the final size; a digit's mask is where its resized alpha passes one half.
        image = cv2.resize(canvas, (spec.size, spec.size), interpolation=cv2.INTER_AREA)
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        object_masks = np.stack([
            cv2.resize(a, (spec.size, spec.size), interpolation=cv2.INTER_AREA) > 0.5 for a in alphas
        ])
        return Sample(
            image=np.repeat(image[:, :, None], 3, axis=2),
            mask=object_masks.any(axis=0),
            object_masks=object_masks,
            background_gray=gray,
            poses=poses,
            labels=labels,
        )

    def batch(self, indices) -> np.ndarray:
        """Stack images of the given indices as N x 3 x H x W float32 in [-1, 1]."""
        images = np.stack([self[int(i)].image for i in indices])
        return images.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0

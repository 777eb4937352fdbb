"""LFW loading, the held-out split of people, and re-framing that moves and resizes the face.

LFW trees are laid out as ROOT/Person_Name/Person_Name_NNNN.jpg, both in the original
``lfw/`` release and in ``lfw-deepfunneled/``. In the deep-funneled 250 x 250 frames the
face sits at nearly the same place in every photo, so a model trained or scored on them
as they are can learn "the face is in the middle". Re-framing zooms and shifts each photo
so the face lands at a random place and size, and fills the uncovered border with a
heavily blurred copy of the photo.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

# A person is held out of training when crc32(name) % HELD_OUT_MODULUS == 0 (about 10 %
# of the people, and so of the photos); evaluation uses only those people.
HELD_OUT_MODULUS = 10
ZOOM_RANGE = (0.5, 1.4)
CENTER_RANGE = (0.275, 0.725)   # the face centre lands in the middle 45 % of the frame
BLUR_SIGMA = 0.08               # border blur, as a fraction of the frame side
FRAME = 250


def is_held_out(person: str) -> bool:
    return zlib.crc32(person.encode("utf-8")) % HELD_OUT_MODULUS == 0


def extract_archive(archive: Path, cache: Path | None = None) -> Path:
    """Extract a .tgz/.tar LFW archive once into a cache folder and return the tree root."""
    cache = cache or Path(os.environ.get("LRGAN_CACHE", Path.home() / ".cache" / "lrgan"))
    target = cache / archive.name.split(".")[0]
    marker = target / ".extracted"
    if not marker.exists():
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
        marker.touch()
    return target


def find_people_root(path: Path) -> Path:
    """Return the folder whose subfolders are people: PATH itself, PATH/lfw or PATH/lfw-deepfunneled."""
    for candidate in (path, path / "lfw-deepfunneled", path / "lfw"):
        if candidate.is_dir() and any(candidate.glob("*/*_[0-9][0-9][0-9][0-9].jpg")):
            return candidate
    raise FileNotFoundError(
        f"no LFW tree under {path}: expected Person_Name/Person_Name_NNNN.jpg in it, or in lfw/ or lfw-deepfunneled/"
    )


def lfw_photos(path: str | Path, split: str) -> list[Path]:
    """Sorted photo paths of the split: "train" (people not held out), "test" (held out) or "all"."""
    path = Path(path)
    if path.is_file():
        path = extract_archive(path)
    root = find_people_root(path)
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be train, test or all, got {split!r}")
    photos = []
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        if split == "all" or (split == "test") == is_held_out(person.name):
            photos.extend(sorted(person.glob("*.jpg")))
    if not photos:
        raise FileNotFoundError(f"no {split} photos found under {root}")
    return photos


@dataclass
class Reframing:
    """Re-framing of one photo: new = zoom * (old - face) + center, in pixels."""

    zoom: float
    center_x: float
    center_y: float
    matrix: np.ndarray  # 2 x 3, old pixel -> new pixel


def reframe(photo: np.ndarray, rng: np.random.Generator, face: tuple[float, float] | None = None) -> tuple[np.ndarray, Reframing]:
    """Zoom a square photo by a random factor about its face centre (default: the frame centre)
    and move that centre to a random place in the middle of the frame."""
    size = photo.shape[0]
    face_x, face_y = face if face is not None else (size / 2, size / 2)
    zoom = float(rng.uniform(*ZOOM_RANGE))
    cx = float(rng.uniform(*CENTER_RANGE)) * size
    cy = float(rng.uniform(*CENTER_RANGE)) * size
    matrix = np.array([[zoom, 0, cx - zoom * face_x], [0, zoom, cy - zoom * face_y]], dtype=np.float64)
    # Blurring a quarter-size copy and enlarging it looks the same and costs a sixteenth.
    small = cv2.resize(photo, (max(1, size // 4), max(1, size // 4)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=BLUR_SIGMA * size / 4)
    border = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
    framed = cv2.warpAffine(photo, matrix, (size, size), dst=border.copy(), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_TRANSPARENT)
    return framed, Reframing(zoom, cx, cy, matrix)


def normalized_inverse(matrix: np.ndarray, size: int) -> np.ndarray:
    """Return the 2 x 3 matrix that maps a re-framed photo's coordinates back to the original's.

    `matrix` maps original pixels to re-framed pixels of a size x size frame (OpenCV's
    convention, pixel centres at integers). The result works in the normalised coordinates
    of ``torch.nn.functional.affine_grid`` (align_corners=False), so it warps anything
    drawn on the original frame onto the re-framed one, as a pose matrix does.
    """
    to_unit = np.array([[2 / size, 0, 1 / size - 1], [0, 2 / size, 1 / size - 1], [0, 0, 1]])
    forward = np.vstack([matrix, [0, 0, 1]])
    return (to_unit @ np.linalg.inv(forward) @ np.linalg.inv(to_unit))[:2]


def load_photo(path: Path, size: int = FRAME) -> np.ndarray:
    """Read an RGB photo, centre-cropped to a square and resized to size x size."""
    with Image.open(path) as im:
        # JPEG can decode at 1/2, 1/4 or 1/8 scale directly, which is much faster.
        im.draft("RGB", (size, size))
        im = im.convert("RGB")
        w, h = im.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        im = im.crop((left, top, left + side, top + side))
        if side != size:
            im = im.resize((size, size), Image.BILINEAR)
        return np.asarray(im)


class LfwSource:
    """LFW photos of one split, re-framed on the fly (or not) and resized to the model's size.

    Image i of epoch e is re-framed with numpy's generator seeded with (seed, e, i), so a
    resumed run gets the same images.
    """

    def __init__(self, path: str | Path, image_size: int, split: str = "train", reframed: bool = True,
                 seed: int = 0):
        self.photos = lfw_photos(path, split)
        self.image_size = image_size
        self.reframed = reframed
        self.seed = seed
        self.epoch = 0
        # Decoded photos at twice the model's size, kept in memory after the first use
        # (about 0.5 GB for all LFW training photos at 64 x 64).
        self.cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.photos)

    def photo(self, index: int) -> np.ndarray:
        photo = self.cache.get(index)
        if photo is None:
            photo = load_photo(self.photos[index], 2 * self.image_size)
            self.cache[index] = photo
        return photo

    def shrink(self, photo: np.ndarray) -> np.ndarray:
        return cv2.resize(photo, (self.image_size, self.image_size), interpolation=cv2.INTER_AREA)

    def image(self, index: int, epoch: int = 0) -> np.ndarray:
        photo = self.photo(index)
        if self.reframed:
            photo, _ = reframe(photo, np.random.default_rng([self.seed, epoch, index]))
        return self.shrink(photo)

    def batch(self, indices) -> np.ndarray:
        return to_model_range(np.stack([self.image(int(i), self.epoch) for i in indices]))

    def pair_batch(self, indices) -> tuple[np.ndarray, np.ndarray]:
        """Load each photo re-framed and as it is, for the re-framing priors.

        Returns 2B x 3 x S x S images (the B re-framed photos first, then the same B
        photos unchanged) and B x 2 x 3 matrices that map each re-framed photo's normalised
        coordinates to the unchanged photo's.
        """
        framed, plain, thetas = [], [], []
        for i in indices:
            photo = self.photo(int(i))
            moved, info = reframe(photo, np.random.default_rng([self.seed, self.epoch, int(i)]))
            framed.append(self.shrink(moved))
            plain.append(self.shrink(photo))
            thetas.append(normalized_inverse(info.matrix, photo.shape[0]))
        return to_model_range(np.stack(framed + plain)), np.stack(thetas).astype(np.float32)


def to_model_range(images: np.ndarray) -> np.ndarray:
    """Convert B x H x W x 3 uint8 images to B x 3 x H x W float32 in [-1, 1]."""
    return images.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0

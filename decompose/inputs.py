"""Collecting input files from paths, folders and globs, and giving each a unique output name."""

from __future__ import annotations

import glob
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from .images import is_lrgan_png

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {
    ".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".gif", ".tif", ".tiff", ".webp",
    ".ppm", ".pgm", ".pbm", ".pnm", ".ico",
}
# First bytes of common image formats, so an image with an unusual name is still found.
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")
GLOB_CHARACTERS = set("*?[")


@dataclass
class InputFile:
    """One file to process and the relative name its outputs get."""

    path: Path
    name: str  # relative output name without suffix, "/"-separated for nested folders


@dataclass
class InputSet:
    """The collected inputs, plus what could not be used and why."""

    files: list[InputFile] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)   # (argument, reason)
    skipped: list[Path] = field(default_factory=list)              # not images by name or content
    earlier_outputs: list[Path] = field(default_factory=list)      # PNGs an earlier lrgan run wrote


def looks_like_image(path: Path) -> bool:
    """True for an image suffix, or for image-format first bytes in a file of another name."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    if head.startswith(IMAGE_SIGNATURES):
        return True
    # RIFF also wraps AVI and WAV files; only RIFF....WEBP is an image.
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def same_folder(path: Path, folder: Path) -> bool:
    try:
        return path.resolve() == folder
    except (OSError, RuntimeError):
        return False


def is_earlier_output(path: Path) -> bool:
    """True for a file an earlier run wrote: a tagged PNG, or any file in a layer folder."""
    if path.suffix.lower() == ".png" and is_lrgan_png(path):
        return True
    return is_layer_folder(path.parent)


def is_layer_folder(folder: Path) -> bool:
    """True for a folder that an earlier run wrote, recognised by its lrgan pose.json."""
    pose = folder / "pose.json"
    if not pose.is_file():
        return False
    try:
        record = json.loads(pose.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and "objects" in record and "model" in record


def walk_folder(root: Path, exclude: Path | None) -> tuple[list[Path], list[Path], list[Path]]:
    """Return (candidate files, non-images, earlier lrgan outputs) under root, sorted.

    Directory links are never followed.

    Links to files are followed; links to folders are not, so a link loop cannot recurse.
    The output folder (when it lies inside root), the layer folders of earlier runs and
    the PNGs an earlier run wrote (tagged with the lrgan Software chunk) are never read
    back as input.
    """
    found, skipped, outputs = [], [], []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        folder = Path(dirpath)
        if folder != root and is_layer_folder(folder):
            dirnames[:] = []
            continue
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and not (exclude is not None and same_folder(folder / d, exclude))
        )
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = folder / name
            if not looks_like_image(path):
                skipped.append(path)
            elif path.suffix.lower() == ".png" and is_lrgan_png(path):
                outputs.append(path)  # a mask or drawing of an earlier run
            else:
                found.append(path)
    return found, skipped, outputs


def safe_stem(path: Path) -> str:
    """Return the file's stem as an output name, with "_" for a stem of "." or ".." (which would leave --out)."""
    stem = path.stem
    return "_" if stem in ("", ".", "..") else stem


def collect_inputs(arguments: list[str], exclude: Path | None = None) -> InputSet:
    """Expand files, folders (recursively) and glob patterns into unique, named inputs.

    Names keep the folder structure below each given folder, so two photo.jpg files in
    different folders get different output folders. Clashing names get the suffix added
    (photo_png), then a counter (photo_png-2).
    """
    exclude = exclude.resolve() if exclude is not None else None
    result = InputSet()
    entries: list[tuple[Path, str]] = []
    seen: set[Path] = set()

    def add(path: Path, name: str) -> None:
        try:
            key = path.resolve()
        except (OSError, RuntimeError):  # a link loop cannot be resolved
            key = path.absolute()
        if key in seen:
            return
        seen.add(key)
        entries.append((path, name))

    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            files, skipped, outputs = walk_folder(path, exclude)
            result.skipped.extend(skipped)
            result.earlier_outputs.extend(outputs)
            for f in files:
                add(f, f.relative_to(path).with_suffix("").as_posix())
        elif path.exists() or path.is_symlink():
            # A broken link, a link loop or a FIFO is still an input, so its error gets reported.
            add(path, safe_stem(path))
        elif GLOB_CHARACTERS & set(argument):
            matches = sorted(Path(m) for m in glob.glob(argument, recursive=True))
            matches = [m for m in matches if m.is_file()]
            if not matches:
                result.missing.append((argument, "pattern matches no files"))
            for m in matches:
                if is_earlier_output(m):
                    result.earlier_outputs.append(m)
                else:
                    add(m, safe_stem(m))
        else:
            result.missing.append((argument, "no such file or folder"))

    used: set[str] = set()
    for path, name in entries:
        unique = name
        if unique.lower() in used:
            unique = f"{name}_{path.suffix.lstrip('.').lower()}" if path.suffix else name
            counter = 2
            base = unique
            while unique.lower() in used:
                unique = f"{base}-{counter}"
                counter += 1
        used.add(unique.lower())
        result.files.append(InputFile(path, unique))
    return result

"""Reading user images of any common kind into H x W x 3 uint8 RGB, with clear errors."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

# Reject images above this many pixels before decoding them (a decompression-bomb guard);
# the CLI's --max-pixels raises it. 60 megapixels is a 9,000 x 6,700 photo.
DEFAULT_MAX_PIXELS = 60_000_000
EXIF_ORIENTATION = 0x0112
# zlib level for PNG outputs: level 1 encodes several times faster than Pillow's default 6
# and makes files somewhat larger, which suits folder runs.
PNG_COMPRESSION = 1

# NOTE: read_image checks the pixel count itself, before decoding, with a limit the user
# can raise. Pillow's own process-wide guard would reject large images the user allowed,
# and changing it per call is not thread-safe, so it is switched off when this module loads.
Image.MAX_IMAGE_PIXELS = None


class ImageError(Exception):
    """An input file that cannot be used; the message names the file and the reason."""


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file to H x W x 3 uint8 RGB.

    EXIF orientation is applied and 16-bit images are scaled to 8 bits. Alpha is dropped,
    palette, gray and CMYK images are converted, and animated files give their first frame.
    """
    return read_image_reduced(path, max_pixels)[0]


def read_image_reduced(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS,
                       reduce_to: int | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode like read_image; return (pixels, (height, width) of the full, upright image).

    With reduce_to, a JPEG may be decoded at 1/2, 1/4 or 1/8 scale, as long as both sides
    stay at least reduce_to pixels. That is much faster when only a small copy is needed.
    """
    path = Path(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    except RuntimeError as exc:  # Python raises this for a symbolic link loop on some versions
        raise ImageError(f"{path}: cannot read file ({exc})") from exc
    if not stat.S_ISREG(info.st_mode):
        # Reading a FIFO or device could block forever or never end.
        raise ImageError(f"{path}: not a regular file")
    if info.st_size == 0:
        raise ImageError(f"{path}: file is empty (0 bytes); replace it with the complete image")

    try:
        with Image.open(path) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{path}: image is {width}x{height} = {width * height:,} pixels, over the limit of "
                    f"{max_pixels:,}; raise it with --max-pixels if the file is trusted"
                )
            # EXIF orientations 5 to 8 turn the picture by 90 degrees.
            if im.getexif().get(EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
                width, height = height, width
            im.seek(0)
            if reduce_to is not None and im.format == "JPEG":
                im.draft("RGB", (reduce_to, reduce_to))
            im.load()
            return to_rgb(ImageOps.exif_transpose(im)), (height, width)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(f"{path}: not an image file, or a format Pillow cannot read; convert it to PNG or JPEG") from exc
    except PermissionError as exc:
        raise ImageError(f"{path}: permission denied; check the file's read permission") from exc
    except OSError as exc:
        # Pillow raises OSError for truncated and corrupt data.
        raise ImageError(f"{path}: image data is corrupt or truncated: {exc}. Re-save or re-download the file") from exc
    except (ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{path}: cannot decode image ({exc})") from exc


def to_rgb(im: Image.Image) -> np.ndarray:
    """Convert a decoded PIL image of any mode to H x W x 3 uint8."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.float64)
        # 16-bit data spans 0..65535; 32-bit integer images are scaled by their own maximum.
        peak = 65535.0 if im.mode.startswith("I;16") or arr.max(initial=0) <= 65535 else float(arr.max())
        gray = np.clip(np.rint(arr / peak * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        span = float(arr.max() - arr.min()) or 1.0
        gray = np.clip(np.rint((arr - arr.min()) / span * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


SOFTWARE_TAG = "lrgan"  # PNG "Software" text chunk on every PNG this tool writes


def tagged_png_info() -> PngInfo:
    info = PngInfo()
    info.add_text("Software", SOFTWARE_TAG)
    return info


def is_lrgan_png(path: Path) -> bool:
    """True for a PNG that carries this tool's Software text chunk: an earlier run's output."""
    try:
        with Image.open(path) as im:
            # info contains the text chunks read with the header, while im.text would decode the pixels.
            return im.format == "PNG" and im.info.get("Software") == SOFTWARE_TAG
    except (OSError, ValueError, RuntimeError):
        return False


def save_png(array: np.ndarray, path: Path) -> None:
    """Write H x W (gray), H x W x 3 (RGB) or H x W x 4 (RGBA) uint8 as PNG, tagged as lrgan output."""
    Image.fromarray(array).save(path, format="PNG", pnginfo=tagged_png_info(), compress_level=PNG_COMPRESSION)

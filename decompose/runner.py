"""Folder runs: decode, run the model in batches, write each image's outputs, report every file."""

from __future__ import annotations

import json
import logging
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .images import DEFAULT_MAX_PIXELS, PNG_COMPRESSION, ImageError, is_lrgan_png, read_image_reduced, tagged_png_info
from .inputs import InputFile, InputSet, collect_inputs, is_layer_folder
from .layers import LAYER_FILES, build_layers, full_mask, to_model_input, write_layers
from .model import LayerModel

log = logging.getLogger(__name__)


@dataclass
class FileResult:
    """Outcome of one input file."""

    input: str
    status: str                 # "ok", "failed" or "skipped"
    output: str | None = None
    error: str | None = None


@dataclass
class RunSummary:
    """Per-file results of one run, in input order."""

    results: list[FileResult] = field(default_factory=list)
    inputs_found: int = 0       # image files found among the arguments, processed or not

    @property
    def failed(self) -> int:
        return sum(r.status == "failed" for r in self.results)

    @property
    def succeeded(self) -> int:
        return sum(r.status == "ok" for r in self.results)

    @property
    def skipped(self) -> int:
        return sum(r.status == "skipped" for r in self.results)

    def write_report(self, path: Path) -> None:
        data = {
            "ok": self.succeeded,
            "failed": self.failed,
            "skipped": self.skipped,
            "files": [asdict(r) for r in self.results],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")


class LayerWriter:
    """Writes every layer of an image into its own folder: OUT/NAME/background.png, ..."""

    def __init__(self, out: Path, model: LayerModel):
        self.out = out
        self.model = model

    def target(self, item: InputFile) -> Path:
        return self.out / item.name

    def files(self, item: InputFile) -> list[Path]:
        folder = self.target(item)
        names = list(LAYER_FILES)
        if self.model.info.n_objects > 1:
            for k in range(1, self.model.info.n_objects + 1):
                names += [f"foreground_{k}.png", f"mask_{k}.png"]
        return [folder / name for name in names]

    def owns(self, path: Path) -> bool:
        """True when an existing file was written by an earlier lrgan run and may be replaced."""
        return is_layer_folder(path.parent)

    needs_pixels = True  # layers are made from the full-resolution input

    def write(self, outputs: dict, index: int, image: np.ndarray, shape: tuple[int, int],
              item: InputFile) -> list[Path]:
        layers = build_layers(image, outputs, index)
        return write_layers(layers, image, self.target(item), item.path, self.model.info.name)


def run_images(
    arguments: list[str],
    out: Path | None,
    model: LayerModel,
    writer=None,
    batch_size: int = 16,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool = True,
    workers: int = 2,
    prefetch: int = 2,
) -> RunSummary:
    """Process every input; a bad file is reported and counted, and the others go on.

    Decoding (and resizing to the model's canvas) runs in a thread pool `prefetch` batches
    ahead of inference, and writing runs in another pool behind it. Pillow, OpenCV and
    onnxruntime release the GIL, so the three stages overlap.
    """
    model.require("decomposer")
    out = Path(out) if out is not None else None
    writer = writer or LayerWriter(out, model)
    inputs: InputSet = collect_inputs(arguments, exclude=out)
    input_paths = {_resolved(f.path) for f in inputs.files}
    results: dict[int, FileResult] = {}
    early: list[FileResult] = []

    for argument, reason in inputs.missing:
        log.error("%s: %s", argument, reason)
        early.append(FileResult(argument, "failed", error=reason))
    for path in inputs.skipped:
        early.append(FileResult(str(path), "skipped", error="not an image (by name and content)"))
    for path in inputs.earlier_outputs:
        early.append(FileResult(str(path), "skipped", error="written by an earlier lrgan run"))
    if inputs.skipped:
        log.warning("skipped %d files that are not images by name or content, e.g. %s",
                    len(inputs.skipped), inputs.skipped[0])
    if inputs.earlier_outputs:
        log.warning("skipped %d PNG files that an earlier lrgan run wrote, e.g. %s",
                    len(inputs.earlier_outputs), inputs.earlier_outputs[0])

    # Every output path belongs to one input: a later input that would write a path an
    # earlier one writes (a.png's cut-out and a_cutout.png's mask, say) fails up front.
    claimed: dict[str, str] = {}
    clashes: dict[int, str] = {}
    for i, item in enumerate(inputs.files):
        for path in writer.files(item):
            key = str(path.absolute()).lower()
            if key in claimed:
                clashes[i] = f"{item.path}: output {path} is also the output of {claimed[key]}; rename one of them"
                break
        else:
            for path in writer.files(item):
                claimed[str(path.absolute()).lower()] = str(item.path)

    size = model.info.image_size
    # Writers that need only the mask let JPEGs decode at a reduced scale (both sides still
    # at least the model's canvas), which is much faster than a full decode.
    keep_pixels = getattr(writer, "needs_pixels", True)
    reduce_to = None if keep_pixels else size
    batches = [list(range(i, min(i + batch_size, len(inputs.files)))) for i in range(0, len(inputs.files), batch_size)]
    bar = tqdm(total=len(inputs.files), disable=None if progress else True, desc="images", unit="img")
    with ThreadPoolExecutor(max_workers=max(1, workers)) as decode_pool, \
            ThreadPoolExecutor(max_workers=max(1, workers)) as write_pool:

        def submit(batch: list[int]) -> list[Future]:
            return [decode_pool.submit(_decode, inputs.files[i], max_pixels, size, reduce_to, keep_pixels,
                                       model.info.channels) for i in batch]

        in_flight: deque[tuple[list[int], list[Future]]] = deque()
        writes: dict[int, Future] = {}
        pending: set[Future] = set()
        next_batch = 0
        while next_batch < len(batches) or in_flight:
            # Keep the decoders `prefetch` batches ahead.
            while next_batch < len(batches) and len(in_flight) < max(1, prefetch):
                in_flight.append((batches[next_batch], submit(batches[next_batch])))
                next_batch += 1
            batch, futures = in_flight.popleft()

            good: list[tuple[int, np.ndarray | None, np.ndarray, tuple[int, int]]] = []
            for i, future in zip(batch, futures):
                decoded = future.result()
                if i in clashes:
                    decoded = clashes[i]
                if isinstance(decoded, str):
                    log.error("%s", decoded)
                    results[i] = FileResult(str(inputs.files[i].path), "failed", error=decoded)
                else:
                    good.append((i, *decoded))

            # One model call for the whole batch, then hand each image to the writers.
            if good:
                try:
                    outputs = model.run(np.stack([small for _, _, small, _ in good]))
                except Exception as exc:  # onnxruntime raises its own exception types
                    for i, *_ in good:
                        message = f"{inputs.files[i].path}: model failed on this batch ({exc})"
                        log.error("%s", message)
                        results[i] = FileResult(str(inputs.files[i].path), "failed", error=message)
                    good = []
                for index, (i, image, _, shape) in enumerate(good):
                    # Bound the queue, because each pending write keeps a decoded image in memory.
                    while len(pending) >= 2 * max(1, workers):
                        finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                        pending.difference_update(finished)
                    future = write_pool.submit(_write_one, writer, outputs, index, image, shape, inputs.files[i],
                                               input_paths)
                    writes[i] = future
                    pending.add(future)
            bar.update(len(batch))

        for i, future in writes.items():
            results[i] = future.result()
    bar.close()
    return RunSummary(early + [results[i] for i in sorted(results)], inputs_found=len(inputs.files))


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def _decode(item: InputFile, max_pixels: int, size: int, reduce_to: int | None, keep_pixels: bool,
            channels: int) -> tuple[np.ndarray | None, np.ndarray, tuple[int, int]] | str:
    """Return (uint8 image or None, C x size x size model input, (height, width) of the full
    image), or the error message. The image is dropped unless the writer needs its pixels."""
    try:
        image, shape = read_image_reduced(item.path, max_pixels, reduce_to)
    except ImageError as exc:
        return str(exc)
    except RuntimeError as exc:  # e.g. a symbolic link loop
        return f"{item.path}: cannot open file ({exc})"
    return (image if keep_pixels else None), to_model_input([image], size, channels)[0], shape


def _write_one(writer, outputs: dict, index: int, image: np.ndarray, shape: tuple[int, int], item: InputFile,
               input_paths: set[Path]) -> FileResult:
    target = writer.target(item)
    # An output must never replace an input file, nor a file that lrgan did not write.
    for path in writer.files(item):
        if _resolved(path) in input_paths:
            message = f"{item.path}: output {path} would overwrite an input file; choose another output folder"
            log.error("%s", message)
            return FileResult(str(item.path), "failed", error=message)
        if path.exists() and not writer.owns(path):
            message = (f"{item.path}: output {path} already exists and was not written by lrgan; "
                       "choose another output folder or move the file")
            log.error("%s", message)
            return FileResult(str(item.path), "failed", error=message)
    try:
        writer.write(outputs, index, image, shape, item)
    except OSError as exc:
        message = f"{item.path}: cannot write outputs to {target} ({exc.strerror or exc})"
        log.error("%s", message)
        return FileResult(str(item.path), "failed", error=message)
    except Exception as exc:  # one bad result (a singular pose, say) must not end the run
        message = f"{item.path}: cannot make outputs ({type(exc).__name__}: {exc})"
        log.error("%s", message)
        return FileResult(str(item.path), "failed", error=message)
    return FileResult(str(item.path), "ok", output=str(target))


class MaskWriter:
    """Writes only the union mask (and optionally the RGBA cut-out) of each image: OUT/NAME.png."""

    def __init__(self, out: Path, model: LayerModel, cutouts: bool = False):
        self.out = out
        self.model = model
        self.cutouts = cutouts

    def target(self, item: InputFile) -> Path:
        return self.out / f"{item.name}.png"

    def files(self, item: InputFile) -> list[Path]:
        files = [self.target(item)]
        if self.cutouts:
            files.append(self.out / f"{item.name}_cutout.png")
        return files

    def owns(self, path: Path) -> bool:
        return is_lrgan_png(path)

    @property
    def needs_pixels(self) -> bool:
        return self.cutouts

    def write(self, outputs: dict, index: int, image: np.ndarray, shape: tuple[int, int],
              item: InputFile) -> list[Path]:
        height, width = shape
        mask = full_mask(outputs, index, width, height)
        alpha = np.rint(mask * 255).astype(np.uint8)
        info = tagged_png_info()
        paths = self.files(item)
        paths[0].parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(alpha).save(paths[0], format="PNG", pnginfo=info, compress_level=PNG_COMPRESSION)
        if self.cutouts:
            Image.fromarray(np.dstack([image, alpha])).save(paths[1], format="PNG", pnginfo=info,
                                                            compress_level=PNG_COMPRESSION)
        return paths

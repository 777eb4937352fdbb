"""Folder runs: decode, run the model in batches, write each image's outputs, report every file."""

from __future__ import annotations

import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from .images import DEFAULT_MAX_PIXELS, ImageError, read_image
from .inputs import InputFile, InputSet, collect_inputs, is_layer_folder
from .layers import build_layers, to_model_input, write_layers
from .model import LayerModel

log = logging.getLogger(__name__)

# Every file name a writer may create inside an image's output folder.
OUTPUT_NAME = re.compile(r"^(background|foreground(_\d+)?|mask(_\d+)?|cutout|composite)\.png$|^pose\.json$")

# Writes one image's outputs; returns the written paths.
Writer = Callable[[LayerModel, dict, int, np.ndarray, InputFile, Path], list[Path]]


@dataclass
class FileResult:
    """What happened to one input."""

    input: str
    status: str                 # "ok", "failed" or "skipped"
    output: str | None = None
    error: str | None = None


@dataclass
class RunSummary:
    """Per-file results of one run."""

    results: list[FileResult] = field(default_factory=list)

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


def write_all_layers(model: LayerModel, outputs: dict, index: int, image: np.ndarray,
                     item: InputFile, out: Path) -> list[Path]:
    layers = build_layers(image, outputs, index)
    return write_layers(layers, image, out / item.name, item.path, model.info.name)


def run_images(
    arguments: list[str],
    out: Path,
    model: LayerModel,
    writer: Writer = write_all_layers,
    batch_size: int = 16,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool = True,
    workers: int = 2,
) -> RunSummary:
    """Process every input; a bad file is reported and counted, and the others go on."""
    model.require("decomposer")
    out = Path(out)
    inputs: InputSet = collect_inputs(arguments, exclude=out)
    summary = RunSummary()
    input_paths = {_resolved(f.path) for f in inputs.files}

    for argument, reason in inputs.missing:
        log.error("%s: %s", argument, reason)
        summary.results.append(FileResult(argument, "failed", error=reason))
    for path in inputs.skipped:
        summary.results.append(FileResult(str(path), "skipped", error="not an image (by name and content)"))
    if inputs.skipped:
        log.warning("skipped %d files that are not images by name or content, e.g. %s",
                    len(inputs.skipped), inputs.skipped[0])

    bar = tqdm(total=len(inputs.files), disable=not progress, desc="images", unit="img")
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for start in range(0, len(inputs.files), batch_size):
            chunk = inputs.files[start:start + batch_size]

            # Decode in threads: Pillow releases the GIL while it decodes.
            decoded = list(pool.map(lambda item: _decode(item, max_pixels), chunk))
            good = [(item, image) for item, image in zip(chunk, decoded) if isinstance(image, np.ndarray)]
            for item, image in zip(chunk, decoded):
                if isinstance(image, str):
                    log.error("%s", image)
                    summary.results.append(FileResult(str(item.path), "failed", error=image))

            # One model call for the whole batch.
            outputs = {}
            if good:
                batch = to_model_input([image for _, image in good], model.info.image_size)
                outputs = model.run(batch)

            for index, (item, image) in enumerate(good):
                summary.results.append(_write_one(writer, model, outputs, index, image, item, out, input_paths))
            bar.update(len(chunk))
    bar.close()
    return summary


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def _decode(item: InputFile, max_pixels: int) -> np.ndarray | str:
    try:
        return read_image(item.path, max_pixels)
    except ImageError as exc:
        return str(exc)
    except RuntimeError as exc:  # e.g. a symbolic link loop
        return f"{item.path}: cannot open file ({exc})"


def _write_one(writer: Writer, model: LayerModel, outputs: dict, index: int, image: np.ndarray,
               item: InputFile, out: Path, input_paths: set[Path]) -> FileResult:
    target = out / item.name
    # An output must never replace an input file: no input may sit where a layer file goes.
    resolved_target = _resolved(target)
    if resolved_target in input_paths or any(
        p.parent == resolved_target and OUTPUT_NAME.match(p.name) for p in input_paths
    ):
        message = f"{item.path}: output folder {target} would overwrite an input; choose another --out"
        log.error("%s", message)
        return FileResult(str(item.path), "failed", error=message)
    # Files already in the target folder are replaced only when an earlier run wrote them.
    existing = [p for p in target.glob("*") if OUTPUT_NAME.match(p.name)] if target.is_dir() else []
    if existing and not is_layer_folder(target):
        message = (f"{item.path}: output folder {target} already holds {existing[0].name}, not written by lrgan; "
                   "choose another --out")
        log.error("%s", message)
        return FileResult(str(item.path), "failed", error=message)
    try:
        written = writer(model, outputs, index, image, item, out)
    except OSError as exc:
        message = f"{item.path}: cannot write outputs to {target} ({exc.strerror or exc})"
        log.error("%s", message)
        return FileResult(str(item.path), "failed", error=message)
    clobbered = [p for p in written if _resolved(p) in input_paths]
    if clobbered:  # unreachable while the check above holds; kept as a guard
        raise RuntimeError(f"wrote over input files {clobbered}")
    return FileResult(str(item.path), "ok", output=str(target))

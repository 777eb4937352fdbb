"""Loading exported lrgan ONNX models in onnxruntime, by embedded name or by path."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).parent / "models"
DEFAULT_MODEL = "lfw"
REQUIRED_METADATA = ("lrgan_format", "kind", "image_size", "channels", "timesteps", "normalization")
OUTPUT_NAMES = ["background", "foreground", "mask", "warped_foreground", "warped_mask", "pose", "composite"]


class ModelError(Exception):
    """A model that cannot be found or is not an lrgan export."""


def embedded_models() -> dict[str, Path]:
    """Name -> path of every model shipped inside the package."""
    return {p.stem: p for p in sorted(MODELS_DIR.glob("*.onnx"))}


def resolve_model(name_or_path: str) -> Path:
    """Return the file of an embedded model name or of a path to an .onnx file."""
    models = embedded_models()
    if name_or_path in models:
        return models[name_or_path]
    path = Path(name_or_path)
    if path.is_file():
        return path
    names = ", ".join(models) or "none installed"
    raise ModelError(f"model {name_or_path!r} not found: give an embedded model name ({names}) or a path to an .onnx file")


def pick_providers() -> list[str]:
    """CUDA first when onnxruntime-gpu finds a GPU, CPU always last."""
    available = ort.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider",) if p in available]
    return providers + ["CPUExecutionProvider"]


@dataclass
class ModelInfo:
    """The facts an lrgan export stores in its ONNX metadata."""

    name: str
    kind: str            # "decomposer" (image -> layers) or "sampler" (noise -> layers)
    preset: str
    image_size: int
    channels: int
    timesteps: int
    noise_dim: int
    path: Path

    @property
    def n_objects(self) -> int:
        return self.timesteps - 1


class LayerModel:
    """One onnxruntime session for an lrgan export, reused for every batch."""

    def __init__(self, name_or_path: str, threads: int | None = None):
        self.path = resolve_model(name_or_path)
        threads = threads or default_threads()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=pick_providers())
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
            raise ModelError(
                f"{self.path}: not a loadable ONNX model ({str(exc).rstrip('. ')}); give a file written by `lrgan export`"
            ) from exc
        self.info = self._read_info()
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        missing = [n for n in OUTPUT_NAMES if n not in self.output_names]
        if missing:
            raise ModelError(f"{self.path}: lrgan export lacks outputs {missing}; re-export it with `lrgan export`")

    def _read_info(self) -> ModelInfo:
        meta = self.session.get_modelmeta().custom_metadata_map
        missing = [k for k in REQUIRED_METADATA if k not in meta]
        if missing:
            raise ModelError(
                f"{self.path}: not an lrgan export (metadata {', '.join(missing)} missing); "
                "export models with `lrgan export`"
            )
        if meta["normalization"] != "[-1,1]":
            raise ModelError(f"{self.path}: unsupported input normalization {meta['normalization']!r}")
        try:
            info = ModelInfo(
                name=meta.get("name", self.path.stem), kind=meta["kind"], preset=meta.get("preset", "?"),
                image_size=int(meta["image_size"]), channels=int(meta["channels"]),
                timesteps=int(meta["timesteps"]), noise_dim=int(meta.get("noise_dim", "100")), path=self.path,
            )
        except ValueError as exc:
            raise ModelError(f"{self.path}: invalid lrgan metadata ({exc})") from exc
        shape = self.session.get_inputs()[0].shape
        expected = [info.channels, info.image_size, info.image_size] if info.kind == "decomposer" else \
            [info.timesteps, info.noise_dim]
        if list(shape[1:]) != expected:
            raise ModelError(
                f"{self.path}: input shape {shape} does not match its metadata (expected B x {expected})"
            )
        return info

    def require(self, kind: str) -> None:
        if self.info.kind != kind:
            action = {"decomposer": "decompose images", "sampler": "sample"}[kind]
            raise ModelError(
                f"{self.path}: model {self.info.name!r} is a {self.info.kind}, it cannot {action}; "
                f"pick a {kind} model"
            )

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run one batch (decomposer: B x C x H x W in [-1, 1]; sampler: B x T x Z) -> outputs by name."""
        outputs = self.session.run(None, {self.input_name: batch.astype(np.float32, copy=False)})
        return dict(zip(self.output_names, outputs))


def default_threads() -> int | None:
    """Threads for onnxruntime from LRGAN_THREADS, else None (onnxruntime's own default)."""
    value = os.environ.get("LRGAN_THREADS", "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ModelError(f"LRGAN_THREADS must be a positive whole number, got {value!r}")
    return int(value)


def metadata_of(path: str | Path) -> dict[str, str]:
    """Return the raw metadata map of an ONNX file, with model_config decoded when present."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = dict(session.get_modelmeta().custom_metadata_map)
    if "model_config" in meta:
        meta["model_config"] = json.loads(meta["model_config"])
    return meta

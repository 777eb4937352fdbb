"""Export trained generators to ONNX (opset 20: AffineGrid and GridSample are standard ops there).

Two graphs, both with a dynamic batch axis:

- decomposer (conditional models): ``image`` B x C x H x W float32 in [-1, 1] -> layers;
- sampler (unconditional models): ``noise`` B x T x Z float32, N(0, 1) -> layers.

Outputs, in this order: background B x C x H x W; foreground and warped_foreground
B x K x C x H x W; mask and warped_mask B x K x 1 x H x W in [0, 1]; pose B x K x 2 x 3
(output -> source, normalised coordinates); composite B x C x H x W; and, for samplers,
canvases B x T x C x H x W. K = T - 1 objects. Images are in [-1, 1].
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from ..train.checkpoint import load_checkpoint
from ..train.config import ModelConfig
from ..train.loop import build_generator

log = logging.getLogger(__name__)

OPSET = 20
FORMAT_VERSION = "1"
LAYER_OUTPUTS = ["background", "foreground", "mask", "warped_foreground", "warped_mask", "pose", "composite"]
PARITY_TOLERANCE = 1e-4


class LayerGraph(nn.Module):
    """Wrap a generator so it returns a flat tuple of named layers, as ONNX needs."""

    def __init__(self, generator: nn.Module, with_canvases: bool):
        super().__init__()
        self.generator = generator
        self.with_canvases = with_canvases

    def forward(self, x: torch.Tensor):
        layers = self.generator(x)
        outputs = (layers.background, layers.foreground, layers.mask, layers.warped_foreground,
                   layers.warped_mask, layers.pose, layers.composite)
        if self.with_canvases:
            outputs = outputs + (layers.canvases,)
        return outputs


def graph_for(cfg: ModelConfig, generator: nn.Module) -> tuple[LayerGraph, str, list[str], torch.Tensor]:
    """Return (wrapper, input name, output names, example input) for a generator in eval mode."""
    if cfg.conditional:
        example = torch.rand(2, cfg.channels, cfg.image_size, cfg.image_size) * 2 - 1
        return LayerGraph(generator, False).eval(), "image", list(LAYER_OUTPUTS), example
    example = torch.randn(2, cfg.timesteps, cfg.noise_dim)
    return LayerGraph(generator, True).eval(), "noise", LAYER_OUTPUTS + ["canvases"], example


def model_metadata(cfg: ModelConfig, name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Return the facts a runtime needs without torch, as strings for ONNX metadata_props."""
    from .. import __version__

    meta = {
        "lrgan_format": FORMAT_VERSION,
        "lrgan_version": __version__,
        "name": name,
        "kind": "decomposer" if cfg.conditional else "sampler",
        "preset": cfg.preset,
        "image_size": str(cfg.image_size),
        "channels": str(cfg.channels),
        "timesteps": str(cfg.timesteps),
        "noise_dim": str(cfg.noise_dim),
        "normalization": "[-1,1]",  # pixel / 127.5 - 1
        "model_config": json.dumps(cfg.to_dict()),
    }
    if extra:
        meta.update({k: str(v) for k, v in extra.items()})
    return meta


def export_generator(generator: nn.Module, cfg: ModelConfig, out: str | Path, name: str,
                     extra_metadata: dict[str, str] | None = None) -> Path:
    """Export a generator to `out`, add metadata, run onnx.checker and a parity check; returns the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    wrapper, input_name, output_names, example = graph_for(cfg, generator)
    dynamic_axes = {input_name: {0: "batch"}}
    dynamic_axes.update({o: {0: "batch"} for o in output_names})

    # The TorchScript-based exporter gives a compact graph with plain opset-20 ops.
    tmp = out.with_name(out.name + ".partial")
    with torch.no_grad(), warnings.catch_warnings():
        # Shape checks in forward() are constant under tracing, which the tracer warns about;
        # the legacy exporter also warns that it is legacy.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            wrapper, (example,), str(tmp), input_names=[input_name], output_names=output_names,
            opset_version=OPSET, dynamic_axes=dynamic_axes, dynamo=False, do_constant_folding=True,
        )
    model = onnx.load(str(tmp))
    for key, value in model_metadata(cfg, name, extra_metadata).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "lrgan"
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(tmp))
    tmp.replace(out)

    diff = parity_check(wrapper, out, example_batch(cfg, 5))
    log.info("exported %s (%.1f MB), max abs difference to PyTorch %.2e", out, out.stat().st_size / 1e6, diff)
    if diff > PARITY_TOLERANCE:
        raise RuntimeError(f"{out}: onnxruntime differs from PyTorch by {diff:.2e} > {PARITY_TOLERANCE:g}")
    return out


def example_batch(cfg: ModelConfig, batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if cfg.conditional:
        return torch.rand(batch, cfg.channels, cfg.image_size, cfg.image_size, generator=g) * 2 - 1
    return torch.randn(batch, cfg.timesteps, cfg.noise_dim, generator=g)


@torch.no_grad()
def parity_check(wrapper: LayerGraph, path: str | Path, inputs: torch.Tensor) -> float:
    """Return the max abs difference between onnxruntime and PyTorch over every output."""
    import onnxruntime as ort

    # torch.onnx.export restores the module's previous mode, so set eval mode here again.
    wrapper.eval()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ort_outputs = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})
    torch_outputs = wrapper(inputs)
    return max(float(np.max(np.abs(a - b.numpy()), initial=0.0)) for a, b in zip(ort_outputs, torch_outputs))


def export_checkpoint(checkpoint: str | Path, out: str | Path, name: str | None = None,
                      mask_sharpness: float | None = None) -> Path:
    """Export the generator stored in an lrgan checkpoint.

    `mask_sharpness` replaces the multiplier on the mask logits; the metadata records it.
    """
    state = load_checkpoint(checkpoint)
    model_config = dict(state["model_config"])
    if mask_sharpness is not None:
        model_config["mask_sharpness"] = mask_sharpness
    cfg = ModelConfig.from_dict(model_config)
    generator = build_generator(cfg)
    generator.load_state_dict(state["generator"])
    extra = {"train_steps": str(state["step"]), "source_checkpoint": Path(checkpoint).name}
    return export_generator(generator, cfg, out, name or Path(out).stem, extra)

"""ONNX export: checker, metadata, dynamic batch and parity with PyTorch."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from conftest import tiny_overrides
from lrgan.decompose.model import LayerModel, ModelError
from lrgan.export.onnx_export import OPSET, PARITY_TOLERANCE, LayerGraph, export_generator
from lrgan.train.config import preset_config
from lrgan.train.networks import ConditionalGenerator, Generator


def perturb(module: torch.nn.Module) -> None:
    """Move weights off their initial values, so the pose head and norms are not trivial."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.05)


@pytest.mark.parametrize("preset,conditional,extra", [
    ("mnist-one", True, {}), ("mnist-two", True, {}), ("mnist-one", False, {}),
    ("lfw", True, {"upsample": "resize", "bg_code_dim": 8, "scale_max": 4.0}), ("mnist-one", False, {"upsample": "resize"}),
])
def test_export_parity_and_metadata(tmp_path, preset, conditional, extra):
    cfg = preset_config(preset, conditional=conditional,
                        **tiny_overrides(norm="batch" if not conditional else "group", **extra))
    generator = ConditionalGenerator(cfg) if conditional else Generator(cfg)
    perturb(generator)
    path = export_generator(generator, cfg, tmp_path / "m.onnx", "m")

    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert any(op.version == OPSET for op in model.opset_import if op.domain in ("", "ai.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["kind"] == ("decomposer" if conditional else "sampler")
    assert meta["image_size"] == str(cfg.image_size)
    assert meta["timesteps"] == str(cfg.timesteps)
    assert meta["preset"] == preset

    # Parity over several batch sizes: the batch axis is dynamic.
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wrapper = LayerGraph(generator.eval(), with_canvases=not conditional)
    for batch in (1, 4):
        if conditional:
            x = torch.rand(batch, 3, cfg.image_size, cfg.image_size) * 2 - 1
        else:
            x = torch.randn(batch, cfg.timesteps, cfg.noise_dim)
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        with torch.no_grad():
            want = wrapper(x)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert a.shape == tuple(b.shape)
            assert np.max(np.abs(a - b.numpy()), initial=0.0) <= PARITY_TOLERANCE


def test_layer_model_reads_metadata(tiny_decomposer):
    model = LayerModel(str(tiny_decomposer))
    assert model.info.kind == "decomposer"
    assert model.info.image_size == 32
    assert model.info.n_objects == 1
    outputs = model.run(np.zeros((2, 3, 32, 32), dtype=np.float32))
    assert outputs["pose"].shape == (2, 1, 2, 3)
    assert outputs["composite"].shape == (2, 3, 32, 32)


def test_layer_model_rejects_foreign_onnx(tmp_path):
    """A valid ONNX file without lrgan metadata is rejected with a clear message."""
    path = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Linear(3, 2), (torch.zeros(1, 3),), str(path), dynamo=False)
    with pytest.raises(ModelError, match="not an lrgan export"):
        LayerModel(str(path))


def test_layer_model_rejects_non_onnx(tmp_path):
    path = tmp_path / "fake.onnx"
    path.write_text("this is not a model")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        LayerModel(str(path))


def test_layer_model_unknown_name():
    with pytest.raises(ModelError, match="not found"):
        LayerModel("no-such-model")


def test_sampler_cannot_decompose(tmp_path):
    cfg = preset_config("mnist-one", **tiny_overrides(norm="batch"))
    path = export_generator(Generator(cfg), cfg, tmp_path / "s.onnx", "s")
    with pytest.raises(ModelError, match="is a sampler"):
        LayerModel(str(path)).require("decomposer")


def test_layer_model_rejects_mismatched_metadata(tmp_path, tiny_decomposer):
    """An lrgan export whose metadata disagrees with its graph is rejected."""
    model = onnx.load(str(tiny_decomposer))
    for entry in model.metadata_props:
        if entry.key == "image_size":
            entry.value = "64"
    path = tmp_path / "edited.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match="does not match its metadata"):
        LayerModel(str(path))


def test_export_mask_sharpness(tmp_path):
    """Sharpness 3 multiplies the mask logits by 3: same 0.5 boundary, harder edges, recorded in metadata."""
    import json

    from lrgan.export.onnx_export import export_checkpoint
    from lrgan.train.checkpoint import save_atomic

    cfg = preset_config("mnist-one", channels=1, **tiny_overrides(norm="batch"))
    generator = Generator(cfg)
    perturb(generator)
    save_atomic({"model_config": cfg.to_dict(), "generator": generator.state_dict(), "step": 7}, tmp_path / "run.pt")
    plain = LayerModel(str(export_checkpoint(tmp_path / "run.pt", tmp_path / "plain.onnx")))
    sharp = LayerModel(str(export_checkpoint(tmp_path / "run.pt", tmp_path / "sharp.onnx", mask_sharpness=3.0)))
    noise = np.random.default_rng(0).standard_normal((8, 2, 100)).astype(np.float32)
    soft, hard = plain.run(noise)["mask"], sharp.run(noise)["mask"]
    logits = np.log(soft / (1 - soft))
    assert hard == pytest.approx(1 / (1 + np.exp(-3 * logits)), abs=1e-4)
    assert ((soft > 0.5) == (hard > 0.5)).mean() > 0.999
    config = json.loads({p.key: p.value for p in onnx.load(str(tmp_path / "sharp.onnx")).metadata_props}["model_config"])
    assert config["mask_sharpness"] == 3.0

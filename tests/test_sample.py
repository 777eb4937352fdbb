"""Unconditional sampling through onnxruntime, with torch unavailable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_overrides


@pytest.fixture(scope="module")
def tiny_sampler(tmp_path_factory) -> Path:
    import torch

    from lrgan.export.onnx_export import export_generator
    from lrgan.train.config import preset_config
    from lrgan.train.networks import Generator

    torch.manual_seed(0)
    cfg = preset_config("mnist-two", **tiny_overrides(norm="batch"))
    path = tmp_path_factory.mktemp("sampler") / "tiny-sampler.onnx"
    return export_generator(Generator(cfg), cfg, path, "tiny-sampler")


def sample_cli(*args: str) -> subprocess.CompletedProcess:
    code = ("import sys; sys.modules['torch'] = None; from lrgan.cli.main import lrgan_entry; "
            "sys.argv = ['lrgan', 'sample'] + sys.argv[1:]; lrgan_entry()")
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)


def test_sample_writes_layers_without_torch(tmp_path, tiny_sampler):
    out = tmp_path / "samples"
    result = sample_cli("--model", str(tiny_sampler), "--n", "3", "--out", str(out), "--seed", "5")
    assert result.returncode == 0, result.stderr
    folder = out / "sample_0000"
    expected = {"background.png", "composite.png", "pose.json", "canvas_1.png"}
    for k in (1, 2):  # mnist-two has two objects
        expected |= {f"foreground_{k}.png", f"mask_{k}.png", f"warped_foreground_{k}.png", f"warped_mask_{k}.png"}
    assert {p.name for p in folder.iterdir()} == expected
    with Image.open(folder / "composite.png") as im:
        assert im.size == (64, 64)
    assert len(json.loads((folder / "pose.json").read_text())["objects"]) == 2
    assert (out / "grid.png").is_file()
    assert np.load(out / "noise.npy").shape == (3, 3, 100)


def test_sample_seed_is_reproducible(tmp_path, tiny_sampler):
    for name in ("a", "b"):
        assert sample_cli("--model", str(tiny_sampler), "--n", "2", "--out", str(tmp_path / name), "--no-grid").returncode == 0
    first = (tmp_path / "a" / "sample_0001" / "composite.png").read_bytes()
    assert first == (tmp_path / "b" / "sample_0001" / "composite.png").read_bytes()


def test_background_walk_holds_background(tmp_path, tiny_sampler):
    out = tmp_path / "walk"
    result = sample_cli("--model", str(tiny_sampler), "--n", "4", "--out", str(out), "--walk", "background")
    assert result.returncode == 0, result.stderr
    backgrounds = [np.asarray(Image.open(out / f"sample_{i:04d}" / "background.png")) for i in range(4)]
    masks = [np.asarray(Image.open(out / f"sample_{i:04d}" / "warped_mask_1.png")) for i in range(4)]
    for background in backgrounds[1:]:
        assert np.array_equal(background, backgrounds[0])
    assert not np.array_equal(masks[0], masks[-1])


def test_sample_rejects_decomposer(tmp_path, tiny_decomposer):
    result = sample_cli("--model", str(tiny_decomposer), "--out", str(tmp_path / "x"))
    assert result.returncode == 2
    assert "is a decomposer, it cannot sample" in result.stderr


def test_evaluate_sampler_writes_plots(tmp_path, tiny_sampler):
    from lrgan.train.evaluate import evaluate_sampler

    result = evaluate_sampler(str(tiny_sampler), 24, seed=3, out=tmp_path)
    assert result["samples"] == 24
    assert 0.0 <= result["binary_mask_share"] <= 1.0
    assert len(result["pose_mean"]) == 6
    for name in ("metrics.json", "samples.png", "pose_histograms.png"):
        assert (tmp_path / name).is_file(), name


def test_sample_never_replaces_user_files(tmp_path, tiny_sampler):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "grid.png").write_bytes(b"my own picture")
    result = sample_cli("--model", str(tiny_sampler), "--out", str(out))
    assert result.returncode == 2
    assert (out / "grid.png").read_bytes() == b"my own picture"
    # A folder an earlier run wrote may be written again.
    again = tmp_path / "again"
    for _ in range(2):
        assert sample_cli("--model", str(tiny_sampler), "--n", "2", "--out", str(again)).returncode == 0


def test_sample_rerun_replaces_earlier_samples(tmp_path, tiny_sampler):
    out = tmp_path / "samples"
    assert sample_cli("--model", str(tiny_sampler), "--n", "5", "--out", str(out)).returncode == 0
    assert sample_cli("--model", str(tiny_sampler), "--n", "2", "--out", str(out)).returncode == 0
    assert sorted(p.name for p in out.glob("sample_*")) == ["sample_0000", "sample_0001"]

"""The lrgan command group end to end: data, train, resume, export, evaluate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def lrgan(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "lrgan.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


TINY = ["--width", "0.0625", "--batch-size", "8", "--every", "2", "--warmup", "1", "--device", "cpu", "-q"]


@pytest.mark.slow
def test_train_resume_export_evaluate(tmp_path, mnist_dir):
    run = tmp_path / "run"
    result = lrgan("train", "--preset", "mnist-one", "--mode", "conditional", "--mnist", str(mnist_dir),
                   "--out", str(run), "--steps", "4", *TINY)
    assert result.returncode == 0, result.stderr
    assert (run / "last.pt").is_file()
    assert (run / "samples" / "step_0000004.png").is_file()

    # Resume needs only the folder and the new step count.
    result = lrgan("train", "--out", str(run), "--resume", "--steps", "6", "-q")
    assert result.returncode == 0, result.stderr
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps[-1] == 6
    assert steps.count(4) == 1  # no step was run twice

    model = tmp_path / "tiny.onnx"
    result = lrgan("export", str(run / "best.pt"), "--out", str(model), "-q")
    assert result.returncode == 0, result.stderr
    assert model.is_file()

    result = lrgan("evaluate", "--model", str(model), "--mnist", str(mnist_dir), "-n", "40",
                   "--out", str(tmp_path / "eval"), "-q")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["images"] == 40
    for key in ("mask_iou", "psnr", "background_mae", "pose_center_error_px"):
        assert key in metrics
    assert (tmp_path / "eval" / "histograms.png").is_file()
    assert (tmp_path / "eval" / "examples.png").is_file()


def test_unconditional_train_and_export(tmp_path, mnist_dir):
    run = tmp_path / "run"
    result = lrgan("train", "--preset", "mnist-one", "--mnist", str(mnist_dir), "--out", str(run),
                   "--steps", "2", *TINY)
    assert result.returncode == 0, result.stderr
    result = lrgan("export", str(run / "last.pt"), "--out", str(tmp_path / "sampler.onnx"), "-q")
    assert result.returncode == 0, result.stderr
    listing = lrgan("models")
    assert listing.returncode == 0
    assert "mnist-one: decomposer" in listing.stdout


def test_data_command_writes_truth(tmp_path, mnist_dir):
    out = tmp_path / "data"
    result = lrgan("data", "mnist-one", "--mnist", str(mnist_dir), "-n", "5", "--out", str(out), "-q")
    assert result.returncode == 0, result.stderr
    truth = json.loads((out / "truth.json").read_text())
    assert truth["count"] == 5
    assert len(truth["images"]) == 5
    first = truth["images"][0]
    with Image.open(out / first["image"]) as im:
        assert im.size == (32, 32)
    with Image.open(out / first["mask"]) as im:
        assert set(np.unique(np.asarray(im)).tolist()) <= {0, 255}
    assert len(first["poses"][0]["matrix"]) == 2


@pytest.mark.parametrize("args,message", [
    (["train", "--preset", "svhn", "--out", "x"], "unknown preset"),
    (["train", "--preset", "mnist-one", "--mode", "both", "--out", "x"], "--mode must be"),
    (["train", "--preset", "cifar10", "--out", "x"], "--data is required"),
    (["train", "--preset", "mnist-one", "--out", "x"], "--mnist DIR is required"),
    (["export", "missing.pt", "--out", "m.onnx"], "checkpoint not found"),
    (["data", "mnist-three", "--out", "x"], "unknown data set"),
])
def test_usage_errors(tmp_path, args, message):
    result = lrgan(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_train_never_replaces_other_files(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text("my own settings\n")
    result = lrgan("train", "--preset", "mnist-one", "--out", str(folder))
    assert result.returncode == 2
    assert "is not empty" in result.stderr
    assert (folder / "config.json").read_text() == "my own settings\n"

    result = lrgan("train", "--out", str(folder), "--resume")
    assert result.returncode == 2
    assert "no last.pt to resume" in result.stderr

    (folder / "last.pt").write_bytes(b"checkpoint")
    result = lrgan("train", "--preset", "mnist-one", "--out", str(folder))
    assert result.returncode == 2
    assert "add --resume" in result.stderr
    assert (folder / "last.pt").read_bytes() == b"checkpoint"

    a_file = tmp_path / "run.txt"
    a_file.write_text("x")
    result = lrgan("train", "--preset", "mnist-one", "--out", str(a_file))
    assert result.returncode == 2
    assert "is a file" in result.stderr

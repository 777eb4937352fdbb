"""LFW and image-folder loaders, re-framing, face boxes and the faces command on real photos."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lrgan.decompose.faces import FaceBox, box_from_mask
from lrgan.train.datasets import FolderSource
from lrgan.train.lfw import (LfwSource, find_people_root, is_held_out, lfw_photos, load_photo, normalized_inverse,
                             reframe)


def test_lfw_split_holds_people_out(lfw_tree):
    train = lfw_photos(lfw_tree, "train")
    test = lfw_photos(lfw_tree, "test")
    train_people = {p.parent.name for p in train}
    test_people = {p.parent.name for p in test}
    assert not train_people & test_people
    assert all(is_held_out(name) for name in test_people)
    assert 0.07 < len(test) / (len(train) + len(test)) < 0.13


def test_lfw_both_layouts(tmp_path, lfw_tree):
    people = sorted(p for p in (lfw_tree / "lfw-deepfunneled").iterdir() if p.is_dir())[:3]
    for layout in ("lfw", "lfw-deepfunneled"):
        root = tmp_path / layout / layout
        root.mkdir(parents=True)
        for person in people:
            os.symlink(person, root / person.name)
        assert find_people_root(tmp_path / layout) == root
        assert len(lfw_photos(tmp_path / layout, "all")) == sum(len(list(p.glob("*.jpg"))) for p in people)


def test_lfw_from_archive(tmp_path, monkeypatch):
    from conftest import SHARED_DATA, require_data

    archive = require_data(SHARED_DATA / "lfw-deepfunneled.tgz")
    monkeypatch.setenv("LRGAN_CACHE", str(tmp_path / "cache"))
    photos = lfw_photos(archive, "test")
    assert photos and photos[0].is_file()
    assert str(photos[0]).startswith(str(tmp_path / "cache"))


def test_lfw_missing_tree(tmp_path):
    with pytest.raises(FileNotFoundError, match="no LFW tree"):
        lfw_photos(tmp_path, "train")


def test_reframe_moves_and_resizes_face(lfw_tree):
    photo = load_photo(lfw_photos(lfw_tree, "test")[0])
    framed, how = reframe(photo, np.random.default_rng(3))
    again, _ = reframe(photo, np.random.default_rng(3))
    assert framed.shape == photo.shape
    assert np.array_equal(framed, again)
    assert 0.5 <= how.zoom <= 1.4
    assert 0.275 * 250 <= how.center_x <= 0.725 * 250
    # The photo's centre pixel lands at the new face centre.
    cy, cx = int(round(how.center_y)), int(round(how.center_x))
    assert np.abs(framed[cy, cx].astype(int) - photo[125, 125].astype(int)).max() < 40


def test_lfw_source_batch(lfw_tree):
    source = LfwSource(lfw_tree, 64, "test", seed=0)
    batch = source.batch([0, 1, 2])
    assert batch.shape == (3, 3, 64, 64)
    assert batch.min() >= -1
    assert batch.max() <= 1
    source.epoch = 1
    assert not np.array_equal(source.batch([0]), batch[:1])


def test_pair_batch_matrices(lfw_tree):
    import torch
    import torch.nn.functional as F

    source = LfwSource(lfw_tree, 64, "test", seed=0)
    images, thetas = source.pair_batch([0, 3, 7])
    assert images.shape == (6, 3, 64, 64)
    assert thetas.shape == (3, 2, 3)
    framed, plain = torch.from_numpy(images[:3]), torch.from_numpy(images[3:])
    grid = F.affine_grid(torch.from_numpy(thetas), [3, 3, 64, 64], align_corners=False)
    moved = F.grid_sample(plain, grid, align_corners=False)
    inside = F.grid_sample(torch.ones(3, 1, 64, 64), grid, align_corners=False) > 0.999
    inside = inside.expand(-1, 3, -1, -1)
    # Where the original covers the re-framed photo the two agree up to resampling;
    # the unmoved photo does not.
    assert (framed - moved).abs()[inside].mean() < 0.05
    assert (framed - plain).abs().mean() > 0.2


def test_normalized_inverse_of_a_known_reframing():
    # Zoom 0.5 about the centre of a 100-pixel frame: the re-framed photo shows the original
    # at half size in the middle, so its normalised coordinates map back with a factor 2.
    matrix = np.array([[0.5, 0, 25 - 0.25], [0, 0.5, 25 - 0.25]])
    theta = normalized_inverse(matrix, 100)
    assert np.allclose(theta, [[2, 0, 0], [0, 2, 0]], atol=1e-9)


def test_image_folder_source(cifar_tree):
    source = FolderSource(cifar_tree / "test", 32)
    assert len(source) == 10000
    assert source.batch([0, 5]).shape == (2, 3, 32, 32)


def test_box_from_mask_largest_component():
    mask = np.zeros((100, 120), dtype=np.float32)
    mask[10:20, 10:20] = 0.9      # small blob
    mask[40:90, 50:100] = 0.8     # the face
    box = box_from_mask(mask, method="component")
    assert (box.x0, box.y0, box.x1, box.y1) == (50, 40, 100, 90)
    assert 0 < box.score <= 1
    assert not box_from_mask(np.zeros((50, 50), dtype=np.float32), method="component").found


def test_box_from_mask_moments():
    mask = np.zeros((100, 120), dtype=np.float32)
    mask[40:90, 50:100] = 1.0
    box = box_from_mask(mask, method="moments")
    assert (box.x0, box.y0, box.x1, box.y1) == (50, 40, 100, 90)
    assert abs(box.score - 1.0) < 1e-6
    # A soft mask that never reaches 0.5 still gives its extent; the component method finds nothing.
    soft = mask * 0.4
    assert (box_from_mask(soft, method="moments").x0, box_from_mask(soft, method="moments").y1) == (50, 90)
    assert not box_from_mask(soft, method="component").found
    assert not box_from_mask(np.zeros((50, 50), dtype=np.float32), method="moments").found
    with pytest.raises(ValueError, match="box method"):
        box_from_mask(mask, method="hull")


def test_face_box_iou():
    a = FaceBox(True, 0, 0, 10, 10)
    assert a.iou(FaceBox(True, 0, 0, 10, 10)) == 1
    assert a.iou(FaceBox(True, 5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert a.iou(FaceBox(False)) == 0


def test_faces_command_on_real_photos(tmp_path, lfw_tree, tiny_decomposer):
    photos = lfw_photos(lfw_tree, "test")[:6]
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in photos:
        (folder / photo.name).write_bytes(photo.read_bytes())
    out = tmp_path / "faces.csv"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    result = subprocess.run(
        [sys.executable, "-m", "lrgan.cli", "faces", str(folder), "--out", str(out), "--model", str(tiny_decomposer),
         "--draw", str(tmp_path / "drawn"), "--crops", str(tmp_path / "crops"), "-q"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(open(out)))
    assert [Path(r["file"]).name for r in rows] == sorted(p.name for p in photos)
    for row in rows:
        assert row["width"] == "250"
        assert row["height"] == "250"
        if row["found"] == "1":
            assert 0 <= int(row["x0"]) < int(row["x1"]) <= 250
    for photo in photos:
        with Image.open(tmp_path / "drawn" / f"{photo.stem}.png") as im:
            assert im.size == (250, 250)

    # A second run replaces its own CSV, but never a file it did not write.
    out.write_text("name,value\n")
    result = subprocess.run(
        [sys.executable, "-m", "lrgan.cli", "faces", str(folder), "--out", str(out), "--model", str(tiny_decomposer)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 2
    assert out.read_text() == "name,value\n"

    # The component method writes the same columns; an unknown method is a usage error.
    other = tmp_path / "component.csv"
    result = subprocess.run(
        [sys.executable, "-m", "lrgan.cli", "faces", str(folder), "--out", str(other), "--model", str(tiny_decomposer),
         "--box", "component", "-q"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert len(list(csv.DictReader(open(other)))) == len(photos)
    result = subprocess.run(
        [sys.executable, "-m", "lrgan.cli", "faces", str(folder), "--out", str(tmp_path / "x.csv"),
         "--model", str(tiny_decomposer), "--box", "hull"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 2
    assert "--box must be one of" in result.stderr


def test_evaluate_faces_runs(tmp_path, lfw_tree, tiny_decomposer):
    from lrgan.train.face_eval import evaluate_faces

    result = evaluate_faces(str(tiny_decomposer), lfw_tree, 40, seed=1, out=tmp_path, progress=False)
    assert result["photos"] == 40
    assert 0 <= result["model_agrees_iou_0.5"] <= 1
    # On re-framed photos a fixed box agrees with the cascade on few of them.
    assert result["fixed_box_agrees_iou_0.5"] < 0.5
    assert (tmp_path / "faces.json").is_file()
    assert (tmp_path / "face_examples.png").is_file()


def test_train_on_image_folder(tmp_path, cifar_tree):
    """Conditional training from an ImageFolder tree, with a validation folder."""
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    result = subprocess.run(
        [sys.executable, "-m", "lrgan.cli", "train", "--preset", "cifar10", "--mode", "conditional",
         "--data", str(cifar_tree / "test" / "cat"), "--valid", str(cifar_tree / "test" / "dog"), "--out", str(run),
         "--steps", "2", "--every", "2", "--width", "0.0625", "--batch-size", "8", "--device", "cpu", "-q"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    record = [line for line in (run / "log.jsonl").read_text().splitlines() if "usable_mask_share" in line]
    assert record, "validation on the folder did not run"


def test_train_lfw_two_steps(tmp_path, lfw_tree):
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    result = subprocess.run(
        [sys.executable, "-m", "lrgan.cli", "train", "--preset", "lfw", "--mode", "conditional", "--lfw", str(lfw_tree),
         "--out", str(run), "--steps", "2", "--every", "2", "--width", "0.0625", "--batch-size", "8",
         "--device", "cpu", "-q"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (run / "samples" / "step_0000002.png").is_file()


def test_train_lfw_with_reframing_prior(tmp_path, lfw_tree):
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    result = subprocess.run(
        [sys.executable, "-m", "lrgan.cli", "train", "--preset", "lfw", "--mode", "conditional", "--lfw", str(lfw_tree),
         "--out", str(run), "--steps", "2", "--every", "2", "--width", "0.0625", "--batch-size", "4",
         "--equivariance-weight", "10", "--scale-max", "4", "--scale-init", "2", "--log-every", "1", "--device", "cpu",
         "-q"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert any("loss_equi_mask" in r and "loss_equi_pose" in r for r in records)
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["scale_max"] == 4
    assert config["train"]["equivariance_weight"] == 10


def test_reframing_prior_refuses_other_data(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "lrgan.cli", "train", "--preset", "mnist-one", "--mode", "conditional",
         "--out", str(tmp_path / "run"), "--steps", "1", "--equivariance-weight", "1", "-q"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    assert "need --mode conditional and --data lfw" in result.stderr


def test_evaluate_decomposer_on_photos(tmp_path, lfw_tree, cifar_tree, tiny_decomposer):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    for data, extra in (("lfw", ["--lfw", str(lfw_tree)]), (str(cifar_tree / "test"), [])):
        out = tmp_path / ("eval-" + Path(data).name)
        result = subprocess.run(
            [sys.executable, "-m", "lrgan.cli", "evaluate", "--model", str(tiny_decomposer), "--data", data, *extra,
             "-n", "40", "--out", str(out), "-q"],
            capture_output=True, text=True, env=env, timeout=300,
        )
        assert result.returncode == 0, result.stderr
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["images"] == 40
        shares = metrics["empty_mask_share"] + metrics["full_mask_share"]
        assert abs(metrics["degenerate_share"] - shares) < 1e-9
        assert 0 <= metrics["mask_area_percentiles"]["5"] <= metrics["mask_area_percentiles"]["95"] <= 1
        assert metrics["psnr"] > 0
        for name in ("mask_area.png", "examples.png"):
            with Image.open(out / name) as picture:
                assert picture.size[0] > 100


def test_evaluate_lfw_needs_the_tree(tmp_path, tiny_decomposer):
    result = subprocess.run(
        [sys.executable, "-m", "lrgan.cli", "evaluate", "--model", str(tiny_decomposer), "--data", "lfw", "-q"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    assert "--lfw PATH is required" in result.stderr


def test_evaluate_faces_keeps_other_files(tmp_path, lfw_tree, tiny_decomposer):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "faces.json").write_text("mine\n")
    result = subprocess.run(
        [sys.executable, "-m", "lrgan.cli", "evaluate-faces", "--model", str(tiny_decomposer), "--lfw", str(lfw_tree),
         "-n", "10", "--out", str(out), "-q"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    assert "did not write" in result.stderr
    assert (out / "faces.json").read_text() == "mine\n"

    # A folder it wrote itself may be written again.
    fresh = tmp_path / "fresh"
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "lrgan.cli", "evaluate-faces", "--model", str(tiny_decomposer), "--lfw",
             str(lfw_tree), "-n", "10", "--out", str(fresh), "-q"],
            capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, result.stderr
    assert (fresh / "faces.json").is_file()

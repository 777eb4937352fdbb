"""The decompose command on real images: layers, resolution, bad inputs, no torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lrgan.decompose.images import ImageError, read_image
from lrgan.decompose.inputs import collect_inputs
from lrgan.decompose.layers import LAYER_FILES

def astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


def run_cli(*args: str, block_torch: bool = False, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the `decompose` entry point in a fresh interpreter; optionally make torch unimportable."""
    prelude = "import sys; sys.modules['torch'] = None; " if block_torch else ""
    code = prelude + "from lrgan.cli.main import decompose_entry; sys.argv = ['decompose'] + sys.argv[1:]; decompose_entry()"
    if not block_torch:
        code = "import sys; " + code
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


@pytest.fixture()
def mnist_folder(tmp_path, mnist_test) -> Path:
    """Ten real MNIST-ONE test images as PNG files."""
    from lrgan.train.data import SyntheticMnist

    folder = tmp_path / "digits"
    folder.mkdir()
    synth = SyntheticMnist("mnist-one", *mnist_test, seed=1234)
    for i in range(10):
        Image.fromarray(synth[i].image).save(folder / f"digit_{i}.png")
    return folder


def test_layers_at_input_resolution(tmp_path, tiny_decomposer):
    photo = astronaut()[40:240, 100:400]  # 300 x 200, not square
    source = tmp_path / "astronaut crop.jpg"
    Image.fromarray(photo).save(source, quality=95)
    original = read_image(source)

    result = run_cli(str(source), "--out", str(tmp_path / "out"), "--model", str(tiny_decomposer))
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "out" / "astronaut crop"
    for name in LAYER_FILES:
        assert (folder / name).is_file(), name
    for name in ("background.png", "foreground.png", "mask.png", "cutout.png", "composite.png"):
        with Image.open(folder / name) as im:
            assert im.size == (300, 200), name
    with Image.open(folder / "mask.png") as im:
        assert im.mode == "L"
        mask = np.asarray(im).astype(np.float64) / 255
    with Image.open(folder / "cutout.png") as im:
        assert im.mode == "RGBA"
        cutout = np.asarray(im)
    background = np.asarray(Image.open(folder / "background.png")).astype(np.float64)

    # Outside the object the background is the input's own pixels; the cut-out keeps them too.
    outside = mask < 1 / 255
    assert outside.any()
    assert np.abs(background[outside] - original[outside]).max() <= 1
    assert np.array_equal(cutout[:, :, :3], original)
    assert np.array_equal(cutout[:, :, 3], np.rint(mask * 255).astype(np.uint8))

    pose = json.loads((folder / "pose.json").read_text())
    assert pose["width"] == 300
    assert pose["height"] == 200
    assert len(pose["objects"]) == 1
    obj = pose["objects"][0]
    for key in ("matrix", "scale_x", "scale_y", "rotation_degrees", "translation_x_px", "translation_y_px"):
        assert key in obj
    assert np.array(obj["matrix"]).shape == (2, 3)


def test_composite_recomposes_layers(tmp_path, tiny_decomposer):
    source = tmp_path / "a.png"
    Image.fromarray(astronaut()[::4, ::4]).save(source)
    assert run_cli(str(source), "--out", str(tmp_path / "out"), "--model", str(tiny_decomposer)).returncode == 0
    folder = tmp_path / "out" / "a"
    load = lambda name: np.asarray(Image.open(folder / name)).astype(np.float64)  # noqa: E731
    mask = load("mask.png")[:, :, None] / 255
    expected = mask * load("foreground.png") + (1 - mask) * load("background.png")
    # Layers are rounded to 8 bits before they are saved, so allow a couple of levels.
    assert np.abs(expected - load("composite.png")).max() <= 3


def test_bad_files_reported_and_others_processed(tmp_path, mnist_folder, tiny_decomposer):
    good = sorted(mnist_folder.glob("*.png"))
    jpeg = mnist_folder / "truncated.jpg"
    Image.fromarray(astronaut()).save(jpeg, quality=90)
    jpeg.write_bytes(jpeg.read_bytes()[:3000])
    (mnist_folder / "empty.png").write_bytes(b"")
    (mnist_folder / "notes.jpg").write_text("a text file with an image name\n")
    (mnist_folder / "readme.txt").write_text("not an image by name or content\n")

    out = tmp_path / "out"
    report = tmp_path / "report.json"
    result = run_cli(str(mnist_folder), "--out", str(out), "--model", str(tiny_decomposer), "--report", str(report))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 3, result.stderr
    assert any("truncated.jpg" in line and "corrupt or truncated" in line for line in errors)
    assert any("empty.png" in line and "empty" in line for line in errors)
    assert any("notes.jpg" in line and "not an image" in line for line in errors)
    for path in good:
        assert (out / path.stem / "pose.json").is_file()

    summary = json.loads(report.read_text())
    assert summary["ok"] == len(good)
    assert summary["failed"] == 3
    statuses = {Path(f["input"]).name: f["status"] for f in summary["files"]}
    assert statuses["readme.txt"] == "skipped"
    assert statuses["empty.png"] == "failed"


def test_decompose_runs_without_torch(tmp_path, mnist_test):
    """The base install has no torch: block it and decompose 100 real MNIST-ONE test images."""
    from lrgan.train.data import SyntheticMnist

    folder = tmp_path / "digits"
    folder.mkdir()
    synth = SyntheticMnist("mnist-one", *mnist_test, seed=1234)
    for i in range(100):
        Image.fromarray(synth[i].image).save(folder / f"{i:03d}.png")
    out = tmp_path / "out"
    result = run_cli(str(folder), "--out", str(out), block_torch=True)
    assert result.returncode == 0, result.stderr
    folders = sorted(p.name for p in out.iterdir())
    assert folders == sorted(p.stem for p in folder.glob("*.png"))
    assert len(folders) == 100
    for folder in out.iterdir():
        assert sorted(p.name for p in folder.iterdir()) == sorted(LAYER_FILES)


def test_same_names_get_distinct_outputs(tmp_path, mnist_folder, tiny_decomposer):
    root = tmp_path / "photos"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    first = next(iter(sorted(mnist_folder.glob("*.png"))))
    for sub in ("a", "b"):
        (root / sub / "same.png").write_bytes(first.read_bytes())
    (root / "a" / "same.jpg").write_bytes((root / "a" / "same.png").read_bytes())

    names = sorted(item.name for item in collect_inputs([str(root)]).files)
    # Sorted, same.jpg comes first and keeps the plain name.
    assert names == ["a/same", "a/same_png", "b/same"]
    result = run_cli(str(root), "--out", str(tmp_path / "out"), "--model", str(tiny_decomposer))
    assert result.returncode == 0, result.stderr
    for name in names:
        assert (tmp_path / "out" / name / "mask.png").is_file()


def test_output_inside_input_not_read_back(tmp_path, mnist_folder, tiny_decomposer):
    out = mnist_folder / "layers"
    count = len(list(mnist_folder.glob("*.png")))
    for _ in range(2):
        result = run_cli(str(mnist_folder), "--out", str(out), "--model", str(tiny_decomposer))
        assert result.returncode == 0, result.stderr
        assert f"{count} done" in result.stderr
    assert len(list(out.iterdir())) == count


def test_existing_user_file_never_overwritten(tmp_path, mnist_folder, tiny_decomposer):
    out = tmp_path / "out"
    first = sorted(mnist_folder.glob("*.png"))[0]
    victim = out / first.stem / "background.png"
    victim.parent.mkdir(parents=True)
    victim.write_bytes(b"user data")
    result = run_cli(str(mnist_folder), "--out", str(out), "--model", str(tiny_decomposer))
    assert result.returncode == 1
    assert victim.read_bytes() == b"user data"
    assert "not written by lrgan" in result.stderr


def test_glob_and_missing_inputs(tmp_path, mnist_folder, tiny_decomposer):
    pattern = str(mnist_folder / "digit_[0-2].png")
    result = run_cli(pattern, str(tmp_path / "missing.png"), "--out", str(tmp_path / "out"),
                     "--model", str(tiny_decomposer))
    assert result.returncode == 1
    assert "missing.png: no such file or folder" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["digit_0", "digit_1", "digit_2"]


def test_usage_errors_exit_2(tmp_path, mnist_folder):
    result = run_cli(str(mnist_folder), "--out", str(tmp_path / "out"), "--model", "no-such-model")
    assert result.returncode == 2
    assert "model 'no-such-model' not found" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli(str(empty), "--out", str(tmp_path / "out2")).returncode == 2


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16"])
def test_read_image_modes(tmp_path, mode):
    rgb = Image.fromarray(astronaut()[:64, :48])
    if mode == "I;16":
        gray = np.asarray(rgb.convert("L"), dtype=np.uint16) * 257
        image = Image.fromarray(gray.astype("<u2"))
        assert image.mode == "I;16"
        path = tmp_path / "x.png"
    else:
        image = rgb.convert(mode)
        path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    image.save(path)
    pixels = read_image(path)
    assert pixels.shape == (64, 48, 3)
    assert pixels.dtype == np.uint8
    # Every mode keeps the picture: its mean brightness matches the RGB original's.
    reference = np.asarray(rgb, dtype=np.float64)
    assert abs(pixels.astype(np.float64).mean() - reference.mean()) < 12


def test_read_image_exif_rotation(tmp_path):
    image = Image.fromarray(astronaut()[:60, :40])
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif)
    assert read_image(path).shape == (40, 60, 3)


def test_read_image_pixel_limit(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (300, 300)).save(path)
    with pytest.raises(ImageError, match="over the limit of 50,000.*--max-pixels"):
        read_image(path, max_pixels=50_000)

"""Folder runs over broken and unusual files, through both `decompose` and `lrgan masks`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

MAX_PIXELS = 200_000  # the "huge" file below is 600 x 400 = 240,000 pixels


def photo(height: int = 90, width: int = 120) -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()[30:30 + height * 3:3, 150:150 + width * 3:3].copy()


def make_folder(root: Path) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
    """Write unusual-but-valid files (name -> expected width, height) and broken ones (name -> error)."""
    root.mkdir()
    rgb = Image.fromarray(photo())
    good: dict[str, tuple[int, int]] = {}

    def keep(name: str, image: Image.Image, size=None, **save) -> None:
        image.save(root / name, **save)
        good[name] = size or image.size

    keep("plain.jpg", rgb, quality=92)
    keep("cmyk.jpg", rgb.convert("CMYK"), quality=92)
    gray16 = (np.asarray(rgb.convert("L"), dtype=np.uint16) * 257).astype("<u2")
    keep("deep16.png", Image.fromarray(gray16))
    keep("gray.png", rgb.convert("L"))
    keep("alpha.png", rgb.convert("RGBA"))
    keep("palette.png", rgb.convert("P", palette=Image.Palette.ADAPTIVE))
    frames = [rgb, rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    keep("animated.gif", frames[0], save_all=True, append_images=frames[1:], duration=100, loop=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise: width and height swap
    keep("rotated.jpg", rgb, size=(rgb.height, rgb.width), exif=exif)
    keep("one_pixel.png", Image.new("RGB", (1, 1), (200, 10, 10)))
    keep("ünïcødé név.png", rgb)
    keep("with space.jpg", rgb)

    bad: dict[str, str] = {}
    rgb.resize((300, 200)).save(root / "truncated.jpg", quality=95)
    (root / "truncated.jpg").write_bytes((root / "truncated.jpg").read_bytes()[:4000])
    bad["truncated.jpg"] = "corrupt or truncated"
    (root / "zero.jpg").write_bytes(b"")
    bad["zero.jpg"] = "file is empty"
    (root / "text.jpg").write_text("plain text, named like a photo\n")
    bad["text.jpg"] = "not an image file"
    rgb.resize((600, 400)).save(root / "huge.png")
    bad["huge.png"] = f"over the limit of {MAX_PIXELS:,}"
    os.symlink("loop_b.jpg", root / "loop_a.jpg")
    os.symlink("loop_a.jpg", root / "loop_b.jpg")
    bad["loop_a.jpg"] = "symbolic links"
    bad["loop_b.jpg"] = "symbolic links"
    rgb.save(root / "unreadable.jpg")
    os.chmod(root / "unreadable.jpg", 0)
    bad["unreadable.jpg"] = "ermission denied"
    return good, bad


def run(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI; as root, without the capabilities that let root read any file."""
    command = [sys.executable, "-m", "lrgan.cli", *args]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.fail("running as root needs setpriv (util-linux) to make a file unreadable")
        command = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *command]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("command", ["decompose", "masks"])
def test_bad_and_unusual_files(tmp_path, tiny_decomposer, command):
    good, bad = make_folder(tmp_path / "in")
    out = tmp_path / "out"
    report = tmp_path / "report.json"
    result = run(command, str(tmp_path / "in"), "--out", str(out), "--model", str(tiny_decomposer),
                 "--max-pixels", str(MAX_PIXELS), "--report", str(report), "-q")
    assert result.returncode == 1, result.stderr

    # One error line per broken file, naming it and the reason.
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == len(bad), "\n".join(errors)
    for name, reason in bad.items():
        lines = [line for line in errors if f"/{name}:" in line]
        assert len(lines) == 1, (name, errors)
        assert reason in lines[0], lines[0]
    huge_line = next(line for line in errors if "huge.png" in line)
    assert "--max-pixels" in huge_line

    # Every valid file has its outputs at its own (EXIF-corrected) size.
    for name, size in good.items():
        stem = Path(name).stem
        mask = out / stem / "mask.png" if command == "decompose" else out / f"{stem}.png"
        assert mask.is_file(), name
        with Image.open(mask) as im:
            assert im.size == size, name

    summary = json.loads(report.read_text())
    statuses = {Path(entry["input"]).name: entry["status"] for entry in summary["files"]}
    assert {n: s for n, s in statuses.items() if s == "ok"} == {n: "ok" for n in good}
    assert {n: s for n, s in statuses.items() if s == "failed"} == {n: "failed" for n in bad}
    # Inputs are untouched.
    assert (tmp_path / "in" / "text.jpg").read_text() == "plain text, named like a photo\n"


def test_animated_gif_uses_first_frame(tmp_path, tiny_decomposer):
    from lrgan.decompose.images import read_image

    good, _ = make_folder(tmp_path / "in")
    first = np.asarray(Image.open(tmp_path / "in" / "animated.gif").convert("RGB"))
    assert np.array_equal(read_image(tmp_path / "in" / "animated.gif"), first)


def test_exit_zero_when_all_good(tmp_path, tiny_decomposer):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo()).save(folder / "a.png")
    result = run("masks", str(folder), "--out", str(tmp_path / "out"), "--model", str(tiny_decomposer), "-q")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_masks_never_overwrite_inputs(tmp_path, tiny_decomposer):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo()).save(folder / "a.png")
    before = (folder / "a.png").read_bytes()
    # Writing masks next to the inputs would put a.png's mask on a.png itself.
    result = run("masks", str(folder), "--out", str(folder), "--model", str(tiny_decomposer), "-q")
    assert result.returncode == 1
    assert "would overwrite an input" in result.stderr
    assert (folder / "a.png").read_bytes() == before


def test_masks_usage_error(tmp_path):
    result = run("masks", str(tmp_path), "--out", str(tmp_path / "o"), "--model", "nope")
    assert result.returncode == 2


def test_earlier_mask_outputs_not_read_back(tmp_path, tiny_decomposer):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo()).save(folder / "a.jpg")
    first = run("masks", str(folder), "--out", str(folder / "m1"), "--model", str(tiny_decomposer), "-q")
    assert first.returncode == 0, first.stderr
    report = tmp_path / "report.json"
    second = run("decompose", str(folder), "--out", str(folder / "m2"), "--model", str(tiny_decomposer),
                 "--report", str(report), "-q")
    assert second.returncode == 0, second.stderr
    statuses = {Path(entry["input"]).as_posix(): entry["status"] for entry in json.loads(report.read_text())["files"]}
    assert statuses[(folder / "a.jpg").as_posix()] == "ok"
    assert statuses[(folder / "m1" / "a.png").as_posix()] == "skipped"
    assert not (folder / "m2" / "m1").exists()


def test_out_is_a_file_is_usage_error(tmp_path, tiny_decomposer):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo()).save(folder / "a.jpg")
    target = tmp_path / "afile"
    target.write_text("keep me")
    for command in ("decompose", "masks"):
        result = run(command, str(folder), "--out", str(target), "--model", str(tiny_decomposer))
        assert result.returncode == 2
        assert "is an existing file" in result.stderr
    assert target.read_text() == "keep me"


def test_only_missing_inputs_is_usage_error(tmp_path, tiny_decomposer):
    result = run("decompose", str(tmp_path / "missing.png"), "--out", str(tmp_path / "o"),
                 "--model", str(tiny_decomposer))
    assert result.returncode == 2
    assert "missing.png: no such file or folder" in result.stderr


def test_nested_inputs_under_output_folder(tmp_path, tiny_decomposer):
    """An output folder that contains the input folder must not hide the inputs' subfolders."""
    nested = tmp_path / "photos" / "sub" / "deeper"
    nested.mkdir(parents=True)
    Image.fromarray(photo()).save(tmp_path / "photos" / "top.jpg")
    Image.fromarray(photo()).save(nested / "inner.jpg")
    result = run("decompose", str(tmp_path / "photos"), "--out", str(tmp_path), "--model", str(tiny_decomposer), "-q")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "top" / "mask.png").is_file()
    assert (tmp_path / "sub" / "deeper" / "inner" / "mask.png").is_file()


def test_mask_and_cutout_names_clash(tmp_path, tiny_decomposer):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo()).save(folder / "a.jpg")
    Image.fromarray(photo()).save(folder / "a_cutout.jpg")
    result = run("masks", str(folder), "--out", str(tmp_path / "m"), "--cutouts", "--model", str(tiny_decomposer), "-q")
    assert result.returncode == 1
    assert "is also the output of" in result.stderr
    with Image.open(tmp_path / "m" / "a_cutout.png") as im:
        assert im.mode == "RGBA"  # a.jpg's cut-out, not a_cutout.jpg's mask


def test_report_never_replaces_user_file(tmp_path, tiny_decomposer):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo()).save(folder / "a.jpg")
    keep = tmp_path / "notes.json"
    keep.write_text('{"mine": true}')
    result = run("decompose", str(folder), "--out", str(tmp_path / "o"), "--report", str(keep),
                 "--model", str(tiny_decomposer))
    assert result.returncode == 2
    assert keep.read_text() == '{"mine": true}'


def test_video_and_audio_files_skipped(tmp_path, tiny_decomposer):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo()).save(folder / "a.jpg")
    (folder / "clip").write_bytes(b"RIFF\x00\x00\x00\x00AVI LIST" + bytes(64))
    (folder / "sound").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(64))
    result = run("masks", str(folder), "--out", str(tmp_path / "m"), "--model", str(tiny_decomposer), "-q")
    assert result.returncode == 0, result.stderr


def test_faces_crops_and_draw_same_folder(tmp_path, tiny_decomposer):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo()).save(folder / "a.jpg")
    result = run("faces", str(folder), "--out", str(tmp_path / "f.csv"), "--crops", str(tmp_path / "x"),
                 "--draw", str(tmp_path / "x"), "--model", str(tiny_decomposer))
    assert result.returncode == 2
    assert "same folder" in result.stderr


def test_gray_decomposer(tmp_path):
    import torch

    from conftest import tiny_overrides
    from lrgan.export.onnx_export import export_generator
    from lrgan.train.config import preset_config
    from lrgan.train.networks import ConditionalGenerator

    cfg = preset_config("mnist-one", conditional=True, channels=1, **tiny_overrides())
    torch.manual_seed(0)
    model = export_generator(ConditionalGenerator(cfg), cfg, tmp_path / "gray.onnx", "gray")
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo()).save(folder / "a.jpg")
    result = run("decompose", str(folder), "--out", str(tmp_path / "o"), "--model", str(model), "-q")
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "o" / "a" / "background.png") as im:
        assert im.mode == "RGB"
        assert im.size == (120, 90)

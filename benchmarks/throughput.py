"""Folder throughput of `lrgan masks` and `decompose`, beside PyTorch eager inference of the same network.

Prints images per second end to end (decode, resize, inference, resize back, PNG write) and
the peak resident memory of each run. Each measurement runs in its own process so peaks do
not mix. PyTorch eager is timed on the model alone (no decoding or writing), with the
architecture rebuilt from the ONNX metadata and fresh weights: speed does not depend on the
weight values.

    python benchmarks/throughput.py --model mnist-one --images 1000
    python benchmarks/throughput.py --architecture lfw --images 1000

--architecture PRESET exports an untrained conditional network of that preset (width 0.5,
as shipped) for timing. That needs torch, and speed does not depend on the weights.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_jpegs(folder: Path, count: int, size: int = 250) -> None:
    """Write `count` size x size JPEGs cut from scikit-image's astronaut photo at varied places."""
    import skimage.data
    from PIL import Image

    photo = skimage.data.astronaut()
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        side = int(rng.integers(260, 512))
        y, x = rng.integers(0, 512 - side + 1, size=2)
        crop = Image.fromarray(photo[y:y + side, x:x + side]).resize((size, size), Image.BILINEAR)
        crop.save(folder / f"img_{i:05d}.jpg", quality=90)


def peak_mb() -> float:
    """Peak resident memory of this process in MB (VmHWM; ru_maxrss would carry the parent's over exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_folder(kind: str, model_name: str, folder: str, out: str, batch: int, workers: int) -> dict:
    from lrgan.decompose.model import LayerModel
    from lrgan.decompose.runner import MaskWriter, run_images

    model = LayerModel(model_name)
    writer = MaskWriter(Path(out), model) if kind == "masks" else None
    count = len(list(Path(folder).glob("*.jpg")))
    start = time.perf_counter()
    summary = run_images([folder], Path(out), model, writer=writer, batch_size=batch, progress=False, workers=workers)
    seconds = time.perf_counter() - start
    assert summary.failed == 0, "benchmark images failed"
    return {"run": kind, "images": count, "seconds": seconds, "images_per_s": count / seconds, "peak_mb": peak_mb()}


def run_torch(model_name: str, count: int, batch: int) -> dict:
    import torch

    from lrgan.decompose.model import metadata_of, resolve_model
    from lrgan.train.config import ModelConfig
    from lrgan.train.loop import build_generator

    cfg = ModelConfig.from_dict(metadata_of(resolve_model(model_name))["model_config"])
    generator = build_generator(cfg).eval()
    x = torch.rand(batch, cfg.channels, cfg.image_size, cfg.image_size) * 2 - 1
    with torch.no_grad():
        generator(x)  # warm-up
        start = time.perf_counter()
        done = 0
        while done < count:
            generator(x)
            done += batch
        seconds = time.perf_counter() - start
    return {"run": "torch-eager-model-only", "images": done, "seconds": seconds, "images_per_s": done / seconds,
            "peak_mb": peak_mb(), "torch_threads": torch.get_num_threads()}


def run_onnx_model_only(model_name: str, count: int, batch: int) -> dict:
    from lrgan.decompose.model import LayerModel

    model = LayerModel(model_name)
    size = model.info.image_size
    x = (np.random.default_rng(0).random((batch, 3, size, size), dtype=np.float32) * 2 - 1)
    model.run(x)
    start = time.perf_counter()
    done = 0
    while done < count:
        model.run(x)
        done += batch
    seconds = time.perf_counter() - start
    return {"run": "onnxruntime-model-only", "images": done, "seconds": seconds, "images_per_s": done / seconds,
            "peak_mb": peak_mb()}


def export_untrained(preset: str, path: Path) -> str:
    import torch

    from lrgan.export.onnx_export import export_generator
    from lrgan.train.config import preset_config
    from lrgan.train.networks import ConditionalGenerator

    torch.manual_seed(0)
    cfg = preset_config(preset, conditional=True, width=0.5, norm="batch", encoder_norm="group")
    return str(export_generator(ConditionalGenerator(cfg), cfg, path, f"{preset}-untrained"))


def child(args: argparse.Namespace) -> None:
    if args.child == "torch":
        result = run_torch(args.model, args.images, args.batch)
    elif args.child == "onnx":
        result = run_onnx_model_only(args.model, args.images, args.batch)
    else:
        result = run_folder(args.child, args.model, args.folder, args.out, args.batch, args.workers)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mnist-one", help="embedded model name or .onnx path")
    parser.add_argument("--architecture", help="time an untrained export of this preset instead of --model")
    parser.add_argument("--images", type=int, default=1000, help="number of 250x250 JPEGs")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="decode and write threads")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.architecture:
            args.model = export_untrained(args.architecture, Path(tmp) / f"{args.architecture}-untrained.onnx")
        print(f"model: {args.model}, {args.images} JPEGs of 250x250, batch {args.batch}, {args.workers} worker threads")
        folder = Path(tmp) / "images"
        make_jpegs(folder, args.images)
        runs = ["masks", "decompose", "onnx", "torch"]
        for run in runs:
            command = [sys.executable, __file__, "--child", run, "--model", args.model, "--images", str(args.images),
                       "--batch", str(args.batch), "--workers", str(args.workers), "--folder", str(folder),
                       "--out", str(Path(tmp) / f"out-{run}")]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                print(f"{run}: failed\n{result.stderr[-2000:]}")
                continue
            data = json.loads(result.stdout.strip().splitlines()[-1])
            print(f"{data['run']:<26} {data['images_per_s']:8.1f} images/s  "
                  f"({data['images']} in {data['seconds']:.2f} s, peak {data['peak_mb']:.0f} MB)")


if __name__ == "__main__":
    main()

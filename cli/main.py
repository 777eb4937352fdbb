"""Command-line entry points: `decompose` and the `lrgan` group.

Commands that need PyTorch import it inside the command, so a base install (no torch)
can decompose and list models.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..decompose.images import DEFAULT_MAX_PIXELS
from ..decompose.model import DEFAULT_MODEL, ModelError, embedded_models

log = logging.getLogger("lrgan")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# Options shared by several commands, defined once.
ModelOption = Annotated[str, typer.Option("--model", "-m", help="Embedded model name or path to an lrgan .onnx export.")]
OutOption = Annotated[Path, typer.Option("--out", "-o", help="Output folder; created if missing.")]
BatchOption = Annotated[int, typer.Option(min=1, help="Images per model call.")]
MaxPixelsOption = Annotated[
    int, typer.Option("--max-pixels", min=1, help="Reject images with more pixels than this before decoding them.")
]
ReportOption = Annotated[
    Optional[Path], typer.Option("--report", help="Write a JSON summary with every input file and its status.")
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar; errors only.")]
MnistOption = Annotated[
    Optional[Path], typer.Option("--mnist", help="Folder with the MNIST IDX files (train-images-idx3-ubyte[.gz], ...).")
]


class ProgressBarHandler(logging.Handler):
    """Write log lines through tqdm, so a progress bar never shares a line with a message."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # a failing handler reports through logging's own hook instead of raising
            self.handleError(record)


def setup_logging(quiet: bool = False) -> None:
    level = logging.ERROR if quiet else logging.INFO
    handler = ProgressBarHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name, short in ((logging.ERROR, "error"), (logging.WARNING, "warning"), (logging.INFO, "info")):
        logging.addLevelName(name, short)


def fail_usage(message: str) -> None:
    log.error("%s", message)
    raise typer.Exit(EXIT_USAGE)


def open_model(name_or_path: str, kind: str, option: str | None = None):
    """Load a model of `kind` (decomposer, sampler or any), or end with a usage error naming the problem.

    `option` names the command-line option the model came from, for the message.
    """
    from ..decompose.model import LayerModel

    try:
        model = LayerModel(name_or_path)
        if kind != "any":
            model.require(kind)
    except ModelError as exc:
        fail_usage(f"{option} {name_or_path!r}: {exc}" if option else str(exc))
    return model


EVAL_MARKER = ".lrgan-eval"


def claim_eval_folder(out: Path | None, command: str) -> None:
    """End with a usage error unless `out` is missing, empty, or an earlier evaluation's folder."""
    from ..decompose.sampling import check_output_folder

    if out is None:
        return
    try:
        check_output_folder(out, EVAL_MARKER, command)
    except FileExistsError as exc:
        fail_usage(str(exc))


def mark_eval_folder(out: Path | None, command: str) -> None:
    if out is not None and out.is_dir():
        (out / EVAL_MARKER).write_text(f"written by {command}\n")


def need_torch(command: str) -> None:
    need_training_extra(command, "torch", "PyTorch")


def need_training_extra(command: str, module: str, name: str) -> None:
    """End with a usage error, before any output is written, when the training extra's `module` is missing."""
    try:
        __import__(module)
    except ImportError:
        setup_logging()
        fail_usage(
            f"`lrgan {command}` needs {name}, which the base install leaves out; install the training "
            "extra: pip install 'lrgan[train]', or from a source checkout: pip install -e '.[train]'"
        )


decompose_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
lrgan_app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="LR-GAN: train, export, evaluate and run layered image models.",
)


# ----- decompose -----

def decompose_images(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders (searched recursively) or glob patterns.")],
    out: OutOption = Path("layers"),
    model: ModelOption = DEFAULT_MODEL,
    batch_size: BatchOption = 16,
    max_pixels: MaxPixelsOption = DEFAULT_MAX_PIXELS,
    report: ReportOption = None,
    quiet: QuietOption = False,
) -> None:
    """Split each image into background, foreground, mask, cut-out, composite and pose.

    Each input gets a folder under --out with background.png (the input's own pixels outside
    the object, the model's inpainting inside), foreground.png, mask.png (8-bit alpha),
    cutout.png (RGBA), composite.png (the layers composed again) and pose.json, all at the
    input's resolution. Exit status: 0 all done, 1 some files failed, 2 usage error.
    """
    from ..decompose.runner import run_images

    setup_logging(quiet)
    require_folder(out)
    require_report_path(report)
    layer_model = open_model(model, "decomposer")
    summary = run_images(inputs, out, layer_model, batch_size=batch_size, max_pixels=max_pixels, progress=not quiet)
    finish(summary, out, report)


@lrgan_app.command("masks")
def masks(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders (searched recursively) or glob patterns.")],
    out: OutOption = Path("masks"),
    model: ModelOption = DEFAULT_MODEL,
    cutouts: Annotated[bool, typer.Option("--cutouts", help="Also write NAME_cutout.png (RGBA).")] = False,
    batch_size: BatchOption = 64,
    workers: Annotated[int, typer.Option(min=1, help="Threads for decoding and for writing.")] = 2,
    max_pixels: MaxPixelsOption = DEFAULT_MAX_PIXELS,
    report: ReportOption = None,
    quiet: QuietOption = False,
) -> None:
    """Write only the object mask of each image (8-bit PNG at the input's size), fast.

    Outputs mirror the input tree: OUT/NAME.png. Exit status: 0 all done, 1 some files
    failed, 2 usage error.
    """
    from ..decompose.runner import MaskWriter, run_images

    setup_logging(quiet)
    require_folder(out)
    require_report_path(report)
    layer_model = open_model(model, "decomposer")
    writer = MaskWriter(out, layer_model, cutouts=cutouts)
    summary = run_images(inputs, out, layer_model, writer=writer, batch_size=batch_size, max_pixels=max_pixels,
                         progress=not quiet, workers=workers)
    finish(summary, out, report)


def finish(summary, out: Path, report: Optional[Path]) -> None:
    if report is not None:
        summary.write_report(report)
    if summary.inputs_found == 0:
        fail_usage("no image files found among the inputs; give image files, folders or glob patterns")
    log.info("%d done, %d failed, %d skipped; outputs in %s", summary.succeeded, summary.failed, summary.skipped, out)
    raise typer.Exit(EXIT_FAILED if summary.failed else EXIT_OK)


def require_folder(out: Path, option: str = "--out") -> None:
    """End with a usage error when a folder option names an existing file."""
    if out.exists() and not out.is_dir():
        fail_usage(f"{option} {out} is an existing file; give a folder for the outputs")


def require_report_path(report: Optional[Path]) -> None:
    """End with a usage error when --report would replace a file that is not an earlier report."""
    if report is None or not report.exists():
        return
    try:
        earlier = json.loads(report.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        earlier = None
    if not (isinstance(earlier, dict) and {"ok", "failed", "files"} <= set(earlier)):
        fail_usage(f"--report {report} exists and is not an lrgan report; choose another file")


decompose_app.command()(decompose_images)
lrgan_app.command("decompose")(decompose_images)


# ----- faces -----

@lrgan_app.command("faces")
def faces(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders (searched recursively) or glob patterns.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV file with one face box per image.")] = Path("faces.csv"),
    model: ModelOption = "lfw",
    crops: Annotated[Optional[Path], typer.Option(help="Folder for the face crops (PNG).")] = None,
    draw: Annotated[Optional[Path], typer.Option(help="Folder for the photos with the box drawn (PNG).")] = None,
    box: Annotated[str, typer.Option(help="moments (the rectangle with the mask's centre and spread) or component (the largest part of the mask above 0.5).")] = "moments",
    batch_size: BatchOption = 32,
    max_pixels: MaxPixelsOption = DEFAULT_MAX_PIXELS,
    report: ReportOption = None,
    quiet: QuietOption = False,
) -> None:
    """Find the face in each photo from the face model's mask and pose.

    The box is in the input's pixels, with a score in [0, 1]. With --box moments it is the
    rectangle with the centre and standard deviations of the mask; with --box component, the
    largest connected part of the mask above 0.5 (the part under the pose's centre when it is
    large enough). Images whose mask is empty get found=0.
    """
    from ..decompose.faces import BOX_METHODS, run_faces

    setup_logging(quiet)
    for folder, option in ((crops, "--crops"), (draw, "--draw"), (out.parent, "--out's folder")):
        if folder is not None:
            require_folder(folder, option)
    if crops is not None and draw is not None and crops.resolve() == draw.resolve():
        fail_usage(f"--crops and --draw name the same folder {crops}; a drawing would replace each crop")
    if out.exists() and out.is_dir():
        fail_usage(f"--out {out} is a folder; give the CSV file to write")
    require_report_path(report)
    if box not in BOX_METHODS:
        fail_usage(f"--box must be one of {', '.join(BOX_METHODS)}, got {box!r}")
    layer_model = open_model(model, "decomposer")
    try:
        summary = run_faces(inputs, out, layer_model, crops=crops, draw=draw, batch_size=batch_size,
                            max_pixels=max_pixels, progress=not quiet, method=box)
    except FileExistsError as exc:
        fail_usage(str(exc))
    finish(summary, out, report)


# ----- sample -----

@lrgan_app.command("sample")
def sample(
    model: Annotated[str, typer.Option("--model", "-m", help="Embedded sampler name or path to an lrgan sampler .onnx.")],
    out: OutOption = Path("samples"),
    count: Annotated[int, typer.Option("--n", "-n", min=1, help="Number of samples.")] = 16,
    seed: Annotated[int, typer.Option(help="Seed of the noise.")] = 0,
    grid: Annotated[bool, typer.Option("--grid/--no-grid", help="Also write grid.png: one row per sample, one column per layer.")] = True,
    walk: Annotated[Optional[str], typer.Option(help="'background': hold the background code, walk the object codes.")] = None,
    quiet: QuietOption = False,
) -> None:
    """Generate layered images from noise: each sample's layers, poses and a grid."""
    from ..decompose.sampling import sample_to_folder

    setup_logging(quiet)
    require_folder(out)
    layer_model = open_model(model, "sampler")
    try:
        sample_to_folder(layer_model, count, out, seed=seed, walk=walk, grid=grid)
    except (ValueError, FileExistsError) as exc:
        fail_usage(str(exc))
    except OSError as exc:
        log.error("cannot write samples to %s: %s", out, exc.strerror or exc)
        raise typer.Exit(EXIT_FAILED)
    log.info("wrote %d samples to %s", count, out)


# ----- models -----

@lrgan_app.command("models")
def list_models() -> None:
    """List the embedded models and their facts."""
    from ..decompose.model import metadata_of

    setup_logging()
    if not embedded_models():
        log.warning("no embedded models are installed; pass --model PATH to an .onnx file exported by lrgan export")
    for name, path in embedded_models().items():
        meta = metadata_of(path)
        typer.echo(
            f"{name}: {meta.get('kind')} preset={meta.get('preset')} size={meta.get('image_size')} "
            f"timesteps={meta.get('timesteps')} steps={meta.get('train_steps', '?')} "
            f"({path.stat().st_size / 1e6:.1f} MB)"
        )


# ----- data -----

@lrgan_app.command("data")
def make_data(
    kind: Annotated[str, typer.Argument(help="mnist-one or mnist-two.")],
    out: OutOption,
    mnist: MnistOption = None,
    split: Annotated[str, typer.Option(help="Which MNIST digits: train or test.")] = "test",
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="Number of images.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the placement and background draws.")] = 1234,
    quiet: QuietOption = False,
) -> None:
    """Write a synthetic MNIST-ONE / MNIST-TWO folder: images/, masks/ and truth.json."""
    from ..train.data import SYNTH_SPECS
    from ..train.evaluate import write_synthetic_folder

    setup_logging(quiet)
    if kind not in SYNTH_SPECS:
        fail_usage(f"unknown data set {kind!r}; choose one of {', '.join(SYNTH_SPECS)}")
    if split not in ("train", "test"):
        fail_usage(f"--split must be train or test, got {split!r}")
    if mnist is None:
        fail_usage("--mnist DIR is required: the folder with the MNIST IDX files")
    try:
        path = write_synthetic_folder(kind, mnist, split, count, seed, out, progress=not quiet)
    except (FileNotFoundError, ValueError) as exc:
        fail_usage(str(exc))
    log.info("wrote %d images and %s", count, path)


# ----- train -----

@lrgan_app.command("train")
def train(
    out: OutOption,
    preset: Annotated[str, typer.Option(help="mnist-one, mnist-two, cifar10, cub200 or lfw.")] = "mnist-one",
    mode: Annotated[str, typer.Option(help="unconditional (noise -> layers) or conditional (image -> layers).")] = "unconditional",
    data: Annotated[Optional[str], typer.Option(help="mnist-one, mnist-two, or an image folder. Default: the preset's synthetic data.")] = None,
    mnist: MnistOption = None,
    lfw: Annotated[Optional[Path], typer.Option(help="LFW archive (.tgz) or extracted tree, for --data lfw.")] = None,
    valid_dir: Annotated[Optional[Path], typer.Option("--valid", help="Image folder for validation when --data is a folder.")] = None,
    reframe: Annotated[bool, typer.Option("--reframe/--no-reframe", help="LFW: move and resize each face at random.")] = True,
    digit: Annotated[Optional[int], typer.Option(min=0, max=9, help="MNIST data: use only this digit class (one generator per class, for Adversarial Accuracy).")] = None,
    steps: Annotated[Optional[int], typer.Option(min=1, help="Total optimisation steps (default 3000).")] = None,
    decay_from: Annotated[Optional[int], typer.Option(min=0, help="Step from which the learning rates fall linearly to zero at the last step.")] = None,
    batch_size: Annotated[int, typer.Option(min=2)] = 64,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 2e-4,
    generator_lr: Annotated[Optional[float], typer.Option(help="Generator learning rate (default: --lr).")] = None,
    timesteps: Annotated[Optional[int], typer.Option(min=1, help="Override the preset's T (1 = DCGAN).")] = None,
    width: Annotated[float, typer.Option(help="Multiplier on all layer widths (0.5 halves them).")] = 1.0,
    channels: Annotated[Optional[int], typer.Option(help="Image channels: 3 (RGB, the presets' default) or 1 (gray).")] = None,
    norm: Annotated[str, typer.Option(help="Generator normalisation: batch (as published) or group.")] = "batch",
    encoder_norm: Annotated[str, typer.Option(help="Conditional encoder normalisation: group (batch-independent) or batch (as published).")] = "group",
    pose_bounds: Annotated[str, typer.Option(help="smooth (sigmoid/tanh ranges) or clamp (published hard clamps).")] = "smooth",
    no_pose: Annotated[bool, typer.Option("--no-pose", help="Ablation: identity warp.")] = False,
    no_mask: Annotated[bool, typer.Option("--no-mask", help="Ablation: paste the foreground whole.")] = False,
    d_norm: Annotated[str, typer.Option(help="Discriminator normalisation: batch (as published) or spectral.")] = "batch",
    gan_loss: Annotated[str, typer.Option(help="Adversarial loss: bce (as published) or hinge.")] = "bce",
    minibatch_std: Annotated[bool, typer.Option("--minibatch-std/--no-minibatch-std", help="Give the discriminator the spread of its features over the batch, against mode collapse.")] = False,
    adversarial: Annotated[str, typer.Option(help="Conditional: cross (objects on another image's background), recon (as published) or none.")] = "cross",
    recon_weight: Annotated[float, typer.Option(help="Conditional: weight of the L1 reconstruction loss.")] = 10.0,
    adv_weight: Annotated[float, typer.Option(help="Conditional: weight of the adversarial loss.")] = 1.0,
    warmup: Annotated[int, typer.Option(min=0, help="Conditional: reconstruction-only steps before the adversarial term.")] = 300,
    center_weight: Annotated[float, typer.Option(help="Conditional: weight of the prior that centres each mask in its own canvas, so the pose carries the position.")] = 0.0,
    mask_binary_weight: Annotated[Optional[float], typer.Option(min=0.0, help="Weight of the prior that pushes mask values to 0 or 1 (default 0; may be changed on --resume).")] = None,
    equivariance_weight: Annotated[float, typer.Option(min=0.0, help="Conditional LFW: weight of the prior that the pose found in a re-framed photo is the pose of the photo as it is, moved by the re-framing.")] = 0.0,
    equivariance_mask_weight: Annotated[float, typer.Option(min=0.0, help="Conditional LFW: the same prior on the placed mask (empty masks satisfy it; off by default).")] = 0.0,
    anchor_weight: Annotated[Optional[float], typer.Option(min=0.0, help="Conditional LFW: weight of the prior that the object canvas is the centred square at --scale-init in the aligned photos, moved by the re-framing in the re-framed ones (default 0; may be changed on --resume).")] = None,
    scale_max: Annotated[Optional[float], typer.Option(help="Largest pose scale (default: twice the preset's smallest, e.g. 2.6 for lfw). The scale divides the object's size: above 1 it shrinks the object.")] = None,
    scale_init: Annotated[Optional[float], typer.Option(help="Pose scale at the start (default: the preset's, e.g. 1.6 for lfw and 1.5 for cifar10).")] = None,
    upsample: Annotated[str, typer.Option(help="Generator upsampling: transposed (4x4 transposed convolutions, as published) or resize (nearest doubling and a 3x3 convolution, no checkerboard).")] = "transposed",
    bg_code: Annotated[Optional[int], typer.Option(min=1, help="Conditional: the background generator reads only this many entries of the image's 100-entry code (default: all 100).")] = None,
    seed: int = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    every: Annotated[int, typer.Option(min=1, help="Steps between checkpoints, sample grids and validation.")] = 250,
    log_every: Annotated[int, typer.Option(min=1, help="Steps between loss records in log.jsonl.")] = 10,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for PyTorch.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/last.pt with its saved configuration.")] = False,
    quiet: QuietOption = False,
) -> None:
    """Train an LR-GAN; checkpoints (last.pt, best.pt), sample grids and log.jsonl go to --out."""
    need_torch("train")
    import torch

    from ..train.checkpoint import load_checkpoint
    from ..train.config import ModelConfig, TrainConfig, preset_config
    from ..train.datasets import make_sources
    from ..train.loop import Trainer

    setup_logging(quiet)
    if threads:
        torch.set_num_threads(threads)
    last = out / "last.pt"
    if out.exists() and not out.is_dir():
        fail_usage(f"--out {out} is a file; give a folder for the run")
    # A new run writes config.json, log.jsonl, samples/ and checkpoints: never over other files.
    if out.is_dir() and any(out.iterdir()) and not (resume and last.exists()):
        if last.exists():
            fail_usage(f"--out {out} already contains a run; add --resume to continue it, or choose a new or empty folder")
        if resume:
            fail_usage(f"--out {out} has no last.pt to resume and is not empty; choose a new or empty folder")
        fail_usage(f"--out {out} is not empty; choose a new or empty folder, so that no file in it is replaced")
    try:
        if resume and last.exists():
            # Resume needs no other flags: both configs come from the checkpoint.
            state = load_checkpoint(last)
            model_cfg = ModelConfig.from_dict(state["model_config"])
            train_cfg = TrainConfig(**state["train_config"])
            if steps is not None:
                train_cfg.steps = steps
            if decay_from is not None:
                train_cfg.decay_start = decay_from
            if mask_binary_weight is not None:
                train_cfg.mask_binary_weight = mask_binary_weight
            if anchor_weight is not None:
                train_cfg.anchor_weight = anchor_weight
            data_name = train_cfg.extra.get("data", data)
            mnist_dir = mnist or train_cfg.extra.get("mnist")
            lfw_path = lfw or train_cfg.extra.get("lfw")
            reframe = train_cfg.extra.get("reframe", reframe)
            valid_folder = valid_dir or train_cfg.extra.get("valid")
            digit = train_cfg.extra.get("digit")
        else:
            if mode not in ("conditional", "unconditional"):
                fail_usage(f"--mode must be conditional or unconditional, got {mode!r}")
            conditional = mode == "conditional"
            overrides = dict(
                conditional=conditional, width=width, norm=norm, encoder_norm=encoder_norm,
                pose_bounds=pose_bounds, use_pose=not no_pose, use_mask=not no_mask,
                minibatch_std=minibatch_std, d_norm=d_norm, upsample=upsample, bg_code_dim=bg_code,
            )
            if timesteps is not None:
                overrides["timesteps"] = timesteps
            if scale_max is not None:
                overrides["scale_max"] = scale_max
            if scale_init is not None:
                overrides["scale_init"] = scale_init
            if channels is not None:
                if channels not in (1, 3):
                    fail_usage(f"--channels must be 1 or 3, got {channels}")
                overrides["channels"] = channels
            model_cfg = preset_config(preset, **overrides)
            data_name = data or (preset if preset in ("mnist-one", "mnist-two", "lfw") else None)
            if data_name is None:
                fail_usage(f"--data is required for preset {preset}: an image folder")
            mnist_dir = str(mnist) if mnist else None
            lfw_path = str(lfw) if lfw else None
            valid_folder = str(valid_dir) if valid_dir else None
            train_cfg = TrainConfig(
                steps=steps or 3000, batch_size=batch_size, lr=lr, generator_lr=generator_lr, seed=seed,
                recon_weight=recon_weight, adv_weight=adv_weight, warmup_steps=warmup, center_weight=center_weight,
                mask_binary_weight=mask_binary_weight or 0.0, gan_loss=gan_loss,
                equivariance_weight=equivariance_weight, equivariance_mask_weight=equivariance_mask_weight,
                anchor_weight=anchor_weight or 0.0,
                adversarial=adversarial, sample_every=every, checkpoint_every=every, eval_every=every,
                log_every=log_every, decay_start=decay_from,
                extra={"data": data_name, "mnist": mnist_dir, "lfw": lfw_path, "reframe": reframe,
                       "valid": valid_folder, "digit": digit},
            )
        train_cfg.validate()
        if train_cfg.uses_reframing_pairs and not (model_cfg.conditional and data_name == "lfw"):
            fail_usage("--equivariance-weight, --equivariance-mask-weight and --anchor-weight need "
                       "--mode conditional and --data lfw, whose photos the project re-frames itself")
        source, valid = make_sources(data_name, model_cfg.image_size, mnist_dir, train_cfg.seed, lfw_path, reframe,
                                     valid_folder, digit=digit)
        trainer = Trainer(out, model_cfg, train_cfg, source, valid, device=device)
    except (ValueError, FileNotFoundError) as exc:
        fail_usage(str(exc))
    log.info("training %s (%s) on %s, %d steps, device %s", model_cfg.preset,
             "conditional" if model_cfg.conditional else "unconditional", data_name, train_cfg.steps, trainer.device)
    try:
        metrics = trainer.run(resume=resume, progress=not quiet)
    except FloatingPointError as exc:
        log.error("%s", exc)
        raise typer.Exit(EXIT_FAILED)
    log.info("finished at step %d: %s", trainer.step, metrics)


# ----- export -----

@lrgan_app.command("export")
def export(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by `lrgan train` (best.pt or last.pt).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The .onnx file to write.")],
    name: Annotated[Optional[str], typer.Option(help="Model name stored in the metadata (default: the file's stem).")] = None,
    mask_sharpness: Annotated[Optional[float], typer.Option(min=0.01, help="Multiply the mask logits by this before the sigmoid: above 1 hardens soft mask edges (default: the checkpoint's, normally 1).")] = None,
    quiet: QuietOption = False,
) -> None:
    """Export a checkpoint's generator to ONNX (decomposer or sampler) and check it against PyTorch."""
    need_torch("export")
    from ..export.onnx_export import export_checkpoint

    setup_logging(quiet)
    if out.suffix != ".onnx":
        fail_usage(f"--out must end in .onnx, got {out}")
    try:
        path = export_checkpoint(checkpoint, out, name, mask_sharpness)
    except (FileNotFoundError, ValueError) as exc:
        fail_usage(str(exc))
    log.info("wrote %s", path)


# ----- evaluate -----

@lrgan_app.command("evaluate")
def evaluate(
    model: ModelOption = DEFAULT_MODEL,
    data: Annotated[Optional[str], typer.Option(help="Decomposer: mnist-one or mnist-two (synthetic, with ground truth), lfw (re-framed held-out people) or an image folder. Sampler: real images for FID, 1-NN and neighbours, mnist-one or a folder with train/ and test/ class folders.")] = None,
    mnist: MnistOption = None,
    lfw: Annotated[Optional[Path], typer.Option(help="Decomposer with --data lfw: the LFW archive (.tgz) or extracted tree.")] = None,
    split: Annotated[str, typer.Option(help="Decomposer: MNIST digits to draw, test (held out) or train.")] = "test",
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="Images to decompose, or samples to draw.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic placements or of the sampler's noise.")] = 1234,
    classifier: Annotated[Optional[Path], typer.Option(help="Sampler: a file from `lrgan train-classifier`, for the contextual Inception Score and FID on its features.")] = None,
    discriminator: Annotated[Optional[Path], typer.Option(help="Sampler: a training checkpoint whose discriminator gives 1-NN features (needs --data).")] = None,
    inception: Annotated[Optional[Path], typer.Option(help="Sampler: local Inception v3 weights (torchvision state dict) for the standard Inception Score and FID.")] = None,
    compare: Annotated[Optional[str], typer.Option(help="Sampler: a second sampler to pair with by Hungarian matching.")] = None,
    real_count: Annotated[int, typer.Option(min=10, help="Sampler: real test images for FID and 1-NN (four times as many training images for 1-NN).")] = 5000,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for metrics.json and plots (new, empty, or an earlier evaluation's).")] = None,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for PyTorch and onnxruntime.")] = None,
    quiet: QuietOption = False,
) -> None:
    """Score a model.

    A decomposer is scored on synthetic images with ground truth (mask IoU, PSNR, background
    and pose errors), or on photos by PSNR and the distribution of mask area. A sampler is scored on its own samples: nearly binary masks and pose
    histograms always, then whichever of the contextual Inception Score, FID, 1-NN, the
    standard Inception Score and Hungarian matching its options ask for.
    """
    setup_logging(quiet)
    need_torch("evaluate")
    claim_eval_folder(out, "lrgan evaluate")
    set_threads(threads)
    from ..train.evaluate import evaluate_photos, evaluate_sampler, evaluate_synthetic

    try:
        layer_model = open_model(model, "any")
        if layer_model.info.kind == "sampler":
            compare_path = None
            if compare is not None:
                compare_path = open_model(compare, "sampler", "--compare").path
            result = evaluate_sampler(
                layer_model.path, count, seed, out, classifier=classifier, data=data,
                mnist_dir=mnist, real_count=real_count, discriminator=discriminator, inception=inception,
                compare=compare_path, progress=not quiet,
            )
        else:
            if classifier or discriminator or inception or compare:
                fail_usage("--classifier, --discriminator, --inception and --compare score samplers; "
                           f"{model} is a decomposer")
            if data in (None, "mnist-one", "mnist-two"):
                if mnist is None:
                    fail_usage("--mnist DIR is required: the folder with the MNIST IDX files")
                result = evaluate_synthetic(model, data or "mnist-one", mnist, split, count, seed, out,
                                            progress=not quiet)
            else:
                result = evaluate_photos(layer_model.path, photo_source(data, lfw, layer_model.info.image_size, seed),
                                         data, count, seed, out, progress=not quiet)
    except (ModelError, FileNotFoundError, ValueError) as exc:
        fail_usage(str(exc))
    mark_eval_folder(out, "lrgan evaluate")
    print_result(result)


def photo_source(data: str, lfw: Path | None, image_size: int, seed: int):
    """Held-out photos for `lrgan evaluate --data`: re-framed LFW people, or an image folder."""
    if data == "lfw":
        from ..train.lfw import LfwSource

        if lfw is None:
            fail_usage("--lfw PATH is required for --data lfw: the LFW archive (.tgz) or extracted tree")
        return LfwSource(lfw, image_size, "test", reframed=True, seed=seed)
    from ..train.datasets import FolderSource

    return FolderSource(data, image_size)


def set_threads(threads: int | None) -> None:
    """Limit PyTorch and onnxruntime (through LRGAN_THREADS) to `threads` CPU threads."""
    import os

    if threads is None:
        return
    os.environ["LRGAN_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def print_result(result: dict) -> None:
    for key, value in result.items():
        typer.echo(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")


@lrgan_app.command("train-classifier")
def train_classifier_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="The classifier file to write (.pt).")],
    data: Annotated[str, typer.Option(help="mnist-one, or a folder with train/ and test/ class folders (ImageFolder layout).")] = "mnist-one",
    mnist: MnistOption = None,
    preset: Annotated[str, typer.Option(help="Preset whose discriminator trunk the classifier uses.")] = "mnist-one",
    channels: Annotated[Optional[int], typer.Option(help="Image channels: 1 or 3 (default: the preset's).")] = None,
    width: Annotated[float, typer.Option(min=0.01, help="Width multiplier of the trunk.")] = 0.5,
    steps: Annotated[int, typer.Option(min=1, help="Adam steps, batch 128.")] = 2000,
    count: Annotated[int, typer.Option("--count", "-n", min=100, help="Training images to load.")] = 20000,
    seed: int = 0,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for PyTorch.")] = None,
    quiet: QuietOption = False,
) -> None:
    """Train the evaluation classifier (discriminator trunk + two fully connected layers) on real images."""
    need_torch("train-classifier")
    from ..train import gan_metrics as gm
    from ..train.config import preset_config

    setup_logging(quiet)
    set_threads(threads)
    if out.exists() and not out.is_file():
        fail_usage(f"--out {out} is a folder; give the path of the .pt file to write")
    if out.exists():
        try:
            gm.load_classifier(out)
        except ValueError:
            fail_usage(f"--out {out} exists and is not a classifier lrgan wrote; choose another path")
    try:
        overrides = {"width": width}
        if channels is not None:
            if channels not in (1, 3):
                fail_usage(f"--channels must be 1 or 3, got {channels}")
            overrides["channels"] = channels
        cfg = preset_config(preset, **overrides)
        train_set = gm.load_labelled(data, "train", cfg.image_size, cfg.channels, count, seed=seed,
                                     mnist_dir=mnist, progress=not quiet)
        test_set = gm.load_labelled(data, "test", cfg.image_size, cfg.channels, max(1000, count // 4),
                                    seed=1234, mnist_dir=mnist, progress=not quiet)
    except (FileNotFoundError, ValueError) as exc:
        fail_usage(str(exc))
    model = gm.train_classifier(train_set, cfg, steps, seed=seed, progress=not quiet)
    probs, _ = gm.classify(model, test_set.images)
    accuracy = float((probs.argmax(1) == test_set.labels).mean() * 100)
    info = {"data": str(data), "steps": steps, "train_images": len(train_set.labels),
            "test_images": len(test_set.labels), "test_accuracy": accuracy}
    gm.save_classifier(out, model, cfg, train_set.classes, info)
    log.info("wrote %s", out)
    print_result(info)


@lrgan_app.command("evaluate-adversarial")
def evaluate_adversarial_command(
    generator: Annotated[list[str], typer.Option(help="CLASS=SAMPLER, once per class: the class index (0-based, in the classifier's order) and a sampler trained on that class only.")],
    classifier: Annotated[Path, typer.Option(help="The real-data classifier from `lrgan train-classifier`.")],
    data: Annotated[str, typer.Option(help="Real test images: mnist-one or a folder with a test/ class folder.")] = "mnist-one",
    mnist: MnistOption = None,
    per_class: Annotated[int, typer.Option(min=10, help="Samples drawn from each class's generator.")] = 2000,
    steps: Annotated[int, typer.Option(min=1, help="Steps of the classifier trained on the samples.")] = 2000,
    real_count: Annotated[int, typer.Option(min=10, help="Real test images to score on.")] = 5000,
    seed: int = 0,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for metrics.json (new, empty, or an earlier evaluation's).")] = None,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for PyTorch and onnxruntime.")] = None,
    quiet: QuietOption = False,
) -> None:
    """Adversarial Accuracy and Adversarial Divergence from one generator per class."""
    need_torch("evaluate-adversarial")
    from ..train.evaluate import evaluate_adversarial

    setup_logging(quiet)
    claim_eval_folder(out, "lrgan evaluate-adversarial")
    set_threads(threads)
    generators: dict[int, str] = {}
    for item in generator:
        key, sep, path = item.partition("=")
        if not sep or not key.strip().isdigit():
            fail_usage(f"--generator {item!r}: write CLASS=SAMPLER, for example 3=runs/digit-3.onnx")
        if int(key) in generators:
            fail_usage(f"--generator gives class {int(key)} twice; give one sampler per class")
        generators[int(key)] = open_model(path, "sampler", "--generator").path
    try:
        result = evaluate_adversarial(generators, classifier, data, mnist, per_class, steps, real_count, seed,
                                      out, progress=not quiet)
    except (ModelError, FileNotFoundError, ValueError) as exc:
        fail_usage(str(exc))
    mark_eval_folder(out, "lrgan evaluate-adversarial")
    print_result(result)


@lrgan_app.command("evaluate-faces")
def evaluate_faces_command(
    lfw: Annotated[Path, typer.Option(help="LFW archive (.tgz) or extracted tree.")],
    model: ModelOption = "lfw",
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="Held-out photos to re-frame and score.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the photo choice and the re-framing.")] = 2024,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for faces.json and the example figure.")] = None,
    box: Annotated[str, typer.Option(help="Box method of the model's boxes: moments or component (see `lrgan faces`).")] = "moments",
    quiet: QuietOption = False,
) -> None:
    """Compare face boxes with OpenCV's Haar cascade on re-framed held-out LFW photos."""
    setup_logging(quiet)
    if out is not None:
        need_training_extra("evaluate-faces", "matplotlib", "matplotlib (for its figures)")
    claim_eval_folder(out, "lrgan evaluate-faces")
    from ..train.face_eval import evaluate_faces

    try:
        result = evaluate_faces(model, lfw, count, seed, out, progress=not quiet, method=box)
    except (ModelError, FileNotFoundError, ValueError, RuntimeError) as exc:
        fail_usage(str(exc))
    mark_eval_folder(out, "lrgan evaluate-faces")
    for key, value in result.items():
        typer.echo(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")


def decompose_entry() -> None:
    decompose_app()


def lrgan_entry() -> None:
    lrgan_app()

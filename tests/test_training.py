"""Training loop: steps run, checkpoints are atomic and load with weights_only, resume is exact."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import tiny_overrides
from lrgan.train.checkpoint import load_checkpoint, save_atomic
from lrgan.train.config import TrainConfig, preset_config
from lrgan.train.datasets import SyntheticSource
from lrgan.train.loop import Trainer, reframing_inconsistency
from lrgan.train.networks import Layers, warp


def make_trainer(run_dir, digits, labels, conditional=True, steps=4, **train):
    model_cfg = preset_config("mnist-one", conditional=conditional, **tiny_overrides())
    values = dict(steps=steps, batch_size=8, warmup_steps=1, sample_every=2, checkpoint_every=2,
                  eval_every=2, log_every=1)
    values.update(train)
    train_cfg = TrainConfig(**values)
    source = SyntheticSource("mnist-one", digits[:200], labels[:200], seed=0)
    valid = SyntheticSource("mnist-one", digits[200:264], labels[200:264], seed=1)
    return Trainer(run_dir, model_cfg, train_cfg, source, valid, device="cpu")


@pytest.mark.parametrize("conditional", [True, False])
def test_training_writes_run_folder(tmp_path, mnist_test, conditional):
    trainer = make_trainer(tmp_path, *mnist_test, conditional=conditional)
    trainer.run(progress=False)
    assert (tmp_path / "last.pt").is_file()
    assert (tmp_path / "best.pt").is_file()
    assert (tmp_path / "samples" / "step_0000004.png").is_file()
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"]["conditional"] is conditional
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    if conditional:
        assert "mask_iou" in records[1]
        assert "loss_rec" in records[0]
    assert not list(tmp_path.glob("*.tmp"))


def test_checkpoint_loads_weights_only(tmp_path, mnist_test):
    trainer = make_trainer(tmp_path, *mnist_test, steps=2)
    trainer.run(progress=False)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["step"] == 2
    assert set(state["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert "opt_g" in state
    assert "opt_d" in state


def test_resume_is_exact(tmp_path, mnist_test):
    straight = make_trainer(tmp_path / "straight", *mnist_test, steps=6)
    straight.run(progress=False)

    first = make_trainer(tmp_path / "resumed", *mnist_test, steps=3, checkpoint_every=3)
    first.run(progress=False)
    torch.manual_seed(999)  # disturb the global RNG: resume must restore it
    second = make_trainer(tmp_path / "resumed", *mnist_test, steps=6)
    second.run(resume=True, progress=False)

    assert second.step == 6
    for name, value in straight.generator.state_dict().items():
        assert torch.equal(value, second.generator.state_dict()[name]), name
    for name, value in straight.discriminator.state_dict().items():
        assert torch.equal(value, second.discriminator.state_dict()[name]), name


def test_resume_rejects_other_config(tmp_path, mnist_test):
    make_trainer(tmp_path, *mnist_test, steps=2).run(progress=False)
    digits, labels = mnist_test
    other = Trainer(
        tmp_path, preset_config("mnist-one", conditional=True, **tiny_overrides(width=0.125)),
        TrainConfig(steps=4, batch_size=8), SyntheticSource("mnist-one", digits[:100], labels[:100], 0), None, "cpu",
    )
    with pytest.raises(ValueError, match="another model config"):
        other.run(resume=True, progress=False)


def test_save_atomic_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "state.pt"
    save_atomic({"model_config": {}, "generator": {"w": torch.ones(2)}}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError):
        save_atomic({"bad": Unpicklable()}, path)
    assert torch.equal(load_checkpoint(path)["generator"]["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]


def test_load_checkpoint_rejects_foreign_file(tmp_path):
    path = tmp_path / "other.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable lrgan checkpoint"):
        load_checkpoint(path)


def test_nonfinite_loss_stops_run(tmp_path, mnist_test):
    trainer = make_trainer(tmp_path, *mnist_test, steps=4)
    trainer.run(progress=False)
    trainer.cfg.steps = 8
    with torch.no_grad():
        for p in trainer.generator.parameters():
            p.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite loss at step 4"):
        trainer.run(progress=False)
    # The last good checkpoint is still the one from step 4.
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 4


def test_conditional_step_improves_reconstruction(tmp_path, mnist_test):
    trainer = make_trainer(tmp_path, *mnist_test, steps=30, warmup_steps=100, eval_every=30, log_every=1)
    trainer.run(progress=False)
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    losses = [r["loss_rec"] for r in records if "loss_rec" in r]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_lr_decay_reaches_zero(tmp_path, mnist_test):
    trainer = make_trainer(tmp_path, *mnist_test, steps=6, decay_start=2)
    lrs = []
    original = trainer.apply_lr_schedule

    def record() -> None:
        original()
        lrs.append(trainer.opt_g.param_groups[0]["lr"])

    trainer.apply_lr_schedule = record
    trainer.run(progress=False)
    base = trainer.cfg.lr
    assert lrs[:3] == [base, base, base]
    assert lrs[3] == pytest.approx(base * 3 / 4)
    assert lrs[-1] == pytest.approx(base / 4)


def test_batch_norm_recalibration_is_exact_average(tmp_path, mnist_test):
    """Recomputed statistics do not depend on what the momentum averages were before."""
    digits, labels = mnist_test
    model_cfg = preset_config("mnist-one", conditional=True, width=0.0625, norm="batch", encoder_norm="group")
    source = SyntheticSource("mnist-one", digits[:200], labels[:200], seed=0)
    trainer = Trainer(tmp_path, model_cfg, TrainConfig(steps=1, batch_size=8, recalibrate_batches=3), source, None, "cpu")
    bn = next(m for m in trainer.g_module.modules() if isinstance(m, torch.nn.BatchNorm2d))
    trainer.recalibrate_batch_norm()
    first = bn.running_mean.clone()
    with torch.no_grad():
        bn.running_mean.fill_(5.0)
    trainer.recalibrate_batch_norm()
    assert torch.allclose(bn.running_mean, first)
    assert bn.momentum == 0.1  # restored after recalibration


def test_mask_binary_loss_values():
    from lrgan.train.loop import mask_binary_loss

    assert mask_binary_loss(torch.tensor([0.0, 1.0])).item() == 0.0
    assert mask_binary_loss(torch.tensor([0.5, 0.5])).item() == pytest.approx(0.5)
    assert mask_binary_loss(torch.tensor([0.2, 0.9])).item() == pytest.approx(0.15)


def test_mask_binary_prior_logged_and_sharpens(tmp_path, mnist_test):
    """Twenty steps with a heavy prior leave fewer undecided mask values than twenty without."""
    from lrgan.train.loop import mask_binary_loss

    undecided = {}
    for weight in (0.0, 50.0):
        trainer = make_trainer(tmp_path / str(weight), *mnist_test, conditional=False, steps=20,
                               mask_binary_weight=weight)
        trainer.run(progress=False)
        records = [json.loads(line) for line in (tmp_path / str(weight) / "log.jsonl").read_text().splitlines()]
        assert ("loss_binary" in records[0]) is (weight > 0)
        torch.manual_seed(0)
        with torch.no_grad():
            trainer.generator.train()
            undecided[weight] = mask_binary_loss(trainer.generator(torch.randn(32, 2, 100)).mask).item()
    assert undecided[50.0] < undecided[0.0]


def test_hinge_loss_trains_both_modes(tmp_path, mnist_test):
    for conditional in (True, False):
        folder = tmp_path / str(conditional)
        trainer = make_trainer(folder, *mnist_test, conditional=conditional, steps=4, gan_loss="hinge")
        trainer.run(progress=False)
        records = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
        assert all(np.isfinite(r["loss_d"]) for r in records if "loss_d" in r)
        assert any("loss_d" in r for r in records)
    with pytest.raises(ValueError, match="gan_loss"):
        TrainConfig(gan_loss="wasserstein").validate()


def test_reframing_inconsistency_is_zero_for_moved_decompositions():
    torch.manual_seed(0)
    batch, size = 3, 16
    plain_masks = torch.zeros(batch, 1, 1, size, size)
    plain_masks[:, :, :, 4:12, 5:11] = 1.0
    plain_pose = torch.tensor([[1.8, 0.05, 0.1], [0.0, 1.6, -0.2]]).expand(batch, 1, 2, 3)
    thetas = torch.tensor([[[2.0, 0, 0.3], [0, 2.0, -0.1]], [[0.8, 0, 0], [0, 0.8, 0.2]],
                           [[1.0, 0, 0], [0, 1.0, 0]]])
    framed_masks = warp(plain_masks.flatten(0, 1), thetas).view_as(plain_masks)
    bottom = torch.tensor([[[0.0, 0.0, 1.0]]]).expand(batch, 1, 3)
    framed_pose = plain_pose @ torch.cat([thetas, bottom], dim=1)[:, None]

    def layers(masks, poses):
        zeros = torch.zeros(2 * batch, 1, 3, size, size)
        return Layers(background=zeros[:, 0], foreground=zeros, mask=masks, warped_foreground=zeros,
                      warped_mask=masks, pose=poses, canvases=zeros.expand(-1, 2, -1, -1, -1))

    consistent = layers(torch.cat([framed_masks, plain_masks]), torch.cat([framed_pose, plain_pose]))
    loss_mask, loss_pose = reframing_inconsistency(consistent, thetas)
    assert loss_mask.item() < 1e-6
    assert loss_pose.item() < 1e-6
    # A decomposition that ignores the re-framing (the same mask and pose in both) is penalised.
    fixed = layers(torch.cat([plain_masks, plain_masks]), torch.cat([plain_pose, plain_pose]))
    loss_mask, loss_pose = reframing_inconsistency(fixed, thetas)
    assert loss_mask.item() > 0.05
    assert loss_pose.item() > 0.05


def test_anchor_offset_zero_at_the_anchor():
    from lrgan.train.loop import anchor_offset

    thetas = torch.tensor([[[2.0, 0, 0.3], [0, 2.0, -0.1]], [[0.8, 0, 0], [0, 0.8, 0.2]]])
    anchor = torch.tensor([[1.7, 0.0, 0.0], [0.0, 1.7, 0.0]])
    bottom = torch.tensor([[[0.0, 0.0, 1.0]]]).expand(2, 1, 3)
    framed = (anchor @ torch.cat([thetas, bottom], dim=1))[:, None]
    plain = anchor.expand(2, 1, 2, 3)
    assert anchor_offset(torch.cat([framed, plain]), thetas, 1.7).item() < 1e-6
    # The same centred square in the re-framed photos ignores the re-framing: penalised.
    assert anchor_offset(torch.cat([plain, plain]), thetas, 1.7).item() > 0.05
    # So is the right placement at another scale.
    assert anchor_offset(torch.cat([framed, plain]), thetas, 2.0).item() > 0.05

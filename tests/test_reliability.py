"""Training survives SIGKILL and runs on two processes with DistributedDataParallel (gloo)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lrgan.train.checkpoint import load_checkpoint

TINY = ["--preset", "mnist-one", "--mode", "conditional", "--width", "0.0625", "--batch-size", "8",
        "--warmup", "1", "--device", "cpu", "--threads", "1", "-q"]


def train_command(mnist_dir: Path, out: Path, steps: int, every: int, resume: bool) -> list[str]:
    command = [sys.executable, "-m", "lrgan.cli", "train", "--out", str(out), "--steps", str(steps)]
    if resume:
        return command + ["--resume", "-q", "--threads", "1"]
    return command + ["--mnist", str(mnist_dir), "--every", str(every), "--log-every", "1", *TINY]


def logged_steps(run: Path) -> list[int]:
    path = run / "log.jsonl"
    if not path.exists():
        return []
    steps = []
    for line in path.read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except ValueError:  # the kill may cut the last line short
            pass
    return steps


@pytest.mark.slow
def test_sigkill_then_resume(tmp_path, mnist_dir):
    run = tmp_path / "run"
    every, total = 3, 60
    rng = random.Random(7)
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    for attempt in range(3):
        process = subprocess.Popen(train_command(mnist_dir, run, total, every, resume=attempt > 0), env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # Wait until the run is past its start-up, then kill it at a random moment.
        deadline = time.time() + 120
        start_steps = len(logged_steps(run))
        while len(logged_steps(run)) < start_steps + 4 and time.time() < deadline and process.poll() is None:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
        process.send_signal(signal.SIGKILL)
        process.wait()

        reached = max(logged_steps(run), default=0)
        state = load_checkpoint(run / "last.pt")  # never torn
        assert reached - state["step"] <= every, (reached, state["step"])

    # A final resume runs to the end; every step after the checkpoint is run once more at most.
    result = subprocess.run(train_command(mnist_dir, run, total, every, resume=True), env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert load_checkpoint(run / "last.pt")["step"] == total
    assert max(logged_steps(run)) == total
    assert not list(run.glob(".*.tmp"))


@pytest.mark.slow
def test_two_process_ddp_gloo(tmp_path, mnist_dir):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.fail("torchrun not found beside the Python interpreter; it ships with torch")
    run = tmp_path / "ddp"
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    result = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", "-m", "lrgan.cli", "train", "--out", str(run),
         "--mnist", str(mnist_dir), "--steps", "4", "--every", "2", "--log-every", "1", *TINY],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((run / "config.json").read_text())["processes"] == 2
    assert load_checkpoint(run / "last.pt")["step"] == 4
    # Only rank 0 writes the log: each step appears once.
    assert logged_steps(run) == [1, 2, 3, 4]

"""Exactness across kills from Python: a training script killed with SIGKILL at random
moments and rerun ends with the bytes of an uninterrupted run, and with the parameters the
CLI trains for the same model and data; Ctrl-C (SIGINT) in `fit` saves first, then raises
KeyboardInterrupt, and the rerun resumes."""
import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import numpy as np
from safetensors.numpy import load_file, save_file

HERE = pathlib.Path(__file__).resolve().parent
SCRIPT = HERE / "train_script.py"
KILLS = 10


def run(out, backup, **kw):
    return subprocess.Popen([sys.executable, str(SCRIPT), str(out), str(backup)], **kw)


def wait_for(path, proc, timeout=120):
    start = time.time()
    while not path.exists():
        assert proc.poll() is None, f"the script ended ({proc.returncode}) before {path} appeared"
        assert time.time() - start < timeout, f"{path} never appeared"
        time.sleep(0.01)


def test_a_script_killed_ten_times_ends_with_the_bits_of_an_uninterrupted_run_and_the_cli(
        tmp_path, wgfit_bin, digits_data, convnet_json):
    whole = run(tmp_path / "whole.safetensors", tmp_path / "whole.backup")
    assert whole.wait() == 0

    rng = random.Random(3)
    out, backup = tmp_path / "killed.safetensors", tmp_path / "killed.backup"
    kills = 0
    while kills < KILLS:
        proc = run(out, backup)
        wait_for(backup / "latest.json", proc)
        time.sleep(rng.uniform(0.0, 0.4))
        if proc.poll() is not None:
            break  # it finished before this kill
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    assert kills == KILLS, f"only {kills} kills landed before the run ended"
    assert not out.exists()
    assert run(out, backup).wait() == 0
    assert out.read_bytes() == (tmp_path / "whole.safetensors").read_bytes()

    # The CLI on the same model, data, seed and optimizer.
    x, y = digits_data
    save_file({"x": x, "y": y.astype(np.uint32)}, str(tmp_path / "digits.safetensors"))
    (tmp_path / "model.json").write_text(convnet_json)
    cli = subprocess.run(
        [str(wgfit_bin), "train", "--model", "model.json", "--data", "digits.safetensors",
         "--epochs", "3", "--batch-size", "16", "--optimizer", "adam", "--lr", "0.001",
         "--seed", "7", "--no-backup", "--output", "cli.safetensors", "--verbose", "0"],
        cwd=tmp_path, capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    ours, theirs = load_file(str(out)), load_file(str(tmp_path / "cli.safetensors"))
    assert ours.keys() == theirs.keys()
    for k in ours:
        assert np.array_equal(ours[k].view(np.uint32), theirs[k].view(np.uint32)), k


def test_ctrl_c_saves_then_raises_keyboard_interrupt_and_the_rerun_resumes(tmp_path):
    out, backup = tmp_path / "out.safetensors", tmp_path / "run.backup"
    proc = run(out, backup, stderr=subprocess.PIPE, text=True)
    wait_for(backup / "latest.json", proc)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert "KeyboardInterrupt" in err, err
    assert "preempted by signal 2: state saved" in err, err
    assert proc.returncode != 0 and not out.exists()
    resumed = run(out, backup, stderr=subprocess.PIPE, text=True)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    whole = run(tmp_path / "whole.safetensors", tmp_path / "whole.backup")
    assert whole.wait() == 0
    assert out.read_bytes() == (tmp_path / "whole.safetensors").read_bytes()


def test_sigterm_saves_and_exits_143(tmp_path):
    out, backup = tmp_path / "out.safetensors", tmp_path / "run.backup"
    proc = run(out, backup, stderr=subprocess.PIPE, text=True)
    wait_for(backup / "latest.json", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert (backup / "latest.json").exists()


def test_ctrl_c_without_a_backup_raises_keyboard_interrupt_at_the_next_batch(tmp_path):
    out = tmp_path / "out.safetensors"
    proc = run(out, "-", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "training"
    time.sleep(1.0)
    sent = time.time()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert "KeyboardInterrupt" in err, err
    assert time.time() - sent < 10, "fit went on long after Ctrl-C"
    assert not out.exists()

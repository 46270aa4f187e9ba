"""A process SIGKILLed while saving never destroys the previous file.

A child process saves a model to one path over and over, each version with different weights, and prints each
version number once `save` has returned. We kill it with SIGKILL at a random moment, several times (a fresh child
each time, continuing the numbering), and check after each kill that
- the file at the path loads and is exactly the version last reported, or the next one (the kill landed after the
  rename but before the print): never a mix, never a corrupt file;
- at most one temporary file is left (the one the killed child was writing). The next save to the path removes
  temporary files whose writer is dead, so they never accumulate; the final save here leaves none.
A kill that leaves the temporary file behind landed mid-write (after the temporary file was created, before the
rename). The first MIN_ROUNDS kills come at random moments; if none of them landed mid-write (a slow build, such as
the sanitizer's, spends most of its loop outside the write), the later rounds watch the folder and kill as soon as a
temporary file appears, until at least one kill did (up to MAX_ROUNDS children), so the claim is tested against a
real interrupted write, not only against kills between saves.
"""
import os
import pathlib
import random
import select
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import cnnlite
from cnnlite import models

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")

CHILD = r"""
import sys
import numpy as np
from cnnlite import models, layers

def build():
    model = models.Sequential([layers.Dense(192, activation="relu", input_shape=(400,)),
                               layers.Dense(10, activation="softmax")], name="victim")
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model

def version_weights(model, version):
    return [np.full(w.shape, version, np.float32) + np.arange(w.size, dtype=np.float32).reshape(w.shape) % 251
            for w in model.get_weights()]

if __name__ == "__main__":
    path, version = sys.argv[1], int(sys.argv[2])
    model = build()
    while True:
        model.set_weights(version_weights(model, version))
        model.save(path)
        print(version, flush=True)
        version += 1
"""


MIN_ROUNDS, MAX_ROUNDS = 6, 30


def child_env():
    env = dict(os.environ)
    package_parent = str(pathlib.Path(cnnlite.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = package_parent + os.pathsep + env.get("PYTHONPATH", "")
    return env


def loaded_version(path, namespace):
    model = models.load_model(path)
    weights = model.get_weights()
    version = int(weights[0].flat[0])
    expected = namespace["version_weights"](model, version)
    for got, want in zip(weights, expected):
        np.testing.assert_array_equal(got, want)
    assert model.name == "victim" and type(model.optimizer).__name__ == "Adam"
    return version


def temps(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_sigkill_during_repeated_saves_never_corrupts_the_file(tmp_path):
    script = tmp_path / "saver.py"
    script.write_text(CHILD)
    namespace = {}
    exec(compile(CHILD.replace('if __name__ == "__main__":', "if False:"), "saver", "exec"), namespace)
    path = tmp_path / "model.keras"
    rng = random.Random(20240607)
    next_version, rounds, killed_mid_write = 1, 0, 0
    deadline = time.monotonic() + 120
    while rounds < MIN_ROUNDS or (killed_mid_write == 0 and rounds < MAX_ROUNDS):
        rounds += 1
        child = subprocess.Popen([sys.executable, str(script), str(path), str(next_version)], cwd=tmp_path,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
        try:
            ready, _, _ = select.select([child.stdout], [], [], 60)
            assert ready, "the child reported no save within 60 s"
            first = child.stdout.readline()  # wait until this child has completed one save
            assert first.strip().isdigit(), f"child failed: {first!r} {child.stderr.read() if not first else ''}"
            if rounds <= MIN_ROUNDS:
                time.sleep(rng.uniform(0.0, 0.12))
            else:  # kill while this child's next save is writing its temporary file
                watch_until = time.monotonic() + 10
                while not temps(tmp_path) and time.monotonic() < watch_until:
                    pass
            child.send_signal(signal.SIGKILL)
        finally:
            if child.poll() is None:
                child.kill()
            rest, err = child.communicate(timeout=10)
        assert child.returncode == -signal.SIGKILL, err
        reported = [int(v) for v in (first + rest).split()]
        last = reported[-1]
        version = loaded_version(path, namespace)
        assert version in (last, last + 1), (version, last)
        left = temps(tmp_path)
        assert len(left) <= 1, left
        killed_mid_write += len(left)
        next_version = max(version, last) + 1
        assert time.monotonic() < deadline
    print(f"{rounds} kills, {killed_mid_write} of them left a partial temporary file")
    assert killed_mid_write >= 1, f"none of {rounds} kills landed while a save was writing its temporary file"
    models.load_model(path).save(path)  # the next save cleans up after the dead writers
    assert temps(tmp_path) == []
    assert loaded_version(path, namespace) == version

import os
import pathlib
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Test helpers (reference_ops.py) are imported by module name; only tests/ goes on the path, never the source root,
# so CI still imports the installed cnnlite.
sys.path.insert(0, str(ROOT / "tests"))
SHARED_DATA = ROOT.parent / "shared" / "datasets"

# Tests never download: point the loader at the shared MNIST files unless the caller chose a folder.
if "CNNLITE_DATA_DIR" not in os.environ and (SHARED_DATA / "mnist").is_dir():
    os.environ["CNNLITE_DATA_DIR"] = str(SHARED_DATA)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)

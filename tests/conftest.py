import os
import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Tests never download: point the loader at the shared MNIST files (shared/datasets beside the checkout, or beside
# any parent folder, as for git worktrees) unless the caller chose a folder.
SHARED_DATA = next((p / "shared" / "datasets" for p in ROOT.parents if (p / "shared" / "datasets" / "mnist").is_dir()),
                   None)
if "CNNLITE_DATA_DIR" not in os.environ and SHARED_DATA is not None:
    os.environ["CNNLITE_DATA_DIR"] = str(SHARED_DATA)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)

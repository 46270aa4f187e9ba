"""What a test needs from outside the suite (data files, optional packages), and what happens when it is missing.

On a developer's machine a test whose data or package is missing is skipped, with the reason. Under CI (the CI
environment variable set, as .ci/run runs) it fails instead: .ci/run installs everything the suite needs (the
[test] extra, Debian's dataset-fashion-mnist, the shared MNIST files beside the checkout), so a CI run never
passes by skipping for missing data or packages.
"""
import importlib
import os

import pytest


def in_ci():
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def missing(what):
    """Skip (fail under CI) because `what` is not available."""
    if in_ci():
        pytest.fail(f"{what}; CI must provide it (.ci/run installs the suite's data and packages)", pytrace=False)
    pytest.skip(what, allow_module_level=True)


def importorskip(name):
    """Import module `name`, or missing(...) when it cannot be imported."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        missing(f"{name} is not installed ({err})")

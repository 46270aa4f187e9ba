"""What a test needs from outside the suite (data files, optional packages), and what happens when it is missing.

On a developer's machine a test whose data or package is missing is skipped, with the reason. Under CI (the CI
environment variable set, as .ci/run runs) it fails instead: .ci/run installs everything the suite needs (the
[test] extra, Debian's dataset-fashion-mnist, the shared MNIST files beside the checkout), so a CI run never
passes by skipping for missing data or packages.

Packages that are never cnnlite's dependencies, not even its [test] extra (Keras and TensorFlow), are not installed
for the suite: the tests that need them skip there, saying where they do run, and fail instead when the environment
variable that the CI step installing them sets is 1 (`outside_the_suite`; .ci/run's Keras step sets
CNNLITE_REQUIRE_KERAS=1 in its own venv, .venv-keras).
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


def outside_the_suite(what, env, where):
    """`what` (a package that is never a dependency of cnnlite) is missing: fail when the environment variable `env`
    is 1 (set by the CI step that installs the package), else skip, naming where the test runs."""
    if os.environ.get(env) == "1":
        pytest.fail(f"{what}; {env}=1 requires it", pytrace=False)
    pytest.skip(f"{what} (never a dependency of cnnlite): {where}; {env}=1 makes this a failure",
                allow_module_level=True)

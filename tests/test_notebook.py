"""examples/chapter.ipynb never rots: it is stored without outputs, and its quick mode runs top to bottom in a fresh
kernel (nbclient + ipykernel), every cell without error, with its figures and plausible accuracies for the subset."""
import importlib.util
import json
import math
import os
import pathlib
import re
import sys
import time

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
if importlib.util.find_spec("ipykernel") is None:  # not imported here: cnnlite takes an imported ipykernel for a notebook
    pytest.skip("ipykernel is not installed (pip install '.[test]')", allow_module_level=True)
pytest.importorskip("matplotlib")

NOTEBOOK = pathlib.Path(__file__).resolve().parent.parent / "examples" / "chapter.ipynb"
FLOAT = r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"

# Test accuracies of quick mode (the first 5000 training and 1000 test images; 10, 10, 4 and 3 epochs of 5 batches),
# one band per model, in the order the notebook trains them. Measured (np.random.seed(1) before each model, the
# same at any thread count): 0.556, 0.712, 0.811, 0.822. A model that does not learn (about 0.1, chance) or a
# pipeline that scrambles images or labels misses its band; the margins allow for another CPU's kernels.
BANDS = [("MLP, sigmoid", 0.45, 0.75), ("MLP, ReLU", 0.60, 0.85), ("CNN, 8 filters", 0.70, 0.92),
         ("full network", 0.70, 0.95)]


def read():
    return nbformat.read(str(NOTEBOOK), as_version=4)


def test_notebook_is_stored_without_outputs():
    nb = read()
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source.startswith("%matplotlib inline")
    assert "QUICK = False" in code[0].source and "CNNLITE_NOTEBOOK_QUICK" in code[0].source
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    headings = [line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()
                if line.startswith("## ")]
    assert [h.split()[1] for h in headings] == [f"8.{i}" for i in range(1, 9)]


def _data_dir():
    folder = os.environ.get("CNNLITE_DATA_DIR")
    if not folder or not os.path.isdir(os.path.join(folder, "mnist")):
        pytest.skip("no local MNIST (set CNNLITE_DATA_DIR to a folder holding mnist/); tests never download")
    return os.path.abspath(folder)


@pytest.fixture
def kernel_name(tmp_path, monkeypatch):
    """A kernelspec for this very Python (whatever kernels the machine has installed), found through JUPYTER_PATH."""
    spec = tmp_path / "jupyter" / "kernels" / "cnnlite-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "cnnlite test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("CNNLITE_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("CNNLITE_DATA_DIR", _data_dir())
    if os.environ.get("PYTHONPATH"):  # the kernel runs in another folder: make relative entries absolute
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(os.path.abspath(p)
                                                         for p in os.environ["PYTHONPATH"].split(os.pathsep)))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    return "cnnlite-test"


def outputs_of(cell, kind):
    if kind == "image/png":
        return [o for o in cell.outputs if "image/png" in o.get("data", {})]
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == kind)


@pytest.mark.slow
def test_quick_mode_runs_top_to_bottom(kernel_name, tmp_path):
    nb = read()
    work = tmp_path / "run"
    work.mkdir()
    client = nbclient.NotebookClient(nb, kernel_name=kernel_name, timeout=300, startup_timeout=120,
                                     resources={"metadata": {"path": str(work)}})
    t0 = time.monotonic()
    client.execute()  # raises CellExecutionError, naming the cell, on the first error
    print(f"notebook ran in {time.monotonic() - t0:.1f} s")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert "quick mode" in outputs_of(code[0], "stdout")

    # the figures: every cell that calls cnnlite.plot shows its images, inline
    for cell in code:
        n_plots = len(re.findall(r"plot\.plot_\w+\(", cell.source))
        if n_plots and "for layer in" not in cell.source:
            assert len(outputs_of(cell, "image/png")) == n_plots, cell.source[:80]
    live = [c for c in code if "LivePlot()" in c.source]
    assert len(live) == 2
    for cell in live:  # one picture per fit, redrawn in place (display handle), not one per epoch
        shown = outputs_of(cell, "image/png")
        assert len(shown) == 1 and shown[0].output_type == "display_data", cell.source[:80]
    maps = [c for c in code if "for layer in model.layers" in c.source]
    assert len(maps) == 1 and len(outputs_of(maps[0], "image/png")) == 5  # 3 Conv2D + 2 MaxPooling2D
    assert len([o for c in code for o in outputs_of(c, "image/png")]) >= 16

    # the accuracies, from the chapter's own lines
    text = "".join(outputs_of(c, "stdout") for c in code)
    accuracies = [float(a) for a in re.findall(rf"^Test accuracy: ({FLOAT})$", text, re.M)]
    assert len(accuracies) == len(BANDS), text[-2000:]
    for (model, low, high), acc in zip(BANDS, accuracies):
        assert low <= acc <= high, f"{model}: test accuracy {acc} outside [{low}, {high}] in quick mode"
    losses = [float(a) for a in re.findall(rf"^Test loss: ({FLOAT})$", text, re.M)]
    assert len(losses) == len(BANDS) and all(math.isfinite(v) and 0 < v < 2.5 for v in losses)
    assert "Conv2D vs the loop: max |difference|" in text

"""The Colab notebooks, executed top to bottom by nbclient in their small setting
(DEEPLAB_DPC_NOTEBOOK_SMOKE=1: tiny runs, install cell skipped). Colab itself is not
tested here."""
import os
import re

import nbclient
import nbformat
import pytest

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "notebooks")


def _run(name, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPLAB_DPC_NOTEBOOK_SMOKE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no shared synthetic set
    notebook = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    texts, images = [], 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") + str(output.get("data", {}).get(
                "text/plain", "")))
            images += "image/png" in output.get("data", {})
    return "\n".join(texts), images


def _steps(text):
    return [(int(a), int(b)) for a, b in re.findall(r"step (\d+)/(\d+)", text)]


def test_quickstart_trains_evaluates_and_shows_the_prediction(tmp_path, monkeypatch):
    text, images = _run("quickstart.ipynb", tmp_path, monkeypatch)
    assert _steps(text) and _steps(text)[-1] == (12, 12), text[-2000:]
    miou = float(re.search(r"val mIOU: ([0-9.]+)", text).group(1))
    assert 0.0 < miou <= 1.0
    assert images == 2  # image | label | prediction, and the per-class IoU bars


def test_cell_notebook_draws_counts_and_searches(tmp_path, monkeypatch):
    text, images = _run("cell_and_search_space.ipynb", tmp_path, monkeypatch)
    assert "B=5: 418,414,128,120 cells" in text  # the paper's 5! x 81^5
    trials = re.search(r"(\d+) trials; best ([0-9.]+)% mIOU", text)
    assert trials and int(trials.group(1)) == 4, text[-2000:]
    assert images == 2  # the published cell's diagram and the proxy scores


def test_serving_notebook_segments_with_plain_tensorflow(tmp_path, monkeypatch):
    text, images = _run("serving.ipynb", tmp_path, monkeypatch)
    assert _steps(text)[-1] == (10, 10)
    assert "classes present:" in text
    assert images == 1

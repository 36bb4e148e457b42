"""The tour notebook runs from top to bottom (nbclient, a fresh kernel, the embedded world-gpt2) and is stored
without outputs."""

import json
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "experiments" / "notebooks" / "tour.ipynb"


def test_notebook_is_stored_without_outputs():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)


def test_tour_notebook_runs(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # one torch thread, as in the rest of the suite (two shared cores); the kernel inherits RCID_TL_PNG=0
    notebook.cells.insert(0, nbformat.v4.new_code_cell("import torch; torch.set_num_threads(1)"))
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = {i: c.outputs for i, c in enumerate(notebook.cells) if c.cell_type == "code"}
    assert not [o for cell in outputs.values() for o in cell if o.output_type == "error"]
    last = notebook.cells[-1].outputs
    assert last[0]["data"]["text/plain"] == "True"  # the saved result read back equals the original
    figures = [o for cell in outputs.values() for o in cell if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(figures) == 4  # patch, knockout, consistency, attention

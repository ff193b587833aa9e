"""The notebooks (notebooks/*.ipynb): committed without outputs, and each executed top to bottom with papermill on
the generated lake and its warehouse."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
# a notebook's own parameters for the generated lake: the what-if over the October days its tariffs price
PARAMETERS = {"tariff_what_if": {"start": "2024-10-25", "end": "2024-10-29"}}


def test_there_are_notebooks():
    assert {p.stem for p in NOTEBOOKS} >= {"load_profile_clustering", "baseload_and_peaks", "tariff_what_if"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_is_committed_without_outputs_and_with_parameters(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), f"{path.name}: clear its outputs"
    assert any("parameters" in c.metadata.get("tags", []) for c in code), f"{path.name}: no papermill parameters"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_runs_top_to_bottom_with_its_plots(path, dbt_warehouse, tmp_path):
    import papermill

    settings = dbt_warehouse.settings
    out = tmp_path / path.name
    papermill.execute_notebook(str(path), str(out), kernel_name="python3", progress_bar=False,
                               parameters={"lake": settings.paths.lake, "warehouse": str(settings.warehouse_path),
                                           **PARAMETERS.get(path.stem, {})})
    done = nbformat.read(out, as_version=4)
    outputs = [o for c in done.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no plot"

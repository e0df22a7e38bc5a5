"""Every notebook in notebooks/ runs from a clean kernel without an error.

The kernel is this interpreter (``sys.executable -m ipykernel_launcher``), registered in a
temporary kernelspec folder, so the notebooks import the checkout under test and nothing
is looked up or installed over the network. Each notebook runs in notebooks/ as its
working directory, as Jupyter would run it.

Also a script: ``python tests/test_notebooks.py [--inplace]`` executes every notebook
and, with ``--inplace``, saves the outputs into the files (for reading them on GitHub).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = {"explore_schedules.ipynb", "layerpipe_vs_pipedream.ipynb", "delayed_gradients.ipynb"}
KERNEL = "layerpipe-test"


def kernel_manager(tmp: Path):
    """A KernelManager that starts this interpreter's ipykernel (found in ``tmp``)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec_dir = tmp / "kernels" / KERNEL
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python ({sys.executable})", "language": "python",
        "env": {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYTHONHASHSEED": "0"},
    }))
    ksm = KernelSpecManager(kernel_dirs=[str(tmp / "kernels")])
    return KernelManager(kernel_name=KERNEL, kernel_spec_manager=ksm, transport="ipc",
                         ip=str(tmp / "ipc"), connection_file=str(tmp / "kernel.json"))


def execute(path: Path, tmp: Path, timeout: int = 300):
    """Run ``path`` from a clean kernel; the executed notebook (raises on a cell's error)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, km=kernel_manager(tmp), timeout=timeout, kernel_name=KERNEL,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return nb


def test_the_notebooks_exist():
    assert EXPECTED <= {p.name for p in NOTEBOOKS}


def _outputs(nb) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_from_a_clean_kernel(path, tmp_path):
    nb = execute(path, tmp_path)
    outputs = _outputs(nb)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # every notebook shows at least one figure and printed numbers
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure"
    assert any(o.get("output_type") == "stream" and any(ch.isdigit() for ch in o.get("text", "")) for o in outputs)


def main(argv: list[str]) -> int:  # pragma: no cover - a maintenance script
    import tempfile

    import nbformat

    for path in NOTEBOOKS:
        with tempfile.TemporaryDirectory() as tmp:
            nb = execute(path, Path(tmp))
        if "--inplace" in argv:
            nbformat.write(nb, path)
        print(f"ran {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))

"""`brickyard report`: run the notebooks headless against a lakehouse and write one HTML report.

Each notebook in `notebooks/` is executed by papermill on a fresh Python kernel, with its
parameters cell set (lakehouse root, pinned table versions, export, run). The executed notebooks
are kept beside the report, so a reader can open any of them in Jupyter with its outputs:

    <lakehouse>/reports/<stamp>/01_catalog.ipynb ...   the executed notebooks
    <lakehouse>/reports/<stamp>/report.html             all of them as one page, code hidden
    <lakehouse>/reports/latest -> <stamp>

A notebook that fails still lands in the report, its error shown where it happened, and the
command then exits non-zero naming the notebook and the error.
"""

from __future__ import annotations

import html
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .pipelines.errors import BrickyardError

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@dataclass
class Outcome:
    notebook: str
    executed: Path
    seconds: float
    error: str | None = None


def notebooks(folder: Path = NOTEBOOKS) -> list[Path]:
    found = sorted(p for p in Path(folder).glob("*.ipynb") if not p.name.startswith("."))
    if not found:
        raise BrickyardError(f"no notebooks (*.ipynb) in {folder}")
    return found


def parse_versions(pairs: list[str] | None) -> dict[str, int]:
    """TABLE=VERSION pairs (`gold.tokens=7`) as a dict, with a clear error for a malformed one."""
    out = {}
    for pair in pairs or []:
        table, _, version = pair.partition("=")
        if not table.strip() or not version.strip().isdigit():
            raise BrickyardError(f"--as-of {pair!r}: expected TABLE=VERSION, e.g. gold.tokens=7")
        out[table.strip()] = int(version)
    return out


def _local_kernels(folder: str):
    """A kernel manager that talks to its kernel over Unix sockets in `folder` (not TCP ports)."""
    from jupyter_client.manager import AsyncKernelManager

    class LocalKernelManager(AsyncKernelManager):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.transport, self.ip = "ipc", os.path.join(folder, "kernel")

    return LocalKernelManager


def execute(notebook: Path, out_dir: Path, params: dict, timeout: int) -> Outcome:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    declared = papermill.inspect_notebook(str(notebook))
    executed = out_dir / notebook.name
    t = time.time()
    error = None
    with tempfile.TemporaryDirectory(prefix="brickyard-kernel-") as sockets:
        try:
            papermill.execute_notebook(str(notebook), str(executed), kernel_name="python3", progress_bar=False,
                                       parameters={k: v for k, v in params.items() if k in declared},
                                       cwd=str(notebook.parent), execution_timeout=timeout,
                                       kernel_manager_class=_local_kernels(sockets))
        except PapermillExecutionError as e:
            error = f"cell {e.exec_count}: {e.ename}: {e.evalue}"
    return Outcome(notebook.stem, executed, time.time() - t, error)


def _title(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return "untitled"


def render(outcomes: list[Outcome], lakehouse: Path, params: dict, dest: Path) -> Path:
    """One HTML page from the executed notebooks: a header, a table of contents, every notebook
    with its code hidden (the parameter cells dropped)."""
    import nbformat
    from nbconvert import HTMLExporter

    merged = nbformat.v4.new_notebook()
    parts = []
    for o in outcomes:
        nb = nbformat.read(str(o.executed), as_version=4)
        merged.metadata = merged.metadata or nb.metadata
        title = _title(nb)
        anchor = title.replace(" ", "-")
        parts.append(f"- [{title}](#{anchor})" + (f" (**failed**: {html.escape(o.error)})" if o.error else ""))
        merged.cells += [c for c in nb.cells if not ({"parameters", "injected-parameters"} & set(c.metadata.get("tags", [])))]
    pinned = ", ".join(f"{k}@v{v}" for k, v in sorted(params.get("versions", {}).items())) or "latest versions"
    header = (f"# brickyard report\n\nLakehouse `{lakehouse}`, tables at {pinned}; written "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. The notebooks behind each section are "
              f"beside this file.\n\n" + "\n".join(parts))
    merged.cells.insert(0, nbformat.v4.new_markdown_cell(header))
    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    exporter.log.setLevel("ERROR")  # plots carry no alt text; the section headings say what they show
    body, _ = exporter.from_notebook_node(merged, resources={"metadata": {"name": "brickyard report"}})
    dest.write_text(body, encoding="utf-8")
    return dest


def build(lakehouse: Path, versions: dict[str, int] | None = None, export_id: str | None = None,
          run_id: str | None = None, folder: Path = NOTEBOOKS, out_dir: Path | None = None,
          timeout: int = 900, quiet: bool = False) -> tuple[Path, list[Outcome]]:
    """Execute every notebook against `lakehouse` and write the report; returns (report, outcomes)."""
    from .pipelines.lake.lakeview import Lakeview

    lakehouse = Path(lakehouse).resolve()
    # a lakehouse, versions, export or run that cannot be read fails here, in one sentence
    lv = Lakeview(lakehouse, versions)
    if export_id:
        lv.manifest(export_id)
    if run_id and run_id not in set(lv.training_runs()["run_id"]):
        raise BrickyardError(f"no training run {run_id} in this lakehouse's MLflow store")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out_dir = Path(out_dir) if out_dir else lakehouse / "reports" / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {"lakehouse": str(lakehouse), "versions": dict(versions or {}), "export_id": export_id, "run_id": run_id}
    outcomes = []
    for nb in notebooks(folder):
        o = execute(nb, out_dir, params, timeout)
        outcomes.append(o)
        if not quiet:
            print(f"report: {o.notebook} {'FAILED ' + o.error if o.error else 'ran'} in {o.seconds:.1f}s")
    report = render(outcomes, lakehouse, params, out_dir / "report.html")
    if out_dir.parent == lakehouse / "reports":
        latest = out_dir.parent / "latest"
        latest.unlink(missing_ok=True)
        latest.symlink_to(out_dir.name)
    return report, outcomes


def check(outcomes: list[Outcome], report: Path) -> None:
    failed = [o for o in outcomes if o.error]
    if failed:
        raise BrickyardError(f"notebook {failed[0].notebook} failed at {failed[0].error}"
                             + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else "")
                             + f"; {report} shows where")

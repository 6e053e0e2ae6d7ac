"""The package's shape: one import name, no import cycles, and a trainer that imports no Spark job."""

import ast
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# the folders that make up the `brickyard` package, and their import names
PACKAGES = {"brickyard": "brickyard", "pipelines": "brickyard.pipelines", "model": "brickyard.model", "training": "brickyard.training"}


def _outside_the_checkout(code: str) -> str:
    with tempfile.TemporaryDirectory() as cwd:  # the checkout is not on sys.path there
        r = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_the_product_installs_one_import_name():
    out = _outside_the_checkout(
        "import importlib.util as u\n"
        "print([n for n in ('pipelines', 'model', 'training') if u.find_spec(n) is not None])\n"
        "import brickyard.pipelines.stages.ingest, brickyard.model.moe, brickyard.training.train\n"
        "print(brickyard.pipelines.stages.ingest.__name__)"
    )
    assert out.split("\n")[:2] == ["[]", "brickyard.pipelines.stages.ingest"]


def test_importing_the_trainer_imports_no_spark_job_and_no_spark():
    out = _outside_the_checkout(
        "import sys, brickyard.training.train\n"
        "print(sorted(m for m in sys.modules if m.startswith(('pyspark', 'delta', 'brickyard.pipelines.stages', "
        "'brickyard.pipelines.sources', 'brickyard.pipelines.lake.session', 'brickyard.pipelines.lake.delta'))))"
    )
    assert out.strip() == "[]"


def _module_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (relative imports resolved; lazy imports count too)."""
    files = {}
    for folder, name in PACKAGES.items():
        for p in (REPO / folder).rglob("*.py"):
            parts = [name, *p.relative_to(REPO / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join(parts)] = p
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in files:
                    t = t.rpartition(".")[0]
                if t and t != mod and not mod.startswith(t + "."):  # a package's own __init__ is not a cycle
                    graph[mod].add(t)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (iterative Tarjan)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]; counter[0] += 1; stack.append(root); on.add(root)  # noqa: E702
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter[0]; counter[0] += 1; stack.append(w); on.add(w)  # noqa: E702
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop(); on.discard(w); comp.append(w)  # noqa: E702
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_there_are_no_import_cycles_among_the_products_modules():
    graph = _module_graph()
    assert "brickyard.pipelines.lake.tables" in graph["brickyard.pipelines.stages.curate"]
    assert _cycles(graph) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check itself sees one


def test_stages_import_table_definitions_never_each_other():
    graph = _module_graph()
    stages = {m for m in graph if m.startswith("brickyard.pipelines.stages.") and not m.endswith((".base", ".registry"))}
    for s in stages:
        assert not (graph[s] & stages), (s, graph[s] & stages)


def test_the_quality_models_code_file_imports_the_package_absolutely():
    """MLflow logs `quality_pyfunc.py` as the model's code and runs it as a file of its own,
    outside the package: a relative import there fails only when a notebook loads the model."""
    tree = ast.parse((REPO / "pipelines" / "text" / "quality_pyfunc.py").read_text())
    relative = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
    assert relative == []


def test_streaming_is_imported_without_its_dataset_zoo_which_still_loads_when_used():
    out = _outside_the_checkout(
        "import sys\n"
        "from brickyard.pipelines.manifest import import_streaming\n"
        "s = import_streaming()\n"
        "from streaming import MDSWriter, StreamingDataLoader\n"
        "print(sorted(m for m in ('transformers.models.auto', 'sklearn', 'pandas', 'torchvision') if m in sys.modules))\n"
        "from streaming.text import StreamingC4\n"
        "print(StreamingC4.__module__, s.vision.StreamingCIFAR10.__name__, 'sklearn' in sys.modules)"
    )
    assert out.split("\n")[:2] == ["[]", "streaming.text.c4 StreamingCIFAR10 True"]


def test_the_products_modules_import_streaming_through_import_streaming():
    """A module that imports streaming first would pay for the zoo in every process that loads it."""
    for folder in PACKAGES:
        for p in (REPO / folder).rglob("*.py"):
            text = p.read_text()
            first = min((i for i in (text.find("from streaming"), text.find("import streaming")) if i >= 0), default=-1)
            if first >= 0 and p.name != "manifest.py":
                assert 0 <= text.find("import_streaming()") < first, p

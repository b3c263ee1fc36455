"""The core's layers: each module imports only those below it (no cycle, even through
imports inside functions), and the schema, specs and registry load without torch, so a
plugin's config or `fxforge list` never waits for it."""
import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fxforge"


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_init else parts)
        package = parts[:-1] if not is_init else parts[:-1]
        deps = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                deps |= {target + "." + a.name for a in node.names} if node.module is None else {target}
        graph[name] = deps
    return {k: {d for d in v if d in graph and d != k and d != "fxforge"} for k, v in graph.items()}


def test_no_module_of_the_core_imports_one_that_imports_it_back():
    graph = _imports()
    assert {"fxforge.schema", "fxforge.registry", "fxforge.config", "fxforge.audio"} <= set(graph)
    seen, stack, cycles = {}, [], []

    def visit(node):
        seen[node] = "open"
        stack.append(node)
        for dep in sorted(graph[node]):
            if seen.get(dep) == "open":
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in seen:
                visit(dep)
        stack.pop()
        seen[node] = "done"

    for node in sorted(graph):
        if node not in seen:
            visit(node)
    assert not cycles, " ; ".join(" -> ".join(c) for c in cycles)


def test_schema_specs_and_registry_import_without_torch():
    code = ("import sys, fxforge.schema, fxforge.specs, fxforge.registry, fxforge.config, fxforge\n"
            "heavy = sorted(m for m in ('torch', 'torchaudio', 'numpy', 'pedalboard') if m in sys.modules)\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_the_public_api_still_offers_its_torch_names_on_use():
    code = "import fxforge\nfrom fxforge import Run, cut_segments, load_run\nprint(callable(cut_segments))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr

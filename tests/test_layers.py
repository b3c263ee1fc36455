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
    assert {"fxforge.schema", "fxforge.registry", "fxforge.config", "fxforge.data.audio"} <= set(graph)
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


# The core's layers, top first (docs/architecture.md draws them). A module imports only from
# its own layer and those above it. fxforge.builtins' __init__ is the list of the default
# plugins' module names, which the registry reads; the plugins themselves import only
# ``fxforge``'s public API, as a third party's do.
LAYERS = (
    ("errors", "atomic"),
    ("schema",),
    ("specs", "hookspecs"),
    ("registry", "builtins"),
    ("config",),
    ("manifest", "knobs"),
    ("progress",),
    ("data",),
    ("nn",),
    ("runs",),
    ("report",),
    ("train",),
    ("exports",),
    ("sweep",),
    ("cli", "__main__"),
    ("testing",),
)


def _layer(module: str) -> int:
    top = module.split(".")[1]
    if module.startswith("fxforge.builtins."):
        return len(LAYERS)  # the default plugins: below everything, like a third party's
    return next(i for i, names in enumerate(LAYERS) if top in names)


def test_each_module_imports_only_its_own_layer_and_those_above():
    graph = _imports()
    upward = sorted(f"{m} -> {d}" for m, deps in graph.items() if m != "fxforge" for d in deps if _layer(d) > _layer(m))
    assert not upward, "imports from a lower layer: " + "; ".join(upward)
    assert {_layer(m) for m in graph if m != "fxforge"} >= set(range(len(LAYERS))), "a layer of LAYERS has no module"


def test_schema_specs_registry_run_folders_and_sweeps_import_without_torch():
    code = ("import sys, fxforge.schema, fxforge.specs, fxforge.registry, fxforge.config, fxforge, fxforge.runs, fxforge.sweep\n"
            "heavy = sorted(m for m in ('torch', 'torchaudio', 'numpy', 'pedalboard') if m in sys.modules)\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_the_public_api_still_offers_its_torch_names_on_use():
    code = "import fxforge\nfrom fxforge import Run, cut_segments, load_run\nprint(callable(cut_segments))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr

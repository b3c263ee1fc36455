"""`fxforge list`, `show` and `plugins`: what is installed."""
from __future__ import annotations

import json

import typer
from rich.table import Table

from .app import KIND_HELP, _kind, _registry, app, console


@app.command("list")
def list_components(kind: str = typer.Argument(..., help=KIND_HELP),
                    as_json: bool = typer.Option(False, "--json", help="machine-readable output")):
    """List the installed components of one kind."""
    k = _kind(kind)
    reg = _registry()
    rows = []
    for name in reg.names(k):
        entry = reg.components[k][name]
        row = {"name": name, "summary": entry.spec.summary, "package": entry.package, "version": entry.version}
        if k == "device":
            row["available"] = bool(entry.spec.is_available())
            row["priority"] = entry.spec.priority
            row["detail"] = entry.spec.describe() if row["available"] else ""
        if k == "model":
            row["provider"] = entry.spec.provider
        rows.append(row)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print(f"No {k}s are installed. Install a plugin package that provides one, "
                      f"e.g. pip install -e plugins/fxforge-<name>.")
        return
    table = Table(title=f"{k}s")
    for col in rows[0]:
        table.add_column(col)
    for row in rows:
        table.add_row(*[("yes" if v else "no") if isinstance(v, bool) else str(v) for v in row.values()])
    console.print(table)


@app.command()
def show(kind: str = typer.Argument(..., help=KIND_HELP), name: str = typer.Argument(...)):
    """Show a component's config keys: type, default and meaning."""
    k = _kind(kind)
    spec = _registry().get(k, name)
    table = Table(title=f"{k} '{name}': {spec.summary}")
    for col in ("key", "type", "default", "description"):
        table.add_column(col)
    for key, field in spec.Config.model_fields.items():
        default = "(required)" if field.is_required() else repr(field.get_default(call_default_factory=True))
        ann = getattr(field.annotation, "__name__", None) or str(field.annotation).replace("typing.", "")
        table.add_row(key, ann, default, field.description or "")
    console.print(table)


@app.command()
def plugins(as_json: bool = typer.Option(False, "--json", help="machine-readable output")):
    """List installed plugin packages, the hooks each implements and what it registers."""
    reg = _registry()
    rows = [{"package": p.name, "version": p.version, "hooks": p.hooks, "components": p.components}
            for p in sorted(reg.packages.values(), key=lambda p: p.name)]
    if as_json:
        print(json.dumps({"plugins": rows, "problems": [str(p) for p in reg.problems]}, indent=2))
        return
    if not rows:
        console.print("No plugin packages are installed (pip install -e plugins/fxforge-<name>).")
        return
    table = Table(title="plugin packages")
    for col in ("package", "version", "hooks", "components"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["package"], r["version"], "\n".join(r["hooks"]), "\n".join(r["components"]))
    console.print(table)

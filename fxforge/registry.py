"""The component registry: installed plugin packages, found through the
``fxforge`` entry-point group, each asked to register its components.

A package that fails to import, registers a malformed spec, or repeats a name
another package already took is reported once (package, error) and skipped;
it never breaks a command that does not use it.
"""
from __future__ import annotations

import difflib
import os
import importlib.metadata as md
from dataclasses import dataclass, field
from typing import Any

import pluggy
from pydantic import BaseModel

from . import hookspecs
from .errors import FxforgeError
from .specs import SPEC_TYPES, ComponentConfig

KINDS = tuple(SPEC_TYPES)

@dataclass
class Entry:
    spec: Any
    package: str
    version: str


@dataclass
class Package:
    name: str
    version: str
    entry_point: str
    hooks: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)


@dataclass
class Problem:
    package: str
    error: str

    def __str__(self) -> str:
        return f"plugin package '{self.package}': {self.error}; skipped"


class Registry:
    """Components by kind and name, plus the packages and problems seen."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("fxforge")
        self.pm.add_hookspecs(hookspecs)
        self.components: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        self.packages: dict[str, Package] = {}
        self.problems: list[Problem] = []

    # -- loading -----------------------------------------------------------
    def load_entry_points(self) -> "Registry":
        # FXFORGE_DISABLE=pkg-a,pkg-b skips packages without uninstalling them.
        disabled = {p.strip() for p in os.environ.get("FXFORGE_DISABLE", "").split(",") if p.strip()}
        self.load_defaults(disabled)
        for ep in md.entry_points(group="fxforge"):
            dist = ep.dist.name if ep.dist else ep.name
            version = ep.dist.version if ep.dist else "?"
            if dist in disabled:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken package must not break the others
                self.problems.append(Problem(dist, f"import failed: {type(exc).__name__}: {exc}"))
                continue
            self.add_plugin(plugin, dist, version, entry_point=ep.value)
        return self

    def load_defaults(self, disabled: set[str] = frozenset()) -> "Registry":
        """The core's own plugins (fxforge.builtins.DEFAULT_PLUGINS), through add_plugin as
        any package's; imported here, not at import time, so the registry stays torch-free."""
        import importlib

        from . import __version__
        from .builtins import DEFAULT_PLUGINS

        for name, module in DEFAULT_PLUGINS:
            if name in disabled:
                continue
            try:
                plugin = importlib.import_module(module)
            except Exception as exc:  # as for an entry point: reported, the rest still load
                self.problems.append(Problem(name, f"import failed: {type(exc).__name__}: {exc}"))
                continue
            self.add_plugin(plugin, name, __version__, entry_point=module)
        return self

    def add_plugin(self, plugin: Any, package: str, version: str = "?", entry_point: str = "") -> None:
        """Register a plugin object (module or instance) and collect its components."""
        try:
            self.pm.register(plugin, name=f"{package}:{entry_point or id(plugin)}")
            self.pm.check_pending()
        except Exception as exc:
            try:
                self.pm.unregister(plugin)
            except Exception:
                pass
            self.problems.append(Problem(package, f"bad hooks: {exc}"))
            return
        pkg = self.packages.setdefault(package, Package(package, version, entry_point))
        for hook_name, kind in hookspecs.HOOK_KINDS.items():
            impl_fn = getattr(plugin, hook_name, None)
            if impl_fn is None:
                continue
            pkg.hooks.append(hook_name)
            try:
                impl_fn(register=lambda spec, kind=kind: self._register(spec, kind, pkg))
            except Exception as exc:
                self.problems.append(Problem(package, f"{hook_name} raised {type(exc).__name__}: {exc}"))

    def _register(self, spec: Any, kind: str, pkg: Package) -> None:
        error = _spec_error(spec, kind)
        if error:
            self.problems.append(Problem(pkg.name, error))
            return
        taken = self.components[kind].get(spec.name)
        if taken is not None:
            self.problems.append(Problem(
                pkg.name, f"{kind} '{spec.name}' is already registered by '{taken.package}'"))
            return
        self.components[kind][spec.name] = Entry(spec, pkg.name, pkg.version)
        pkg.components.append(f"{kind}:{spec.name}")

    # -- lookup ------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        return sorted(self.components[kind])

    def get(self, kind: str, name: str, where: str = "", field: str = "") -> Any:
        """The spec registered as ``name``; else an FxforgeError at ``where``/``field``
        naming the installed ones and the closest match."""
        entry = self.components[kind].get(name)
        if entry is not None:
            return entry.spec
        installed = self.names(kind)
        if not installed:
            raise FxforgeError(f"unknown {kind} '{name}': no {kind}s are installed "
                               f"(pip install a package that provides one, e.g. plugins/fxforge-*)",
                               where=where, field=field)
        close = difflib.get_close_matches(name, installed, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise FxforgeError(f"unknown {kind} '{name}' ({hint}installed: {', '.join(installed)})",
                           where=where, field=field)


def _spec_error(spec: Any, kind: str) -> str | None:
    expected = SPEC_TYPES[kind]
    if not isinstance(spec, expected):
        return f"registered {type(spec).__name__} where a {expected.__name__} was expected"
    if not isinstance(spec.name, str) or not spec.name or not spec.name.replace("-", "").replace("_", "").isalnum():
        return f"{kind} name {spec.name!r} is not a plain name (letters, digits, '-', '_')"
    if not (isinstance(spec.Config, type) and issubclass(spec.Config, BaseModel)):
        return f"{kind} '{spec.name}': Config must be a pydantic model class"
    if kind == "stage" and spec.name == "name":
        return "stage name 'name' is the model's own key in [model]"
    if kind in ("model", "stage") and not all(callable(f) for f in dict(spec.exports).values()):
        return f"{kind} '{spec.name}': each of exports must be a callable facet(module)"
    if kind == "command" and not callable(spec.command):
        return f"command '{spec.name}': command must be a function, a typer.Typer or a click Command"
    if kind == "exporter" and spec.name == "all":
        return "exporter name 'all' is taken by `fxforge export all`"
    if kind in ("model", "scheduler") and not issubclass(spec.Config, ComponentConfig):
        return f"{kind} '{spec.name}': Config must subclass fxforge.ComponentConfig"
    if kind == "provider":
        from .schema import DataConfig
        if not issubclass(spec.Config, DataConfig):
            return f"provider '{spec.name}': Config must subclass fxforge.DataConfig"
    return None


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded from entry points on first use."""
    global _registry
    if _registry is None:
        _registry = Registry().load_entry_points()
    return _registry


def reset_registry(registry: Registry | None = None) -> None:
    """Replace the process-wide registry (tests; or None to reload lazily)."""
    global _registry
    _registry = registry

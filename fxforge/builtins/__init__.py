"""The core's default plugins, llm-style: registered through the same path as a third
party's package (``Registry.add_plugin``), before the entry points, so the names the
core's own defaults use (the ``constant`` scheduler, the ``cpu`` device behind
``auto``) resolve with no other package installed.

Each entry is (the name ``fxforge plugins`` and ``FXFORGE_DISABLE`` know it by, the
module holding its ``@hookimpl`` functions). The names are those of the separate
packages these once were, so a disable list or a script reading ``fxforge plugins
--json`` keeps working. Nothing here is imported until the registry loads.
"""

DEFAULT_PLUGINS = (
    ("fxforge-devices", "fxforge.builtins.devices"),
    ("fxforge-schedulers", "fxforge.builtins.schedulers"),
)

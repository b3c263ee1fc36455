"""The core's default plugins, llm-style: registered through the same path as a third
party's package (``Registry.add_plugin``), before the entry points, so the names the
core's own defaults use (the ``segments`` provider, the ``constant`` scheduler, the
``cpu`` device behind ``auto``) resolve with no other package installed, and the core
runs its own default config alone. They import only the public API (``from fxforge
import ...``), as a third party's package does; ``fxforge-sweep`` registers the
``sweep`` command through the commands hook.

Each entry is (the name ``fxforge plugins`` and ``FXFORGE_DISABLE`` know it by, the
module holding its ``@hookimpl`` functions). The names are those of the separate
packages these once were, so a disable list or a script reading ``fxforge plugins
--json`` keeps working. Nothing here is imported until the registry loads.
"""

DEFAULT_PLUGINS = (
    ("fxforge-devices", "fxforge.builtins.devices"),
    ("fxforge-schedulers", "fxforge.builtins.schedulers"),
    ("fxforge-segments", "fxforge.builtins.segments"),
    ("fxforge-wave-lstm", "fxforge.builtins.wave_lstm.plugin"),
    ("fxforge-wavenet", "fxforge.builtins.wavenet.plugin"),
    ("fxforge-sweep", "fxforge.sweep.command"),
)

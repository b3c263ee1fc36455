"""The commands hook (fxforge_register_commands): a plugin's, the built-ins' (sweep) and
each exporter's command are real Typer commands, their usage errors one line."""
from __future__ import annotations

import pytest
import typer

from fxforge import CommandSpec, hookimpl
from fxforge.cli import main
from fxforge.registry import Registry, get_registry, reset_registry


def hello(name: str = typer.Option("world", "--name", help="whom to greet"),
          loud: bool = typer.Option(False, "--loud", help="shout")):
    """Greet someone (a third party's command)."""
    text = f"hello {name}"
    print(text.upper() if loud else text)


class ToyCommands:
    """A third party's plugin module: one command through the hook."""

    @hookimpl
    def fxforge_register_commands(self, register):
        register(CommandSpec("hello", "greets", hello))


@pytest.fixture
def registry():
    previous = get_registry()
    reg = Registry().load_entry_points()
    reg.add_plugin(ToyCommands(), "toy-commands")
    reset_registry(reg)
    try:
        yield reg
    finally:
        reset_registry(previous)


def test_a_plugins_command_runs_and_is_listed(registry, capsys):
    assert main(["hello", "--name", "fxforge", "--loud"]) == 0
    assert capsys.readouterr().out.strip() == "HELLO FXFORGE"
    assert main(["--help"]) == 0
    assert "hello" in capsys.readouterr().out
    assert "command:hello" in registry.packages["toy-commands"].components


def test_a_plugins_command_has_one_line_usage_errors(registry, capsys):
    assert main(["hello", "--nmae", "x"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["error: fxforge hello: No such option: --nmae (Possible options: --name)"], err


def test_a_command_cannot_take_a_core_name(capsys):
    previous = get_registry()

    class Evil:
        @hookimpl
        def fxforge_register_commands(self, register):
            register(CommandSpec("run", "not the real one", hello))

    reg = Registry().load_entry_points()
    reg.add_plugin(Evil(), "evil")
    reset_registry(reg)
    try:
        assert main(["--help"]) == 0
        assert "plugin package 'evil': command 'run' is one of the core's own; skipped" in capsys.readouterr().err
    finally:
        reset_registry(previous)


def test_sweep_comes_through_the_hook(capsys):
    assert "command:sweep" in get_registry().packages["fxforge-sweep"].components
    assert main(["sweep", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage: fxforge sweep" in out and "--dry-run" in out


def test_export_juce_help_lists_its_options(capsys):
    pytest.importorskip("fxforge_juce")
    assert main(["export", "juce", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--out" in out and "-o" in out and "--build" in out and "--verify" in out


def test_export_lists_its_exporters(capsys):
    assert main(["export", "--help"]) == 0
    out = capsys.readouterr().out
    assert "all" in out and all(name in out for name in get_registry().names("exporter"))


def test_an_unknown_exporter_option_fails_in_one_line(tmp_path, monkeypatch, capsys):
    pytest.importorskip("fxforge_nam")
    monkeypatch.chdir(tmp_path)
    assert main(["export", "nam", "--bogus", "x", "RUN"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("error: fxforge export nam: bogus: unknown key"), err
    assert not list(tmp_path.iterdir())

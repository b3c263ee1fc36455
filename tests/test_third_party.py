"""Third-party plugins, installed with pip and found through their entry points."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY, run_cli, write_config

FIXTURES = Path(__file__).parent / "fixtures"


def pip(*args):
    out = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.fixture(scope="module")
def echo_installed():
    """fxforge-echo installed into this environment as a user would; removed afterwards."""
    pip("install", "--quiet", "--no-deps", "--no-build-isolation", str(FIXTURES / "fxforge-echo"))
    try:
        yield
    finally:
        pip("uninstall", "--yes", "--quiet", "fxforge-echo")


@pytest.fixture(scope="module")
def bad_plugins(tmp_path_factory):
    """The broken and the duplicate package, installed into a target folder on PYTHONPATH
    (so a crashed test run cannot leave them in the shared environment)."""
    target = tmp_path_factory.mktemp("site")
    for name in ("fxforge-broken", "fxforge-dup"):
        pip("install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target), str(FIXTURES / name))
    return {"PYTHONPATH": str(target)}


def test_installed_plugin_is_listed_with_its_package(echo_installed):
    models = {m["name"]: m for m in json.loads(run_cli("list", "models", "--json").stdout)}
    assert models["echo"]["package"] == "fxforge-echo" and models["echo"]["version"] == "1.2.3"
    scheds = {s["name"]: s for s in json.loads(run_cli("list", "schedulers", "--json").stdout)}
    assert scheds["halving"]["package"] == "fxforge-echo"


def test_third_party_model_and_scheduler_train_end_to_end(echo_installed, workdir):
    cfg = TINY.replace('name = "wave-lstm"\nhidden_size = 8', 'name = "echo"\ntaps = 8').replace(
        'name = "cosine"', 'name = "halving"')
    write_config(workdir, cfg)
    out = run_cli("run", "run.toml", "--set", "train.epochs=1", cwd=workdir)
    assert out.returncode == 0, out.stderr
    (run_dir,) = (workdir / "runs" / "tiny").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["model"] == "echo" and summary["status"] == "finished"
    assert summary["parameters"] == 8


def test_uninstalled_plugin_is_gone(echo_installed):
    pip("uninstall", "--yes", "--quiet", "fxforge-echo")
    try:
        models = {m["name"] for m in json.loads(run_cli("list", "models", "--json").stdout)}
        assert "echo" not in models and "wave-lstm" in models
    finally:
        pip("install", "--quiet", "--no-deps", "--no-build-isolation", str(FIXTURES / "fxforge-echo"))


def test_broken_plugin_is_reported_once_and_skipped(bad_plugins):
    out = run_cli("list", "models", "--json", env=bad_plugins)
    assert out.returncode == 0
    assert "wave-lstm" in {m["name"] for m in json.loads(out.stdout)}
    lines = [ln for ln in out.stderr.splitlines() if "fxforge-broken" in ln]
    assert lines == ["warning: plugin package 'fxforge-broken': import failed: ImportError: "
                     "this plugin is broken on purpose; skipped"]


def test_duplicate_name_and_malformed_spec_are_reported(bad_plugins):
    out = run_cli("plugins", "--json", env=bad_plugins)
    assert out.returncode == 0
    problems = json.loads(out.stdout)["problems"]
    assert "plugin package 'fxforge-dup': scheduler 'cosine' is already registered by 'fxforge-schedulers'; skipped" in problems \
        or "plugin package 'fxforge-schedulers': scheduler 'cosine' is already registered by 'fxforge-dup'; skipped" in problems
    assert "plugin package 'fxforge-dup': registered dict where a ModelSpec was expected; skipped" in problems


def test_a_run_not_using_the_broken_plugin_still_works(bad_plugins, workdir):
    out = run_cli("run", "run.toml", "--set", "train.epochs=1", cwd=workdir, env=bad_plugins)
    assert out.returncode == 0, out.stderr

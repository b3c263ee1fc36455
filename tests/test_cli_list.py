import json

from conftest import run_cli


def test_list_devices_shows_cpu_available_and_cuda_absent():
    out = run_cli("list", "devices", "--json")
    assert out.returncode == 0, out.stderr
    devices = {d["name"]: d for d in json.loads(out.stdout)}
    assert devices["cpu"]["available"] is True
    assert devices["cuda"]["available"] is False  # this machine has no GPU
    assert {"mps", "xpu"} <= set(devices)


def test_auto_device_resolves_to_cpu_here():
    from fxforge.train.devices import resolve_device

    assert resolve_device("auto").type == "cpu"


def test_list_models_table_names_package_and_version():
    out = run_cli("list", "models")
    assert out.returncode == 0, out.stderr
    assert "wave-lstm" in out.stdout and "fxforge-wave-lstm" in out.stdout and "0.1.0" in out.stdout


def test_list_schedulers_json():
    out = run_cli("list", "schedulers", "--json")
    names = {s["name"] for s in json.loads(out.stdout)}
    assert {"constant", "cosine"} <= names


def test_empty_kind_says_how_to_install():
    out = run_cli("list", "devices", env={"FXFORGE_DISABLE": "fxforge-devices"})
    assert out.returncode == 0
    assert "No devices are installed" in out.stdout and "pip install" in out.stdout


def test_unknown_kind_is_a_usage_error():
    out = run_cli("list", "gadgets")
    assert out.returncode == 2
    assert out.stderr.strip() == "error: unknown kind 'gadgets' (one of: models, providers, schedulers, devices or exporters)"


def test_plugins_lists_packages_and_hooks():
    out = run_cli("plugins", "--json")
    assert out.returncode == 0, out.stderr
    pkgs = {p["package"]: p for p in json.loads(out.stdout)["plugins"]}
    assert "fxforge_register_models" in pkgs["fxforge-wave-lstm"]["hooks"]
    assert "model:wave-lstm" in pkgs["fxforge-wave-lstm"]["components"]
    assert "device:cpu" in pkgs["fxforge-devices"]["components"]


def test_show_lists_a_models_keys():
    out = run_cli("show", "model", "wave-lstm")
    assert out.returncode == 0, out.stderr
    assert "hidden_size" in out.stdout and "num_layers" in out.stdout and "residual" in out.stdout

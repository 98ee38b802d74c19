"""The wheel must ship every subpackage and the YAML configs (pyproject lists packages explicitly)."""

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "classic_rl").rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert "classic_rl.conf" in listed


def test_config_groups_ship_as_package_data():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = data["classic_rl.conf"]
    for yaml in (ROOT / "conf").rglob("*.yaml"):
        rel = yaml.relative_to(ROOT / "conf")
        assert any(rel.match(p) for p in patterns), f"{rel} would not ship in the wheel"

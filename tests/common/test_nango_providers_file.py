"""Load Nango's real providers.yaml (installed from npm at test time) with Authport's loader."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from common.providers import Catalogue
from tests.support.npm import npm_install

PACKAGE = "@nangohq/providers"
SPEC = f"{PACKAGE}@0.71.10"


@pytest.fixture(scope="module")
def install_dir() -> Path:
    return npm_install(SPEC)


@pytest.fixture(scope="module")
def package_dir(install_dir) -> Path:
    """Find the installed package by its package.json name rather than by an assumed path."""
    found = [
        manifest.parent
        for manifest in (install_dir / "node_modules").rglob("package.json")
        if json.loads(manifest.read_text()).get("name") == PACKAGE
    ]
    assert len(found) == 1, f"expected one installed {PACKAGE}, found {found}"
    return found[0]


@pytest.fixture(scope="module")
def yaml_path(package_dir) -> Path:
    found = sorted(package_dir.rglob("providers.yaml"))
    assert len(found) == 1, f"expected one providers.yaml in {package_dir}, found {found}"
    return found[0]


@pytest.fixture(scope="module")
def raw(yaml_path) -> dict:
    return yaml.load(yaml_path.read_text(), Loader=yaml.CSafeLoader)


@pytest.fixture(scope="module")
def catalogue(yaml_path) -> Catalogue:
    return Catalogue.load(str(yaml_path))


def test_the_file_is_the_full_catalogue(raw):
    # Guards against locating some other, smaller providers.yaml.
    assert len(raw) > 900
    assert sum(1 for entry in raw.values() if "alias" in entry) > 50


def test_every_raw_name_is_listed_in_file_order(raw, catalogue):
    assert catalogue.names() == list(raw)
    assert len(catalogue.all()) == len(raw)


def test_plain_entries_are_served_verbatim(raw, catalogue):
    for name, entry in raw.items():
        if "alias" not in entry:
            assert catalogue.get(name) == entry, name


def test_every_alias_resolves_over_its_target(raw, catalogue):
    aliases = {name: entry for name, entry in raw.items() if "alias" in entry}
    for name, entry in aliases.items():
        resolved = catalogue.get(name)
        target = catalogue.get(entry["alias"])
        assert target is not None, name
        assert "alias" not in resolved, name
        assert resolved["auth_mode"] == entry.get("auth_mode", target["auth_mode"]), name
        for key, value in resolved.items():
            assert value == (entry[key] if key in entry else target[key]), f"{name}.{key}"
        assert set(resolved) == (set(target) | set(entry)) - {"alias"}, name


def test_search_finds_known_families(catalogue):
    google = [name for name, _ in catalogue.search("^GOOGLE-")]
    assert "google-calendar" in google and "google-drive" in google
    assert all(name.startswith("google-") for name in google)


def test_matches_nangos_own_loader(package_dir, catalogue):
    """Nango's published loader, run by node, must resolve every entry exactly as ours does."""
    script = (
        f"import({json.dumps((package_dir / 'dist' / 'index.js').as_uri())})"
        ".then(m => process.stdout.write(JSON.stringify(m.getProviders())))"
    )
    proc = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    theirs = json.loads(proc.stdout)
    assert list(theirs) == catalogue.names()
    # JSON round trip: what Authport would serve over HTTP.
    ours = json.loads(json.dumps(dict(catalogue.all())))
    mismatched = [name for name in theirs if theirs[name] != ours[name]]
    assert mismatched == []


def test_extends_the_builtin_catalogue(yaml_path, raw, catalogue):
    """As PROVIDERS_FILE (extend mode): Nango's entries replace the built-in ones of the same name."""
    builtin = Catalogue.load()
    merged = Catalogue.merged(str(yaml_path))
    assert set(merged.names()) == set(builtin.names()) | set(raw)
    assert merged.names()[: len(builtin)] == builtin.names()
    for name in set(builtin.names()) & set(raw):
        assert merged.get(name) == catalogue.get(name), name

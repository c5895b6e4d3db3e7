"""Release artefacts agree: pyproject's version is the image tag compose.yaml and deploy/k8s name,
`make image` builds, the top entry of CHANGELOG.md, and what /readyz and `authport --version` say;
the documents the README points to exist."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from common.version import VERSION

ROOT = Path(__file__).resolve().parents[2]


def test_every_artefact_names_the_one_version():
    pyproject = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert VERSION == pyproject
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert compose["x-authport-image"]["image"] == f"authport:${{AUTHPORT_TAG:-{pyproject}}}"
    kustomization = yaml.safe_load((ROOT / "deploy/k8s/kustomization.yaml").read_text())
    assert kustomization["images"] == [{"name": "authport", "newTag": pyproject}]
    top = re.search(r"^## (\S+) — (\d{4}-\d\d-\d\d)$", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert top and top.group(1) == pyproject
    # --no-print-directory: under `make test` (CI) the nested make would print "Entering directory".
    dry = subprocess.run(["make", "--no-print-directory", "-n", "image"], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert dry.stdout.strip() == f"docker build -t authport:{pyproject} ."


def test_the_upgrade_and_backup_documents_exist_and_name_what_exists():
    upgrading, backup = (ROOT / "docs/upgrading.md").read_text(), (ROOT / "docs/backup.md").read_text()
    assert "NANGO_ENCRYPTION_KEYS_OLD" in upgrading and "encryption rotate" in upgrading
    assert "admin backup" in backup and "admin restore" in backup and (ROOT / "tests/store/test_backup.py").exists()
    readme = (ROOT / "README.md").read_text()
    assert "docs/upgrading.md" in readme and "docs/backup.md" in readme and "CHANGELOG.md" in readme

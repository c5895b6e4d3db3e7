"""What the release image is built from, checked without a Docker engine (CI has none): base images
pinned to exact releases, the runtime lock installed with its hashes, every package pyproject names
copied in, and a wheel built from exactly what the Dockerfile copies holds every file of those
packages (templates, styles, scripts, the catalogue), so an installed image serves every page."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXACT = re.compile(r"^[a-z0-9./-]+:\d+\.\d+(\.\d+)?(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?$")


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def base_images() -> list[str]:
    images = re.findall(r"^FROM\s+(\S+)", dockerfile(), re.M)
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    images += [s["image"] for s in compose["services"].values() if not s["image"].startswith("authport:")]
    for path in sorted((ROOT / "deploy/k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            spec = ((doc or {}).get("spec") or {}).get("template", {}).get("spec", {})
            images += [c["image"] for c in spec.get("containers", []) + spec.get("initContainers", [])
                       if c["image"] != "authport"]
    return images


def test_every_base_image_is_an_exact_release():
    images = base_images()
    assert len(images) >= 5, images  # python, and postgres + redis in compose and in k8s
    assert [i for i in images if not EXACT.match(i)] == []


def test_the_image_installs_the_runtime_lock_with_hashes_and_every_package():
    text = dockerfile()
    assert "COPY requirements/runtime.txt" in text and "--require-hashes" in text
    includes = re.search(r'include = \[([^\]]*)\]', (ROOT / "pyproject.toml").read_text()).group(1)
    packages = [p.strip().strip('"').rstrip("*") for p in includes.split(",")]
    copied = set(re.findall(r"^COPY (\S+) /build/\1$", text, re.M))
    assert set(packages) <= copied, set(packages) - copied
    assert "postgresql-client" in text  # pg_dump / pg_restore for admin backup|restore


def test_a_wheel_of_what_the_image_copies_holds_every_file_of_its_packages(tmp_path):
    build = tmp_path / "build"
    build.mkdir()
    copied = re.findall(r"^COPY (\S+) /build/(\S+)$", dockerfile(), re.M)
    for source, target in copied:
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, build / target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / source, build / target)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(tmp_path / "dist"), str(build)], check=True, capture_output=True)
    [wheel] = (tmp_path / "dist").glob("authport-*.whl")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(["git", "ls-files", "common", "gateway", "services", "authport"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    assert len(tracked) > 100
    assert [f for f in tracked if f not in in_wheel] == []

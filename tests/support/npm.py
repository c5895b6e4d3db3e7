"""Install npm packages for tests into a reusable cache under tests/.npm/."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

CACHE_ROOT = Path(__file__).resolve().parent.parent / ".npm"
INSTALL_TIMEOUT_S = 600


def npm_install(spec: str) -> Path:
    """Install npm package `spec` once and return the directory that holds its node_modules.

    The install lives in tests/.npm/<sanitised spec>/ and is reused by later runs, so pin a
    version in `spec`. Raises RuntimeError when npm is missing or the install fails: a test
    that needs the package must fail, not skip.
    """
    target = CACHE_ROOT / _sanitise(spec)
    if (target / "node_modules").is_dir():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"cannot install {spec}: the npm client is not on PATH (install Node.js and npm)")
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    # The cache is never committed; ignore it from inside so no repo-level rule is needed.
    (CACHE_ROOT / ".gitignore").write_text("*\n")
    # Install into a scratch directory and rename it into place, so a failed or concurrent
    # install never leaves a half-filled cache entry that a later run would trust.
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=CACHE_ROOT))
    scratch.chmod(0o755)
    try:
        _run_npm(npm, spec, scratch)
        try:
            os.rename(scratch, target)
        except OSError as exc:
            if not (target / "node_modules").is_dir():  # else a concurrent run got there first
                raise RuntimeError(f"cannot move the install of {spec} into {target}: {exc}") from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _run_npm(npm: str, spec: str, prefix: Path) -> None:
    command = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix), spec]
    env = {**os.environ, "npm_config_update_notifier": "false"}
    try:
        proc = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"npm install {spec} did not finish within {INSTALL_TIMEOUT_S} s") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        raise RuntimeError(
            f"npm install {spec} failed with exit code {proc.returncode}:\n" + "\n".join(detail)
        )
    if not (prefix / "node_modules").is_dir():
        raise RuntimeError(f"npm install {spec} reported success but created no node_modules")


def _sanitise(spec: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", spec).strip("._")
    if not name:
        raise ValueError(f"not an npm package spec: {spec!r}")
    return name

"""The lock files (#17 item 5): `make up` installs requirements/runtime.txt and `make test` adds
requirements/test.txt, both with every file's hash; they must agree with pyproject.toml's pins,
and the runtime set must hold none of the test tools."""

from __future__ import annotations

import re
import tomllib

from tests.support.system import ROOT

PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)")


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str) -> dict[str, str]:
    return {normalised(m.group(1)): m.group(2) for m in map(PIN.match, text.splitlines()) if m}


def lock(name: str) -> tuple[str, dict[str, str]]:
    text = (ROOT / "requirements" / f"{name}.txt").read_text()
    return text, pins(text)


def test_the_locks_hold_pyprojects_pins_and_a_hash_for_every_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime_pins = pins("\n".join(project["dependencies"]))
    test_pins = pins("\n".join(project["optional-dependencies"]["test"]))
    runtime_text, runtime = lock("runtime")
    test_text, test = lock("test")
    assert {k: runtime.get(k) for k in runtime_pins} == runtime_pins, "run `make lock`"
    assert {k: test.get(k) for k in {**runtime_pins, **test_pins}} == {**runtime_pins, **test_pins}, "run `make lock`"
    assert set(test_pins).isdisjoint(runtime), "a test tool in the runtime lock"
    assert {k: test[k] for k in runtime} == runtime, "the two locks disagree on a shared package"
    for text in (runtime_text, test_text):
        body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        entries = re.split(r"\n(?=[A-Za-z0-9])", body)
        for entry in (e for e in entries if PIN.match(e)):
            assert "--hash=sha256:" in entry, entry.splitlines()[0]

"""Load a provider catalogue in Nango's providers.yaml format and resolve its aliases.

The file is a mapping of provider name -> entry. An entry with `alias: <target>` stands for the
target's resolved entry with the alias entry's own keys laid over it (a shallow merge: a nested
mapping such as `proxy` is replaced whole) and without the `alias` key itself, which is what
Nango's GET /providers serves. Unlike Nango's single pass in file order, aliases are resolved
whatever the order of the entries, and a missing target or a cycle is an error rather than a
half-empty entry. Everything else in an entry is kept verbatim.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from common import webhook_signatures

BUILTIN_PATH = Path(__file__).with_name("providers.yaml")

# The auth modes Authport runs, and how a connection of each gets its credentials. An entry of
# another mode (Nango's file has e.g. MCP_OAUTH2, INSTALL_PLUGIN) loads and is listed, but its
# flows answer `invalid_auth_mode`.
AUTH_MODES = {
    "OAUTH2": "popup flow (/oauth/connect), refreshed with the refresh token",
    "OAUTH1": "popup flow; calls signed HMAC-SHA1, PLAINTEXT or RSA-SHA1",
    "OAUTH2_CC": "client credentials (/oauth2/auth), requested again before expiry",
    "API_KEY": "captured (/api-auth/api-key), verified by proxy.verification",
    "BASIC": "captured (/api-auth/basic), verified by proxy.verification",
    "TBA": "captured (/auth/tba); calls signed HMAC-SHA256 with the account id as realm",
    "NONE": "no credentials (/auth/unauthenticated)",
    "JWT": "fields captured (/auth/jwt); Authport signs the JWT per `token`, again before expiry",
    "TWO_STEP": "fields captured (/auth/two-step), exchanged at token_url, again before expiry",
    "SIGNATURE": "username/password captured (/auth/signature); a WSSE token signed before expiry",
    "BILL": "Bill.com login captured (/auth/bill); the session is renewed before it ends",
    "AWS_SIGV4": "a role assumed through STS (/auth/aws-sigv4) or AWS keys imported; calls signed SigV4",
    "APP": "integration credentials only (app id, private key); no connection flow yet",
    "CUSTOM": "integration credentials only (app and OAuth client); no connection flow yet",
}

# The C loader parses Nango's ~27k-line file in well under a second; the pure-Python one does not.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CatalogueError(Exception):
    """The catalogue cannot be used; the message is one line naming the file and the problem."""


class Catalogue:
    """Resolved provider entries, in file order."""

    def __init__(self, entries: dict[str, dict], path: str):
        self._entries = entries
        self.path = path

    @classmethod
    def load(cls, path: str | None = None) -> Catalogue:
        """Read and resolve the catalogue at `path` (None: the built-in common/providers.yaml)."""
        where = str(path) if path is not None else str(BUILTIN_PATH)
        raw = _parse(where)
        return cls(_resolve_all(raw, where), where)

    def get(self, name: str) -> dict | None:
        """Return a copy of the resolved entry for `name`, or None when there is none."""
        entry = self._entries.get(name)
        return None if entry is None else _clone(entry)

    def names(self) -> list[str]:
        """Return every provider name, in file order."""
        return list(self._entries)

    def all(self) -> list[tuple[str, dict]]:
        """Return (name, copy of resolved entry) for every provider, in file order."""
        return [(name, _clone(entry)) for name, entry in self._entries.items()]

    def search(self, pattern: str) -> list[tuple[str, dict]]:
        """Return the providers whose name or display name matches `pattern` (case-insensitive
        regex): "hub" finds `github`, "google cal" finds Google Calendar.

        A pattern that is not a valid regex is matched as a literal substring.
        """
        try:
            regex = re.compile(pattern, re.IGNORECASE)
        except re.error:
            regex = re.compile(re.escape(pattern), re.IGNORECASE)
        return [(name, _clone(entry)) for name, entry in self._entries.items()
                if regex.search(name) or regex.search(str(entry.get("display_name") or ""))]

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries


def _fail(path: str, problem: str) -> CatalogueError:
    return CatalogueError(f"{path}: {' '.join(problem.split())}")


def _parse(path: str) -> dict[str, dict]:
    """Parse the file into its raw top-level mapping, rejecting duplicate provider names."""
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as exc:
        raise _fail(path, f"cannot read the file ({exc.strerror or exc})") from exc
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise _fail(path, "the file is empty; expected a mapping of provider name to entry")
        if not isinstance(node, yaml.MappingNode):
            raise _fail(path, "the top level is not a mapping of provider name to entry")
        _reject_duplicate_names(node, path)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _fail(path, f"invalid YAML: {exc}") from exc
    finally:
        loader.dispose()
    for name, entry in data.items():
        if not isinstance(name, str):
            raise _fail(path, f"provider name {name!r} is not a string")
        if not isinstance(entry, dict):
            raise _fail(path, f"provider '{name}' is not a mapping")
    return data


def _reject_duplicate_names(node: yaml.MappingNode, path: str) -> None:
    # YAML loaders silently keep the last of two equal keys; a catalogue must not.
    seen: set[str] = set()
    for key_node, _ in node.value:
        name = key_node.value
        if isinstance(name, str) and name in seen:
            line = key_node.start_mark.line + 1
            raise _fail(path, f"provider '{name}' is defined twice (again at line {line})")
        seen.add(name)


def _resolve_all(raw: dict[str, dict], path: str) -> dict[str, dict]:
    resolved: dict[str, dict] = {}
    for name in raw:
        _resolve(name, raw, resolved, path)
    # Resolving an alias may resolve its target first; keep the file's order all the same.
    resolved = {name: resolved[name] for name in raw}
    for name, entry in resolved.items():
        if "auth_mode" not in entry:
            raise _fail(path, f"provider '{name}' has no auth_mode")
        if "webhook_signature" in entry:
            problem = webhook_signatures.check(entry["webhook_signature"])
            if problem:
                raise _fail(path, f"provider '{name}': {problem}")
    return resolved


def _resolve(name: str, raw: dict[str, dict], resolved: dict[str, dict], path: str) -> None:
    """Resolve `name` and every unresolved alias on its chain into `resolved`."""
    chain: list[str] = []
    current = name
    # Walk towards the root of the chain until an entry that is resolved or is no alias.
    while current not in resolved and "alias" in raw[current]:
        if current in chain:
            cycle = " -> ".join(chain[chain.index(current) :] + [current])
            raise _fail(path, f"aliases form a cycle: {cycle}")
        chain.append(current)
        target = raw[current]["alias"]
        if not isinstance(target, str) or target not in raw:
            raise _fail(path, f"provider '{current}' is an alias of '{target}', which is not defined")
        current = target
    base = resolved.setdefault(current, raw[current])
    for alias_name in reversed(chain):
        overrides = {k: v for k, v in raw[alias_name].items() if k != "alias"}
        base = {**base, **overrides}
        resolved[alias_name] = base


def _clone(value: Any) -> Any:
    # Entries hold only what YAML builds (mappings, lists, scalars); this is far faster than deepcopy.
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value

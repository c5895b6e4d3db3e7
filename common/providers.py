"""Load a provider catalogue in Nango's providers.yaml format and resolve its aliases.

The file is a mapping of provider name -> entry. An entry with `alias: <target>` stands for the
target's resolved entry with the alias entry's own keys laid over it (a shallow merge: a nested
mapping such as `proxy` is replaced whole) and without the `alias` key itself, which is what
Nango's GET /providers serves. Unlike Nango's single pass in file order, aliases are resolved
whatever the order of the entries, and a missing target or a cycle is an error rather than a
half-empty entry. Everything else in an entry is kept verbatim, once its shape is checked: a field
of the wrong type (a list where a URL goes, an unknown auth mode) stops the loader with a one-line
message naming the file, the provider and the field, rather than failing on the first request.

`Catalogue.configured(settings)` is what the processes load: the built-in catalogue, extended by
`PROVIDERS_FILE` when it is set (an entry of that file replaces the built-in one of the same name,
wholesale; the others are added after the built-in ones), or replaced by it when
`PROVIDERS_FILE_MODE=replace`. The merge happens before aliases resolve, so a built-in alias of a
replaced entry starts from the replacement, and the file's aliases may name built-in entries.
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


# Every auth mode a catalogue entry may declare (what the loader accepts): the modes Authport runs
# and those of Nango's providers.yaml that it lists without running.
KNOWN_AUTH_MODES = frozenset(AUTH_MODES) | {"APP_STORE", "MCP_OAUTH2", "MCP_OAUTH2_GENERIC", "INSTALL_PLUGIN"}
FILE_MODES = ("extend", "replace")

# The shape of the fields Authport reads; any other field is kept as the file has it.
_STRINGS = ("display_name", "docs", "authorization_url", "request_url", "refresh_url", "scope_separator",
            "token_request_auth_method", "body_format", "signature_method", "request_http_method",
            "token_http_method")
_MAPPINGS = ("proxy", "connection_config", "credentials", "authorization_params", "token_params",
             "refresh_params", "token_headers")
_LISTS = ("categories", "default_scopes", "token_response_metadata", "redirect_uri_metadata")
_PROXY_STRINGS = ("base_url",)
_PROXY_MAPPINGS = ("headers", "query", "verification", "retry")


class CatalogueError(Exception):
    """The catalogue cannot be used; the message is one line naming the file and the problem."""


class Catalogue:
    """Resolved provider entries, in file order."""

    def __init__(self, entries: dict[str, dict], path: str):
        self._entries = entries
        self.path = path

    @classmethod
    def load(cls, path: str | None = None) -> Catalogue:
        """Read and resolve the one catalogue file at `path` (None: the built-in common/providers.yaml)."""
        where = str(path) if path is not None else str(BUILTIN_PATH)
        raw = _parse(where)
        return cls(_resolve_all(raw, dict.fromkeys(raw, where)), where)

    @classmethod
    def merged(cls, path: str, mode: str = "extend") -> Catalogue:
        """The built-in catalogue extended by the file at `path` (same names replace), or only that
        file when `mode` is "replace"."""
        if mode not in FILE_MODES:
            raise CatalogueError(f"PROVIDERS_FILE_MODE: expected extend or replace, got {mode!r}")
        if mode == "replace":
            return cls.load(path)
        builtin, extra = _parse(str(BUILTIN_PATH)), _parse(str(path))
        origins = {**dict.fromkeys(builtin, str(BUILTIN_PATH)), **dict.fromkeys(extra, str(path))}
        return cls(_resolve_all({**builtin, **extra}, origins), f"{BUILTIN_PATH} + {path}")

    @classmethod
    def configured(cls, settings) -> Catalogue:
        """The catalogue a process serves: built-in, extended or replaced by PROVIDERS_FILE."""
        if not settings.PROVIDERS_FILE:
            return cls.load()
        return cls.merged(settings.PROVIDERS_FILE, settings.PROVIDERS_FILE_MODE)

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
        _check_shape(name, entry, path)
    return data


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"[:60]


def _check_shape(name: str, entry: dict, path: str) -> None:
    """Refuse, naming the provider and the field, a field Authport reads that has the wrong type."""

    def wrong(field: str, expected: str, value: Any) -> CatalogueError:
        return _fail(path, f"provider '{name}': {field} must be {expected}, not {_kind(value)}")

    def strings(where: dict, fields, prefix: str = "") -> None:
        for field in fields:
            if field in where and not isinstance(where[field], str):
                raise wrong(prefix + field, "a string", where[field])

    def mappings(where: dict, fields, prefix: str = "") -> None:
        for field in fields:
            if field in where and not isinstance(where[field], dict):
                raise wrong(prefix + field, "a mapping", where[field])

    mode = entry.get("auth_mode")
    if "auth_mode" in entry and mode not in KNOWN_AUTH_MODES:
        known = ", ".join(sorted(KNOWN_AUTH_MODES))
        raise _fail(path, f"provider '{name}': auth_mode {_kind(mode)} is not one of {known}")
    strings(entry, _STRINGS)
    mappings(entry, _MAPPINGS)
    for field in _LISTS:
        if field in entry and not isinstance(entry[field], list):
            raise wrong(field, "a list", entry[field])
    token_url = entry.get("token_url")
    if "token_url" in entry and not (isinstance(token_url, str) or (
            isinstance(token_url, dict) and all(isinstance(v, str) for v in token_url.values()))):
        raise wrong("token_url", "a string (or a mapping of auth mode to string)", token_url)
    proxy = entry.get("proxy") or {}
    strings(proxy, _PROXY_STRINGS, "proxy.")
    mappings(proxy, _PROXY_MAPPINGS, "proxy.")
    for section in ("headers", "query"):
        for key, value in (proxy.get(section) or {}).items():
            if isinstance(value, dict | list) or value is None:
                raise wrong(f"proxy.{section}.{key}", "a string", value)
    for section in ("connection_config", "credentials"):
        for field, schema in (entry.get(section) or {}).items():
            if not isinstance(schema, dict):
                raise wrong(f"{section}.{field}", "a mapping (type, title, ...)", schema)
            strings(schema, ("type", "title", "pattern", "prefix", "suffix"), f"{section}.{field}.")


def _reject_duplicate_names(node: yaml.MappingNode, path: str) -> None:
    # YAML loaders silently keep the last of two equal keys; a catalogue must not.
    seen: set[str] = set()
    for key_node, _ in node.value:
        name = key_node.value
        if isinstance(name, str) and name in seen:
            line = key_node.start_mark.line + 1
            raise _fail(path, f"provider '{name}' is defined twice (again at line {line})")
        seen.add(name)


def _resolve_all(raw: dict[str, dict], origins: dict[str, str]) -> dict[str, dict]:
    """Resolve every alias of `raw`; `origins` names the file each entry comes from, for errors."""
    resolved: dict[str, dict] = {}
    for name in raw:
        _resolve(name, raw, resolved, origins)
    # Resolving an alias may resolve its target first; keep the file's order all the same.
    resolved = {name: resolved[name] for name in raw}
    for name, entry in resolved.items():
        if "auth_mode" not in entry:
            raise _fail(origins[name], f"provider '{name}' has no auth_mode")
        if "webhook_signature" in entry:
            problem = webhook_signatures.check(entry["webhook_signature"])
            if problem:
                raise _fail(origins[name], f"provider '{name}': {problem}")
    return resolved


def _resolve(name: str, raw: dict[str, dict], resolved: dict[str, dict], origins: dict[str, str]) -> None:
    """Resolve `name` and every unresolved alias on its chain into `resolved`."""
    chain: list[str] = []
    current = name
    # Walk towards the root of the chain until an entry that is resolved or is no alias.
    while current not in resolved and "alias" in raw[current]:
        if current in chain:
            cycle = " -> ".join(chain[chain.index(current) :] + [current])
            raise _fail(origins[current], f"aliases form a cycle: {cycle}")
        chain.append(current)
        target = raw[current]["alias"]
        if not isinstance(target, str) or target not in raw:
            raise _fail(origins[current], f"provider '{current}' is an alias of '{target}', which is not defined")
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

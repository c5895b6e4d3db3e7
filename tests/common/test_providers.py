"""Tests of the provider catalogue loader and of Authport's built-in catalogue."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from common.providers import AUTH_MODES, BUILTIN_PATH, Catalogue, CatalogueError
from scripts.sort_catalogue import sort_text


def write_catalogue(tmp_path, text: str, name: str = "providers.yaml"):
    """Write `text` (dedented) to a catalogue file and return its path as a string."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def load_text(tmp_path, text: str) -> Catalogue:
    return Catalogue.load(write_catalogue(tmp_path, text))


def load_error(tmp_path, text: str) -> str:
    path = write_catalogue(tmp_path, text)
    with pytest.raises(CatalogueError) as info:
        Catalogue.load(path)
    message = str(info.value)
    assert path in message
    assert "\n" not in message
    return message


BASE = """
    base:
        display_name: Base
        auth_mode: OAUTH2
        authorization_url: https://auth.example.com/authorize
        token_url: https://auth.example.com/token
        authorization_params: {access_type: offline}
        proxy:
            base_url: https://api.example.com
            headers: {x-one: '1'}
        x_unknown_field: [kept, as, is]
"""


# ----------------------------------------------------------------------------- loading basics --


def test_entries_are_served_verbatim_in_file_order(tmp_path):
    cat = load_text(
        tmp_path,
        BASE
        + """
    zeta: {auth_mode: API_KEY, proxy: {base_url: 'https://z.example.com'}}
    alpha: {auth_mode: BASIC, proxy: {base_url: 'https://a.example.com'}}
    """,
    )
    assert cat.names() == ["base", "zeta", "alpha"]
    assert [name for name, _ in cat.all()] == ["base", "zeta", "alpha"]
    assert cat.get("base")["x_unknown_field"] == ["kept", "as", "is"]
    assert cat.get("alpha") == {"auth_mode": "BASIC", "proxy": {"base_url": "https://a.example.com"}}
    assert cat.get("missing") is None


def test_get_and_all_return_copies(tmp_path):
    cat = load_text(tmp_path, BASE)
    cat.get("base")["proxy"]["base_url"] = "changed"
    cat.all()[0][1]["authorization_params"]["access_type"] = "changed"
    assert cat.get("base")["proxy"]["base_url"] == "https://api.example.com"
    assert cat.get("base")["authorization_params"] == {"access_type": "offline"}


def test_default_path_is_the_builtin_catalogue():
    assert Catalogue.load().names() == Catalogue.load(str(BUILTIN_PATH)).names()


# ---------------------------------------------------------------------------------- aliases --


def test_alias_is_a_shallow_merge_over_its_target(tmp_path):
    cat = load_text(
        tmp_path,
        BASE
        + """
    child:
        alias: base
        display_name: Child
        proxy:
            base_url: https://child.example.com
    """,
    )
    child = cat.get("child")
    assert "alias" not in child
    assert child["display_name"] == "Child"
    assert child["auth_mode"] == "OAUTH2"
    assert child["token_url"] == "https://auth.example.com/token"
    assert child["authorization_params"] == {"access_type": "offline"}
    # Nested mappings are replaced whole, not merged.
    assert child["proxy"] == {"base_url": "https://child.example.com"}
    assert cat.get("base")["display_name"] == "Base"


def test_alias_may_override_auth_mode(tmp_path):
    cat = load_text(tmp_path, BASE + "    cc: {alias: base, auth_mode: OAUTH2_CC}\n")
    assert cat.get("cc")["auth_mode"] == "OAUTH2_CC"
    assert cat.get("cc")["token_url"] == "https://auth.example.com/token"


def test_alias_chains_resolve_in_any_file_order(tmp_path):
    cat = load_text(
        tmp_path,
        """
    grandchild: {alias: child, display_name: Grandchild}
    """
        + BASE
        + """
    child: {alias: base, display_name: Child, docs: https://docs.example.com}
    """,
    )
    assert cat.names() == ["grandchild", "base", "child"]
    grandchild = cat.get("grandchild")
    assert grandchild["display_name"] == "Grandchild"
    assert grandchild["docs"] == "https://docs.example.com"
    assert grandchild["auth_mode"] == "OAUTH2"
    assert "alias" not in grandchild


def test_alias_to_a_missing_target_is_an_error(tmp_path):
    message = load_error(tmp_path, BASE + "    orphan: {alias: nowhere}\n")
    assert "'orphan'" in message and "'nowhere'" in message


def test_alias_cycle_is_an_error(tmp_path):
    message = load_error(
        tmp_path,
        """
    a: {alias: b}
    b: {alias: c}
    c: {alias: a}
    """,
    )
    assert "cycle" in message and "a -> b -> c -> a" in message


def test_self_alias_is_an_error(tmp_path):
    assert "cycle" in load_error(tmp_path, "    me: {alias: me, auth_mode: OAUTH2}\n")


# -------------------------------------------------------------------------------- bad files --


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("    a: {auth_mode: OAUTH2\n    b: [\n", "invalid YAML"),
        ("    - a\n    - b\n", "not a mapping"),
        ("    just a string\n", "not a mapping"),
        ("", "empty"),
        ("    a: {auth_mode: OAUTH2}\n    ---\n    b: {auth_mode: OAUTH2}\n", "invalid YAML"),
        ("    a: nope\n", "'a' is not a mapping"),
        ("    a: {display_name: A}\n", "'a' has no auth_mode"),
        ("    a: {display_name: A}\n    b: {alias: a}\n", "has no auth_mode"),
        ("    a: {auth_mode: OAUTH2}\n    a: {auth_mode: BASIC}\n", "'a' is defined twice"),
        ("    123: {auth_mode: OAUTH2}\n", "not a string"),
    ],
)
def test_unusable_files_raise_one_line_errors(tmp_path, text, expected):
    assert expected in load_error(tmp_path, text)


def test_missing_file_is_an_error(tmp_path):
    path = str(tmp_path / "absent.yaml")
    with pytest.raises(CatalogueError, match=re.escape(path)):
        Catalogue.load(path)


# ----------------------------------------------------------------------------------- search --

SEARCHABLE = """
    google: {auth_mode: OAUTH2}
    google-calendar: {alias: google}
    GitHub: {auth_mode: OAUTH2}
    '*lib': {auth_mode: API_KEY}
    hub(spot: {auth_mode: OAUTH2}
"""


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("google", ["google", "google-calendar"]),
        ("GOOGLE", ["google", "google-calendar"]),
        ("^google$", ["google"]),
        ("cal|git", ["google-calendar", "GitHub"]),
        ("*LIB", ["*lib"]),  # not a valid regex: matched literally
        ("hub(", ["hub(spot"]),
        ("zzz", []),
        ("", ["google", "google-calendar", "GitHub", "*lib", "hub(spot"]),
    ],
)
def test_search_matches_names_case_insensitively(tmp_path, pattern, expected):
    cat = load_text(tmp_path, SEARCHABLE)
    assert [name for name, _ in cat.search(pattern)] == expected


def test_search_returns_resolved_entries(tmp_path):
    cat = load_text(tmp_path, SEARCHABLE)
    assert cat.search("calendar") == [("google-calendar", {"auth_mode": "OAUTH2"})]


# ------------------------------------------------------------------------ built-in catalogue --

REQUIRED = """github google google-calendar google-drive slack hubspot salesforce notion linear zendesk
stripe openai anthropic sendgrid twilio jira asana gitlab bitbucket dropbox box microsoft discord
shopify intercom airtable mailchimp pipedrive zoom xero quickbooks freshdesk datadog""".split()
WHOLE_URL_TEMPLATE = re.compile(r"\$\{connectionConfig\.[A-Za-z0-9_]+\}")
TEMPLATE = re.compile(r"\$\{connectionConfig\.([A-Za-z0-9_]+)\}")


@pytest.fixture(scope="module")
def builtin() -> Catalogue:
    return Catalogue.load()


@pytest.fixture(scope="module")
def builtin_raw_names() -> list[str]:
    return re.findall(r"^([A-Za-z0-9][^:\s]*):", BUILTIN_PATH.read_text(), flags=re.MULTILINE)


def test_builtin_has_enough_providers_and_no_duplicates(builtin, builtin_raw_names):
    assert len(builtin) >= 250
    assert len(builtin_raw_names) == len(set(builtin_raw_names))
    assert builtin.names() == builtin_raw_names


def test_builtin_is_one_block_per_provider_in_alphabetical_order(builtin_raw_names):
    assert builtin_raw_names == sorted(builtin_raw_names, key=str.lower), "run python scripts/sort_catalogue.py"
    assert sort_text(BUILTIN_PATH.read_text()) == BUILTIN_PATH.read_text()


def test_builtin_entries_use_known_modes_and_https_urls(builtin):
    for name, entry in builtin.all():
        assert entry["auth_mode"] in AUTH_MODES, name
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name), name
        assert all(re.fullmatch(r"[a-z0-9-]+", c) for c in entry["categories"]), name
        urls = {key: entry.get(key) for key in ("authorization_url", "token_url", "refresh_url", "request_url", "docs")}
        urls["proxy.base_url"] = entry.get("proxy", {}).get("base_url")  # none: "unauthenticated"
        for key, value in urls.items():
            for url in (value or "").split(" || ") if value else []:
                # A whole-URL template (an instance URL the token response names) or an https URL.
                assert url.startswith("https://") or WHOLE_URL_TEMPLATE.fullmatch(url), (name, key)
                assert " " not in url, (name, key)


def test_every_declared_field_has_a_title(builtin):
    for name, entry in builtin.all():
        for section in ("connection_config", "credentials"):
            for field, schema in entry.get(section, {}).items():
                assert schema.get("title"), f"{name}.{section}.{field}"


def test_builtin_covers_the_required_providers_and_auth_modes(builtin):
    assert [name for name in REQUIRED if name not in builtin] == []
    modes = {entry["auth_mode"] for _, entry in builtin.all()}
    assert {"OAUTH2", "OAUTH2_CC", "OAUTH1", "API_KEY", "BASIC", "NONE", "JWT", "SIGNATURE", "TWO_STEP",
            "BILL"} <= modes


def test_every_builtin_entry_uses_a_mode_authport_runs(builtin):
    assert {name: e["auth_mode"] for name, e in builtin.all() if e["auth_mode"] not in AUTH_MODES} == {}


def test_builtin_has_google_aliases_with_their_own_base_url(builtin):
    # Resolved entries carry no alias key, so the alias lines are read from the file itself.
    text = BUILTIN_PATH.read_text()
    aliases = re.findall(r"^([a-z0-9-]+):\n    alias: google\n", text, flags=re.MULTILINE)
    assert len(aliases) >= 2
    google_base = builtin.get("google")["proxy"]["base_url"]
    for name in aliases:
        entry = builtin.get(name)
        assert entry["authorization_url"] == builtin.get("google")["authorization_url"]
        assert entry["proxy"]["base_url"] != google_base, name


def test_every_oauth_entry_has_its_urls(builtin):
    for name, entry in builtin.all():
        if entry["auth_mode"] == "OAUTH2":
            assert entry.get("authorization_url", "").startswith("https://"), name
        if entry["auth_mode"] in ("OAUTH2", "OAUTH2_CC"):
            assert entry.get("token_url", "").startswith("https://"), name
        if entry["auth_mode"] == "OAUTH2_CC":
            assert entry.get("token_params", {}).get("grant_type") == "client_credentials", name
        if entry["auth_mode"] == "OAUTH1":
            for url in ("request_url", "authorization_url", "token_url"):
                assert entry.get(url, "").startswith("https://"), (name, url)
            assert entry.get("signature_method", "HMAC-SHA1") in ("HMAC-SHA1", "PLAINTEXT"), name
            assert entry.get("request_http_method", "POST") in ("GET", "POST"), name


def test_every_entry_has_a_base_url_display_name_and_docs(builtin):
    for name, entry in builtin.all():
        if name == "unauthenticated":  # the generic NONE entry: its calls name their base URL
            assert entry["auth_mode"] == "NONE" and "proxy" not in entry
            continue
        base_url = entry.get("proxy", {}).get("base_url", "")
        assert base_url.startswith(("https://", "${connectionConfig.")), name
        assert entry.get("display_name"), name
        assert entry.get("docs", "").startswith("https://"), name
        assert isinstance(entry.get("categories"), list) and entry["categories"], name


def test_every_template_names_a_described_connection_config_field(builtin):
    for name, entry in builtin.all():
        schema = entry.get("connection_config", {})
        for field in TEMPLATE.findall(repr(entry)):
            assert field in schema, f"{name} uses ${{connectionConfig.{field}}} without a schema"


def test_api_key_and_basic_entries_describe_their_credentials(builtin):
    for name, entry in builtin.all():
        proxy = entry.get("proxy", {})
        if entry["auth_mode"] == "API_KEY":
            assert "${apiKey}" in repr(proxy.get("headers", {})) + repr(proxy.get("query", {})), name
            assert "apiKey" in entry.get("credentials", {}), name
        if entry["auth_mode"] == "BASIC":
            assert {"username", "password"} <= set(entry.get("credentials", {})), name
        if "verification" in proxy:  # optional: a GET that answers 2xx only for good credentials
            verification = proxy["verification"]
            assert verification.get("method") == "GET", name
            assert verification.get("endpoints") and all(e.startswith("/") for e in verification["endpoints"]), name


def test_schema_patterns_are_valid_regexes(builtin):
    for name, entry in builtin.all():
        for section in ("connection_config", "credentials"):
            for field, schema in entry.get(section, {}).items():
                try:
                    re.compile(schema.get("pattern", ""))
                except re.error as exc:
                    pytest.fail(f"{name}.{section}.{field}: bad pattern: {exc}")
                assert schema.get("type") == "string", f"{name}.{section}.{field}"


def test_retry_headers_are_lists_of_header_names(builtin):
    for name, entry in builtin.all():
        retry = entry.get("proxy", {}).get("retry", {})
        for key in ("at", "after"):
            if key in retry:
                assert isinstance(retry[key], list) and retry[key], name
                assert all(h == h.lower() for h in retry[key]), name
        if "remaining" in retry:
            assert isinstance(retry["remaining"], str), name


def test_the_readme_states_the_builtin_count(builtin):
    readme = (BUILTIN_PATH.parents[1] / "README.md").read_text()
    assert f"`common/providers.yaml`: {len(builtin)} providers" in readme


def test_search_matches_display_names_too(tmp_path):
    cat = load_text(tmp_path, "acme-crm:\n  auth_mode: OAUTH2\n  display_name: Acme Sales Cloud\n"
                              "other:\n  auth_mode: API_KEY\n")
    assert [name for name, _ in cat.search("sales cloud")] == ["acme-crm"]
    assert [name for name, _ in cat.search("ACME")] == ["acme-crm"]
    assert cat.search("nothing-like-it") == []


def test_the_built_in_catalogue_parses_without_libyaml_too():
    """PyYAML without its C extension is stricter (`[/path?query]` is not a plain scalar there)."""
    import yaml

    from common import providers

    path = Path(providers.__file__).with_name("providers.yaml")
    assert len(yaml.load(path.read_text(), Loader=yaml.SafeLoader)) >= 250

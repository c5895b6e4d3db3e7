"""PROVIDERS_FILE extends the built-in catalogue (same names replace), or replaces it with
PROVIDERS_FILE_MODE=replace; a file Authport cannot use stops the processes that load it at start."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from common.providers import Catalogue, CatalogueError
from tests.support.system import ROOT, make_system

EXTRA = """
    github:
        display_name: My GitHub Enterprise
        auth_mode: OAUTH2
        authorization_url: https://ghe.example.com/login/oauth/authorize
        token_url: https://ghe.example.com/login/oauth/access_token
        proxy: {base_url: 'https://ghe.example.com/api/v3'}
    my-api:
        display_name: My own API
        auth_mode: API_KEY
        proxy: {base_url: 'http://127.0.0.1:8000', headers: {authorization: 'Bearer ${apiKey}'}}
    my-drive:
        alias: google
        display_name: My Drive
"""


def write(tmp_path, text: str) -> str:
    path = tmp_path / "providers.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.fixture(scope="module")
def builtin() -> Catalogue:
    return Catalogue.load()


def test_a_file_extends_the_builtin_catalogue_and_same_names_replace(tmp_path, builtin):
    merged = Catalogue.merged(write(tmp_path, EXTRA))
    assert merged.names() == builtin.names() + ["my-api", "my-drive"]  # a replaced entry keeps its place
    assert merged.get("github")["display_name"] == "My GitHub Enterprise"
    assert "headers" not in merged.get("github")["proxy"]  # replaced whole, not merged with the built-in one
    assert merged.get("slack") == builtin.get("slack")
    # The file's aliases may start from a built-in entry.
    assert merged.get("my-drive")["authorization_url"] == builtin.get("google")["authorization_url"]
    assert merged.get("my-api")["proxy"]["base_url"] == "http://127.0.0.1:8000"


def test_a_replaced_entry_is_what_the_builtin_aliases_start_from(tmp_path, builtin):
    merged = Catalogue.merged(write(tmp_path, """
        google:
            display_name: Google (own proxy)
            auth_mode: OAUTH2
            authorization_url: https://sso.example.com/authorize
            token_url: https://sso.example.com/token
            proxy: {base_url: 'https://google.example.com'}
    """))
    calendar = merged.get("google-calendar")
    assert calendar["authorization_url"] == "https://sso.example.com/authorize"
    assert calendar["proxy"] == builtin.get("google-calendar")["proxy"]  # its own keys still win


def test_replace_mode_serves_the_file_alone(tmp_path):
    path = write(tmp_path, EXTRA.replace("alias: google", "alias: github"))
    assert Catalogue.merged(path, "replace").names() == ["github", "my-api", "my-drive"]
    # Without the built-in catalogue, an alias of a built-in entry has no target.
    with pytest.raises(CatalogueError, match="'my-drive' is an alias of 'google', which is not defined"):
        Catalogue.merged(write(tmp_path, EXTRA), "replace")


def test_configured_follows_the_settings(tmp_path, builtin):
    path = write(tmp_path, EXTRA.replace("alias: google", "alias: github"))
    settings = SimpleNamespace(PROVIDERS_FILE=None, PROVIDERS_FILE_MODE="extend")
    assert Catalogue.configured(settings).names() == builtin.names()
    settings.PROVIDERS_FILE = path
    assert len(Catalogue.configured(settings)) == len(builtin) + 2
    settings.PROVIDERS_FILE_MODE = "replace"
    assert len(Catalogue.configured(settings)) == 3


@pytest.mark.parametrize(("entry", "expected"), [
    ("{auth_mode: OAUTH3, proxy: {base_url: 'https://x.example.com'}}",
     "provider 'bad': auth_mode str 'OAUTH3' is not one of"),
    ("{auth_mode: API_KEY, proxy: {base_url: [https://x.example.com]}}",
     "provider 'bad': proxy.base_url must be a string, not a list"),
    ("{auth_mode: API_KEY, proxy: https://x.example.com}", "provider 'bad': proxy must be a mapping, not str"),
    ("{auth_mode: API_KEY, proxy: {headers: {authorization: {bearer: x}}}}",
     "provider 'bad': proxy.headers.authorization must be a string, not a mapping"),
    ("{auth_mode: BASIC, credentials: {username: Email}}",
     "provider 'bad': credentials.username must be a mapping (type, title, ...), not str 'Email'"),
    ("{auth_mode: OAUTH2, connection_config: {subdomain: {type: string, pattern: [a]}}}",
     "provider 'bad': connection_config.subdomain.pattern must be a string, not a list"),
    ("{auth_mode: OAUTH2, token_url: [https://a.example.com]}", "provider 'bad': token_url must be a string"),
    ("{auth_mode: OAUTH2, categories: crm}", "provider 'bad': categories must be a list, not str 'crm'"),
    ("{auth_mode: OAUTH2, default_scopes: read write}", "provider 'bad': default_scopes must be a list"),
    ("{alias: slack, authorization_params: prompt}", "provider 'bad': authorization_params must be a mapping"),
])
def test_a_bad_entry_is_refused_naming_the_entry_and_the_field(tmp_path, entry, expected):
    path = write(tmp_path, f"ok: {{auth_mode: NONE}}\nbad: {entry}\n")
    with pytest.raises(CatalogueError) as info:
        Catalogue.merged(path)
    assert str(info.value).startswith(f"{path}: ") and expected in str(info.value)


def test_a_file_of_more_than_a_thousand_entries_loads(tmp_path, builtin):
    blocks = [f"""p{i:04d}:
    display_name: Provider {i}
    categories: [other]
    auth_mode: {("OAUTH2", "API_KEY", "BASIC")[i % 3]}
    authorization_url: https://auth{i}.example.com/authorize
    token_url: https://auth{i}.example.com/token
    proxy:
        base_url: https://${{connectionConfig.subdomain}}.p{i}.example.com
        headers: {{x-n: '{i}'}}
    connection_config:
        subdomain: {{type: string, title: Subdomain}}
    docs: https://p{i}.example.com/docs
""" for i in range(1200)]
    blocks += [f"a{i:04d}: {{alias: p{i:04d}, display_name: Alias {i}}}\n" for i in range(300)]
    path = tmp_path / "big.yaml"
    path.write_text("\n".join(blocks))
    merged = Catalogue.merged(str(path))
    assert len(merged) == len(builtin) + 1500
    assert merged.get("a0299")["proxy"]["headers"] == {"x-n": "299"}
    assert merged.get("p1199")["auth_mode"] == "BASIC"  # 1199 % 3 == 2


@pytest.mark.parametrize("module", ["services.store", "services.auth"])
def test_a_bad_file_stops_a_process_at_start_with_one_line(tmp_path, module):
    path = write(tmp_path, EXTRA + "    broken: {auth_mode: API_KEY, proxy: {base_url: {url: x}}}\n")
    env = make_system(tmp_path, f"sqlite:///{tmp_path / 'authport.db'}", PROVIDERS_FILE=path).env
    result = subprocess.run([sys.executable, "-m", module], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert f"{path}: provider 'broken': proxy.base_url must be a string, not a mapping" in line
    assert "Traceback" not in result.stderr


def test_an_unknown_file_mode_stops_the_store_at_start(tmp_path):
    env = make_system(tmp_path, f"sqlite:///{tmp_path / 'authport.db'}", PROVIDERS_FILE=write(tmp_path, EXTRA),
                      PROVIDERS_FILE_MODE="merge").env
    result = subprocess.run([sys.executable, "-m", "services.store"], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert "PROVIDERS_FILE_MODE: expected extend or replace" in result.stderr and "Traceback" not in result.stderr

"""Accounts and plans through the admin CLI (`accounts create|set-plan|list`), on both backends,
and a plan change seen by two running gateways within the current rate-limit window."""

from __future__ import annotations

import re
import time
import uuid

import pytest
import redis
import requests

from tests.store import admin, raw_text
from tests.support.databases import REDIS_URL, unavailable
from tests.support.load import wait_for_window
from tests.support.system import make_system

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def ok(env: dict[str, str], *args: str) -> list[str]:
    done = admin(env, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def refused(env: dict[str, str], *args: str) -> str:
    """The command exits with 2 after one line on stderr; that line."""
    done = admin(env, *args)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 2, lines
    assert len(lines) == 1 and lines[0].startswith("authport admin: "), lines
    return lines[0]


def accounts(env: dict[str, str]) -> dict[str, tuple[str, str, str]]:
    """`accounts list` as {name: (plan, limit, environments)}."""
    header, *rows = ok(env, "accounts", "list")
    assert header.split() == ["NAME", "PLAN", "LIMIT", "ENVIRONMENTS"]
    return {name: (plan, limit, envs) for name, plan, limit, envs in (row.split() for row in rows)}


def gateway_get(url: str, key: str) -> requests.Response:
    with requests.Session() as http:
        http.trust_env = False
        return http.get(url + "/integrations", headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_create_an_account_with_its_environments_and_keys(tmp_path, database_url):
    env = make_system(tmp_path, database_url).env
    lines = ok(env, "accounts", "create", "acme", "--plan", "starter")
    assert lines[0].startswith("created account acme (plan starter, 1000 requests per minute)")
    printed = dict(line.split(": ") for line in lines[1:])
    assert list(printed) == ["dev secret_key", "dev public_key", "prod secret_key", "prod public_key"]
    assert all(UUID4.match(key) for key in printed.values()) and len(set(printed.values())) == 4
    shown = dict(line.split(": ") for line in ok(env, "keys", "show", "--env", "prod", "--account", "acme"))
    assert shown == {"secret_key": printed["prod secret_key"], "public_key": printed["prod public_key"]}
    assert not any(key in raw_text(database_url) for key in printed.values())  # stored encrypted only
    assert accounts(env) == {"default": ("free", "200", "dev,prod"), "acme": ("starter", "1000", "dev,prod")}
    assert ok(env, "environments", "list", "--account", "acme") == ["dev", "prod"]
    assert "already exists" in refused(env, "accounts", "create", "acme")


def test_set_plan_and_its_rules(tmp_path, database_url):
    env = make_system(tmp_path, database_url).env
    ok(env, "accounts", "create", "acme")
    assert ok(env, "accounts", "set-plan", "acme", "growth") == ["account acme: plan growth, 2000 requests per minute"]
    assert "--rate-limit" in refused(env, "accounts", "set-plan", "acme", "enterprise")
    assert "--rate-limit" in refused(env, "accounts", "set-plan", "acme", "growth", "--rate-limit", "5")
    assert "at least 1" in refused(env, "accounts", "set-plan", "acme", "enterprise", "--rate-limit", "0")
    assert "invalid choice" in refused(env, "accounts", "set-plan", "acme", "platinum")
    assert "unknown account 'nobody'" in refused(env, "accounts", "set-plan", "nobody", "free")
    ok(env, "accounts", "set-plan", "acme", "enterprise", "--rate-limit", "5000")
    assert accounts(env)["acme"] == ("enterprise", "5000", "dev,prod")
    ok(env, "accounts", "set-plan", "acme", "starter")
    assert accounts(env)["acme"] == ("starter", "1000", "dev,prod")
    assert "account name" in refused(env, "accounts", "create", "bad name")
    assert "--rate-limit" in refused(env, "accounts", "create", "big", "--plan", "enterprise")
    ok(env, "accounts", "create", "big", "--plan", "enterprise", "--rate-limit", "12345")
    assert accounts(env)["big"] == ("enterprise", "12345", "dev,prod")


def test_default_plan_applies_when_the_default_account_is_created_only(tmp_path):
    env = make_system(tmp_path, f"sqlite:///{tmp_path / 'authport.db'}", DEFAULT_PLAN="starter").env
    assert accounts(env)["default"] == ("starter", "1000", "dev,prod")
    ok(env, "accounts", "set-plan", "default", "growth")
    assert accounts({**env, "DEFAULT_PLAN": "free"})["default"] == ("growth", "2000", "dev,prod")


def test_an_enterprise_default_plan_starts_at_the_growth_limit(tmp_path):
    env = make_system(tmp_path, f"sqlite:///{tmp_path / 'authport.db'}", DEFAULT_PLAN="enterprise").env
    first = admin(env, "environments", "list")  # the first start creates the default account
    assert first.returncode == 0 and "accounts set-plan default enterprise --rate-limit" in first.stderr
    assert accounts(env)["default"] == ("enterprise", "2000", "dev,prod")


@pytest.fixture
def two_gateways(tmp_path, database_url):
    prefix = f"t-plans-{uuid.uuid4().hex}"
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    system = make_system(tmp_path, database_url, NANGO_REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=prefix, WORKERS="2")
    try:
        system.start()
        system.urls = [system.url, system.add_gateway("gateway-2")]
        yield system
    finally:
        system.stop()
        redis.Redis.from_url(REDIS_URL).delete(f"{prefix}:keys:epoch")


def test_a_plan_change_applies_within_the_current_window_on_every_gateway(two_gateways):
    system = two_gateways
    lines = ok(system.env, "accounts", "create", "acme")
    key = dict(line.split(": ") for line in lines[1:])["dev secret_key"]
    wait_for_window(15)
    started = time.time()
    for _ in range(3):  # every worker of both gateways caches the identity, with the free plan in it
        for url in system.urls:
            assert gateway_get(url, key).headers["X-RateLimit-Limit"] == "200"
    other = gateway_get(system.url, system.dev_key)
    assert other.headers["X-RateLimit-Remaining"] == "199"  # accounts count apart
    ok(system.env, "accounts", "set-plan", "acme", "growth")
    seen = [gateway_get(url, key).headers for url in system.urls]
    assert [h["X-RateLimit-Limit"] for h in seen] == ["2000", "2000"]
    assert [h["X-RateLimit-Remaining"] for h in seen] == ["1993", "1992"]  # the window's count is kept
    ok(system.env, "accounts", "set-plan", "acme", "enterprise", "--rate-limit", "10")
    statuses = [(r.status_code, r.headers["X-RateLimit-Limit"]) for r in
                (gateway_get(system.urls[i % 2], key) for i in range(4))]
    assert statuses == [(200, "10"), (200, "10"), (429, "10"), (429, "10")]
    assert gateway_get(system.url, system.dev_key).headers["X-RateLimit-Limit"] == "200"
    assert int(started // 60) == int(time.time() // 60), "the test crossed a window; machine too slow"

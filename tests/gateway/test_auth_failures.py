"""Failed authentications are limited per client address without locking out right keys
(gateway/admission.py): past AUTH_FAILURE_LIMIT a wrong key gets 429, a right key from the same
address still passes, with counters in memory and in Redis, behind a trusted reverse proxy."""

from __future__ import annotations

import base64
import uuid

import pytest
import redis
import requests

from common.errors import ApiError
from common.internal import StoreClient
from gateway.admission import Admission
from gateway.keycache import KeyCache
from gateway.ratelimit import RateLimiter
from tests.support.databases import REDIS_URL, drop_redis_prefix, unavailable
from tests.support.load import wait_for_window
from tests.support.system import make_system

LIMIT = 30  # AUTH_FAILURE_LIMIT's default
_addresses = iter(range(1, 250))


def new_address() -> str:
    """A client address of its own for each test (the counters last the whole window)."""
    return f"203.0.113.{next(_addresses)}"


@pytest.fixture(scope="module", params=["memory", "redis"])
def system(request, tmp_path_factory):
    """A system behind one trusted reverse proxy; with Redis, a second gateway shares the counters."""
    tmp_dir = tmp_path_factory.mktemp(f"auth-failures-{request.param}")
    env = {"TRUSTED_PROXIES": "1"}
    prefix = f"t-authfail-{uuid.uuid4().hex}"
    if request.param == "redis":
        try:
            redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
        except redis.RedisError as exc:
            unavailable("Redis", exc)
        env.update(NANGO_REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=prefix)
    running = make_system(tmp_dir, f"sqlite:///{tmp_dir / 'authport.db'}", **env)
    try:
        running.start()
        running.other = running.add_gateway("gateway-2") if request.param == "redis" else running.url
        yield running
    finally:
        running.stop()
        if request.param == "redis":
            drop_redis_prefix(prefix)


def get(url: str, key: str | None, address: str | None = None, *, authorization: str | None = None):
    headers = {"X-Forwarded-For": address} if address else {}
    if authorization or key:
        headers["Authorization"] = authorization or f"Bearer {key}"
    with requests.Session() as http:
        http.trust_env = False
        return http.get(url + "/integrations", headers=headers, timeout=30)


def new_key(system) -> str:
    """A secret key created just now: no gateway has resolved (or cached) it yet."""
    with requests.Session() as http:
        http.trust_env = False
        response = http.post(system.url + "/environment/keys", json={"name": f"k{uuid.uuid4().hex[:10]}"},
                             headers={"Authorization": f"Bearer {system.dev_key}", "X-Forwarded-For": new_address()},
                             timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["data"]["key"]


def assert_refused(response: requests.Response) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) >= 1
    body = response.json()
    assert body["error"]["code"] == "too_many_request" and "failed authentications" in body["error"]["message"]
    assert set(body) == {"error"}


def flood(url: str, address: str | None, count: int = 40) -> list[requests.Response]:
    return [get(url, str(uuid.uuid4()), address) for _ in range(count)]


def test_a_right_key_passes_after_forty_wrong_ones_from_its_address(system):
    wait_for_window(15)
    fresh, address = new_key(system), new_address()
    answers = flood(system.url, address)
    assert [a.status_code for a in answers] == [401] * LIMIT + [429] * (40 - LIMIT)
    assert answers[0].json()["error"]["code"] == "unknown_account"
    for refused in answers[LIMIT:]:
        assert_refused(refused)
    admitted = get(system.other, fresh, address)  # on a gateway that never saw the key
    assert admitted.status_code == 200, admitted.text
    assert admitted.headers["X-RateLimit-Limit"] == "200"  # the plan's limit, not the failure limit
    assert get(system.url, system.dev_key, address).status_code == 200
    assert_refused(get(system.other, str(uuid.uuid4()), address))  # with Redis: counted on the other gateway too
    assert get(system.url, str(uuid.uuid4()), new_address()).status_code == 401  # other addresses are apart


def test_without_a_forwarded_address_the_peer_address_counts(system):
    wait_for_window(15)
    fresh = new_key(system)
    assert [a.status_code for a in flood(system.url, None)][-5:] == [429] * 5
    assert get(system.url, fresh).status_code == 200
    assert_refused(get(system.url, str(uuid.uuid4())))


def test_malformed_and_repeated_keys_count_and_are_refused_alike(system):
    wait_for_window(15)
    address, wrong = new_address(), str(uuid.uuid4())
    statuses = [get(system.url, wrong, address).status_code for _ in range(LIMIT - 2)]
    statuses += [get(system.url, None, address, authorization="Bearer not-a-uuid").status_code for _ in range(4)]
    assert statuses == [401] * LIMIT + [429] * 2
    assert_refused(get(system.url, None, address, authorization="Bearer not-a-uuid"))
    assert_refused(get(system.url, wrong, address))
    basic = base64.b64encode(f"{system.dev_key}:".encode()).decode()
    assert get(system.url, None, address, authorization=f"Basic {basic}").status_code == 200


class CountingStore(StoreClient):
    """The real store client, counting the key lookups the gateway asks of the store."""

    lookups = 0

    def resolve_key(self, secret: str, kind: str = "secret"):
        self.lookups += 1
        return super().resolve_key(secret, kind)


def test_a_repeated_wrong_key_costs_one_store_lookup(system):
    store = CountingStore(system.service_url("store"), system.env["INTERNAL_API_KEY"])
    admission = Admission(store, RateLimiter(None, fail_open=True, auth_failure_limit=5), KeyCache(ttl=10.0))
    revoked = str(uuid.uuid4())
    codes = []
    for _ in range(8):
        try:
            admission.admit(f"Bearer {revoked}", "198.51.100.1")
        except ApiError as error:
            codes.append(error.status)
    assert codes == [401] * 5 + [429] * 3
    assert store.lookups == 1
    identity, decision = admission.admit(f"Bearer {system.dev_key}", "198.51.100.1")
    assert identity.environment == "dev" and decision.allowed and store.lookups == 2

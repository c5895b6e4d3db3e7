"""A webhook signing key of the environment's own (issue 13): POST
/environment/webhook-signing-key/rotate returns it once; from then on auth webhooks are signed with
it (the Node SDK, given it as webhookSigningKey, verifies them; given the old key, it does not), also
those queued before the rotation; an environment that never rotated signs with its secret key."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import time

from tests.api.builders import gateway
from tests.auth.test_capture import public_key_of
from tests.auth.test_webhook_outbox import (  # noqa: F401 - the module's system fixture
    hook_url,
    new_connection,
    receiver_on,
    set_webhook_url,
    system,
    wait_until,
)
from tests.auth.test_webhooks import VERIFY_SCRIPT
from tests.support.databases import raw_rows
from tests.support.npm import npm_install
from tests.support.system import free_port


def signed_with(key: str, delivery) -> bool:
    return hmac.compare_digest(delivery.headers["X-Nango-Hmac-Sha256"],
                               hmac.new(key.encode(), delivery.raw, hashlib.sha256).hexdigest())


def sdk_accepts(signing_key: str, delivery) -> bool:
    """verifyIncomingWebhookRequest of @nangohq/node, constructed with webhookSigningKey."""
    sdk = npm_install("@nangohq/node@0.71.10")
    plan = json.dumps({"secretKey": "not-the-signing-key", "webhookSigningKey": signing_key,
                       "body": delivery.raw.decode(), "headers": delivery.headers})
    done = subprocess.run(["node", str(VERIFY_SCRIPT), str(sdk)], input=plan, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])["incoming"]


def test_rotating_the_signing_key_signs_every_webhook_after_it_with_the_new_key(system, oauth_server):  # noqa: F811
    api = gateway(system)
    port = free_port()
    set_webhook_url(system, hook_url(port))
    receiver = receiver_on(port)
    try:
        before = new_connection(system, oauth_server)
        [first] = wait_until(lambda: receiver.about(before))
        assert signed_with(system.dev_key, first)  # never rotated: the secret key signs
        refused = gateway(system, public_key_of(system)).post("/environment/webhook-signing-key/rotate")
        assert refused.status_code in (401, 403)
        rotated = api.post("/environment/webhook-signing-key/rotate")
        assert rotated.status_code == 200, rotated.text
        key = rotated.json()["data"]["webhook_signing_key"]
        assert key and key != system.dev_key
        stored = str(raw_rows(system.database_url, "SELECT * FROM environments"))
        assert key not in stored  # encrypted at rest
        after = new_connection(system, oauth_server)
        [second] = wait_until(lambda: receiver.about(after))
        assert signed_with(key, second) and not signed_with(system.dev_key, second)
        assert sdk_accepts(key, second) and not sdk_accepts(system.dev_key, second)
        again = api.post("/environment/webhook-signing-key/rotate").json()["data"]["webhook_signing_key"]
        assert again != key
        third_id = new_connection(system, oauth_server)
        [third] = wait_until(lambda: receiver.about(third_id))
        assert signed_with(again, third) and not signed_with(key, third)
    finally:
        receiver.stop()
        set_webhook_url(system, None)


def test_a_webhook_queued_before_the_rotation_is_signed_with_the_new_key(system, oauth_server):  # noqa: F811
    api = gateway(system)
    port = free_port()
    set_webhook_url(system, hook_url(port))  # nobody listens yet: the webhook waits in the outbox
    queued = new_connection(system, oauth_server)
    key = api.post("/environment/webhook-signing-key/rotate").json()["data"]["webhook_signing_key"]
    time.sleep(0.5)
    receiver = receiver_on(port)
    try:
        delivered = wait_until(lambda: receiver.about(queued))
        assert signed_with(key, delivered[-1])
    finally:
        receiver.stop()
        set_webhook_url(system, None)


def test_the_rotation_is_on_record_without_the_key(system):  # noqa: F811
    api = gateway(system)
    key = api.post("/environment/webhook-signing-key/rotate").json()["data"]["webhook_signing_key"]
    records = api.get("/logs", params={"type": "key.rotated"}).json()["data"]
    assert records[0]["detail"] == {"kind": "webhook_signing", "name": "default"}
    assert records[0]["actor"] == "key:default"
    assert key not in json.dumps(records)

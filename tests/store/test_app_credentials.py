"""GitHub-App style integrations: the private key is encrypted at rest like every other secret."""

from __future__ import annotations

import base64
import os

from common.identity import INTERNAL_KEY_HEADER, Identity
from common.settings import load_settings
from services.store.app import create_app
from tests.store import raw_text

PROVIDERS = """
my-app:
  display_name: My App
  auth_mode: APP
  authorization_url: https://example.test/apps/install
  token_url: https://example.test/token
  proxy:
    base_url: https://api.example.test
"""
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nsentinel-private-key-material\n-----END RSA PRIVATE KEY-----"


def test_app_private_key_is_encrypted_and_returned_to_the_secret_key(tmp_path, database_url):
    providers = tmp_path / "providers.yaml"
    providers.write_text(PROVIDERS)
    settings = load_settings({
        "NANGO_DATABASE_URL": database_url, "INTERNAL_API_KEY": "internal", "PROVIDERS_FILE": str(providers),
        "NANGO_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
    })
    client = create_app(settings).test_client()
    identity = Identity(account_id=1, environment_id=1, environment="dev", plan="free", rate_limit=200,
                        key_kind="secret", key_id=1)
    headers = {INTERNAL_KEY_HEADER: "internal", **identity.to_headers()}
    created = client.post("/integrations", headers=headers, json={
        "unique_key": "app", "provider": "my-app",
        "credentials": {"type": "APP", "app_id": "123", "app_link": "https://example.test/apps/x",
                        "private_key": PRIVATE_KEY}})
    assert created.status_code == 200, created.get_json()
    assert "sentinel-private-key-material" not in raw_text(database_url)
    shown = client.get("/integrations/app?include=credentials", headers=headers).get_json()["data"]
    assert shown["credentials"] == {"type": "APP", "app_id": "123", "private_key": PRIVATE_KEY,
                                    "app_link": "https://example.test/apps/x"}

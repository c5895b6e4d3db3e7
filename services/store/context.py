"""What the store's views and domain functions share for the life of the process."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from common.crypto import Cipher
from common.providers import Catalogue
from common.settings import Settings


@dataclass(frozen=True)
class StoreContext:
    settings: Settings
    cipher: Cipher
    catalogue: Catalogue

    @property
    def server_url(self) -> str:
        return self.settings.server_url


def ctx() -> StoreContext:
    return current_app.extensions["authport_store"]

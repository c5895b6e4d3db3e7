"""Bounded bursts of concurrent requests against the gateway, for limit tests."""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

WINDOW = 60


def wait_for_window(min_left: float) -> None:
    """Sleep into the next 60-second window when fewer than `min_left` seconds remain in this one."""
    left = WINDOW - time.time() % WINDOW
    if left < min_left:
        time.sleep(left + 0.2)


def fire(urls: list[str], key: str, count: int, *, path: str = "/providers/github", threads: int = 32):
    """Send `count` GETs spread round-robin over `urls`; return the list of (status, headers)."""
    local = threading.local()
    targets = itertools.cycle(urls)
    lock = threading.Lock()

    def one(_):
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.trust_env = False
            session.headers["Authorization"] = f"Bearer {key}"
        with lock:
            base = next(targets)
        response = session.get(base + path, timeout=30)
        return response.status_code, response.headers

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, range(count)))

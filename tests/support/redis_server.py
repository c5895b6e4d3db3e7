"""A private redis-server on a free loopback port, which a test may stop and start again."""

from __future__ import annotations

import shutil
import subprocess
import time

import redis

from tests.support.databases import unavailable
from tests.support.system import free_port


class RedisServer:
    def __init__(self, tmp_dir):
        if shutil.which("redis-server") is None:
            unavailable("redis-server", FileNotFoundError("redis-server is not installed"))
        self.port = free_port()
        self.dir = tmp_dir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        for _ in range(100):
            try:
                if client.ping():
                    return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

"""Where a process's Prometheus values live under gunicorn (one file set per worker): chosen by
`prepare` before prometheus_client is first imported, which is when the library decides."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare(process: str) -> None:
    """A fresh directory for this server (unless the operator set one), removed when it exits."""
    if os.environ.get(ENV):
        os.makedirs(os.environ[ENV], exist_ok=True)
        return
    owned = tempfile.mkdtemp(prefix=f"authport-{process}-metrics-")
    os.environ[ENV] = owned
    master = os.getpid()
    atexit.register(lambda: os.getpid() == master and shutil.rmtree(owned, ignore_errors=True))


def worker_exited(_server, worker) -> None:
    """gunicorn's child_exit hook: a dead worker's live gauges no longer count."""
    if os.environ.get(ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

"""Is a listening port free? Asked by each process before gunicorn binds, and by `make up` before
it starts anything."""

from __future__ import annotations

import socket


def listen_problem(host: str, port: int) -> str | None:
    """Why `host:port` cannot be listened on now (e.g. "Address already in use"), else None.

    The same SO_REUSEADDR as gunicorn, so a port in TIME_WAIT is no obstacle; on Linux a port
    another process listens on (on this address or on every address) still fails to bind."""
    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None

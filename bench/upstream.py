"""The benchmark's upstream API: a gevent WSGI server, fast enough not to be what is measured.

`/fast` answers a small JSON at once, `/slow` after 200 ms, `/big?n=<bytes>` streams n bytes.
Usage: python -m bench.upstream <host> <port>
"""

from gevent import monkey

monkey.patch_all()

import socket  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

SMALL = b'{"id":1,"name":"octocat","repos":[1,2,3]}'
CHUNK = b"\0" * (1 << 20)


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/slow":
        gevent.sleep(0.2)
    if path == "/big":
        size = int(environ.get("QUERY_STRING", "n=0").partition("=")[2] or 0)
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
        return (CHUNK[: min(len(CHUNK), size - sent)] for sent in range(0, size, len(CHUNK)))
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(SMALL)))])
    return [SMALL]


def listener(host: str, port: int) -> socket.socket:
    """A listening socket whose connections send at once (TCP_NODELAY is inherited on accept):
    without it, headers and body written separately wait 40 ms for the client's delayed ACK."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(1024)
    return sock


if __name__ == "__main__":
    WSGIServer(listener(sys.argv[1], int(sys.argv[2])), app, log=None, error_log=None).serve_forever()

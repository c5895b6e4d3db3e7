"""The benchmark's upstream API, as cheap as a Python server gets, so that what is measured is
Authport, not the stand-in for a third-party API sharing its two cores.

A real provider runs on other machines; here every millisecond of CPU the upstream spends is
taken from the gateway and the proxy. So this is a gevent stream server that reads a request's
head, answers from canned bytes and keeps the connection: no WSGI, no header parsing beyond the
request line and Content-Length (a GET without a body is what the benchmarks send).

`/fast` answers a small JSON at once, `/slow` after 200 ms, `/big?n=<bytes>` streams n bytes.
Usage: python -m bench.upstream <host> <port>
"""

from gevent import monkey

monkey.patch_all()

import socket  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from gevent.server import StreamServer  # noqa: E402

SMALL = b'{"id":1,"name":"octocat","repos":[1,2,3]}'
SMALL_ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(SMALL)).encode() + b"\r\n\r\n" + SMALL)
CHUNK = b"\0" * (1 << 20)


def big_answer(sock: socket.socket, size: int) -> None:
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: "
                 + str(size).encode() + b"\r\n\r\n")
    for sent in range(0, size, len(CHUNK)):
        sock.sendall(CHUNK[: min(len(CHUNK), size - sent)])


def handle(sock: socket.socket, _address) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = b""
    try:
        while True:
            while b"\r\n\r\n" not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            target = head.split(b" ", 2)[1]
            path, _, query = target.partition(b"?")
            if path == b"/slow":
                gevent.sleep(0.2)
            if path == b"/big":
                big_answer(sock, int(query.partition(b"=")[2] or 0))
            else:
                sock.sendall(SMALL_ANSWER)
    except OSError:
        return
    finally:
        sock.close()


if __name__ == "__main__":
    StreamServer((sys.argv[1], int(sys.argv[2])), handle, backlog=1024).serve_forever()

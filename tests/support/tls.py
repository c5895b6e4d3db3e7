"""TLS for the egress tests: a throwaway certificate authority, and the recording `Upstream` served
on any loopback address (IPv4 or IPv6), over TLS when given a server context.

`TestCA(directory)` writes its certificate to `ca.pem` (what `SSL_CERT_FILE` points at) and issues
server certificates for the names and addresses asked for.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.upstream import Upstream, _Handler, _Server, _State


def _pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class TestCA:
    """A certificate authority that exists for one test run."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, directory: Path, name: str = "Authport Test CA"):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        ski = x509.SubjectKeyIdentifier.from_public_key(self.key.public_key())
        self.cert = (self._builder(subject, self.key.public_key()).issuer_name(subject)
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                    critical=True)
                     .add_extension(ski, critical=False)
                     .sign(self.key, hashes.SHA256()))
        self.pem_path = self.directory / "ca.pem"
        self.pem_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    @staticmethod
    def _builder(subject: x509.Name, public_key) -> x509.CertificateBuilder:
        now = datetime.datetime.now(datetime.UTC)
        return (x509.CertificateBuilder().subject_name(subject).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1)))

    def issue(self, dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()) -> tuple[Path, Path]:
        """A server certificate for `dns` names and `ips`; returns (certificate, key) PEM paths."""
        key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (dns or ips)[0])])
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key())
        cert = (self._builder(subject, key.public_key()).issuer_name(self.cert.subject)
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(aki, critical=False)
                .sign(self.key, hashes.SHA256()))
        stem = "-".join(dns + ips).replace(":", "_")
        cert_path, key_path = self.directory / f"{stem}.crt", self.directory / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_pem(key))
        return cert_path, key_path

    def server_context(self, dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()) -> ssl.SSLContext:
        """A TLS server context presenting a fresh certificate for `dns` names and `ips`."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*self.issue(dns, ips))
        return context


class _LoopbackServer(_Server):
    """The upstream's server on an IPv4 or IPv6 address; the TLS handshake happens in the handler
    thread (on first read), so a client that never completes one cannot block accepting."""

    def __init__(self, address, handler, context: ssl.SSLContext | None):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.context = context
        super().__init__(address, handler)

    def get_request(self):
        sock, address = super().get_request()
        if self.context is None:
            return sock, address
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request, client_address):
        pass  # failed handshakes are what some tests expect; they assert on what was received


class EchoServer(Upstream):
    """`Upstream` (same paths, same records) on any loopback address, over TLS if `context` is given.

    `server_names` lists the SNI name of every TLS handshake (None when the client sent none).
    """

    def __init__(self, host: str = "127.0.0.1", context: ssl.SSLContext | None = None, port: int = 0):
        self.state = _State()
        self.server_names: list[str | None] = []
        if context is not None:
            context.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = _LoopbackServer((host, port), handler, context)
        self.server.state = self.state
        self.host, self.port = self.server.server_address[:2]
        self.scheme = "http" if context is None else "https"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def url_for(self, host: str) -> str:
        """This server's URL under another host name (one the test's resolver maps to it)."""
        return f"{self.scheme}://{host}:{self.port}"

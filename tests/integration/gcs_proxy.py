"""The HTTPS proxy in front of the GCS emulator (gcs_emulator.py) for TensorFlow's own GCS
file system, whose endpoints (https://www.googleapis.com/storage/v1/,
https://storage.googleapis.com/<bucket>/<object>, the oauth2 token URL) are compiled in. It
talks through libcurl, which honours HTTPS_PROXY and CURL_CA_BUNDLE: CONNECT to one of Google's
storage hosts is answered with a certificate of a throwaway certificate authority
(`write_certificates`), and each request inside the tunnel goes to the emulator and its
answer back. Any other CONNECT is refused, so nothing leaves loopback.
"""

from __future__ import annotations

from pathlib import Path

GOOGLE_HOSTS = ("www.googleapis.com", "storage.googleapis.com", "oauth2.googleapis.com")
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "host",
               "content-length"}


def write_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway certificate authority and a certificate it signed for Google's storage
    hosts: (authority.pem, server.pem, server-key.pem)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "retrain test authority")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, GOOGLE_HOSTS[0])]))
              .issuer_name(ca_name).public_key(key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(days=1))
              .not_valid_after(now + datetime.timedelta(days=2))
              .add_extension(x509.SubjectAlternativeName(
                  [x509.DNSName(host) for host in GOOGLE_HOSTS]), critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                             critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                  ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "authority.pem", directory / "server.pem", directory / "server-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def read_body(reader, headers: dict[str, str]) -> bytes:
    if "content-length" in headers:
        return reader.read(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(reader.readline().split(b";")[0], 16)
            if size == 0:
                while reader.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(reader.read(size))
            reader.readline()
    return b""


def serve_proxy(port: int, emulator_port: int, certs: Path) -> None:
    """HTTPS proxy: CONNECT to a Google storage host is answered with this module's
    certificate; each request inside goes to the emulator, and its answer back."""
    import http.client
    import socketserver
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs / "server.pem", certs / "server-key.pem")

    class Tunnel(socketserver.StreamRequestHandler):
        def handle(self):
            request = self.rfile.readline().decode("latin-1").split()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            host = request[1].rsplit(":", 1)[0] if len(request) > 1 else ""
            if request[:1] != ["CONNECT"] or host not in GOOGLE_HOSTS:
                self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            with context.wrap_socket(self.connection, server_side=True) as tls:
                reader, writer = tls.makefile("rb"), tls.makefile("wb")
                while self._forward(reader, writer):
                    pass

        def _forward(self, reader, writer) -> bool:
            line = reader.readline().decode("latin-1").split()
            if len(line) < 2:
                return False
            method, path = line[0], line[1]
            headers: dict[str, str] = {}
            while True:
                header = reader.readline().decode("latin-1")
                if header in ("\r\n", "\n", ""):
                    break
                name, _, value = header.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = read_body(reader, headers)
            upstream = http.client.HTTPConnection("127.0.0.1", emulator_port, timeout=120)
            try:
                upstream.request(method, path, body=body or None, headers={
                    name: value for name, value in headers.items()
                    if name not in _HOP_BY_HOP})
                response = upstream.getresponse()
                content = response.read()
            finally:
                upstream.close()
            lines = [f"HTTP/1.1 {response.status} {response.reason}"]
            lines += [f"{name}: {value}" for name, value in response.getheaders()
                      if name.lower() not in _HOP_BY_HOP]
            lines.append(f"Content-Length: {len(content)}")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            if method != "HEAD":
                writer.write(content)
            writer.flush()
            return headers.get("connection", "").lower() != "close"

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    Server(("127.0.0.1", port), Tunnel).serve_forever()

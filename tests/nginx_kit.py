"""Debian's nginx for the tests, run from a temporary folder with deploy/nginx/minyi.conf as
operators install it: only the lines the file marks CHANGE (processes, host name, certificate)
and the listening ports are swapped, each replacement checked so the file cannot drift away
from what is tested."""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "deploy" / "nginx" / "minyi.conf"
HOST = "localhost"


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None
    )
    if found is None:
        reason = "nginx is not installed (Debian: apt-get install nginx-light)"
        if IN_CI:
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for `localhost` (and 127.0.0.1), made here; the test's client trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(HOST), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "fullchain.pem", folder / "privkey.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return cert_file, key_file


def _swap(text: str, old: str, new: str, count: int) -> str:
    found = text.count(old)
    assert found == count, f"deploy/nginx/minyi.conf: expected {count}× {old!r}, found {found}"
    return text.replace(old, new)


@dataclass
class Nginx:
    https: int
    http: int
    folder: Path
    cert: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def origin(self) -> str:
        return f"https://{HOST}:{self.https}"

    def client_tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.cert))
        return context

    def upstreams(self) -> list[str]:
        """The process each proxied request went to, in order (from the test's access log)."""
        log = self.folder / "upstreams.log"
        return log.read_text().split() if log.exists() else []

    def error_log(self) -> str:
        log = self.folder / "error.log"
        return log.read_text() if log.exists() else ""


def configure(folder: Path, upstream_ports: tuple[int, int]) -> Nginx:
    """The deployed file with this machine's ports, host and certificate, inside a minimal
    nginx.conf that keeps every file nginx writes in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed(folder)
    site = CONFIG.read_text()
    https, http = free_port(), free_port()
    site = _swap(site, "server 127.0.0.1:8081 ", f"server 127.0.0.1:{upstream_ports[0]} ", 1)
    site = _swap(site, "server 127.0.0.1:8082 ", f"server 127.0.0.1:{upstream_ports[1]} ", 1)
    site = _swap(site, "server_name minyi.example.org;", f"server_name {HOST};", 2)
    site = _swap(site, "/etc/ssl/minyi/fullchain.pem", str(cert), 1)
    site = _swap(site, "/etc/ssl/minyi/privkey.pem", str(key), 1)
    site = _swap(site, "/var/www/acme", str(folder / "acme"), 1)
    # Loopback only, on free ports; the machine may have no IPv6.
    site = re.sub(r"^\s*listen \[::\]:.*$", "", site, flags=re.M)
    site = _swap(site, "listen 80;", f"listen 127.0.0.1:{http};", 1)
    site = _swap(site, "listen 443 ", f"listen 127.0.0.1:{https} ", 2)
    (folder / "minyi.conf").write_text(site)
    user = "user root;" if os.geteuid() == 0 else ""  # workers must reach the temp folder
    (folder / "nginx.conf").write_text(
        f"""
{user}
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
daemon off;
events {{ worker_connections 256; }}
http {{
    default_type application/octet-stream;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    log_format upstreams '$upstream_addr';
    access_log {folder}/upstreams.log upstreams;
    include {folder}/minyi.conf;
}}
"""
    )
    return Nginx(https=https, http=http, folder=folder, cert=cert)


@contextmanager
def running(nginx: Nginx) -> Iterator[Nginx]:
    binary = nginx_binary()
    conf = str(nginx.folder / "nginx.conf")
    base = [binary, "-p", str(nginx.folder), "-e", str(nginx.folder / "error.log"), "-c", conf]
    checked = subprocess.run([*base, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    nginx.process = subprocess.Popen(base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", nginx.https), timeout=1).close()
                break
            except OSError:
                if nginx.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"nginx did not start:\n{nginx.error_log()}") from None
                time.sleep(0.05)
        yield nginx
    finally:
        nginx.process.terminate()
        try:
            nginx.process.wait(10)
        except subprocess.TimeoutExpired:
            nginx.process.kill()
            nginx.process.wait()

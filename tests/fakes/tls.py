"""Self-signed certificates for loopback TLS servers, made by the ``openssl`` CLI."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

KEY_OPTIONS = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
SUBJECT = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
HAVE_OPENSSL = shutil.which("openssl") is not None


def openssl(folder: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)


def self_signed(folder: Path, name: str, days: int) -> tuple[Path, Path]:
    """``(certificate, key)`` for 127.0.0.1, valid for ``days`` days from now."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    openssl(
        folder, "req", "-x509", *KEY_OPTIONS, *SUBJECT, "-days", str(days),
        "-keyout", key.name, "-out", cert.name,
    )  # fmt: skip
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context

"""TLS conditions against a local HTTPS server with certificates made by the ``openssl`` CLI:
a self-signed one valid for two days, and one that expired in 2020."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.http_targets import HttpTarget
from vultr_scraper_core.config import EndpointConfig
from vultr_scraper_jobs.probes import certificate_not_after, probe

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

CA_CONFIG = """\
[ca]
default_ca = local
[local]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
"""
KEY_OPTIONS = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
SUBJECT = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]


def _openssl(folder: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """name -> (certificate, key): ``soon`` expires in 2 days, ``expired`` did in 2020."""
    folder = tmp_path_factory.mktemp("tls")
    _openssl(
        folder, "req", "-x509", *KEY_OPTIONS, *SUBJECT, "-days", "2",
        "-keyout", "soon.key", "-out", "soon.pem",
    )  # fmt: skip
    # `req -x509` cannot back-date; `ca -selfsign` takes explicit start and end dates.
    (folder / "ca.cnf").write_text(CA_CONFIG)
    (folder / "index.txt").write_text("")
    (folder / "serial").write_text("01\n")
    _openssl(
        folder, "req", "-new", *KEY_OPTIONS, *SUBJECT,
        "-addext", "basicConstraints=critical,CA:TRUE", "-keyout", "expired.key", "-out", "e.csr",
    )  # fmt: skip
    _openssl(
        folder, "ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", "expired.key",
        "-in", "e.csr", "-out", "expired.pem", "-notext",
        "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
    )  # fmt: skip
    return {name: (folder / f"{name}.pem", folder / f"{name}.key") for name in ("soon", "expired")}


async def _serve(cert: Path, key: Path) -> HttpTarget:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return HttpTarget(ssl_context=context)


@pytest.fixture
async def soon(certificates: dict[str, tuple[Path, Path]]) -> AsyncIterator[HttpTarget]:
    async with await _serve(*certificates["soon"]) as server:
        yield server


@pytest.fixture
async def expired(certificates: dict[str, tuple[Path, Path]]) -> AsyncIterator[HttpTarget]:
    async with await _serve(*certificates["expired"]) as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def endpoint(url: str, **options: Any) -> EndpointConfig:
    return EndpointConfig(name="tls", url=url, timeout=5.0, **options)


async def test_certificate_days_condition_fails_and_passes(
    soon: HttpTarget, session: aiohttp.ClientSession, certificates: dict[str, tuple[Path, Path]]
) -> None:
    ca_file = str(certificates["soon"][0])
    too_short = await probe(session, endpoint(soon.url(), ca_file=ca_file, cert_min_days=7))
    assert not too_short.ok
    assert too_short.status == 200  # the request itself worked; only the condition failed
    assert too_short.error.startswith("certificate expires in ")
    assert too_short.error.endswith("days (needs more than 7)")
    assert too_short.cert_days is not None and 1.9 < too_short.cert_days <= 2.0

    enough = await probe(session, endpoint(soon.url(), ca_file=ca_file, cert_min_days=1))
    assert enough.ok, enough.error
    assert enough.cert_days is not None and 1.9 < enough.cert_days <= 2.0


async def test_untrusted_certificate_is_a_clear_failure(
    soon: HttpTarget, session: aiohttp.ClientSession
) -> None:
    # System trust store: the self-signed certificate does not verify, with or without the
    # certificate condition (the handshake path and the request path report alike).
    for options in ({"cert_min_days": 1}, {}):
        result = await probe(session, endpoint(soon.url(), **options))
        assert not result.ok
        assert result.error.startswith("TLS certificate verification failed: ")
        assert "self-signed certificate" in result.error or "self signed" in result.error


async def test_expired_certificate_is_a_clear_failure(
    expired: HttpTarget, session: aiohttp.ClientSession, certificates: dict[str, tuple[Path, Path]]
) -> None:
    ca_file = str(certificates["expired"][0])
    for options in ({"cert_min_days": 1}, {}):
        result = await probe(session, endpoint(expired.url(), ca_file=ca_file, **options))
        assert not result.ok
        assert result.error == "TLS certificate verification failed: certificate has expired"


async def test_verification_off_still_checks_expiry(
    soon: HttpTarget, expired: HttpTarget, session: aiohttp.ClientSession
) -> None:
    lenient = await probe(session, endpoint(soon.url(), tls_verify=False, cert_min_days=1))
    assert lenient.ok, lenient.error
    old = await probe(session, endpoint(expired.url(), tls_verify=False, cert_min_days=0))
    assert not old.ok
    assert old.cert_days is not None and old.cert_days < -2000
    assert old.error.startswith("certificate expired ") and old.error.endswith(" days ago")


def test_not_after_is_read_from_der(certificates: dict[str, tuple[Path, Path]]) -> None:
    pem = certificates["expired"][0].read_text()
    assert certificate_not_after(ssl.PEM_cert_to_DER_cert(pem)) == datetime(2020, 1, 2, tzinfo=UTC)
    with pytest.raises(ValueError):
        certificate_not_after(b"\x30\x03\x02\x01\x00")

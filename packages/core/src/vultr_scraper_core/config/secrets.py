"""Secrets: read from the files the ``*_file`` keys name, found where they are written inline,
and masked wherever the configuration is shown.

Secret values never appear in the TOML itself, only paths to files (a relative path names a
systemd credential in ``$CREDENTIALS_DIRECTORY``). Credentials that do sit in the file (a
password in a URL, an ``Authorization`` header, a Slack or Discord webhook URL) are collected
too, so that the log filter redacts them and ``config show`` masks them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import msgspec

from vultr_scraper_core.config.schema import Config, EndpointConfig, SinkConfig
from vultr_scraper_core.text import mask_urls


class Secrets(msgspec.Struct, frozen=True, kw_only=True):
    """Secret values read from the ``*_file`` keys. Never logged, never shown."""

    vultr_api_key: str | None = None
    redis_password: str | None = None
    redis_sentinel_password: str | None = None
    # Not secret values but paths, resolved like the secret files (``$CREDENTIALS_DIRECTORY``)
    # and checked readable at load: the TLS files of [redis] (the key file is a secret).
    redis_ca_file: str | None = None
    redis_cert_file: str | None = None
    redis_key_file: str | None = None
    http_token: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    sink_secrets: dict[str, str] = msgspec.field(default_factory=dict)
    # Secrets written into the TOML itself: URL passwords (``redis://:pw@host``) and the values
    # of credential-like endpoint headers (``Authorization``). Redacted from logs like the rest.
    inline: tuple[str, ...] = ()

    def values(self) -> list[str]:
        """Every secret value, for the log redaction filter."""
        found = [
            self.vultr_api_key,
            self.redis_password,
            self.redis_sentinel_password,
            self.http_token,
            self.s3_access_key,
            self.s3_secret_key,
        ]
        found.extend(self.sink_secrets.values())
        found.extend(self.inline)
        return [value for value in found if value]


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain data for ``config show``: paths to secret files, never their contents, and the
    inline secrets (URL passwords, credential headers, chat webhook URLs) masked."""
    result: dict[str, Any] = msgspec.to_builtins(config)
    result["redis"]["url"] = mask_url(config.redis.url)
    result["vultr"]["base_url"] = mask_url(config.vultr.base_url)
    for table in (*result["health"]["endpoints"], *result["sinks"]):
        table["url"] = mask_url(table["url"])
        table["headers"] = {
            name: MASK if _is_credential_header(name) else value
            for name, value in table.get("headers", {}).items()
        }
    for sink, shown in zip(config.sinks, result["sinks"], strict=True):
        if sink.kind in _CHAT_KINDS and sink.url:
            shown["url"] = _mask_url_path(sink.url)
    # Any other URL a key holds (http.public_url, history.s3_endpoint_url, ...).
    masked: dict[str, Any] = _masked_strings(result)
    return masked


# Slack and Discord webhook URLs are credentials themselves: whoever has one can post.
_CHAT_KINDS = ("slack", "discord")


def _mask_url_path(url: str) -> str:
    """``https://hooks.slack.com/services/T/B/X`` -> ``https://hooks.slack.com/***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    return urlunsplit((parts.scheme, parts.hostname or "", f"/{MASK}", "", "")) or MASK


MASK = "***"
_CREDENTIAL_HEADER = re.compile(r"auth|token|key|secret|cookie|passw", re.IGNORECASE)


def _is_credential_header(name: str) -> bool:
    return bool(_CREDENTIAL_HEADER.search(name))


def _url_secrets(url: str) -> Iterator[str]:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return
    if password:
        yield password
        if unquote(password) != password:
            yield unquote(password)  # what the client sends, and may print
    yield from parse_qs(parts.query).get("password", [])


def mask_url(url: str) -> str:
    """``redis://user:pw@host/0`` -> ``redis://user:***@host/0`` (and ``?password=***``).

    For every URL from the configuration that is shown or stored (``config show``, the status
    page, endpoint health events), since a probe URL may carry credentials."""
    secrets = list(_url_secrets(url))
    if not secrets:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user, _, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostinfo}"
    query = re.sub(r"(^|&)password=[^&]*", rf"\1password={MASK}", parts.query)
    masked = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    if not netloc and url.startswith(f"{parts.scheme}://"):
        # urlunsplit drops the empty authority: unix:///run/x.sock would become unix:/run/x.sock
        masked = f"{parts.scheme}://{masked[len(parts.scheme) + 1 :]}"
    return masked


def _masked_strings(value: Any) -> Any:
    if isinstance(value, str):
        return mask_urls(value)
    if isinstance(value, dict):
        return {key: _masked_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked_strings(item) for item in value]
    return value


def inline_secrets(config: Config) -> tuple[str, ...]:
    found: list[str] = []
    urls = [config.redis.url, config.vultr.base_url]
    urls.extend(endpoint.url for endpoint in config.health.endpoints)
    urls.extend(sink.url for sink in config.sinks)
    for url in urls:
        found.extend(_url_secrets(url))
    for sink in config.sinks:
        if sink.kind in _CHAT_KINDS and sink.url:
            found.append(sink.url)
            with contextlib.suppress(ValueError):
                path = urlsplit(sink.url).path
                if len(path) > 1:
                    found.append(path)  # a client may log the path alone
    tables: list[EndpointConfig | SinkConfig] = [*config.health.endpoints, *config.sinks]
    for table in tables:
        for name, value in table.headers.items():
            if _is_credential_header(name) and value:
                found.append(value)
                # "Bearer abc": the credential alone may be logged without its scheme.
                _scheme, _, credential = value.strip().partition(" ")
                if credential.strip():
                    found.append(credential.strip())
    return tuple(dict.fromkeys(value for value in found if value))


class SecretFileError(Exception):
    """A secret file that cannot be used; ``key`` names the config key that points to it."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


def _resolve(path: str, env: Mapping[str, str]) -> Path:
    resolved = Path(path)
    # Relative paths name a systemd credential (LoadCredential=) when one is provided.
    if not resolved.is_absolute() and env.get("CREDENTIALS_DIRECTORY"):
        resolved = Path(env["CREDENTIALS_DIRECTORY"]) / resolved
    return resolved


def readable_file(key: str, path: str, env: Mapping[str, str]) -> str:
    """The resolved path of the file ``key`` names (a CA, a certificate, a private key),
    after checking it can be read; raises SecretFileError. Its contents are left to the TLS
    library, which reports a malformed file when it first connects."""
    resolved = _resolve(path, env)
    shown = os.fspath(resolved)
    try:
        with resolved.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SecretFileError(key, f"cannot read file {shown}: {reason}") from None
    return shown


def read_secret_file(key: str, path: str, env: Mapping[str, str]) -> str:
    """The stripped contents of the file ``key`` names; raises SecretFileError."""
    resolved = _resolve(path, env)
    shown = os.fspath(resolved)
    try:
        value = resolved.read_text(encoding="utf-8").strip()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SecretFileError(key, f"cannot read secret file {shown}: {reason}") from None
    except UnicodeDecodeError:
        raise SecretFileError(key, f"secret file {shown} is not UTF-8 text") from None
    if not value:
        raise SecretFileError(key, f"secret file {shown} is empty")
    return value


WEBHOOK_SECRET_PREFIX = "whsec_"


def webhook_signing_key(secret: str) -> bytes:
    """The HMAC key of the Standard Webhooks signature (``webhook-signature``): the base64
    after ``whsec_`` for such a secret (the form Standard Webhooks libraries take), else the
    secret's own UTF-8 bytes. Raises ValueError for a ``whsec_`` secret that is not base64."""
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        return secret.encode()
    encoded = secret.removeprefix(WEBHOOK_SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a whsec_ secret must be base64 after the prefix") from None
    if not key:
        raise ValueError("a whsec_ secret must not be empty after the prefix")
    return key


def read_secrets(config: Config, env: Mapping[str, str]) -> Secrets:
    """Every secret the configuration points to; raises SecretFileError for the first bad one."""

    def optional(key: str, path: str) -> str | None:
        return read_secret_file(key, path, env) if path else None

    def checked(key: str, path: str) -> str | None:
        return readable_file(key, path, env) if path else None

    sink_secrets: dict[str, str] = {}
    fragments: list[str] = []
    for index, sink in enumerate(config.sinks):
        if sink.secret_file:
            key = f"sinks[{index}].secret_file"
            sink_secrets[sink.name] = read_secret_file(key, sink.secret_file, env)
            if sink.kind == "apprise":
                fragments.extend(_apprise_fragments(sink_secrets[sink.name]))
            if sink.kind == "webhook":
                try:
                    webhook_signing_key(sink_secrets[sink.name])
                except ValueError as error:
                    raise SecretFileError(key, str(error)) from None
    return Secrets(
        vultr_api_key=optional("vultr.api_key_file", config.vultr.api_key_file),
        redis_password=optional("redis.password_file", config.redis.password_file),
        redis_sentinel_password=optional(
            "redis.sentinel_password_file", config.redis.sentinel_password_file
        ),
        redis_ca_file=checked("redis.ca_file", config.redis.ca_file),
        redis_cert_file=checked("redis.cert_file", config.redis.cert_file),
        redis_key_file=checked("redis.key_file", config.redis.key_file),
        http_token=optional("http.token_file", config.http.token_file),
        s3_access_key=optional("history.s3_access_key_file", config.history.s3_access_key_file),
        s3_secret_key=optional("history.s3_secret_key_file", config.history.s3_secret_key_file),
        sink_secrets=sink_secrets,
        inline=tuple(dict.fromkeys((*inline_secrets(config), *fragments))),
    )


def _apprise_fragments(urls: str) -> Iterator[str]:
    """The parts of Apprise URLs a log line may show on their own: each URL, its password,
    and the tokens in its host, path and query (``tgram://BOT_TOKEN/CHAT_ID``)."""
    for line in urls.split():
        yield line
        try:
            parts = urlsplit(line)
            password = parts.password
        except ValueError:
            continue
        if password:
            yield password
        pieces = [parts.hostname or "", *parts.path.split("/")]
        pieces.extend(value for values in parse_qs(parts.query).values() for value in values)
        # Tokens are long and dot-free; host names, IPs and short words stay readable in logs.
        yield from (piece for piece in pieces if len(piece) >= 16 and "." not in piece)

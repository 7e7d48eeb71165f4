"""Notification sinks: one small class per kind behind the ``Sink`` interface (``base``).

``build_sink`` turns a ``[[sinks]]`` table into its sink; ``message.compose`` builds what is
sent. Adding a kind is one module with a ``send(message) -> Receipt`` and one line here.
"""

from __future__ import annotations

from vultr_scraper_core.config import Secrets, SinkConfig
from vultr_scraper_core.http import HttpClient
from vultr_scraper_jobs.sinks.base import Receipt, Sink
from vultr_scraper_jobs.sinks.message import Message, compose, delivery_id

__all__ = ["Message", "Receipt", "Sink", "build_sink", "compose", "delivery_id"]


def build_sink(sink: SinkConfig, secrets: Secrets, http: HttpClient) -> Sink:
    secret = secrets.sink_secrets.get(sink.name)
    if sink.kind == "email":
        from vultr_scraper_jobs.sinks.smtp import EmailSink

        return EmailSink(config=sink, password=secret)
    if sink.kind == "apprise":
        from vultr_scraper_jobs.sinks.apprise_sink import AppriseSink

        if not secret:
            raise ValueError(f"sink {sink.name!r} has no Apprise URL (secret_file)")
        return AppriseSink(sink_name=sink.name, urls=tuple(secret.split()))
    from vultr_scraper_jobs.sinks.web import WebSink

    return WebSink(config=sink, secret=secret, http=http)

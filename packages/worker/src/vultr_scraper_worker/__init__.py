"""vultr-scraper worker: arq settings, the ``vultr-scraper`` CLI and the HTTP API."""

"""The worker's own HTTP server: JSON API, Prometheus metrics, Atom feed and a status page.

It runs inside the worker process: ``server.start_http_server`` is called from the worker's
startup hook and ``server.stop_http_server`` from its shutdown, on ``[http] listen``. Modules:

* ``server``: address parsing, start and stop; ``app``: the application, its middlewares (JSON
  or HTML errors, security headers) and the route list; ``state``: what handlers can reach;
* ``routing``: the ``Route`` table type that both the router and the OpenAPI document are built
  from; ``params``: typed query and path parameters (parsing, 400 messages, JSON Schema);
  ``openapi``: the OpenAPI 3.1 document, its schemas generated from ``documents``;
* ``auth``: who may call what (``Access``): bearer token, login cookie and the same-origin
  check for cookie-authenticated posts;
* ``routes_catalog``, ``routes_jobs``, ``routes_health``: the JSON endpoints per area, each with
  the JSON documents it answers with; ``metrics``: ``/metrics``; ``feed``: ``/feed.atom``;
  ``page``: ``/``, ``/login``, ``/logout`` and ``/style.css``;
* ``reads_catalog``, ``reads_jobs`` and ``reads_health``: the only modules that read the other
  packages' stores (and, for retry and enqueue, write the queue);
* ``html``: the escaping template helper; ``templates/`` and ``static/``: the page's files.

See docs/http-api.md.
"""

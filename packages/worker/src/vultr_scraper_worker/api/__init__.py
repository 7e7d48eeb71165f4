"""The worker's own HTTP server: JSON API, Prometheus metrics, Atom feed and a status page.

It runs inside the worker process (``server.start_http_server`` from the worker's startup hook)
on ``[http] listen``. Modules:

* ``server``: start and stop the aiohttp site; ``app``: the application and its middlewares;
* ``routing``: the route table type that both the router and the OpenAPI document are built
  from; ``params``: typed query and path parameters; ``auth``: bearer token and login cookie;
* ``routes_*``: the JSON endpoints per area; ``metrics``, ``feed``, ``page``: ``/metrics``,
  ``/feed.atom`` and ``/``; ``data``: the one place that reads the stores of the other packages;
* ``openapi``: the OpenAPI 3.1 document; ``html``: the escaping template helper.
"""

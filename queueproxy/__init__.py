"""knserve's queue-proxy: the per-pod sidecar in front of every revision's app.

Ports 8012 (traffic), 8022 (admin: ``/wait-for-drain``), 9090 (``/stats`` for the
autoscaler) and 9091 (Prometheus). The data path is asyncio Protocols with httptools
(uvloop when available); the side ports are a small httptools server too.

Modules: ``settings`` (environment -> frozen settings), pure cores ``breaker``,
``stats``, ``drain``, ``headers``, ``framing``, ``metrics``, ``readiness`` (tracker); the data path
``proxy`` (client connections), ``exchange`` (one request), ``upstream`` (HTTP/1.1 pool
to the app), ``h2upstream`` (h2c to the app); ``admin`` (side ports), ``server`` (the
process), ``__main__`` (entry point: ``knserve queue-proxy``).
"""

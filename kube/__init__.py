"""Access to the Kubernetes API: the only package that imports kubernetes_asyncio.

Objects travel as plain JSON dicts (what the API server sends); typed models live in
``serving.apis`` and are converted at the reconciler's edge. ``client`` talks to a real
server, ``fake`` is an in-memory stand-in for tests, ``informer`` keeps a local cache
current, ``workqueue`` orders and retries keys.
"""

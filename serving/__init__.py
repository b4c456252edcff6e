"""Knative Serving's controller (``knserve controller``): the API types and their validation
(``apis``), the ConfigMap-backed configuration (``config``), the reconcilers (``reconciler``),
the xDS server that programs Envoy (``xds``) and the admission webhook (``webhook``).
"""

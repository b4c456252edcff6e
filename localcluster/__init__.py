"""The local cluster: control-plane binaries built and cached, their PKI, the processes that
keep them running, and ``knserve local up|down|status|kubeconfig``.
"""

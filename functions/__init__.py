"""Functions: serve a handler file as it is (the function runtime) and ``knserve func``.

Kept empty: the runtime starts in every function pod and imports only what it uses.
"""

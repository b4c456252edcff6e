"""Pure builders of Envoy resources: ``make_*`` functions that return envoy-data-plane messages.

Each takes plain values (names, addresses, model objects) and touches nothing: no I/O, no
clock, no caches. ``translate`` decides what to build and caches the encoded bytes.
"""

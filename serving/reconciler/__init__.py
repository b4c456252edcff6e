"""The controller's reconcilers: one generic loop (``loop``) and a package per kind.

Each kind package holds ``reconciler.py`` (the phases), ``wiring.py`` (which informers
enqueue which keys) and ``resources/`` (pure builders of the objects it owns).
"""

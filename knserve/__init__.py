"""What every knserve process shares: the ``knserve`` command, networking constants, the
autoscaler's stats wire format, the clock, logging set-up and certificates.

Imports nothing else of the project, so any process may stand on it.
"""

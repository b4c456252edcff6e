"""The ingress control plane: an Envoy xDS (ADS, state of the world) server and what feeds it.

Layers, cut like go-control-plane's ``pkg/cache/v3`` (STYLE habit 9):

- ``model``       the ingress model the Route reconciler fills (frozen dataclasses)
- ``resources/``  pure ``make_*`` builders returning envoy-data-plane messages
- ``wire``        fast protobuf encoding and hand-built xDS envelopes
- ``translate``   model -> :class:`~serving.xds.snapshot.Snapshot`, re-encoding only what changed
- ``snapshot``    immutable, versioned, consistency-checked resource sets
- ``sequencer``   the make-before-break update order for one Envoy (DESIGN §6)
- ``cache``       latest snapshot per group of Envoys, a sequencer per Envoy, wake-ups
- ``stream``      the ADS protocol of one stream (nonces, ACK/NACK), sans I/O
- ``server``      the grpc.aio servicer; knows only the cache; mutual TLS when given certificates
- ``tls``         the xDS CA, server and Envoy certificates and the ingress token, kept in Secrets
- ``controller``  ``XdsController``: update(model) -> version, wait until the quorum of Envoys
                  serves a Route (a refusing or silent Envoy does not hold it back)
- ``bootstrap``, ``envoy_process``, ``runner``  run a real Envoy against it

Importing the package has no side effects.
"""

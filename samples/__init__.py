"""Local stand-ins for well-known sample container images.

There is no container engine on a local knserve node, so an image such as
``ghcr.io/knative/helloworld-go`` runs as ``python3 -m samples.helloworld`` through the
image map ``config/local/knserve-images.yaml``. Every sample uses only the standard
library, listens on ``$PORT`` (default 8080) on every address, and exits cleanly on SIGTERM.

  samples.helloworld  ghcr.io/knative/helloworld-go: ``Hello $TARGET!``
  samples.autoscale   ghcr.io/knative/autoscale-go: ``?sleep=ms&prime=N&bloat=MB``
  samples.function    serves a plain Python function: JSON in, JSON out
  samples.runtime     echoes the request and the runtime contract's environment as JSON
  samples.faulty      knserve.dev/samples/faulty: ``Hello $TARGET!``, ERROR_PERCENT failing, DELAY_MS slow
"""

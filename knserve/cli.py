"""The ``knserve`` command: one entry point, a subcommand per component.

Each subcommand imports its component lazily and hands it the remaining arguments, so
``knserve queue-proxy`` does not pay for the controller's imports and the reverse.
"""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module, function, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "local": ("localcluster.cli", "main", "run a local cluster: up, down, status, kubeconfig"),
    "controller": ("serving.main", "main", "the serving controller and the xDS server"),
    "webhook": ("serving.webhook.main", "main", "the admission webhook (defaulting and validation)"),
    "node": ("node.__main__", "main", "the node agent (a kubelet that runs pods as processes)"),
    "queue-proxy": ("queueproxy.__main__", "main", "the per-pod sidecar"),
    "activator": ("activator.__main__", "main", "buffers requests for revisions without ready pods"),
    "autoscaler": ("autoscaler.__main__", "main", "the KPA autoscaler"),
    "queue": ("callqueue.__main__", "main", "the durable call queue (Prefer: respond-async)"),
    "calls": ("callqueue.cli", "main", "asynchronous calls: list, get, cancel, retry"),
    "function": ("functions.runtime", "main", "the function runtime: serves a handler directory on $PORT"),
    "func": ("functions.cli", "main", "functions: new, deploy, invoke, logs, list, describe, delete"),
    "gateway": ("gateway.__main__", "main", "OpenFaaS's gateway API over Knative Services (faas-cli)"),
    "dashboard": ("dashboard.__main__", "main", "a web dashboard of Knative Services (edits with --edits)"),
}


def cancel_on_signals() -> None:
    """SIGTERM and SIGINT cancel the running task: how every long-running component stops
    (its ``finally`` blocks and exit stacks then drain and close)."""
    import asyncio
    import signal

    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)


def _usage() -> str:
    lines = ["usage: knserve COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<12} {help_text}" for name, (_, _, help_text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"knserve: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, function_name, _ = COMMANDS[command]
    entry = getattr(importlib.import_module(module_name), function_name)
    result = entry(rest)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())

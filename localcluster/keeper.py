"""``python -m localcluster.keeper PROGRAM [ARGS...]``: run a program and stay its parent.

Envoy asks the kernel to send it SIGTERM when its parent exits, so a process that starts
Envoy in the background and then exits (``knserve local up``) would stop it at once. The
keeper is that parent for as long as the program runs: it passes SIGTERM and SIGINT on and
exits with the program's status.

Side effects: starts one child process and forwards signals to it.
"""

from __future__ import annotations

import signal
import subprocess
import sys


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m localcluster.keeper PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    child = subprocess.Popen(argv)

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The Debian packages a containerd node needs, installed with ``apt-get`` when missing.

``python -m localcluster.nodesetup`` (``make node-setup``) installs them; ``knserve local up
--runtime containerd`` does the same before it starts a node. A machine without ``apt-get``, or
a user who is not root, gets a sentence naming the packages to install instead.

- containerd, runc: the runtime the kubelet talks to (CRI) and the one that runs containers;
- containernetworking-plugins: the CNI ``bridge``, ``host-local`` and ``portmap`` plugins;
- iptables, conntrack: kube-proxy's Service rules and its clean-up of stale UDP flows;
- debootstrap, buildah: the images made here without a registry (the Python base, knserve's
  own ``Containerfile``); gcc and libc6-dev: the static pause program.

Side effects: runs ``dpkg-query`` and, when something is missing, ``apt-get update`` and
``apt-get install`` (network to Debian's package archive).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

PACKAGES = (
    "containerd",
    "runc",
    "containernetworking-plugins",
    "iptables",
    "conntrack",
    "debootstrap",
    "buildah",
    "gcc",
    "libc6-dev",
)
# Where Debian's containernetworking-plugins puts the plugins.
CNI_BIN_DIR = Path("/usr/lib/cni")

Progress = Callable[[str], object]
Run = Callable[[Sequence[str]], tuple[int, str]]


class SetupError(RuntimeError):
    """The node's packages could not be installed; the message says what to do instead."""


def _run(command: Sequence[str]) -> tuple[int, str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(list(command), capture_output=True, text=True, check=False, env=env)
    return result.returncode, (result.stdout + result.stderr).strip()


def missing_packages(packages: Sequence[str] = PACKAGES, *, run: Run = _run) -> list[str]:
    """The packages of ``packages`` dpkg does not list as installed."""
    missing = []
    for package in packages:
        code, output = run(["dpkg-query", "-W", "-f=${Status}", package])
        if code != 0 or "install ok installed" not in output:
            missing.append(package)
    return missing


def ensure_packages(packages: Sequence[str] = PACKAGES, *, progress: Progress = print, run: Run = _run,
                    is_root: Callable[[], bool] = lambda: os.geteuid() == 0,
                    has_apt: Callable[[], bool] = lambda: shutil.which("apt-get") is not None) -> list[str]:
    """Install whichever of ``packages`` is missing; return those it installed."""
    if not has_apt():
        raise SetupError(f"a containerd node needs these Debian packages: {' '.join(packages)}. This machine has "
                         f"no apt-get: install their equivalents and run again.")
    missing = missing_packages(packages, run=run)
    if not missing:
        return []
    if not is_root():
        raise SetupError(f"a containerd node needs these packages, which are not installed: {' '.join(missing)}. "
                         f"Install them as root (`apt-get install {' '.join(missing)}`) and run again.")
    progress(f"installing {' '.join(missing)} with apt-get (first time only)")
    code, output = run(["apt-get", "update"])
    if code != 0:
        raise SetupError(f"`apt-get update` failed, so {' '.join(missing)} could not be installed: "
                         f"{output.splitlines()[-1] if output else 'no output'}")
    code, output = run(["apt-get", "install", "-y", "--no-install-recommends", *missing])
    if code != 0:
        tail = "\n".join(output.splitlines()[-5:])
        raise SetupError(f"`apt-get install {' '.join(missing)}` failed:\n{tail}")
    still = missing_packages(missing, run=run)
    if still:
        raise SetupError(f"apt-get ran, yet these packages are still not installed: {' '.join(still)}")
    return missing


def main() -> int:
    try:
        installed = ensure_packages(progress=lambda message: print(f"==> {message}", flush=True))
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"node packages ready{' (installed ' + ' '.join(installed) + ')' if installed else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A function's ``requirements.txt``, installed from PyPI once per distinct file.

The cache is a directory shared by every pod of the node (a hostPath locally, a volume an init
step fills in clusters): ``<cache>/<sha256 of the file, 16 hex>/`` holds the packages, and a
``.complete`` marker says the install finished. The first pod to need a file takes an
exclusive ``flock`` on ``<hash>.lock``, installs into a temporary directory with
``pip install --target`` (its progress on stderr, so in the container's log), and renames it
into place; pods that waited on the lock find it done and reuse it. A failed install raises
``InstallError`` with pip's last lines.

Side effects: runs pip, writes under the cache directory, takes file locks.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

COMPLETE = ".complete"
PIP_LINES_SHOWN = 6


class InstallError(Exception):
    """pip could not install the requirements; the message ends with pip's own lines."""


def requirements_key(text: bytes) -> str:
    """The cache key of a requirements file: its content's hash, blank lines and comments ignored."""
    lines = [line.split("#", 1)[0].strip() for line in text.decode("utf-8", errors="replace").splitlines()]
    canonical = "\n".join(line for line in lines if line)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def has_requirements(requirements: Path) -> bool:
    return requirements.is_file() and any(
        line.split("#", 1)[0].strip() for line in requirements.read_text(errors="replace").splitlines())


def ensure_installed(requirements: Path, cache: Path, *, log: Callable[[str], None] = print) -> Path:
    """The directory holding ``requirements``' packages, installing them first if no pod has."""
    key = requirements_key(requirements.read_bytes())
    target = cache / key
    if (target / COMPLETE).exists():
        log(f"requirements {key} already installed; reusing them")
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"{key}.lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if (target / COMPLETE).exists():
            log(f"requirements {key} installed by another pod; reusing them")
            return target
        staging = cache / f"{key}.installing.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        log(f"installing requirements {key} from PyPI")
        command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
                   "--progress-bar", "off", "--target", str(staging), "-r", str(requirements)]
        env = {**os.environ, "PIP_NO_WARN_SCRIPT_LOCATION": "1", "PIP_CACHE_DIR": str(cache / ".pip-cache")}
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
        output: list[str] = []
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip())
            log(f"pip: {line.rstrip()}")
        if process.wait() != 0:
            shutil.rmtree(staging, ignore_errors=True)
            shown = "\n".join(line for line in output if line.strip())
            tail = "\n".join(shown.splitlines()[-PIP_LINES_SHOWN:])
            raise InstallError(f"Installing requirements.txt failed:\n{tail}")
        (staging / COMPLETE).write_text(requirements.read_text())
        shutil.rmtree(target, ignore_errors=True)
        os.rename(staging, target)
        log(f"requirements {key} installed")
        return target

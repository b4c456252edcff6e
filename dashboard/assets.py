"""The browser libraries the dashboard serves itself: ``npm ci`` from package-lock.json, then their
built files copied into static/vendor (not committed; ``make up`` and ``make test`` run this).

    python -m dashboard.assets              npm ci (when package-lock.json changed) and copy
    python -m dashboard.assets --copy-only  copy from an existing node_modules (the image build)

Side effects: runs npm, writes node_modules/ and static/vendor/ beside this file.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
NODE_MODULES = PACKAGE_DIR / "node_modules"
VENDOR_DIR = PACKAGE_DIR / "static" / "vendor"
# what the pages load -> where npm puts it
VENDOR_FILES: dict[str, str] = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "uPlot.iife.min.js": "uplot/dist/uPlot.iife.min.js",
    "uPlot.min.css": "uplot/dist/uPlot.min.css",
    "pico.min.css": "@picocss/pico/css/pico.min.css",
}
STAMP = NODE_MODULES / ".package-lock.json"  # npm writes it on every install


def install() -> None:
    lock = PACKAGE_DIR / "package-lock.json"
    if STAMP.exists() and STAMP.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("dashboard assets: npm is not on PATH; install Node.js and npm (apt-get install -y npm) "
                         "and run `make up` again.")
    result = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=PACKAGE_DIR, check=False)
    if result.returncode != 0:
        raise SystemExit(f"dashboard assets: `npm ci` in {PACKAGE_DIR.name}/ failed ({result.returncode}); "
                         "see npm's message above.")


def copy() -> None:
    VENDOR_DIR.mkdir(parents=True, exist_ok=True)
    for name, source in VENDOR_FILES.items():
        found = NODE_MODULES / source
        if not found.is_file():
            raise SystemExit(f"dashboard assets: {source} is not in node_modules; run `npm ci` in dashboard/.")
        shutil.copyfile(found, VENDOR_DIR / name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard.assets", description=__doc__.split("\n\n")[0])
    parser.add_argument("--copy-only", action="store_true", help="do not run npm; copy from node_modules")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not args.copy_only:
        install()
    copy()
    return 0


if __name__ == "__main__":
    sys.exit(main())

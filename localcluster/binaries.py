"""Build and cache the control-plane binaries: kube-apiserver, kube-controller-manager, etcd,
and nats-server (the durable log under the call queue); and Knative's own client ``kn``, which
the tests drive knserve with (it is no part of the control plane: ``make binaries`` builds it,
``knserve local up`` does not wait for it). For real nodes (the containerd runtime, asked for
with ``--runtime containerd``) also kubelet, kube-proxy and kube-scheduler, from the same
wrapper module at the same version, and CoreDNS.

No package registry ships these, so they are built with the local Go toolchain from the
Go module proxy, through a small wrapper module per release, and cached per version under
``$KNSERVE_CACHE`` (default ``~/.cache/knserve``). A cached build is reused at once.

Side effects: runs ``go`` (network to the Go module proxy, tens of minutes on a first
build), writes into the cache directory. Uses only the standard library so it can run
before the project's virtualenv exists (``python -m localcluster.binaries``).
"""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

KUBERNETES_VERSION = "v1.37.2"
ETCD_VERSION = "v3.6.16"
NATS_SERVER_VERSION = "v2.14.10"
# knative.dev/client v0.42.0 is kn 1.15.0: the newest release whose go.mod has no replace lines
# (later ones point knative.dev/client/pkg at a directory), so `go install` builds it as is.
KN_MODULE_VERSION = "v0.42.0"
KN_VERSION = "v1.15.0"

KUBERNETES_COMMANDS = ("kube-apiserver", "kube-controller-manager")
# What a real node adds to the control plane; built only for the containerd runtime.
NODE_COMMANDS = ("kubelet", "kube-proxy", "kube-scheduler")
COREDNS_VERSION = "v1.15.0"


class BuildError(RuntimeError):
    """A binary could not be built; the message says what to install or check."""


def cache_root() -> Path:
    return Path(os.environ.get("KNSERVE_CACHE", Path.home() / ".cache" / "knserve"))


@dataclasses.dataclass(frozen=True)
class Binaries:
    kube_apiserver: Path
    kube_controller_manager: Path
    etcd: Path
    nats_server: Path
    kn: Path

    def all_present(self) -> bool:
        """The control plane's binaries (``kn`` is a client; see ``ensure_kn``)."""
        paths = (self.kube_apiserver, self.kube_controller_manager, self.etcd, self.nats_server)
        return all(os.access(p, os.X_OK) for p in paths)


def binaries(root: Path | None = None) -> Binaries:
    root = root or cache_root()
    kube = root / "bin" / f"kubernetes-{KUBERNETES_VERSION}"
    return Binaries(
        kube_apiserver=kube / "kube-apiserver",
        kube_controller_manager=kube / "kube-controller-manager",
        etcd=root / "bin" / f"etcd-{ETCD_VERSION}" / "etcd",
        nats_server=root / "bin" / f"nats-server-{NATS_SERVER_VERSION}" / "nats-server",
        kn=root / "bin" / f"kn-{KN_VERSION}" / "kn",
    )


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            "The Go toolchain (1.26 or newer) is needed to build the local Kubernetes control plane "
            "once: install it (for example `apt-get install golang`) and run again."
        )
    return go


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GOTOOLCHAIN", "local")
    env["CGO_ENABLED"] = "0"
    env.setdefault("GOFLAGS", "-mod=mod")
    return env


def _upstream_gomod(go: str, module: str, version: str) -> str:
    """``module``'s go.mod at ``version``, fetched by go itself (through the module proxy go is
    configured with: ``go env GOPROXY``)."""
    result = subprocess.run([go, "mod", "download", "-json", f"{module}@{version}"], env=_go_env(),
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise BuildError(f"could not download {module}@{version}: {result.stderr.strip() or result.stdout.strip()}")
    return Path(json.loads(result.stdout)["GoMod"]).read_text()


def kubernetes_wrapper_gomod(version: str, upstream_gomod: str) -> str:
    """A go.mod that requires k8s.io/kubernetes and maps each staging module to its published tag."""
    staging = sorted(set(re.findall(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", upstream_gomod, re.M)))
    if not staging:
        raise BuildError(f"k8s.io/kubernetes {version}: no staging modules found in its go.mod")
    published = "v0." + version.removeprefix("v").split(".", 1)[1]
    go_line = re.search(r"^go\s+(\S+)", upstream_gomod, re.M)
    godebug = re.search(r"^godebug\s+.*$", upstream_gomod, re.M)
    lines = ["module knserve.local/kubebuild", "", f"go {go_line.group(1) if go_line else '1.26.0'}", ""]
    if godebug:
        lines += [godebug.group(0), ""]
    lines += ["require k8s.io/kubernetes " + version, "", "replace ("]
    lines += [f"\t{module} => {module} {published}" for module in staging]
    lines += [")", ""]
    return "\n".join(lines)


def _version_ldflags(version: str) -> str:
    major, minor = version.removeprefix("v").split(".")[:2]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    values = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": now,
    }
    flags = []
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X '{package}.{key}={value}'" for key, value in values.items()]
    return "-s -w " + " ".join(flags)


def _run(command: list[str], *, cwd: Path, what: str, log: Path) -> None:
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(command)}\n".encode())
        out.flush()
        result = subprocess.run(command, cwd=cwd, env=_go_env(), stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise BuildError(f"building {what} failed (full log: {log}):\n" + "\n".join(tail))


def build_kubernetes(target: Binaries, *, progress: Callable[[str], object] = print,
                     commands: tuple[str, ...] = KUBERNETES_COMMANDS) -> None:
    go = _go()
    work = cache_root() / "build" / f"kubernetes-{KUBERNETES_VERSION}"
    work.mkdir(parents=True, exist_ok=True)
    log = work / "build.log"
    upstream = _upstream_gomod(go, "k8s.io/kubernetes", KUBERNETES_VERSION)
    (work / "go.mod").write_text(kubernetes_wrapper_gomod(KUBERNETES_VERSION, upstream))
    (work / "tools.go").write_text(
        "//go:build tools\n\npackage tools\n\nimport (\n"
        + "".join(f'\t_ "k8s.io/kubernetes/cmd/{c}"\n' for c in dict.fromkeys((*KUBERNETES_COMMANDS, *commands)))
        + ")\n"
    )
    progress(f"downloading Kubernetes {KUBERNETES_VERSION} modules (first time only)")
    _run([go, "mod", "download", "k8s.io/kubernetes"], cwd=work, what="Kubernetes modules", log=log)
    out_dir = target.kube_apiserver.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    for command in commands:
        progress(f"building {command} {KUBERNETES_VERSION} (first time only; several minutes)")
        tmp = out_dir / f".{command}.tmp"
        _run(
            [go, "build", "-trimpath", "-tags=selinux,notest", "-ldflags", _version_ldflags(KUBERNETES_VERSION),
             "-o", str(tmp), f"k8s.io/kubernetes/cmd/{command}"],
            cwd=work, what=command, log=log,
        )
        tmp.rename(out_dir / command)


def build_etcd(target: Binaries, *, progress: Callable[[str], object] = print) -> None:
    go = _go()
    work = cache_root() / "build" / f"etcd-{ETCD_VERSION}"
    work.mkdir(parents=True, exist_ok=True)
    log = work / "build.log"
    (work / "go.mod").write_text(
        f"module knserve.local/etcdbuild\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 {ETCD_VERSION}\n"
    )
    (work / "tools.go").write_text('//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n')
    progress(f"building etcd {ETCD_VERSION} (first time only)")
    _run([go, "mod", "download", "go.etcd.io/etcd/server/v3"], cwd=work, what="etcd modules", log=log)
    target.etcd.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.etcd.parent / ".etcd.tmp"
    _run([go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(tmp), "go.etcd.io/etcd/server/v3"],
         cwd=work, what="etcd", log=log)
    tmp.rename(target.etcd)


def build_nats_server(target: Binaries, *, progress: Callable[[str], object] = print) -> None:
    """nats-server is a plain Go module (no replace lines), so ``go install`` builds it."""
    go = _go()
    work = cache_root() / "build" / f"nats-server-{NATS_SERVER_VERSION}"
    work.mkdir(parents=True, exist_ok=True)
    log = work / "build.log"
    progress(f"building nats-server {NATS_SERVER_VERSION} (first time only)")
    gobin = work / "bin"
    command = [go, "install", "-trimpath", "-ldflags", "-s -w", f"github.com/nats-io/nats-server/v2@{NATS_SERVER_VERSION}"]
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(command)}\n".encode())
        out.flush()
        env = _go_env() | {"GOBIN": str(gobin), "GOFLAGS": ""}
        result = subprocess.run(command, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise BuildError(f"building nats-server failed (full log: {log}):\n" + "\n".join(tail))
    target.nats_server.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.nats_server.parent / ".nats-server.tmp"
    shutil.copy2(gobin / "nats-server", tmp)
    tmp.rename(target.nats_server)


def build_kn(target: Binaries, *, progress: Callable[[str], object] = print) -> None:
    """kn from ``knative.dev/client/cmd/kn`` at a release without replace lines, through a
    wrapper module (``go install mod@version`` would ask the proxy for the module's version
    list, which it may refuse)."""
    go = _go()
    work = cache_root() / "build" / f"kn-{KN_VERSION}"
    work.mkdir(parents=True, exist_ok=True)
    log = work / "build.log"
    (work / "go.mod").write_text(
        f"module knserve.local/knbuild\n\ngo 1.22\n\nrequire knative.dev/client {KN_MODULE_VERSION}\n"
    )
    (work / "tools.go").write_text('//go:build tools\n\npackage tools\n\nimport _ "knative.dev/client/cmd/kn"\n')
    progress(f"building kn {KN_VERSION} (first time only; a few minutes)")
    _run([go, "mod", "download", "knative.dev/client"], cwd=work, what="kn modules", log=log)
    target.kn.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.kn.parent / ".kn.tmp"
    version_flag = f"-X 'knative.dev/client/pkg/kn/commands/version.Version={KN_VERSION}'"
    _run([go, "build", "-trimpath", "-ldflags", f"-s -w {version_flag}", "-o", str(tmp), "knative.dev/client/cmd/kn"],
         cwd=work, what="kn", log=log)
    tmp.rename(target.kn)


def _ensure_tool(target: Path, build: Callable[[], None]) -> Path:
    """Return ``target``, building it first (under the same lock as the control plane) if it is
    not cached yet."""
    if not target.exists():
        cache_root().mkdir(parents=True, exist_ok=True)
        with open(cache_root() / ".build.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not target.exists():
                build()
    return target


def ensure_kn(*, progress: Callable[[str], object] = print) -> Path:
    """Return the cached kn, building it if needed."""
    target = binaries()
    return _ensure_tool(target.kn, lambda: build_kn(target, progress=progress))


def ensure_nats_server(*, progress: Callable[[str], object] = print) -> Path:
    """Return the cached nats-server, building it if needed."""
    target = binaries()
    return _ensure_tool(target.nats_server, lambda: build_nats_server(target, progress=progress))


# faas-cli, OpenFaaS's client, which the gateway's tests drive. Its releases are tagged without
# the "v" Go wants, so the module version of release 0.18.12 is its commit's pseudo-version.
FAAS_CLI_VERSION = "0.18.12"
FAAS_CLI_MODULE_VERSION = "v0.0.0-20260724145813-c8191b71e7ed"


def faas_cli_path() -> Path:
    return cache_root() / "bin" / f"faas-cli-{FAAS_CLI_VERSION}" / "faas-cli"


def build_faas_cli(*, progress: Callable[[str], object] = print) -> None:
    """faas-cli from ``github.com/openfaas/faas-cli`` (no replace lines) through a wrapper module."""
    go = _go()
    work = cache_root() / "build" / f"faas-cli-{FAAS_CLI_VERSION}"
    work.mkdir(parents=True, exist_ok=True)
    log = work / "build.log"
    (work / "go.mod").write_text(
        f"module knserve.local/faasclibuild\n\ngo 1.24.0\n\nrequire github.com/openfaas/faas-cli "
        f"{FAAS_CLI_MODULE_VERSION}\n"
    )
    (work / "tools.go").write_text('//go:build tools\n\npackage tools\n\nimport _ "github.com/openfaas/faas-cli"\n')
    progress(f"building faas-cli {FAAS_CLI_VERSION} (first time only; a few minutes)")
    _run([go, "mod", "download", "github.com/openfaas/faas-cli"], cwd=work, what="faas-cli modules", log=log)
    target = faas_cli_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / ".faas-cli.tmp"
    version_flag = f"-X 'github.com/openfaas/faas-cli/version.Version={FAAS_CLI_VERSION}'"
    _run([go, "build", "-trimpath", "-ldflags", f"-s -w {version_flag}", "-o", str(tmp),
          "github.com/openfaas/faas-cli"], cwd=work, what="faas-cli", log=log)
    tmp.rename(target)


def ensure_faas_cli(*, progress: Callable[[str], object] = print) -> Path:
    """Return the cached faas-cli, building it if needed."""
    return _ensure_tool(faas_cli_path(), lambda: build_faas_cli(progress=progress))


@dataclasses.dataclass(frozen=True)
class NodeBinaries:
    """What a real node and its control plane add: built only for the containerd runtime."""

    kubelet: Path
    kube_proxy: Path
    kube_scheduler: Path
    coredns: Path

    def all_present(self) -> bool:
        paths = (self.kubelet, self.kube_proxy, self.kube_scheduler, self.coredns)
        return all(os.access(p, os.X_OK) for p in paths)


def node_binaries(root: Path | None = None) -> NodeBinaries:
    root = root or cache_root()
    kube = root / "bin" / f"kubernetes-{KUBERNETES_VERSION}"
    return NodeBinaries(
        kubelet=kube / "kubelet",
        kube_proxy=kube / "kube-proxy",
        kube_scheduler=kube / "kube-scheduler",
        coredns=root / "bin" / f"coredns-{COREDNS_VERSION}" / "coredns",
    )


def build_coredns(target: NodeBinaries, *, progress: Callable[[str], object] = print) -> None:
    """CoreDNS from ``github.com/coredns/coredns`` (a plain module) through a wrapper module."""
    go = _go()
    work = cache_root() / "build" / f"coredns-{COREDNS_VERSION}"
    work.mkdir(parents=True, exist_ok=True)
    log = work / "build.log"
    (work / "go.mod").write_text(
        f"module knserve.local/corednsbuild\n\ngo 1.24.0\n\nrequire github.com/coredns/coredns {COREDNS_VERSION}\n"
    )
    (work / "tools.go").write_text('//go:build tools\n\npackage tools\n\nimport _ "github.com/coredns/coredns"\n')
    progress(f"building CoreDNS {COREDNS_VERSION} (first time only; a few minutes)")
    _run([go, "mod", "download", "github.com/coredns/coredns"], cwd=work, what="CoreDNS modules", log=log)
    target.coredns.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.coredns.parent / ".coredns.tmp"
    _run([go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(tmp), "github.com/coredns/coredns"],
         cwd=work, what="CoreDNS", log=log)
    tmp.rename(target.coredns)


def ensure_node_binaries(*, progress: Callable[[str], object] = print) -> NodeBinaries:
    """Return kubelet, kube-proxy, kube-scheduler and CoreDNS, building whichever are missing
    (under the same lock as the control plane, with the same wrapper module and version)."""
    target = node_binaries()
    if target.all_present():
        return target
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = tuple(command for command in NODE_COMMANDS
                        if not os.access(target.kubelet.parent / command, os.X_OK))
        if missing:
            build_kubernetes(binaries(), progress=progress, commands=missing)
        if not target.coredns.exists():
            build_coredns(target, progress=progress)
    return target


def ensure_binaries(*, progress: Callable[[str], object] = print) -> Binaries:
    """Return the cached binaries, building whichever are missing.

    One build at a time per cache: a second caller waits for the first and then finds the
    binaries built. With every binary in place there is nothing to wait for."""
    target = binaries()
    if target.all_present():
        return target
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.etcd.exists():
            build_etcd(target, progress=progress)
        if not (target.kube_apiserver.exists() and target.kube_controller_manager.exists()):
            build_kubernetes(target, progress=progress)
        if not target.nats_server.exists():
            build_nats_server(target, progress=progress)
    return target


def main(argv: list[str] | None = None) -> int:
    """``python -m localcluster.binaries [--runtime process|containerd]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m localcluster.binaries")
    parser.add_argument("--runtime", choices=("process", "containerd"), default="process",
                        help="containerd also builds kubelet, kube-proxy, kube-scheduler and CoreDNS")
    args = parser.parse_args(argv)
    try:
        found = ensure_binaries(progress=lambda message: print(f"==> {message}", flush=True))
        ensure_kn(progress=lambda message: print(f"==> {message}", flush=True))
        if args.runtime == "containerd":
            ensure_node_binaries(progress=lambda message: print(f"==> {message}", flush=True))
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"control plane binaries ready in {found.kube_apiserver.parent.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``knserve func``: make, deploy, call and look at functions.

    knserve func new NAME --template lambda|openfaas|openfaas-http|plain|wsgi|asgi
    knserve func deploy [DIR] [--tag TAG] [--traffic PERCENT] [--no-wait]
    knserve func invoke NAME [--data JSON | --data-file FILE] [--header K:V] [--async]
    knserve func logs NAME [-f]
    knserve func list | describe NAME | delete NAME

Each takes ``-n/--namespace`` (default ``default``) and ``--kubeconfig`` (default
``$KUBECONFIG``) as kubectl does; ``invoke`` sends through the ingress (``--ingress``, default
``$KNSERVE_INGRESS`` or http://127.0.0.1:8080) with the function's host name.

Side effects: writes files (new), Kubernetes objects (deploy, delete), HTTP requests (invoke),
runs kubectl (logs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from functions import deps, manifests, templates
from functions.manifests import FUNCTION_LABEL, FunctionSpec, SpecError
from kube.client import KubeClient, connect
from kube.errors import ApiError
from kube.resources import CONFIGMAPS, REVISIONS, SERVICES

PROGRAM = "knserve func"
FIELD_MANAGER = "knserve-func"
DEFAULT_INGRESS = "http://127.0.0.1:8080"
LOCAL_IMAGE_MAP = ("knative-serving", "knserve-images")


class CommandError(Exception):
    """Something the user must fix; printed as a sentence, exit code 1."""


def say(message: str) -> None:
    print(message, flush=True)


# --- new ----------------------------------------------------------------------------------------
def new(args: argparse.Namespace) -> int:
    manifests.check_name(args.name)
    directory = Path(args.dir or args.name)
    if directory.exists() and any(directory.iterdir()):
        raise CommandError(f"{directory} exists and is not empty; choose another name or --dir.")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "handler.py").write_text(templates.HANDLERS[args.template])
    (directory / "requirements.txt").write_text(templates.REQUIREMENTS)
    (directory / "func.yaml").write_text(templates.func_yaml(args.name, args.template))
    say(f"Created {directory}/ ({args.template}): handler.py, requirements.txt, func.yaml")
    say(f"Deploy it with: knserve func deploy {directory}")
    return 0


# --- reading a function directory ---------------------------------------------------------------
def read_function(directory: Path) -> tuple[FunctionSpec, dict[str, bytes]]:
    if not directory.is_dir():
        raise CommandError(f"{directory} is not a directory; give the function's directory (with func.yaml).")
    config = directory / "func.yaml"
    document: Any = {}
    if config.is_file():
        try:
            document = yaml.safe_load(config.read_text()) or {}
        except yaml.YAMLError as error:
            raise CommandError(f"{config} is not valid YAML: {error}") from None
    spec = manifests.read_spec(document, default_name=directory.resolve().name.replace("_", "-").lower())
    files: dict[str, bytes] = {}
    for path in sorted(directory.iterdir()):
        if path.name in manifests.SKIPPED or path.name.startswith("."):
            continue
        if path.is_dir():
            if any(path.rglob("*.py")):
                raise CommandError(f"{path.name}/ is a directory: a function's source is the files of one directory "
                                   "(a ConfigMap cannot hold sub-directories); move its modules up.")
            continue
        files[path.name] = path.read_bytes()
    module = (spec.handler.partition(":")[0] or "").removesuffix(".py")
    wanted = [f"{module}.py"] if module else [f"{m}.py" for m in ("handler", "main", "app", "index")]
    if not any(name in files for name in wanted):
        raise CommandError(f"{directory} has no handler: expected {' or '.join(wanted)} "
                           f"(func.yaml's handler names the file and function, like handler.py:main).")
    manifests.check_files(files)
    for name, content in files.items():
        if name.endswith(".py"):
            try:
                compile(content, name, "exec")
            except SyntaxError as error:
                line = (error.text or "").strip()
                raise CommandError(f"{name}, line {error.lineno}: {error.msg}" + (f"\n    {line}" if line else "")
                                   ) from None
    return spec, files


# --- deploy -------------------------------------------------------------------------------------
async def _is_local_node(client: KubeClient) -> bool:
    try:
        await client.get(CONFIGMAPS, *LOCAL_IMAGE_MAP)
        return True
    except ApiError as error:
        if error.status in (403, 404):
            return False
        raise


def _ready(obj: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)


async def deploy(args: argparse.Namespace, client: KubeClient) -> int:
    directory = Path(args.dir)
    try:
        spec, files = read_function(directory)
    except CommandError as error:
        if "line" in str(error):
            raise CommandError(f"Not deployed: {error}") from None
        raise
    namespace = args.namespace
    local_node = await _is_local_node(client)
    requirements = directory / "requirements.txt"
    if local_node and deps.has_requirements(requirements):
        # A local node's pods have no way out to PyPI; its pods share the host's cache, so the
        # install happens here, once per distinct file, and every pod finds it done.
        cache = Path(manifests.LOCAL_DEPS_CACHE)
        cache.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(PermissionError):
            os.chmod(cache, 0o1777)  # the runtime runs as the knserve image's user
        try:
            deps.ensure_installed(requirements, cache, log=lambda line: say(f"  | {line}"))
        except deps.InstallError as error:
            raise CommandError(f"Not deployed: {error}") from None
    config_map = manifests.source_config_map(spec, namespace, files)
    try:
        await client.create(CONFIGMAPS, config_map)
    except ApiError as error:
        if error.status != 409:
            raise
    try:
        current: dict[str, Any] | None = await client.get(SERVICES, namespace, spec.name)
    except ApiError as error:
        if error.status != 404:
            raise
        current = None
    deploy_id = f"{int(time.time() * 1000) % 10**10:010d}"[-6:] + manifests.source_digest(files)[:4]
    traffic = None
    revision_name = None
    if args.tag or args.traffic is not None:
        revision_name = f"{spec.name}-{deploy_id}"
        stable = ((current or {}).get("status") or {}).get("latestReadyRevisionName")
        traffic = manifests.canary_traffic(stable_revision=stable, new_revision=revision_name,
                                           percent=args.traffic, tag=args.tag)
    desired = manifests.function_service(spec, namespace=namespace, config_map=config_map["metadata"]["name"],
                                         deploy_id=deploy_id, local_node=local_node, traffic=traffic,
                                         revision_name=revision_name)
    before = ((current or {}).get("status") or {}).get("latestCreatedRevisionName")
    if current is None:
        service = await client.create(SERVICES, desired)
        say(f"Creating function {spec.name} in namespace {namespace}")
    else:
        current["spec"] = desired["spec"]
        current["metadata"].setdefault("labels", {}).update(desired["metadata"]["labels"])
        current["metadata"].setdefault("annotations", {}).update(desired["metadata"]["annotations"])
        service = await client.update(SERVICES, current)
        say(f"Updating function {spec.name} in namespace {namespace}")
    owner = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": spec.name,
             "uid": service["metadata"]["uid"], "blockOwnerDeletion": False}
    await client.patch(CONFIGMAPS, namespace, config_map["metadata"]["name"],
                       {"metadata": {"ownerReferences": [owner]}})
    if args.no_wait:
        return 0
    return await wait_for_revision(client, namespace, spec.name, generation=service["metadata"]["generation"],
                                   before=before, timeout=args.timeout, kubeconfig=args.kubeconfig)


def _kubectl() -> str:
    kubectl = shutil.which("kubectl", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if kubectl is None:
        raise CommandError("kubectl is not on PATH; it reads the logs.")
    return kubectl


async def _runtime_lines(namespace: str, revision: str, kubeconfig: str | None) -> list[str]:
    """What the function runtime of ``revision``'s pods said so far (its install and load steps)."""
    command = [_kubectl(), "logs", "-n", namespace, "-l", f"serving.knative.dev/revision={revision}",
               "-c", "user-container", "--tail", "200"]
    if kubeconfig:
        command += ["--kubeconfig", kubeconfig]
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.DEVNULL)
    output, _ = await process.communicate()
    return [line for line in output.decode(errors="replace").splitlines() if line.startswith("function: ")]


async def wait_for_revision(client: KubeClient, namespace: str, name: str, *, generation: int,
                            before: str | None, timeout: float, kubeconfig: str | None = None) -> int:
    """Follow the new Revision until it is Ready (print the URL) or failed (print why), showing
    the runtime's own progress (requirements being installed) meanwhile."""
    deadline = time.monotonic() + timeout
    shown: set[str] = set()
    revision_name = None
    next_logs = 0.0
    while time.monotonic() < deadline:
        service = await client.get(SERVICES, namespace, name)
        status = service.get("status") or {}
        latest = status.get("latestCreatedRevisionName")
        if status.get("observedGeneration") == generation and latest and latest != before:
            if revision_name != latest:
                revision_name = latest
                say(f"  revision {latest} created")
            if time.monotonic() >= next_logs:
                next_logs = time.monotonic() + 1.0
                for line in await _runtime_lines(namespace, latest, kubeconfig):
                    if line not in shown:
                        shown.add(line)
                        say(f"  | {line.removeprefix('function: ')}")
            revision = await client.get(REVISIONS, namespace, latest)
            for condition in (revision.get("status") or {}).get("conditions") or []:
                line = f"{condition.get('type')}={condition.get('status')} {condition.get('reason') or ''}".strip()
                if condition.get("status") != "True" and condition.get("reason") and line not in shown:
                    shown.add(line)
                    say(f"  {line}")
            ready = _ready(revision)
            if ready and ready.get("status") == "False":
                message = ready.get("message") or ""
                say(f"Revision {latest} failed: {ready.get('reason')}: {message}")
                serving = status.get("latestReadyRevisionName")
                if serving:
                    say(f"{serving} keeps serving {status.get('url')}")
                return 1
            if ready and ready.get("status") == "True":
                service_ready = _ready(service)
                if service_ready and service_ready.get("status") == "True":
                    say(f"Function {name} is ready: revision {latest}")
                    say(f"URL: {status.get('url')}")
                    for target in status.get("traffic") or []:
                        if target.get("tag"):
                            say(f"  tag {target['tag']}: {target.get('url')} ({target.get('percent', 0)}%)")
                    return 0
        await asyncio.sleep(0.25)
    say(f"Function {name} was not ready after {timeout:g}s; `knserve func describe {name}` shows where it stands.")
    return 1


# --- invoke -------------------------------------------------------------------------------------
async def invoke(args: argparse.Namespace, client: KubeClient) -> int:
    service = await client.get(SERVICES, args.namespace, args.name)
    url = (service.get("status") or {}).get("url")
    if not url:
        raise CommandError(f"Function {args.name} has no URL yet; `knserve func describe {args.name}` says why.")
    host = urllib.parse.urlsplit(url).hostname or ""
    if args.tag:
        host = f"{args.tag}-{host}"
    if args.data_file:
        body = b"" if args.data_file is None else Path(args.data_file).read_bytes()
    else:
        body = (args.data or "").encode()
    headers = {"Host": host}
    if body:
        headers["Content-Type"] = "application/json"
    for header in args.header or []:
        key, _, value = header.partition(":")
        headers[key.strip()] = value.strip()
    if args.async_call:
        headers["Prefer"] = "respond-async"
    method = args.method or ("POST" if body else "GET")
    request = urllib.request.Request(args.ingress.rstrip("/") + args.path, data=body or None, method=method,
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:
            status, answer, response_headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, answer, response_headers = error.code, error.read(), error.headers
    except (urllib.error.URLError, OSError) as error:
        raise CommandError(f"The ingress at {args.ingress} did not answer: {error}") from None
    if args.async_call and status == 202:
        call_id = response_headers.get("X-Call-Id") or ""
        if not call_id:
            try:
                call_id = json.loads(answer).get("id", "")
            except ValueError:
                pass
        say(call_id or answer.decode(errors="replace"))
        return 0
    sys.stdout.write(answer.decode(errors="replace"))
    if answer and not answer.endswith(b"\n"):
        sys.stdout.write("\n")
    if status >= 400:
        print(f"{PROGRAM} invoke: {args.name} answered {status}", file=sys.stderr)
        return 1
    return 0


# --- list, describe, delete, logs ---------------------------------------------------------------
def _row(service: dict[str, Any]) -> dict[str, Any]:
    status = service.get("status") or {}
    ready = _ready(service) or {}
    return {
        "name": service["metadata"]["name"],
        "style": (service["metadata"].get("annotations") or {}).get(manifests.STYLE_ANNOTATION, ""),
        "url": status.get("url", ""),
        "ready": ready.get("status", "Unknown"),
        "reason": ready.get("reason", ""),
        "latestReadyRevision": status.get("latestReadyRevisionName", ""),
        "latestCreatedRevision": status.get("latestCreatedRevisionName", ""),
        "traffic": status.get("traffic") or [],
    }


async def list_functions(args: argparse.Namespace, client: KubeClient) -> int:
    result = await client.list(SERVICES, namespace=args.namespace, label_selector=FUNCTION_LABEL)
    rows = [_row(service) for service in result.items]
    say(f"{'NAME':<24} {'STYLE':<14} {'READY':<8} {'REVISION':<28} URL")
    for row in rows:
        say(f"{row['name']:<24} {row['style']:<14} {row['ready']:<8} {row['latestReadyRevision']:<28} {row['url']}")
    return 0


async def describe(args: argparse.Namespace, client: KubeClient) -> int:
    service = await client.get(SERVICES, args.namespace, args.name)
    row = _row(service)
    container = service["spec"]["template"]["spec"]["containers"][0]
    row["env"] = {e["name"]: e.get("value") for e in container.get("env") or []}
    row["annotations"] = service["spec"]["template"].get("metadata", {}).get("annotations") or {}
    row["conditions"] = (service.get("status") or {}).get("conditions") or []
    say(json.dumps(row, indent=2))
    return 0


async def delete(args: argparse.Namespace, client: KubeClient) -> int:
    await client.delete(SERVICES, args.namespace, args.name)
    say(f"Deleted function {args.name} (its source ConfigMaps go with it)")
    return 0


def logs(args: argparse.Namespace) -> int:
    command = [_kubectl(), "logs", "-n", args.namespace, "-l", f"serving.knative.dev/service={args.name}",
               "-c", "user-container", "--prefix", "--tail", str(args.tail), "--max-log-requests", "20"]
    if args.kubeconfig:
        command += ["--kubeconfig", args.kubeconfig]
    if args.follow:
        command.append("-f")
    return subprocess.call(command)


# --- arguments ----------------------------------------------------------------------------------
def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROGRAM, description="Serve a handler file as a Knative Service.")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("-n", "--namespace", default="default")
        sub.add_argument("--kubeconfig", default=None)
        return sub

    sub = command("new", "make a function directory from a template")
    sub.add_argument("name")
    sub.add_argument("--template", "-t", choices=sorted(templates.TEMPLATE_STYLES), default="plain")
    sub.add_argument("--dir", default=None, help="where to write it (default: NAME)")
    sub = command("deploy", "deploy a function directory (a new Revision every time)")
    sub.add_argument("dir", nargs="?", default=".")
    sub.add_argument("--tag", default=None, help="tag the new Revision (its own URL: TAG-NAME...)")
    sub.add_argument("--traffic", type=int, default=None, help="percent of traffic for the new Revision")
    sub.add_argument("--no-wait", action="store_true")
    sub.add_argument("--timeout", type=float, default=300)
    sub = command("invoke", "call a function through the ingress")
    sub.add_argument("name")
    data = sub.add_mutually_exclusive_group()
    data.add_argument("--data", "-d", default=None)
    data.add_argument("--data-file", default=None)
    sub.add_argument("--header", "-H", action="append")
    sub.add_argument("--method", "-X", default=None)
    sub.add_argument("--path", default="/")
    sub.add_argument("--tag", default=None, help="call the Revision with this tag")
    sub.add_argument("--async", dest="async_call", action="store_true", help="through the call queue: prints the call id")
    sub.add_argument("--ingress", default=os.environ.get("KNSERVE_INGRESS", DEFAULT_INGRESS))
    sub.add_argument("--timeout", type=float, default=300)
    sub = command("logs", "the function's logs")
    sub.add_argument("name")
    sub.add_argument("-f", "--follow", action="store_true")
    sub.add_argument("--tail", type=int, default=200)
    command("list", "the functions in a namespace")
    sub = command("describe", "a function's state, revisions and traffic")
    sub.add_argument("name")
    sub = command("delete", "delete a function")
    sub.add_argument("name")
    return parser.parse_args(argv)


async def _with_client(args: argparse.Namespace) -> int:
    client = await connect(args.kubeconfig, field_manager=FIELD_MANAGER)
    try:
        handler = {"deploy": deploy, "invoke": invoke, "list": list_functions, "describe": describe,
                   "delete": delete}[args.command]
        return await handler(args, client)
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        if args.command == "new":
            return new(args)
        if args.command == "logs":
            return logs(args)
        return asyncio.run(_with_client(args))
    except (CommandError, SpecError) as error:
        print(f"{PROGRAM} {args.command}: {error}", file=sys.stderr)
        return 1
    except ApiError as error:
        if error.status == 404 and getattr(args, "name", None):
            print(f"{PROGRAM} {args.command}: there is no function {args.name} in namespace {args.namespace}.",
                  file=sys.stderr)
        else:
            print(f"{PROGRAM} {args.command}: {error}", file=sys.stderr)
        return 1

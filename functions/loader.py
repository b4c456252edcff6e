"""Load a handler once and call it per request in its style.

``load_function(directory, target=..., style=...)`` imports the handler's module from the
function's directory (its neighbours importable), finds the callable, settles the style
(named, or detected from the names ``handler``, ``handle``, ``main``, ``app`` and their
signatures) and returns a ``Function`` whose ``call(request)`` answers one request. Coroutine
handlers and ASGI apps run on one event loop thread of the process, so the threaded server
calls them like any other.

A handler that raises is answered 500 with ``{"error": "<type>: <message>"}`` (short); the
traceback goes to stderr (the container's log) only. ``LoadError`` says in a sentence why a
handler could not be loaded (its first lines name the file and line of a syntax error).

Side effects: imports user code; starts the event loop thread on first async use; writes
tracebacks to stderr.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import threading
import traceback
import types
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from functions import styles
from functions.styles import BadInput, HandlerError, HttpRequest, HttpResponse

DEFAULT_MODULES = ("handler", "main", "app", "index")
NAMES_BY_STYLE = {"lambda": "handler", "openfaas": "handle", "openfaas-http": "handle", "plain": "main", "wsgi": "app",
                  "asgi": "app"}
MAX_ERROR_LINES = 8


class LoadError(Exception):
    """The handler cannot be loaded; the message says why in a few lines."""


# --- the event loop for coroutine handlers ------------------------------------------------------
_loop: Any = None  # asyncio is imported on first use: most handlers never need it
_loop_lock = threading.Lock()


def event_loop() -> Any:
    global _loop
    import asyncio

    with _loop_lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="function-loop", daemon=True).start()
            _loop = loop
        return _loop


def run_async(awaitable: Any) -> Any:
    import asyncio

    return asyncio.run_coroutine_threadsafe(awaitable, event_loop()).result()


# --- loading ------------------------------------------------------------------------------------
def _short_error(error: BaseException, directory: Path) -> str:
    """The first lines of an import error, with paths relative to the function's directory."""
    if isinstance(error, SyntaxError):
        where = Path(error.filename or "?").name
        line = (error.text or "").rstrip()
        text = f"{type(error).__name__}: {error.msg} ({where}, line {error.lineno})"
        return text + (f"\n    {line.strip()}" if line else "")
    lines = traceback.format_exception_only(type(error), error)
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename.startswith(str(directory))]
    where = f" ({Path(frames[-1].filename).name}, line {frames[-1].lineno})" if frames else ""
    text = "".join(lines).strip()
    return "\n".join((text + where).splitlines()[:MAX_ERROR_LINES])


def import_module(directory: Path, module_name: str) -> types.ModuleType:
    path = directory / (module_name.replace(".", "/") + ".py")
    if not path.is_file():
        package = directory / module_name.replace(".", "/") / "__init__.py"
        if not package.is_file():
            raise LoadError(f"There is no {path.name} in the function (looked for the module {module_name}).")
        path = package
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))  # so the handler imports its neighbours
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"{path.name} cannot be loaded as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        sys.modules.pop(module_name, None)
        raise LoadError(f"Importing {path.name} failed: {_short_error(error, directory)}") from error
    return module


def _parameters(function: Callable[..., Any]) -> int:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return 1
    return len([p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])


def is_asgi(app: Any) -> bool:
    call = app if inspect.isfunction(app) or inspect.ismethod(app) else getattr(app, "__call__", None)
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(app)


def detect_style(name: str, handler: Callable[..., Any]) -> str:
    """The style a handler's name and signature say, as the templates name it."""
    if name == "handler":
        return "lambda"
    if name == "handle":
        return "openfaas-http" if _parameters(handler) >= 2 else "openfaas"
    if name == "app" or hasattr(handler, "wsgi_app"):
        return "asgi" if is_asgi(handler) else "wsgi"
    return "plain"


def resolve_target(directory: Path, target: str, style: str) -> tuple[str, str]:
    """(module, attribute) from ``target`` (``module:attr``, ``file.py:attr``, ``module`` or empty)."""
    module_name, _, attribute = target.partition(":")
    module_name = module_name.removesuffix(".py").replace("/", ".")
    if not module_name:
        found = [m for m in DEFAULT_MODULES if (directory / f"{m}.py").is_file()]
        if not found:
            raise LoadError(f"The function has no handler: put it in handler.py (or name the file in func.yaml's "
                            f"handler, like handler.py:main); found {sorted(p.name for p in directory.glob('*.py'))}.")
        module_name = found[0]
    return module_name, attribute


@dataclass
class Function:
    name: str
    style: str
    handler: Callable[..., Any]
    timeout_seconds: float = 300.0
    server_port: int = 8080
    lifespan: Any = None  # an ASGI app's lifespan task, kept alive for the process's life

    @property
    def is_coroutine(self) -> bool:
        return inspect.iscoroutinefunction(self.handler)

    def _invoke(self, *args: Any) -> Any:
        result = self.handler(*args)
        if inspect.isawaitable(result):
            result = run_async(result)
        return result

    def respond(self, request: HttpRequest) -> HttpResponse:
        """The handler's answer to ``request`` in its style; raises what the handler raised."""
        if self.style == "lambda":
            request_id = str(uuid.uuid4())
            now_ms = int(_now() * 1000)
            event = styles.lambda_event(request, request_id=request_id, now_ms=now_ms)
            context = styles.LambdaContext(function_name=self.name, aws_request_id=request_id,
                                           deadline_ms=now_ms + int(self.timeout_seconds * 1000),
                                           log_stream_name=os.environ.get("HOSTNAME", ""))
            return styles.lambda_response(self._invoke(event, context))
        if self.style == "openfaas":
            return styles.openfaas_response(self._invoke(styles.openfaas_argument(request)))
        if self.style == "openfaas-http":
            openfaas_context = styles.OpenFaasContext(hostname=os.environ.get("HOSTNAME", ""))
            return styles.openfaas_http_response(self._invoke(styles.openfaas_http_event(request), openfaas_context))
        if self.style == "plain":
            return styles.plain_response(self._invoke(styles.plain_argument(request)))
        if self.style == "wsgi":
            from functions.apps import call_wsgi

            return call_wsgi(self.handler, request, server_port=self.server_port)
        from functions.apps import call_asgi

        response: HttpResponse = run_async(call_asgi(self.handler, request, server_port=self.server_port))
        return response

    def call(self, request: HttpRequest) -> HttpResponse:
        """``respond``, with what goes wrong answered: 400 for unreadable input, else 500."""
        try:
            return self.respond(request)
        except BadInput as error:
            return styles.error_response(400, str(error))
        except HandlerError as error:
            print(f"function {self.name}: {error}", file=sys.stderr, flush=True)
            return styles.error_response(500, str(error))
        except Exception as error:
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
            summary = f"{type(error).__name__}: {error}"
            if len(summary) > 200:
                summary = summary[:197] + "..."
            return styles.error_response(500, summary)


def _now() -> float:
    import time

    return time.time()


def load_function(directory: Path, *, target: str = "", style: str = "auto", name: str = "function",
                  timeout_seconds: float = 300.0, server_port: int = 8080) -> Function:
    """Import the handler named by ``target`` from ``directory`` and settle its style."""
    if style not in ("auto", "", *styles.STYLES):
        raise LoadError(f"Unknown style {style!r}; use one of {', '.join(styles.STYLES)}.")
    module_name, attribute = resolve_target(directory, target, style)
    module = import_module(directory, module_name)
    if attribute:
        candidates = [attribute]
    elif style in NAMES_BY_STYLE:
        candidates = [NAMES_BY_STYLE[style]]
    else:
        candidates = ["handler", "handle", "main", "app"]
    found = next((c for c in candidates if callable(getattr(module, c, None))), None)
    if found is None:
        raise LoadError(f"{module_name}.py has no {' or '.join(candidates)} to call.")
    handler = getattr(module, found)
    settled = style if style in styles.STYLES else detect_style(found, handler)
    function = Function(name=name, style=settled, handler=handler, timeout_seconds=timeout_seconds,
                        server_port=server_port)
    if settled == "asgi":
        from functions.apps import asgi_lifespan_startup

        try:
            function.lifespan = run_async(asgi_lifespan_startup(handler))
        except HandlerError as error:
            raise LoadError(str(error)) from error
    return function

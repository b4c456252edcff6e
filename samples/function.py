"""Serve a plain Python function over HTTP: JSON in, JSON out, no web server to write.

``python3 -m samples.function TARGET`` (or the variable ``FUNCTION_TARGET``) where TARGET is
``module:function`` or ``path/to/file.py:function``. When the variable ``FUNCTION_CODE``
holds Python source (for instance from a ConfigMap), that source is the module and TARGET
may be just the function's name.

Every request calls the function once. Its keyword arguments are the query parameters
and form fields (converted to the parameter's annotated type: int, float, bool or str;
anything else is read as JSON) and the fields of a JSON object body, which win over the
query. A JSON body is read as JSON whatever its Content-Type says (``curl -d`` says form). The return
value is sent as JSON. Wrong arguments get a 400, an exception in the function a 500,
each with ``{"error": "<sentence>"}``.

Side effects: imports or executes the user's code, serves HTTP until SIGTERM.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import json
import os
import sys
import traceback
import types
import typing
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from samples.httpserver import SampleHandler, log, serve

NAME = "function"


class FunctionError(Exception):
    """The function cannot be loaded or called as asked; the message is a sentence."""


def load_module(source: str, *, code: str | None) -> types.ModuleType:
    if code is not None:
        module = types.ModuleType(source or "function")
        sys.modules[module.__name__] = module
        exec(compile(code, "FUNCTION_CODE", "exec"), module.__dict__)
        return module
    if source.endswith(".py"):
        path = Path(source)
        if not path.is_file():
            raise FunctionError(f"There is no file {source} (relative to {os.getcwd()}).")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise FunctionError(f"{source} cannot be loaded as a Python module.")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module.__name__] = module
        sys.path.insert(0, str(path.parent.resolve()))  # so it can import its neighbours
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(source)
    except ModuleNotFoundError as error:
        if error.name != source.split(".")[0] and error.name != source:
            raise  # the module exists but one of its own imports is missing: show that
        raise FunctionError(f"There is no module {source} in {os.getcwd()} or on the Python path.") from None


def load_function(target: str, *, code: str | None = None) -> Callable[..., Any]:
    """The function named by ``target`` (``module:function``, or ``function`` with ``code``)."""
    source, _, name = target.rpartition(":")
    if not name or (not source and code is None):
        raise FunctionError(
            f"The target {target!r} must name a module and a function, like tax:get_tax or tax.py:get_tax."
        )
    module = load_module(source, code=code)
    function = getattr(module, name, None)
    if not callable(function):
        raise FunctionError(f"{source or 'FUNCTION_CODE'} has no function named {name}.")
    return typing.cast(Callable[..., Any], function)


def convert(text: str, annotation: Any) -> Any:
    """A query parameter's text as the type its parameter is annotated with."""
    if annotation is str or annotation is inspect.Parameter.empty:
        return text
    if annotation is bool:
        return text.lower() in ("1", "true", "yes", "on")
    if annotation in (int, float):
        try:
            return annotation(text)
        except ValueError:
            raise FunctionError(f"{text!r} is not a valid {annotation.__name__}.") from None
    try:
        return json.loads(text)
    except ValueError:
        return text


def arguments(
    function: Callable[..., Any], *, query: Mapping[str, list[str]], body: bytes, content_type: str
) -> dict[str, Any]:
    """The keyword arguments for one call: converted query and form fields, then the JSON body."""
    try:
        hints = typing.get_type_hints(function)
    except Exception:
        hints = {}
    fields = dict(query)
    text = body.strip()
    if text and "x-www-form-urlencoded" in content_type and not text.startswith((b"{", b"[")):
        fields.update(urllib.parse.parse_qs(text.decode("utf-8", "replace"), keep_blank_values=True))
        text = b""
    found: dict[str, Any] = {}
    for name, values in fields.items():
        try:
            found[name] = convert(values[-1], hints.get(name, inspect.Parameter.empty))
        except FunctionError as error:
            raise FunctionError(f"The parameter {name}: {error}") from None
    if text:
        try:
            document = json.loads(text)
        except ValueError as error:
            raise FunctionError(f"The request body is not valid JSON: {error}.") from None
        if not isinstance(document, dict):
            raise FunctionError("The request body must be a JSON object whose fields are the arguments.")
        found.update(document)
    try:
        inspect.signature(function).bind(**found)
    except TypeError as error:
        raise FunctionError(f"The arguments do not fit {function.__name__}: {error}.") from None
    return found


def call(function: Callable[..., Any], keywords: dict[str, Any]) -> Any:
    result = function(**keywords)
    if inspect.isawaitable(result):
        result = asyncio.run(_wait(result))
    return result


async def _wait(awaitable: typing.Awaitable[Any]) -> Any:
    return await awaitable


def handler_for(function: Callable[..., Any]) -> type[SampleHandler]:
    class FunctionHandler(SampleHandler):
        def do_POST(self) -> None:
            body = self.read_body()
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query, keep_blank_values=True)
            try:
                keywords = arguments(
                    function, query=query, body=body, content_type=self.headers.get("Content-Type") or ""
                )
            except FunctionError as error:
                self.send_json({"error": str(error)}, status=400)
                return
            try:
                result = call(function, keywords)
                answer = json.dumps(result).encode() + b"\n"
            except Exception as error:
                traceback.print_exc(file=sys.stderr)
                self.send_json({"error": f"{function.__name__} failed: {type(error).__name__}: {error}"}, status=500)
                return
            self.send_body(answer, content_type="application/json")

        do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

    return FunctionHandler


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    target = args[0] if args else os.environ.get("FUNCTION_TARGET", "")
    if not target:
        log(NAME, "no function to serve: pass module:function as the argument or set FUNCTION_TARGET.")
        return 2
    try:
        function = load_function(target, code=os.environ.get("FUNCTION_CODE"))
    except FunctionError as error:
        log(NAME, str(error))
        return 2
    log(NAME, f"serving {target}")
    return serve(handler_for(function), name=NAME)


if __name__ == "__main__":
    raise SystemExit(main())

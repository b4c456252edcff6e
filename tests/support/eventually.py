"""Waiting in tests: call a check until it gives something true, or fail saying what never came.

``eventually`` polls from plain code (kubectl, HTTP with a blocking client); ``eventually_async``
from a test's event loop, where the check may be a coroutine function. Both return what the
check last gave, and fail with an AssertionError naming ``what``, the last value and, when
given, ``detail()`` (a log tail, an object's status).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def _failure(what: str, timeout: float, last: object, detail: Callable[[], str] | None) -> AssertionError:
    more = f"\n{detail()}" if detail is not None else ""
    return AssertionError(f"timed out after {timeout:g}s waiting for {what}; last value: {last!r}{more}")


def eventually(check: Callable[[], T], *, what: str, timeout: float = 60.0, interval: float = 0.25,
               detail: Callable[[], str] | None = None) -> T:
    """Call ``check`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise _failure(what, timeout, last, detail)
        time.sleep(interval)


async def eventually_async(check: Callable[[], T | Awaitable[T]], *, what: str, timeout: float = 5.0,
                           interval: float = 0.01, detail: Callable[[], str] | None = None,
                           ignore: tuple[type[BaseException], ...] = ()) -> T:
    """Call (and await, for a coroutine function) ``check`` until it gives something true;
    that value. Exceptions of the ``ignore`` types count as a false answer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: object = None
    while True:
        try:
            result = check()
            value: T = await result if inspect.isawaitable(result) else result  # type: ignore[assignment]
        except ignore as error:
            last = error
        else:
            if value:
                return value
            last = value
        if loop.time() > deadline:
            raise _failure(what, timeout, last, detail)
        await asyncio.sleep(interval)

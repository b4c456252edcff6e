"""Calls: the record of one asynchronous request, and the state machine it moves through.

    queued --start--> running --finish--> succeeded | failed | dead
       ^                 |
       +---- retry ------+          (a retryable outcome with attempts and age to spare)
    queued --cancel--> cancelled    dead | failed | cancelled --replay--> queued

``failed`` is a final response that is not retried (a 404, a 400); ``dead`` is a call whose
retries ran out (attempts or age), with its last response kept. The request's body lives in
the durable log (the store), not in the record; the record holds everything else, and is
what ``GET /.well-known/knserve/calls/<id>`` shows.

Pure: functions of a record, an outcome, a policy and ``now`` that return new records.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import secrets
from collections.abc import Callable
from typing import Any, Final

import orjson

from knserve.callpolicy import RetryPolicy

RESPONSE_BODY_LIMIT: Final = 64 * 1024
"""Bytes of a finished call's response body kept in its record."""


class State(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD = "dead"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (State.SUCCEEDED, State.FAILED, State.DEAD, State.CANCELLED)


class TransitionError(ValueError):
    """A call cannot make the asked move from its state (cancel a running call, replay a queued one)."""


def new_call_id() -> str:
    """128 random bits, URL-safe: unguessable, so the id is the capability to read the call."""
    return secrets.token_urlsafe(16).replace("-", "x").replace("_", "y")


@dataclasses.dataclass(frozen=True, slots=True)
class Response:
    """A response as kept in a call's record: header names in lower case (as HTTP/2 has them)."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    truncated: bool = False

    @classmethod
    def capture(cls, status: int, headers: tuple[tuple[str, str], ...], body: bytes,
                limit: int = RESPONSE_BODY_LIMIT) -> Response:
        return cls(status, tuple((str(k).lower(), str(v)) for k, v in headers), body[:limit], len(body) > limit)

    def to_json(self) -> dict[str, Any]:
        view: dict[str, Any] = {"status": self.status, "headers": dict(self.headers)}
        try:
            view["body"] = self.body.decode()
        except UnicodeDecodeError:
            view["body"] = base64.b64encode(self.body).decode()
            view["bodyEncoding"] = "base64"
        if self.truncated:
            view["bodyTruncated"] = True
        return view

    @classmethod
    def from_json(cls, view: dict[str, Any]) -> Response:
        body = view.get("body", "")
        raw = base64.b64decode(body) if view.get("bodyEncoding") == "base64" else body.encode()
        return cls(int(view["status"]), tuple((str(k), str(v)) for k, v in (view.get("headers") or {}).items()),
                   raw, bool(view.get("bodyTruncated")))


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    id: str
    namespace: str
    service: str
    host: str
    method: str
    path: str
    """Path and query, as the client sent them."""
    headers: tuple[tuple[str, str], ...]
    created: float
    updated: float
    state: State = State.QUEUED
    attempts: int = 0
    round: int = 0
    """How often the call was replayed; a replay starts its attempts anew."""
    sequence: int = 0
    """The durable log's sequence of a replayed round's message (0 for the first round, whose
    record and message are written at once)."""
    started: float | None = None
    finished_at: float | None = None
    next_attempt: float | None = None
    last_status: int | None = None
    last_error: str | None = None
    response: Response | None = None
    callback_url: str | None = None
    callback_status: int | None = None
    callback_attempts: int = 0
    idempotency_key: str | None = None

    @property
    def service_key(self) -> str:
        return f"{self.namespace}/{self.service}"

    def to_bytes(self) -> bytes:
        """The stored record: orjson writes the dataclass itself (bodies as base64)."""
        return orjson.dumps(self, default=_encode_bytes)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Call:
        record = orjson.loads(raw)
        record["state"] = State(record["state"])
        record["headers"] = tuple((str(k), str(v)) for k, v in record["headers"])
        response = record.get("response")
        if response:
            record["response"] = Response(int(response["status"]), tuple((str(k), str(v)) for k, v in response["headers"]),
                                          base64.b64decode(response["body"]), bool(response["truncated"]))
        return cls(**record)

    def status_view(self) -> dict[str, Any]:
        """What ``GET /.well-known/knserve/calls/<id>`` answers."""
        view: dict[str, Any] = {
            "id": self.id, "service": self.service, "namespace": self.namespace, "state": self.state.value,
            "attempts": self.attempts, "method": self.method, "path": self.path,
            "createdAt": _iso(self.created), "updatedAt": _iso(self.updated),
        }
        for key, value in (("startedAt", self.started), ("finishedAt", self.finished_at),
                           ("nextAttemptAt", self.next_attempt if self.state is State.QUEUED else None)):
            if value is not None:
                view[key] = _iso(value)
        if self.round:
            view["replays"] = self.round
        if self.last_status is not None:
            view["lastStatus"] = self.last_status
        if self.last_error:
            view["lastError"] = self.last_error
        if self.response is not None and self.state.finished:
            view["response"] = self.response.to_json()
        if self.callback_url:
            view["callback"] = {"url": self.callback_url, "attempts": self.callback_attempts,
                                "lastStatus": self.callback_status}
        return view


def _encode_bytes(value: object) -> str:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot store {type(value).__name__} in a call record")


def _iso(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- transitions -------------------------------------------------------------------------------


def start(call: Call, now: float) -> Call:
    """An attempt begins (the dispatcher holds the call's lease)."""
    if call.state not in (State.QUEUED, State.RUNNING):
        raise TransitionError(f"call {call.id} is {call.state.value}; only a queued call can run")
    return dataclasses.replace(call, state=State.RUNNING, attempts=call.attempts + 1, started=now, updated=now,
                               next_attempt=None)


def cancel(call: Call, now: float) -> Call:
    if call.state is not State.QUEUED:
        raise TransitionError(f"call {call.id} is {call.state.value}; only a queued call can be cancelled")
    return dataclasses.replace(call, state=State.CANCELLED, finished_at=now, updated=now, next_attempt=None)


def replay(call: Call, now: float, *, sequence: int) -> Call:
    """A finished call queued again (dead-letter replay): attempts start anew."""
    if not call.state.finished or call.state is State.SUCCEEDED:
        raise TransitionError(f"call {call.id} is {call.state.value}; only a dead, failed or cancelled call "
                              "can be retried")
    return dataclasses.replace(call, state=State.QUEUED, attempts=0, round=call.round + 1, sequence=sequence,
                               created=now, updated=now, started=None, finished_at=None, next_attempt=None,
                               callback_status=None, callback_attempts=0)


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended: a response, or no response (``error`` says why)."""

    response: Response | None = None
    error: str | None = None
    retry_after: float | None = None
    """Seconds the function asked to wait (its ``Retry-After``)."""

    @property
    def status(self) -> int | None:
        return self.response.status if self.response else None


def finish(call: Call, outcome: Outcome, policy: RetryPolicy, now: float, random: Callable[[], float]) -> Call:
    """The call after an attempt: succeeded, failed, queued again with ``next_attempt``, or dead."""
    base = dataclasses.replace(call, updated=now, last_status=outcome.status, last_error=outcome.error,
                               response=outcome.response if outcome.response else call.response)
    if not policy.retries(outcome.status):
        assert outcome.status is not None
        state = State.SUCCEEDED if outcome.status < 400 else State.FAILED
        return dataclasses.replace(base, state=state, finished_at=now)
    if call.attempts >= policy.max_attempts:
        return dataclasses.replace(base, state=State.DEAD, finished_at=now)
    delay = policy.backoff(call.attempts, random)
    if outcome.retry_after is not None:
        delay = max(delay, outcome.retry_after)
    if now + delay > call.created + policy.max_age:
        return dataclasses.replace(base, state=State.DEAD, finished_at=now,
                                   last_error=(outcome.error or "") + " (the next attempt would pass the call's max age)")
    return dataclasses.replace(base, state=State.QUEUED, next_attempt=now + delay)


def expire(call: Call, policy: RetryPolicy, now: float) -> Call | None:
    """The call dead of age, or None while it may still run."""
    if call.state is State.QUEUED and now > call.created + policy.max_age:
        return dataclasses.replace(call, state=State.DEAD, finished_at=now, updated=now,
                                   last_error="the call passed its max age before it could run")
    return None

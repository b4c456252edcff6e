"""Who may push stats to the autoscaler: the activator (and the call queue, whose backlog is
demand), proven by its service-account token.

Pushed stats decide how many pods a revision gets (a stat saying a revision at zero has
requests wakes it at once), so ``POST /stats`` takes them only with ``Authorization: Bearer
<token>`` where the API server's TokenReview says the token is that of an allowed account
(``system:serviceaccount:knative-serving:activator``, ``...:knserve-queue``). Answers are remembered for a minute
per token (a refused token for ten seconds), so the activator's pushes every second cost one
review a minute. Stats the autoscaler scrapes need none of this: it scrapes only the pods of
each revision, found through the API server.

``StatsAuth`` is the policy, fed a :class:`TokenReviewer` (``KubeTokenReviewer`` over the
API; tests pass a fake) and a clock. Side effects: TokenReview calls through the reviewer.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection
from typing import TYPE_CHECKING, Final, Protocol

from knserve.clock import Clock, SystemClock
from knserve.networking import SYSTEM_NAMESPACE
from kube.errors import ApiError
from kube.resources import Resource

if TYPE_CHECKING:
    from kube.client import KubeClient

log = logging.getLogger(__name__)

TOKEN_REVIEWS: Final = Resource("authentication.k8s.io", "v1", "tokenreviews", "TokenReview",
                                namespaced=False, has_status=False, has_generation=False)
ACTIVATOR_ACCOUNT: Final = f"system:serviceaccount:{SYSTEM_NAMESPACE}:activator"
QUEUE_ACCOUNT: Final = f"system:serviceaccount:{SYSTEM_NAMESPACE}:knserve-queue"
"""The call queue pushes its backlog as demand the same way."""
ALLOWED_SECONDS: Final = 60.0
REFUSED_SECONDS: Final = 10.0
_MAX_REMEMBERED: Final = 1024


class TokenReviewer(Protocol):
    async def user_of(self, token: str) -> str | None:
        """The user the token authenticates, or None when it authenticates nobody."""
        ...


class KubeTokenReviewer:
    """Asks the API server (``authentication.k8s.io/v1`` TokenReview)."""

    def __init__(self, client: KubeClient) -> None:
        self._client = client

    async def user_of(self, token: str) -> str | None:
        review = await self._client.create(TOKEN_REVIEWS, {"spec": {"token": token}})
        status = review.get("status") or {}
        if not status.get("authenticated"):
            return None
        return str((status.get("user") or {}).get("username") or "") or None


class StatsAuth:
    """Decides whether an ``Authorization`` header may push stats."""

    def __init__(self, reviewer: TokenReviewer, *,
                 allowed_users: Collection[str] = (ACTIVATOR_ACCOUNT, QUEUE_ACCOUNT),
                 clock: Clock | None = None) -> None:
        self._reviewer = reviewer
        self._allowed = frozenset(allowed_users)
        self._clock = clock or SystemClock()
        self._answers: dict[bytes, tuple[bool, float]] = {}

    async def allows(self, authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        key = hashlib.sha256(token.encode()).digest()
        now = self._clock.monotonic()
        known = self._answers.get(key)
        if known is not None and known[1] > now:
            return known[0]
        try:
            user = await self._reviewer.user_of(token)
        except ApiError as error:
            log.warning("cannot review a stats pusher's token: %s", error)
            return False
        allowed = user in self._allowed
        if not allowed:
            log.warning("refused stats from %s: only %s may push stats", user or "an unknown token",
                        ", ".join(sorted(self._allowed)))
        if len(self._answers) >= _MAX_REMEMBERED:
            self._answers = {k: v for k, v in self._answers.items() if v[1] > now}
            if len(self._answers) >= _MAX_REMEMBERED:
                self._answers.clear()
        self._answers[key] = (allowed, now + (ALLOWED_SECONDS if allowed else REFUSED_SECONDS))
        return allowed

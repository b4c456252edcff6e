"""Leader election over a ``coordination.k8s.io/v1`` Lease, the way client-go's leaderelection does it.

Every candidate reads the Lease every ``retry_period``. It takes the Lease when nobody holds
it (no Lease yet, or an empty ``holderIdentity`` after a release) or when the holder has not
renewed it for ``lease_duration`` as this candidate observed it (its own monotonic clock from
the moment the record last changed, so clocks need not agree). Writes carry the
``resourceVersion`` read, so of two candidates only one wins. The leader renews every
``retry_period``; when it cannot renew for ``renew_deadline`` (shorter than ``lease_duration``,
so it stops before anyone else may start), or finds the Lease taken, it has lost. On a clean
stop it releases the Lease (empty holder, 1 s duration) so a standby takes over at its next
look instead of after ``lease_duration``.

``can_take`` is the pure decision; ``LeaderElector`` does the reads and writes.
Side effects: API reads and writes of one Lease; logs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from typing import Any

from knserve.clock import Clock, SystemClock
from kube.client import KubeClient
from kube.errors import AlreadyExists, ApiError, Conflict, NotFound
from kube.objects import JSON
from kube.resources import LEASES

log = logging.getLogger(__name__)

MICRO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


class LeadershipLost(Exception):
    """The leader could not renew its Lease in time, or found another holder."""


@dataclasses.dataclass(frozen=True)
class LeaseRecord:
    """What a Lease's spec says about its holder."""

    holder: str = ""
    lease_duration_seconds: int = 0
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0

    @classmethod
    def of(cls, lease: JSON) -> LeaseRecord:
        spec = lease.get("spec") or {}
        return cls(holder=spec.get("holderIdentity") or "",
                   lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
                   acquire_time=spec.get("acquireTime"), renew_time=spec.get("renewTime"),
                   transitions=int(spec.get("leaseTransitions") or 0))

    def spec(self) -> dict[str, Any]:
        return {"holderIdentity": self.holder, "leaseDurationSeconds": self.lease_duration_seconds,
                "acquireTime": self.acquire_time, "renewTime": self.renew_time, "leaseTransitions": self.transitions}


def can_take(record: LeaseRecord, identity: str, *, observed_at: float, now: float, lease_duration: float) -> bool:
    """Whether ``identity`` may write itself into the Lease holding ``record``, first seen
    (in this form) at ``observed_at`` on the candidate's monotonic clock."""
    if not record.holder or record.holder == identity:
        return True
    return now >= observed_at + lease_duration


def micro_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime(MICRO_TIME)


class LeaderElector:
    """One candidate for the Lease ``namespace/name``: ``acquire``, then ``hold``; ``release``."""

    def __init__(self, client: KubeClient, *, namespace: str, name: str, identity: str,
                 lease_duration: float = 15.0, renew_deadline: float = 10.0, retry_period: float = 2.0,
                 clock: Clock | None = None) -> None:
        if not retry_period < renew_deadline < lease_duration:
            raise ValueError("leader election needs retry_period < renew_deadline < lease_duration")
        self._client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self._lease_duration = lease_duration
        self._renew_deadline = renew_deadline
        self._retry_period = retry_period
        self._clock = clock or SystemClock()
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._last_renewed = 0.0
        self.is_leader = False

    async def acquire(self) -> None:
        """Return once this candidate holds the Lease (read again every ``retry_period``)."""
        announced = False
        while not await self.try_acquire_or_renew():
            if not announced and self._observed is not None:
                log.info("lease %s/%s is held by %s; standing by", self.namespace, self.name, self._observed.holder)
                announced = True
            await asyncio.sleep(self._retry_period)
        log.info("lease %s/%s acquired by %s", self.namespace, self.name, self.identity)

    async def hold(self) -> None:
        """Renew every ``retry_period`` until cancelled; raise ``LeadershipLost`` when a renewal
        has not succeeded for ``renew_deadline`` or another candidate holds the Lease."""
        while True:
            await asyncio.sleep(self._retry_period)
            if await self.try_acquire_or_renew():
                continue
            if self._observed is not None and self._observed.holder not in ("", self.identity):
                self.is_leader = False
                raise LeadershipLost(f"lease {self.namespace}/{self.name} is now held by {self._observed.holder}")
            if self._clock.monotonic() - self._last_renewed >= self._renew_deadline:
                self.is_leader = False
                raise LeadershipLost(f"lease {self.namespace}/{self.name} not renewed for "
                                     f"{self._renew_deadline:.0f}s")

    async def release(self) -> None:
        """Give the Lease up if this candidate holds it, so a standby need not wait it out."""
        if not self.is_leader:
            return
        self.is_leader = False
        try:
            lease = await self._client.get(LEASES, self.namespace, self.name)
            record = LeaseRecord.of(lease)
            if record.holder != self.identity:
                return
            now = micro_time(self._clock.now())
            released = dataclasses.replace(record, holder="", lease_duration_seconds=1, acquire_time=now, renew_time=now)
            await self._client.update(LEASES, {**lease, "spec": released.spec()})
            log.info("lease %s/%s released", self.namespace, self.name)
        except ApiError as error:
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, error)

    async def try_acquire_or_renew(self) -> bool:
        now = micro_time(self._clock.now())
        mine = LeaseRecord(holder=self.identity, lease_duration_seconds=max(1, round(self._lease_duration)),
                           acquire_time=now, renew_time=now)
        try:
            lease = await self._client.get(LEASES, self.namespace, self.name)
        except NotFound:
            try:
                await self._client.create(LEASES, {
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace}, "spec": mine.spec()})
            except (AlreadyExists, Conflict):
                return False
            except ApiError as error:
                log.warning("cannot create lease %s/%s: %s", self.namespace, self.name, error)
                return False
            return self._won()
        except ApiError as error:
            log.warning("cannot read lease %s/%s: %s", self.namespace, self.name, error)
            return False
        record = LeaseRecord.of(lease)
        if record != self._observed:
            self._observed, self._observed_at = record, self._clock.monotonic()
        if not can_take(record, self.identity, observed_at=self._observed_at, now=self._clock.monotonic(),
                        lease_duration=self._lease_duration):
            self.is_leader = False
            return False
        if record.holder == self.identity:
            mine = dataclasses.replace(mine, acquire_time=record.acquire_time, transitions=record.transitions)
        else:
            mine = dataclasses.replace(mine, transitions=record.transitions + 1)
        try:
            await self._client.update(LEASES, {**lease, "spec": mine.spec()})
        except ApiError as error:
            if not isinstance(error, Conflict):
                log.warning("cannot write lease %s/%s: %s", self.namespace, self.name, error)
            return False
        self._observed, self._observed_at = mine, self._clock.monotonic()
        return self._won()

    def _won(self) -> bool:
        self.is_leader = True
        self._last_renewed = self._clock.monotonic()
        return True

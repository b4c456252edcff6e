"""The activator's view of a revision's pods: probing decides which not-ready pods take requests."""

from __future__ import annotations

import asyncio

from activator.backends import Backends
from activator.revisions import Endpoints, RevisionInfo

NS, REV = "default", "hello-00001"


class Prober:
    """Pods answer the probe once they are in ``ready``; every probe is remembered."""

    def __init__(self) -> None:
        self.ready: set[str] = set()
        self.probed: list[str] = []

    async def probe(self, dest: str) -> bool:
        self.probed.append(dest)
        return dest in self.ready


async def test_a_new_pod_is_probed_at_once_even_while_the_probe_loop_waits() -> None:
    prober = Prober()
    backends = Backends(prober=prober, queue_depth=10, probe_interval=3600, new_pod_probe_interval=3600)
    backends.upsert_revision(RevisionInfo(NS, REV))
    backends.set_endpoints(NS, REV, Endpoints.of(not_ready=["10.244.0.2"]))  # never answers
    request = asyncio.create_task(backends.acquire(NS, REV))
    async with asyncio.timeout(5):
        while "10.244.0.2:8012" not in prober.probed:
            await asyncio.sleep(0.01)

    # A second pod appears while the loop waits out its (hour-long) interval: it is probed
    # now, and the waiting request goes to it.
    prober.ready.add("10.244.0.3:8012")
    backends.set_endpoints(NS, REV, Endpoints.of(not_ready=["10.244.0.2", "10.244.0.3"]))
    async with asyncio.timeout(5):
        assert await request == "10.244.0.3:8012"
    await backends.close()


async def test_a_new_pod_that_fails_its_first_probe_is_probed_again_soon_not_after_the_full_interval() -> None:
    prober = Prober()
    backends = Backends(prober=prober, queue_depth=10, probe_interval=3600, new_pod_probe_interval=0.01)
    backends.upsert_revision(RevisionInfo(NS, REV))
    backends.set_endpoints(NS, REV, Endpoints.of(not_ready=["10.244.0.2"]))  # its queue-proxy is not up yet
    request = asyncio.create_task(backends.acquire(NS, REV))
    async with asyncio.timeout(5):
        while "10.244.0.2:8012" not in prober.probed:
            await asyncio.sleep(0.005)
    prober.ready.add("10.244.0.2:8012")  # up now: the next (new-pod) round finds it
    async with asyncio.timeout(5):
        assert await request == "10.244.0.2:8012"
    assert prober.probed.count("10.244.0.2:8012") >= 2
    await backends.close()

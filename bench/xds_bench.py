"""How fast the xDS control plane gets a change served by a real Envoy.

Run on demand (a minute or so)::

    .venv/bin/python bench/xds_bench.py [--services 1000] [--rounds 30]

Everything runs on 127.0.0.1: an XdsController, a real Envoy (``LocalIngress``), and two
backends that answer with their name. Each figure is measured two ways from the moment
``update(model)`` is called, in rounds of their own: until the control plane sees Envoy's ACK
(``wait_served``, what Route readiness uses), and until a client polling through Envoy every
2 ms gets the new answer. Figures
are printed against the issue's targets and against a baseline measured in the same run: one
request's round trip through Envoy.

1. a split change on a small config (100/0 <-> 0/100), p50/p99   target p50 <= 100 ms
2. the whole config of N services (2 revisions, 1 public + 3 cluster-local hosts each),
   from a small config to served                                   target <= 3 s
3. one route change with N services present, p50/p99              target <= 100 ms
4. encoding: serving.xds.wire.encode vs betterproto2's bytes() on virtual hosts
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from serving.xds import wire  # noqa: E402
from serving.xds.controller import XdsController  # noqa: E402
from serving.xds.model import Endpoint, IngressModel, IngressRule, RevisionBackend, Split, Visibility  # noqa: E402
from serving.xds.resources import route  # noqa: E402
from tests.support.xds_backends import NamedBackend  # noqa: E402
from tests.support.xds_runner import LocalIngress  # noqa: E402

NAMESPACE = "bench"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class Fleet:
    """``count`` Knative-shaped services: 2 revisions, a public rule and a cluster-local rule each.

    Like the Route reconciler, a change makes new objects for the service it touches only and
    hands the others over as they were.
    """

    def __init__(self, count: int, a: NamedBackend, b: NamedBackend) -> None:
        self._a, self._b = a, b
        self._rules = [self._service_rules(index, 100, generation=1) for index in range(count)]
        self._backends = tuple(backend for index in range(count) for backend in self._service_backends(index))

    def _service_rules(self, index: int, first_percent: int, *, generation: int) -> tuple[IngressRule, ...]:
        name = f"svc-{index}"
        splits = (Split(f"{name}-00001", NAMESPACE, first_percent), Split(f"{name}-00002", NAMESPACE, 100 - first_percent))
        local_hosts = (f"{name}.{NAMESPACE}.svc.cluster.local", f"{name}.{NAMESPACE}.svc", f"{name}.{NAMESPACE}")
        return (
            IngressRule(NAMESPACE, name, (f"{name}.{NAMESPACE}.example.com",), splits, generation=generation),
            IngressRule(NAMESPACE, name, local_hosts, splits, Visibility.CLUSTER_LOCAL, generation),
        )

    def _service_backends(self, index: int) -> tuple[RevisionBackend, ...]:
        name = f"svc-{index}"
        return (
            RevisionBackend(NAMESPACE, f"{name}-00001", (Endpoint("127.0.0.1", self._a.port),)),
            RevisionBackend(NAMESPACE, f"{name}-00002", (Endpoint("127.0.0.1", self._b.port),)),
        )

    def set_split(self, index: int, first_percent: int) -> None:
        generation = self._rules[index][0].generation + 1
        self._rules[index] = self._service_rules(index, first_percent, generation=generation)

    def model(self) -> IngressModel:
        return IngressModel(tuple(rule for rules in self._rules for rule in rules), self._backends)


POLL_INTERVAL = 0.002


async def until_answer(session: aiohttp.ClientSession, url: str, host: str, want: str) -> float:
    """Poll through Envoy every 2 ms until ``want`` answers; the moment it did.

    Polling shares the CPU with Envoy and the control plane (on a small machine noticeably),
    so the ACK figures are measured in rounds of their own, without it.
    """
    while True:
        async with session.get(url, headers={"Host": host}) as response:
            if response.status == 200 and await response.text() == want:
                return time.perf_counter()
        await asyncio.sleep(POLL_INTERVAL)


async def acked(controller: XdsController, change: Callable[[], int]) -> float:
    """Seconds from ``update`` to the control plane seeing Envoy's ACK."""
    started = time.perf_counter()
    await controller.wait_served(change(), timeout=60)
    return time.perf_counter() - started


async def seen(change: Callable[[], int], answered: Callable[[], Coroutine[Any, Any, float]]) -> float:
    """Seconds from ``update`` to a client through Envoy getting the new answer."""
    started = time.perf_counter()
    poll = asyncio.create_task(answered())
    change()
    return await asyncio.wait_for(poll, 60) - started


async def round_trip(session: aiohttp.ClientSession, url: str, host: str, count: int = 200) -> float:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        async with session.get(url, headers={"Host": host}) as response:
            await response.read()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def report(label: str, samples: list[float], *, target: float, baseline: float) -> None:
    p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
    print(f"  {label:<34} p50 {ms(p50):>10}  p99 {ms(p99):>10}   p50/target {p50 / target:5.2f}   "
          f"p50/request {p50 / baseline:6.1f}x")


def encoding_ratio() -> tuple[float, float]:
    hosts = [route.make_virtual_host(f"h{index}", (f"h{index}.example.com",), (Split("a", "n", 90), Split("b", "n", 10)))
             for index in range(50)]
    started = time.perf_counter()
    for host in hosts:
        bytes(host)
    slow = time.perf_counter() - started
    started = time.perf_counter()
    for host in hosts:
        wire.encode(host)
    fast = time.perf_counter() - started
    return slow / len(hosts), fast / len(hosts)


async def run(services: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as work:
        async with NamedBackend("a") as a, NamedBackend("b") as b, LocalIngress(Path(work), concurrency=2) as ingress:
            controller = ingress.controller
            url = ingress.external_url
            async with aiohttp.ClientSession() as session:
                small = Fleet(1, a, b)
                await controller.wait_served(controller.update(small.model()), timeout=60)
                host = f"svc-0.{NAMESPACE}.example.com"
                through_envoy = await round_trip(session, url, host)
                direct = await round_trip(session, f"http://127.0.0.1:{a.port}", host)
                print(f"baseline: one request through Envoy {ms(through_envoy)} (direct to the backend {ms(direct)})")

                acks, answers = [], []
                for index in range(2 * rounds):
                    percent, want = (0, "b") if index % 2 == 0 else (100, "a")
                    small.set_split(0, percent)
                    if index < rounds:
                        acks.append(await acked(controller, lambda: controller.update(small.model())))
                    else:
                        answers.append(await seen(lambda: controller.update(small.model()),
                                                  lambda: until_answer(session, url, host, want)))
                print(f"1. split change, small config ({rounds} rounds each)")
                report("update -> Envoy ACK", acks, target=0.1, baseline=through_envoy)
                report("update -> client sees new split", answers, target=0.1, baseline=through_envoy)

                fleet = Fleet(services, a, b)
                big = fleet.model()
                last_host = f"svc-{services - 1}.{NAMESPACE}.example.com"
                started = time.perf_counter()
                version = controller.update(big)
                translated = time.perf_counter()
                await controller.wait_served(version, timeout=120)
                acked_at = time.perf_counter()
                await until_answer(session, url, last_host, "a")
                answered_at = time.perf_counter()
                print(f"2. whole config, {services} services ({2 * services} revisions, {4 * services} hosts)")
                print(f"  translate {ms(translated - started)}; update -> ACK {ms(acked_at - started)}; "
                      f"-> client answered {ms(answered_at - started)}   total/target {(acked_at - started) / 3.0:5.2f}")

                acks, answers = [], []
                middle = services // 2
                middle_host = f"svc-{middle}.{NAMESPACE}.example.com"
                for index in range(2 * rounds):
                    percent, want = (0, "b") if index % 2 == 0 else (100, "a")
                    fleet.set_split(middle, percent)
                    if index < rounds:
                        acks.append(await acked(controller, lambda: controller.update(fleet.model())))
                    else:
                        answers.append(await seen(lambda: controller.update(fleet.model()),
                                                  lambda: until_answer(session, url, middle_host, want)))
                print(f"3. one route change among {services} services ({rounds} rounds each)")
                report("update -> Envoy ACK", acks, target=0.1, baseline=through_envoy)
                report("update -> client sees it", answers, target=0.1, baseline=through_envoy)

    slow, fast = encoding_ratio()
    print(f"4. encoding a virtual host: bytes() {ms(slow)}, wire.encode {ms(fast)}: {slow / fast:.0f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(run(args.services, args.rounds))


if __name__ == "__main__":
    main()

"""The dashboard's Services list at 1,000 Services: how long the page takes, against 10 Services.

    .venv/bin/python bench/dashboard_bench.py [--services 1000] [--rounds 30] [--no-browser]

Starts the dashboard's server on loopback over an in-memory API server (``kube.fake``) holding
N Services with two Revisions each, and request metrics for every Revision (the costliest
case: each row computes its figures), then reports, for N and for a baseline of 10 Services:

- the server's time for the whole list page (``/services``), for a search that matches one
  Service, and for the last page, median and p90 over the rounds;
- with Chromium at /usr/bin/chromium (``make browser``): the time from navigation until the
  table's rows are in the browser's DOM (libraries, page, styles and all), median.

Figures are printed with their ratio to the baseline. The target (issue 15) is a list that
renders in under a second at 1,000 Services: paging keeps the page at 50 rows whatever N is.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboard.app import Dashboard, DashboardSettings, make_app
from dashboard.invoke import Ingress
from dashboard.metrics import FakeMetrics
from knserve.clock import SystemClock
from kube.fake import FakeKubeClient
from kube.resources import REVISIONS, SERVICES
from tests.dashboard.factories import entry, revision, service

NAMESPACE = "bench"
CHROMIUM = Path("/usr/bin/chromium")


def cluster(count: int) -> tuple[FakeKubeClient, FakeMetrics]:
    kube = FakeKubeClient()
    entries = {}
    for index in range(count):
        name = f"svc-{index:05}"
        kube.seed(SERVICES, service(name, NAMESPACE, latest=f"{name}-00002"))
        for number in (1, 2):
            revision_name = f"{name}-{number:05}"
            kube.seed(REVISIONS, revision(revision_name, name, NAMESPACE))
            entries[revision_name] = entry(revision_name, namespace=NAMESPACE, requests=120.0 * number,
                                           errors=1.0, p50=3.0, p99=40.0)
    return kube, FakeMetrics({NAMESPACE: entries})


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.9) - 1]


async def server_times(count: int, rounds: int) -> tuple[dict[str, tuple[float, float]], str, TestServer]:
    kube, metrics = cluster(count)
    session = aiohttp.ClientSession()
    clock = SystemClock()
    dashboard = Dashboard(kube, metrics, Ingress("http://127.0.0.1:9", session, clock), clock,
                          DashboardSettings(default_namespace=NAMESPACE))
    server = TestServer(make_app(dashboard), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url(""))
    await dashboard.services.wait_synced()
    await dashboard.revisions.wait_synced()
    last = max(1, -(-count // 50))
    paths = {"list": f"/services?namespace={NAMESPACE}", "search": f"/services/rows?namespace={NAMESPACE}&q=svc-00007",
             "last page": f"/services/rows?namespace={NAMESPACE}&page={last}"}
    figures = {}
    for label, path in paths.items():
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            async with session.get(base + path) as response:
                await response.read()
                assert response.status == 200
            samples.append((time.perf_counter() - started) * 1000)
        figures[label] = summary(samples)
    server.session = session  # type: ignore[attr-defined]
    return figures, base, server


def browser_time(url: str, rounds: int) -> float | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not CHROMIUM.exists():
        return None
    samples = []
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = context.new_page()
        for _ in range(rounds):
            started = time.perf_counter()
            page.goto(url)
            page.locator("tr[data-service]").first.wait_for()
            samples.append((time.perf_counter() - started) * 1000)
        context.close()
    return statistics.median(samples)


async def measure(count: int, rounds: int, browser: bool) -> tuple[dict[str, tuple[float, float]], float | None]:
    figures, base, server = await server_times(count, rounds)
    try:
        url = f"{base.rstrip('/')}/services?namespace={NAMESPACE}"
        loaded = await asyncio.to_thread(browser_time, url, max(3, rounds // 3)) if browser else None
    finally:
        await server.session.close()  # type: ignore[attr-defined]
        await server.close()
    return figures, loaded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    baseline, baseline_loaded = asyncio.run(measure(10, args.rounds, not args.no_browser))
    figures, loaded = asyncio.run(measure(args.services, args.rounds, not args.no_browser))
    print(f"dashboard list: {args.services} Services against 10, {args.rounds} rounds (server time, ms)")
    print(f"{'page':<12} {'median':>9} {'p90':>9} {'base med':>9} {'ratio':>7}")
    for label, (median, p90) in figures.items():
        base_median = baseline[label][0]
        print(f"{label:<12} {median:>9.1f} {p90:>9.1f} {base_median:>9.1f} {median / base_median:>7.2f}")
    if loaded is not None and baseline_loaded is not None:
        print(f"{'in Chromium':<12} {loaded:>9.1f} {'':>9} {baseline_loaded:>9.1f} {loaded / baseline_loaded:>7.2f}"
              "   (navigation until the rows are in the DOM)")
    else:
        print("in Chromium: skipped (no /usr/bin/chromium or no playwright; `make browser`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

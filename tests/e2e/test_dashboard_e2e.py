"""Issue 15 end to end: the dashboard in a real browser (Playwright driving Debian's Chromium,
which `make browser` installs) against the local stack, its effects measured through Envoy.

The tests of this module run in order on one Service with two revisions (v1, v2): the list,
a 50/50 split from the editor, a refused split, a one-click rollback, the invoke panel, and the
charts under load. Screenshots of each page go to artifacts/dashboard/ (not committed).
"""

from __future__ import annotations

import collections
import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import playwright.sync_api as playwright_sync
import pytest

from tests.e2e.conftest import Stack

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "dashboard"
HELLO_IMAGE = "ghcr.io/knative/helloworld-go"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SPLIT_REQUESTS = 200
LOAD_REQUESTS = 300


def hello(name: str, target: str) -> dict[str, Any]:
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{
                "image": HELLO_IMAGE, "ports": [{"containerPort": 8080}],
                "env": [{"name": "TARGET", "value": target}]}]}}}}


def wait_until(check, what: str, timeout: float = 90.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:.0f}s"
        time.sleep(0.2)


def answers(stack: Stack, host: str, count: int) -> collections.Counter[str]:
    """``count`` requests through the ingress with ``host``: bodies of the answers, by body."""
    seen: collections.Counter[str] = collections.Counter()
    for _ in range(count):
        status, body = stack.request(host, timeout=10)
        seen[body.strip() if status == 200 else f"HTTP {status}"] += 1
    return seen


def route_serves(stack: Stack, name: str, namespace: str) -> None:
    """The Service's current generation is Ready (the ingress serves its traffic block)."""
    stack.wait_ready("route", name, namespace)
    stack.wait_ready("ksvc", name, namespace)


@pytest.fixture(scope="module")
def dashboard(stack: Stack) -> str:
    stack.kubectl("rollout", "status", "deployment/knserve-dashboard", "-n", "knative-serving", "--timeout=120s",
                  timeout=130)
    url = f"http://127.0.0.1:{stack.local.ports.dashboard}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    wait_until(healthy, "the dashboard answering /healthz", timeout=60)
    return url


@pytest.fixture(scope="module")
def space(stack: Stack) -> Iterator[str]:
    name = f"d-{uuid.uuid4().hex[:8]}"
    stack.kubectl("create", "namespace", name)
    wait_until(lambda: stack.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
               "the namespace's default service account")
    yield name
    stack.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium for these tests")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_sync.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1400, "height": 1000})
        try:
            tab = context.new_page()
            tab.on("dialog", lambda dialog: dialog.accept())  # the rollback button asks first
            yield tab
        finally:
            context.close()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_service_applied_with_kubectl_shows_up_in_the_list_with_url_and_readiness(stack, dashboard, space, page):
    expect = playwright_sync.expect
    page.goto(f"{dashboard}/services?namespace={space}")
    stack.apply(hello("hello", "v1"), space)
    row = page.locator(f'tr[data-service="{space}/hello"]')
    expect(row).to_be_visible(timeout=5_000)  # the list polls every 2 s
    stack.wait_ready("ksvc", "hello", space)
    expect(row.get_by_test_id("url")).to_have_text(f"http://hello.{space}.example.com", timeout=5_000)
    expect(row.get_by_test_id("ready")).to_contain_text("True", timeout=5_000)
    shot(page, "services")
    page.get_by_label("search").fill("nothing-by-this-name")
    expect(page.get_by_test_id("services")).to_contain_text("No Services match", timeout=5_000)
    page.get_by_label("search").fill("hel")
    expect(row).to_be_visible(timeout=5_000)


def test_the_editor_moving_v2_to_half_makes_envoy_serve_about_half_to_v2(stack, dashboard, space, page):
    expect = playwright_sync.expect
    stack.apply(hello("hello", "v2"), space)
    wait_until(lambda: (stack.get("ksvc", "hello", space).get("status") or {}).get("latestReadyRevisionName")
               == "hello-00002", "hello-00002 ready")
    route_serves(stack, "hello", space)
    page.goto(f"{dashboard}/services/{space}/hello")
    editor = page.get_by_test_id("traffic-editor")
    expect(editor.locator('tr[data-revision="hello-00002"]')).to_be_visible()
    editor.get_by_label("percent for @latest").fill("0")
    editor.get_by_label("percent for hello-00001").fill("50")
    editor.get_by_label("percent for hello-00002").fill("50")
    expect(page.get_by_test_id("traffic-sum")).to_have_text("100%")
    editor.get_by_role("button", name="Apply split").click()
    expect(page.get_by_test_id("outcome")).to_have_attribute("data-outcome", "applied", timeout=10_000)
    traffic = sorted(stack.get("ksvc", "hello", space)["spec"]["traffic"], key=lambda target: target["revisionName"])
    assert traffic == [{"revisionName": "hello-00001", "latestRevision": False, "percent": 50},
                       {"revisionName": "hello-00002", "latestRevision": False, "percent": 50}]
    route_serves(stack, "hello", space)
    seen = answers(stack, f"hello.{space}.example.com", SPLIT_REQUESTS)
    assert set(seen) == {"Hello v1!", "Hello v2!"}, seen
    assert 0.35 * SPLIT_REQUESTS <= seen["Hello v2!"] <= 0.65 * SPLIT_REQUESTS, seen
    expect(page.locator('[data-testid="revisions"] tr[data-revision="hello-00002"] [data-testid="share"]')) \
        .to_have_text("50%", timeout=10_000)
    shot(page, "service")


def test_an_invalid_split_shows_the_api_servers_message_and_changes_nothing(stack, dashboard, space, page):
    expect = playwright_sync.expect
    before = stack.get("ksvc", "hello", space)
    page.goto(f"{dashboard}/services/{space}/hello")
    editor = page.get_by_test_id("traffic-editor")
    editor.get_by_label("percent for hello-00001").fill("60")
    editor.get_by_label("percent for hello-00002").fill("30")
    editor.get_by_role("button", name="Apply split").click()
    outcome = page.get_by_test_id("outcome")
    expect(outcome).to_have_attribute("data-outcome", "refused", timeout=10_000)
    # The webhook's own words, as kubectl would print them.
    expect(outcome).to_contain_text("Traffic targets sum to 90, want 100")
    after = stack.get("ksvc", "hello", space)
    assert after["spec"] == before["spec"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    shot(page, "traffic-refused")


def test_rollback_with_one_click_sends_everything_to_v1(stack, dashboard, space, page):
    expect = playwright_sync.expect
    page.goto(f"{dashboard}/services/{space}/hello")
    page.get_by_test_id("rollback-hello-00001").click()
    expect(page.get_by_test_id("outcome")).to_contain_text("Rolled back: all traffic to hello-00001", timeout=10_000)
    route_serves(stack, "hello", space)
    seen = answers(stack, f"hello.{space}.example.com", 50)
    assert seen == {"Hello v1!": 50}, seen
    expect(page.locator('[data-testid="revisions"] tr[data-revision="hello-00001"] [data-testid="share"]')) \
        .to_have_text("100%", timeout=10_000)


def test_the_invoke_panel_calls_the_service_through_the_ingress(stack, dashboard, space, page):
    expect = playwright_sync.expect
    page.goto(f"{dashboard}/services/{space}/hello")
    form = page.get_by_test_id("invoke-form")
    form.get_by_label("path").fill("/")
    form.get_by_role("button", name="Send").click()
    expect(page.get_by_test_id("invoke-status")).to_have_text("200 OK", timeout=30_000)
    expect(page.get_by_test_id("invoke-body")).to_have_text("Hello v1!\n")
    shot(page, "invoke")


def test_under_load_the_charts_requests_rise_for_the_revision_that_serves(stack, dashboard, space, page):
    page.goto(f"{dashboard}/services/{space}/hello")
    began = float(int(time.time()))  # the frames' axis is wall-clock seconds, as on this machine
    answers(stack, f"hello.{space}.example.com", LOAD_REQUESTS)

    def drawn() -> dict[str, float] | None:
        """Requests per revision the charts show for the seconds since the load began."""
        text = page.locator("#last-frame").text_content() or ""
        if not text:
            return None
        frame = json.loads(text)
        since = [index for index, second in enumerate(frame["t"]) if second >= began]
        sums = {name: sum(values[index] or 0 for index in since)
                for name, values in frame["charts"]["requests"].items()}
        return sums if sums.get("hello-00001", 0) >= LOAD_REQUESTS * 0.5 else None

    sums = wait_until(drawn, "the load's requests in hello-00001's chart", timeout=30)
    assert sums.get("hello-00002", 0) <= sums["hello-00001"] * 0.1, sums
    assert page.locator('[data-chart="requests"] canvas').count() == 1
    shot(page, "service-under-load")


def test_the_service_page_shows_a_canary_rolled_back_with_its_reason(stack, dashboard, namespace, page):
    from tests.e2e.test_canary_e2e import HOST, canary_service, deploy_v1, wait_phase
    from tests.e2e.test_traffic_e2e import steady_stream

    expect = playwright_sync.expect
    deploy_v1(stack, namespace)
    page.goto(f"{dashboard}/services/{namespace}/hello")
    expect(page.get_by_test_id("canary-state")).to_contain_text("Promoted", timeout=10_000)
    with steady_stream(stack.local.ports.ingress, HOST.format(namespace=namespace), rate=40, clients=4):
        stack.apply(canary_service("v2", env={"ERROR_PERCENT": "20"}), namespace)
        state, _ = wait_phase(stack, namespace, {"Promoted", "RolledBack"})
    assert state["phase"] == "RolledBack", state
    expect(page.get_by_test_id("canary-state")).to_contain_text("RolledBack", timeout=10_000)
    expect(page.get_by_test_id("canary-message")).to_contain_text(state["message"])
    expect(page.get_by_test_id("canary-analysis")).to_contain_text("hello-00002")
    shot(page, "canary-rolled-back")

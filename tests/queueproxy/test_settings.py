"""Environment parsing into Settings."""

from __future__ import annotations

import json

import pytest

from queueproxy.settings import ProbeSpec, Settings, SettingsError, parse_probe


def test_defaults_match_knative() -> None:
    settings = Settings.from_env({})
    assert (settings.serving_port, settings.admin_port, settings.stats_port, settings.metrics_port) == (
        8012, 8022, 9090, 9091)
    assert settings.container_concurrency == 0 and settings.queue_depth == 0
    assert settings.revision_timeout_seconds == 300 and settings.drain_quiet_period_seconds == 30
    assert settings.bind_host == "0.0.0.0" and not settings.h2c
    assert settings.effective_probe == ProbeSpec(kind="tcp", port=8080)


def test_reads_the_controller_environment() -> None:
    probe = {"httpGet": {"path": "healthz", "port": 8080, "httpHeaders": [{"name": "X-A", "value": "b"}]},
             "periodSeconds": 5, "failureThreshold": 2}
    settings = Settings.from_env({
        "USER_PORT": "8081", "CONTAINER_CONCURRENCY": "3", "REVISION_TIMEOUT_SECONDS": "2",
        "REVISION_RESPONSE_START_TIMEOUT_SECONDS": "1.5", "REVISION_IDLE_TIMEOUT_SECONDS": "7",
        "SERVING_READINESS_PROBE": json.dumps(probe), "USER_PORT_NAME": "h2c", "SERVING_POD": "p",
        "SERVING_POD_IP": "127.0.3.4", "QUEUE_SERVING_PORT": "18012", "QUEUE_ADMIN_PORT": "18022",
        "AUTOSCALING_STATS_PORT": "19090", "USER_METRICS_PORT": "19091", "DRAIN_QUIET_PERIOD_SECONDS": "0.5",
    })
    assert settings.user_port == 8081 and settings.container_concurrency == 3 and settings.queue_depth == 30
    assert (settings.revision_timeout_seconds, settings.response_start_timeout_seconds,
            settings.idle_timeout_seconds) == (2, 1.5, 7)
    assert settings.h2c and settings.bind_host == "127.0.3.4"
    assert (settings.serving_port, settings.admin_port, settings.stats_port, settings.metrics_port) == (
        18012, 18022, 19090, 19091)
    assert settings.readiness_probe == ProbeSpec(
        kind="http", port=8080, path="/healthz", http_headers=(("X-A", "b"),), period_seconds=5,
        failure_threshold=2,
    )


def test_reports_every_bad_variable_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"USER_PORT": "http", "CONTAINER_CONCURRENCY": "1001", "REVISION_TIMEOUT_SECONDS": "-1",
                           "SERVING_READINESS_PROBE": "{not json"})
    message = str(caught.value)
    for fragment in ("USER_PORT='http' is not a whole number", "CONTAINER_CONCURRENCY=1001 is outside 0..1000",
                     "REVISION_TIMEOUT_SECONDS='-1' must be zero or more seconds",
                     "SERVING_READINESS_PROBE is not JSON"):
        assert fragment in message


@pytest.mark.parametrize(
    ("document", "want"),
    [
        pytest.param({"tcpSocket": {"port": "http"}}, ProbeSpec(kind="tcp", port=8080), id="named-port"),
        pytest.param({"exec": {"command": ["true"]}, "periodSeconds": 1},
                     ProbeSpec(kind="exec", port=8080, command=("true",), period_seconds=1), id="exec"),
        pytest.param({"httpGet": {}}, ProbeSpec(kind="http", port=8080), id="http-defaults"),
    ],
)
def test_parse_probe(document: dict, want: ProbeSpec) -> None:
    assert parse_probe(document, user_port=8080) == want


@pytest.mark.parametrize(
    "document",
    [
        pytest.param([], id="not-an-object"),
        pytest.param({"grpc": {"port": 1}}, id="no-known-action"),
        pytest.param({"exec": {"command": []}}, id="empty-command"),
        pytest.param({"tcpSocket": {}, "periodSeconds": -1}, id="negative-period"),
        pytest.param({"httpGet": {"scheme": "FTP"}}, id="bad-scheme"),
    ],
)
def test_parse_probe_rejects(document: object) -> None:
    with pytest.raises(SettingsError):
        parse_probe(document, user_port=8080)


def test_aggressive_when_period_is_zero() -> None:
    assert ProbeSpec(kind="tcp", port=1).aggressive
    assert not ProbeSpec(kind="tcp", port=1, period_seconds=1).aggressive

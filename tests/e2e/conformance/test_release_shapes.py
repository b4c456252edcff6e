"""Release-style traffic with tags ``current``, ``candidate`` and ``latest`` (Knative's
TestServiceWithTrafficSplit, the shapes of its former runLatest/release modes).

``current`` pins a revision, ``candidate`` a newer one, ``latest`` follows the
Configuration's latest ready revision at 0%. Each step checks the Service's
``status.traffic`` and what each host actually reaches.
"""

from __future__ import annotations

from tests.e2e.conformance.helpers import (
    check_distribution,
    host,
    patch_service,
    service,
    set_env,
    wait_new_ready_revision,
    wait_traffic_shape,
)


def pinned(revision: str, percent: int) -> dict[str, object]:
    return {"revisionName": revision, "percent": percent, "latestRevision": False}


def following(revision: str, percent: int = 0) -> dict[str, object]:
    return {"revisionName": revision, "percent": percent, "latestRevision": True}


def test_release_shapes(stack, namespace):
    name = "release"
    main_host = host(name, namespace)

    def check_hosts(main: set[str], tags: dict[str, str]) -> None:
        check_distribution(stack, main_host, main)
        for tag, revision in tags.items():
            check_distribution(stack, host(name, namespace, tag=tag), {revision}, count=10)

    stack.apply(service(name, env={"RELEASE": "1"}), namespace)
    first = stack.wait_ready("ksvc", name, namespace)["status"]["latestReadyRevisionName"]

    # 1. one revision named, current == latest
    patch_service(stack, name, namespace, {"spec": {"traffic": [
        {"tag": "current", "revisionName": first, "percent": 100},
        {"tag": "latest", "latestRevision": True},
    ]}})
    shape = {"current": pinned(first, 100), "latest": following(first)}
    ready = wait_traffic_shape(stack, name, namespace, shape)
    assert {t["tag"]: t["url"] for t in ready["status"]["traffic"]} == {
        "current": f"http://current-{name}.{namespace}.example.com",
        "latest": f"http://latest-{name}.{namespace}.example.com",
    }
    check_hosts({first}, {"current": first, "latest": first})

    # 2. a new revision: current stays, latest follows it at 0%
    set_env(stack, name, namespace, {"RELEASE": "2"})
    second = wait_new_ready_revision(stack, name, namespace, after=first)
    shape["latest"] = following(second)
    wait_traffic_shape(stack, name, namespace, shape)
    check_hosts({first}, {"current": first, "latest": second})

    # 3. 50% rollout, candidate == latest
    patch_service(stack, name, namespace, {"spec": {"traffic": [
        {"tag": "current", "revisionName": first, "percent": 50},
        {"tag": "candidate", "revisionName": second, "percent": 50},
        {"tag": "latest", "latestRevision": True},
    ]}})
    shape = {"current": pinned(first, 50), "candidate": pinned(second, 50), "latest": following(second)}
    wait_traffic_shape(stack, name, namespace, shape)
    check_hosts({first, second}, {"current": first, "candidate": second, "latest": second})

    # 4. a third revision: the split stays, latest moves on
    set_env(stack, name, namespace, {"RELEASE": "3"})
    third = wait_new_ready_revision(stack, name, namespace, after=second)
    shape["latest"] = following(third)
    wait_traffic_shape(stack, name, namespace, shape)
    check_hosts({first, second}, {"current": first, "candidate": second, "latest": third})

    # 5. candidate follows the latest revision itself
    patch_service(stack, name, namespace, {"spec": {"traffic": [
        {"tag": "current", "revisionName": first, "percent": 50},
        {"tag": "candidate", "latestRevision": True, "percent": 50},
        {"tag": "latest", "latestRevision": True},
    ]}})
    shape["candidate"] = following(third, 50)
    wait_traffic_shape(stack, name, namespace, shape)
    check_hosts({first, third}, {"current": first, "candidate": third, "latest": third})

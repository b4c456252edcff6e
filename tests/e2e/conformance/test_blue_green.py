"""Blue/green: a 50/50 split between two tagged revisions (Knative's TestBlueGreenRoute).

The Service's own host spreads traffic over both revisions; each tag's host reaches only its
revision, also under load, from the moment the Service reports Ready.
"""

from __future__ import annotations

from tests.e2e.conformance.helpers import (
    host,
    patch_service,
    revision_counts,
    send_concurrently,
    service,
    set_env,
    wait_new_ready_revision,
    wait_traffic_shape,
)

CONCURRENT_REQUESTS = 200
MIN_SPLIT_SHARE = 0.25  # each side of a 50/50 split gets at least this (Knative's bound)


def test_fifty_fifty_split_with_tag_urls(stack, namespace):
    name = "bluegreen"
    stack.apply(service(name, env={"COLOR": "blue"}), namespace)
    blue = stack.wait_ready("ksvc", name, namespace)["status"]["latestReadyRevisionName"]
    set_env(stack, name, namespace, {"COLOR": "green"})
    green = wait_new_ready_revision(stack, name, namespace, after=blue)

    patch_service(stack, name, namespace, {"spec": {"traffic": [
        {"tag": "blue", "revisionName": blue, "percent": 50},
        {"tag": "green", "revisionName": green, "percent": 50},
    ]}})
    ready = wait_traffic_shape(stack, name, namespace, {
        "blue": {"revisionName": blue, "percent": 50, "latestRevision": False},
        "green": {"revisionName": green, "percent": 50, "latestRevision": False},
    })
    urls = {target["tag"]: target["url"] for target in ready["status"]["traffic"]}
    assert urls == {"blue": f"http://blue-{name}.{namespace}.example.com",
                    "green": f"http://green-{name}.{namespace}.example.com"}

    # Ready means Envoy already has the split: no probing for it first
    split = revision_counts(send_concurrently(stack, host(name, namespace), count=CONCURRENT_REQUESTS))
    assert set(split) == {blue, green}, split
    for revision in (blue, green):
        assert split[revision] >= CONCURRENT_REQUESTS * MIN_SPLIT_SHARE, split

    for tag, revision in (("blue", blue), ("green", green)):
        direct = revision_counts(send_concurrently(stack, host(name, namespace, tag=tag), count=CONCURRENT_REQUESTS))
        assert direct == {revision: CONCURRENT_REQUESTS}, (tag, direct)

"""Updates under a steady prober (Knative's route prober in its update tests): an
environment change makes a new Revision, traffic moves to it, and not one request fails.
"""

from __future__ import annotations

from tests.e2e.conformance.helpers import (
    Prober,
    host,
    served_by,
    service,
    set_env,
    wait_new_ready_revision,
    wait_served_by,
)


def test_no_failed_requests_while_traffic_moves_to_new_revisions(stack, namespace):
    name = "steady"
    stack.apply(service(name, env={"VERSION": "1"}), namespace)
    first = stack.wait_ready("ksvc", name, namespace)["status"]["latestReadyRevisionName"]
    target = host(name, namespace)
    wait_served_by(stack, target, first)

    with Prober(stack, target) as prober:
        set_env(stack, name, namespace, {"VERSION": "2"})
        second = wait_new_ready_revision(stack, name, namespace, after=first)
        wait_served_by(stack, target, second)
        set_env(stack, name, namespace, {"VERSION": "3"})
        third = wait_new_ready_revision(stack, name, namespace, after=second)
        wait_served_by(stack, target, third)

    assert not prober.failures(), prober.failures()[:5]
    assert len(prober.answers) > 10
    revisions = [first, second, third]
    assert {served_by(answer.body) for answer in prober.answers} <= set(revisions)
    # traffic moved forward only: once a newer revision had answered, requests sent after
    # that never reached an older one
    regressions = prober.regressions(revisions)
    assert not regressions, [(served_by(newer.body), served_by(older.body)) for newer, older in regressions[:5]]

from __future__ import annotations

import pytest

from dashboard.traffic import FormError, editor_rows, rollback_targets, traffic_from_form, traffic_patch
from tests.dashboard.factories import service


@pytest.mark.parametrize("form, want", [
    pytest.param({"revision-0": "hello-1", "percent-0": "50", "tag-0": "",
                  "revision-1": "hello-2", "percent-1": "50", "tag-1": "canary"},
                 [{"revisionName": "hello-1", "latestRevision": False, "percent": 50},
                  {"revisionName": "hello-2", "latestRevision": False, "percent": 50, "tag": "canary"}],
                 id="two revisions, one tagged"),
    pytest.param({"revision-0": "@latest", "percent-0": "100", "revision-1": "hello-1", "percent-1": "0"},
                 [{"latestRevision": True, "percent": 100}], id="latest, and a 0% row without a tag is left out"),
    pytest.param({"revision-0": "hello-1", "percent-0": "0", "tag-0": "old"},
                 [{"revisionName": "hello-1", "latestRevision": False, "percent": 0, "tag": "old"}],
                 id="a 0% row with a tag stays"),
    pytest.param({"revision-0": "hello-1", "percent-0": "60", "revision-1": "hello-2", "percent-1": "30"},
                 [{"revisionName": "hello-1", "latestRevision": False, "percent": 60},
                  {"revisionName": "hello-2", "latestRevision": False, "percent": 30}],
                 id="a split that does not sum to 100 is sent for the API server to judge"),
    pytest.param({"revision-0": "hello-1", "percent-0": "-5"},
                 [{"revisionName": "hello-1", "latestRevision": False, "percent": -5}], id="negative is the server's"),
])
def test_traffic_from_form(form, want):
    assert traffic_from_form(form) == want


def test_a_percent_that_is_not_a_number_is_a_sentence():
    with pytest.raises(FormError, match="The percent for hello-1 is 'half'; give a whole number"):
        traffic_from_form({"revision-0": "hello-1", "percent-0": "half"})


def test_the_patch_replaces_the_traffic_list():
    assert traffic_patch([{"latestRevision": True, "percent": 100}]) == {
        "spec": {"traffic": [{"latestRevision": True, "percent": 100}]}}


def test_rollback_sends_everything_to_the_revision_and_keeps_tags_at_zero():
    current = service(traffic=[{"revisionName": "hello-1", "percent": 50},
                               {"revisionName": "hello-2", "percent": 50, "tag": "canary"},
                               {"latestRevision": True, "percent": 0, "tag": "latest"}])
    assert rollback_targets(current, "hello-1") == [
        {"revisionName": "hello-1", "latestRevision": False, "percent": 100},
        {"revisionName": "hello-2", "tag": "canary", "percent": 0},
        {"latestRevision": True, "tag": "latest", "percent": 0},
    ]


def test_editor_rows_start_from_the_spec_and_offer_every_ready_revision():
    current = service(traffic=[{"revisionName": "hello-1", "percent": 100, "tag": "stable"}])
    assert editor_rows(current, ["hello-2", "hello-1"]) == [
        {"revision": "hello-1", "percent": 100, "tag": "stable"},
        {"revision": "hello-2", "percent": 0, "tag": ""},
    ]


def test_editor_rows_without_a_traffic_block_follow_the_latest():
    assert editor_rows(service(), ["hello-1"]) == [
        {"revision": "@latest", "percent": 100, "tag": ""}, {"revision": "hello-1", "percent": 0, "tag": ""}]

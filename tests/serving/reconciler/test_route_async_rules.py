"""A Route of a Service with ``knserve.dev/async: always`` marks its rules for the call queue."""

from serving.apis.v1 import Route
from serving.config.snapshot import ConfigSnapshot
from serving.reconciler.route.resources.ingress import make_ingress_rules
from tests.support.factories import route, with_annotations


def test_async_always_marks_every_rule_of_the_route() -> None:
    subject = Route.model_validate(route("hello", with_annotations({"knserve.dev/async": "always"})))
    rules = make_ingress_rules(subject, {"": (("hello-00001", 100),), "canary": (("hello-00001", 100),)},
                               ConfigSnapshot())
    assert len(rules) == 4 and all(rule.async_always for rule in rules)


def test_without_the_annotation_requests_are_queued_only_when_asked() -> None:
    for annotations in ({}, {"knserve.dev/async": "requested"}):
        subject = Route.model_validate(route("hello", with_annotations(annotations)))
        rules = make_ingress_rules(subject, {"": (("hello-00001", 100),)}, ConfigSnapshot())
        assert not any(rule.async_always for rule in rules)

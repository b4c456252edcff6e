"""Knative Serving's API objects as pydantic v2 models, with their defaults, validation and
condition verbs.

``serving.apis.v1`` holds ``serving.knative.dev/v1`` (Service, Configuration, Revision,
Route); ``serving.apis.autoscaling.v1alpha1`` holds ``autoscaling.internal.knative.dev``'s
PodAutoscaler. Pure code: no I/O, no clock reads.
"""

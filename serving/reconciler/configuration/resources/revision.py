"""Pure builder of the Revision a Configuration stamps out for its current template.

The name is the template's BYO name (``spec.template.metadata.name``) or
``<configuration>-<generation:05d>`` (hash-shortened past 63 characters, Knative's
``kmeta.ChildName``). The Revision carries the template's labels and annotations plus
``serving.knative.dev/configuration``, ``/configurationUID``, ``/configurationGeneration``,
``/service`` and ``/serviceUID`` (empty when the Configuration has no Service),
``routingState: pending`` with ``routingStateModified`` set to ``now``, and, as in Knative,
``serving.knative.dev/creator`` set to the Configuration's ``lastModifier`` (the user whose
change stamped this Revision out); its spec is the
template's spec with Knative's defaults (as the admission webhook would apply on create).
Pure; no I/O.
"""

from __future__ import annotations

import datetime

from knserve.networking import (
    CONFIGURATION_GENERATION_LABEL,
    CONFIGURATION_LABEL,
    CONFIGURATION_UID_LABEL,
    CREATOR_ANNOTATION,
    ROUTING_STATE_LABEL,
    ROUTING_STATE_MODIFIED_ANNOTATION,
    SERVICE_LABEL,
    SERVICE_UID_LABEL,
    UPDATER_ANNOTATION,
)
from serving.apis.conditions import format_time
from serving.apis.meta import ObjectMeta
from serving.apis.names import revision_name
from serving.apis.v1 import Configuration, Revision
from serving.apis.v1.revision_defaults import default_revision_spec
from serving.config.snapshot import ConfigSnapshot
from serving.reconciler.kmeta import owner_reference, union

ROUTING_STATE_PENDING = "pending"
ROUTING_STATE_ACTIVE = "active"
ROUTING_STATE_RESERVE = "reserve"


def latest_revision_name(configuration: Configuration) -> str:
    """The name of the Revision for the Configuration's current generation."""
    return configuration.spec.template.metadata.name or revision_name(
        configuration.name, configuration.metadata.generation or 0
    )


def make_revision(configuration: Configuration, config: ConfigSnapshot, *, now: datetime.datetime) -> Revision:
    template = configuration.spec.template
    labels = union(
        template.metadata.labels,
        {
            CONFIGURATION_LABEL: configuration.name,
            CONFIGURATION_UID_LABEL: configuration.metadata.uid or "",
            CONFIGURATION_GENERATION_LABEL: str(configuration.metadata.generation or 0),
            SERVICE_LABEL: configuration.metadata.label(SERVICE_LABEL) or "",
            SERVICE_UID_LABEL: configuration.metadata.label(SERVICE_UID_LABEL) or "",
            ROUTING_STATE_LABEL: ROUTING_STATE_PENDING,
        },
    )
    creator = (configuration.metadata.annotations or {}).get(UPDATER_ANNOTATION)
    annotations = union(template.metadata.annotations, {CREATOR_ANNOTATION: creator} if creator else None,
                        {ROUTING_STATE_MODIFIED_ANNOTATION: format_time(now)})
    metadata = ObjectMeta(
        name=latest_revision_name(configuration),
        namespace=configuration.namespace,
        labels=labels,
        annotations=annotations,
        owner_references=[owner_reference(configuration)],
    )
    spec = default_revision_spec(template.spec, config, parent=metadata, in_create=True)
    return Revision(metadata=metadata, spec=spec)

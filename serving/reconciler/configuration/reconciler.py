"""The Configuration reconciler: one Revision per template change, and the latest-created /
latest-ready bookkeeping.

Phases:
1. find the Revision for the current generation (by name, BYO or ``<config>-NNNNN``); create
   it when missing (``Created`` event). A name held by a Revision that cannot stand for the
   template (``name_taken``: another Configuration's, or an earlier one of this Configuration
   with another spec) fails the Configuration with Knative's ``RevisionFailed`` and
   ``revisions.serving.knative.dev "<name>" already exists``; nothing else changes.
2. ``latestCreatedRevisionName`` = that Revision. If it is Ready, it becomes
   ``latestReadyRevisionName`` (Ready=True); if it failed, Ready=False with its reason and the
   old latest ready stays; otherwise Ready=Unknown.
3. ``latestReadyRevisionName`` only moves forward: when the latest created is not ready, the
   newest ready Revision of a later generation than the current latest ready is taken.
4. a latest ready Revision that was deleted is reported (``RevisionDeleted``).

Side effects: creates Revisions; events.
"""

from __future__ import annotations

import datetime
import logging

from knserve.networking import CONFIGURATION_GENERATION_LABEL
from kube.cache import Store
from kube.client import KubeClient
from kube.errors import AlreadyExists, ApiError
from kube.events import NORMAL, WARNING
from kube.objects import JSON, is_controlled_by
from kube.resources import REVISIONS
from serving.apis.v1 import Configuration, Revision
from serving.apis.v1.configuration_lifecycle import CONDITION_READY
from serving.config.snapshot import ConfigSnapshot
from serving.reconciler.configuration.resources.revision import latest_revision_name, make_revision
from serving.reconciler.kmeta import event_target
from serving.reconciler.loop import ReconcileContext

log = logging.getLogger(__name__)

REVISIONS_BY_CONFIGURATION = "configuration"  # index of the revision store: "namespace/<configuration label>"


def already_exists(name: str) -> str:
    """The API server's words for a name in use (what Knative's condition message quotes)."""
    return f'{REVISIONS.plural}.{REVISIONS.group} "{name}" already exists'


def name_taken(configuration: Configuration, found: JSON, config: ConfigSnapshot, *, now: datetime.datetime) -> bool:
    """Whether the existing Revision ``found``, of the name the template asks for, cannot stand for
    the template (Knative's ``CheckNameAvailability``): it is controlled by someone else, or it
    was made for another generation of this Configuration and its spec differs (a name brought
    back with a new template). A name brought back with its old spec reuses its Revision."""
    if not is_controlled_by(found, configuration.metadata.uid or ""):
        return True
    generation = (found.get("metadata", {}).get("labels") or {}).get(CONFIGURATION_GENERATION_LABEL)
    if generation == str(configuration.metadata.generation or 0):
        return False
    return Revision.model_validate(found).spec != make_revision(configuration, config, now=now).spec


def _generation_of(revision: Revision) -> int:
    try:
        return int(revision.metadata.label(CONFIGURATION_GENERATION_LABEL) or 0)
    except ValueError:
        return 0


class ConfigurationReconciler:
    def __init__(self, *, client: KubeClient, revisions: Store) -> None:
        self.client = client
        self.revisions = revisions

    def owned_revisions(self, configuration: Configuration) -> list[Revision]:
        return [
            Revision.model_validate(obj)
            for obj in self.revisions.by_index(REVISIONS_BY_CONFIGURATION, configuration.key)
            if is_controlled_by(obj, configuration.metadata.uid or "")
        ]

    async def reconcile(self, configuration: Configuration, context: ReconcileContext) -> float | None:
        status = configuration.status
        name = latest_revision_name(configuration)
        found = self.revisions.get(configuration.namespace, name)
        if found is None:
            desired = make_revision(configuration, context.config, now=context.now)
            try:
                found = await self.client.create(REVISIONS, desired.to_dict())
            except AlreadyExists:
                found = await self.client.get(REVISIONS, configuration.namespace, name)
            except ApiError as error:
                status.mark_revision_creation_failed(str(error))
                context.events.event(event_target(configuration), WARNING, "CreationFailed",
                                     f'Failed to create Revision "{name}": {error}')
                raise
            else:
                self.revisions.remember_write(found)
                context.events.event(event_target(configuration), NORMAL, "Created", f'Created Revision "{name}"')
        if name_taken(configuration, found, context.config, now=context.now):
            status.mark_revision_creation_failed(already_exists(name))
            return None
        latest = Revision.model_validate(found)

        was_ready = status.is_ready()
        status.set_latest_created_revision_name(name)
        ready_condition = latest.status.get_condition(CONDITION_READY)
        if latest.is_ready():
            status.set_latest_ready_revision_name(name)
            if not was_ready:
                context.events.event(event_target(configuration), NORMAL, "ConfigurationReady",
                                     "Configuration becomes ready")
        elif ready_condition is not None and ready_condition.is_false():
            status.mark_latest_created_failed(name, ready_condition.message or ready_condition.reason or "")
            context.events.event(event_target(configuration), WARNING, "LatestCreatedFailed",
                                 f'Latest created revision "{name}" has failed')
            self._advance_latest_ready(configuration)
        else:
            self._advance_latest_ready(configuration)

        latest_ready = status.latest_ready_revision_name
        if latest_ready and latest_ready != name and self.revisions.get(configuration.namespace, latest_ready) is None:
            status.mark_latest_ready_deleted()
        return None

    def _advance_latest_ready(self, configuration: Configuration) -> None:
        """Move latestReady forward to the newest Ready Revision past the current one."""
        status = configuration.status
        revisions = self.owned_revisions(configuration)
        by_name = {revision.name: revision for revision in revisions}
        current = by_name.get(status.latest_ready_revision_name or "")
        floor = _generation_of(current) if current is not None else 0
        for revision in sorted(revisions, key=_generation_of, reverse=True):
            if _generation_of(revision) <= floor:
                break
            if revision.is_ready():
                status.set_latest_ready_revision_name(revision.name)
                return

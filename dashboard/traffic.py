"""The traffic editor and rollback as the merge patches ``kubectl patch ksvc --type=merge`` sends.

Pure. The editor's form has one row per revision (``revision-N``, ``percent-N``, ``tag-N``;
the revision ``@latest`` stands for ``latestRevision: true``). Only the form's own mistakes
(a percent that is not a whole number, a malformed row) are caught here; whether the split is
valid (sums to 100, known revisions, unique tags) is the API server's to say, and its answer
is shown as it comes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LATEST = "@latest"
MAX_ROWS = 100


class FormError(ValueError):
    """The form cannot be read as a traffic list; the message is a sentence for the user."""


def traffic_from_form(form: Mapping[str, str]) -> list[dict[str, Any]]:
    """The traffic targets the editor's form describes, in row order. A row with no revision,
    or with 0 percent and no tag, is left out (it would route nothing and name nothing)."""
    targets: list[dict[str, Any]] = []
    for index in range(MAX_ROWS):
        revision = (form.get(f"revision-{index}") or "").strip()
        if f"revision-{index}" not in form:
            continue
        if not revision:
            continue
        raw_percent = (form.get(f"percent-{index}") or "").strip() or "0"
        tag = (form.get(f"tag-{index}") or "").strip()
        try:
            percent = int(raw_percent)
        except ValueError:
            raise FormError(f"The percent for {revision} is {raw_percent!r}; give a whole number from 0 to 100.") \
                from None
        if percent == 0 and not tag:
            continue
        target: dict[str, Any] = ({"latestRevision": True} if revision == LATEST
                                  else {"revisionName": revision, "latestRevision": False})
        target["percent"] = percent
        if tag:
            target["tag"] = tag
        targets.append(target)
    return targets


def traffic_patch(targets: list[dict[str, Any]]) -> dict[str, Any]:
    """The merge patch that sets the Service's traffic to ``targets`` (a merge patch replaces
    a list whole, as ``kubectl patch --type=merge`` does)."""
    return {"spec": {"traffic": targets}}


def rollback_targets(service: Mapping[str, Any], revision: str) -> list[dict[str, Any]]:
    """All traffic to ``revision``; the tags the Service names stay, at 0 percent, on the
    revisions they name, so tag URLs keep answering."""
    targets: list[dict[str, Any]] = [{"revisionName": revision, "latestRevision": False, "percent": 100}]
    for target in (service.get("spec") or {}).get("traffic") or []:
        if not target.get("tag"):
            continue
        kept = {key: value for key, value in target.items() if key in ("revisionName", "latestRevision", "tag")}
        kept["percent"] = 0
        targets.append(kept)
    return targets


def editor_rows(service: Mapping[str, Any], ready_revisions: list[str]) -> list[dict[str, Any]]:
    """The rows the editor opens with: the Service's traffic targets as its spec has them, then
    a 0 percent row for each ready revision not named there."""
    rows: list[dict[str, Any]] = []
    named: set[str] = set()
    for target in (service.get("spec") or {}).get("traffic") or []:
        revision = LATEST if target.get("latestRevision") and not target.get("revisionName") \
            else str(target.get("revisionName") or LATEST)
        named.add(revision)
        rows.append({"revision": revision, "percent": int(target.get("percent") or 0), "tag": target.get("tag") or ""})
    if not rows:  # no traffic block: Knative routes all to the latest ready revision
        rows.append({"revision": LATEST, "percent": 100, "tag": ""})
        named.add(LATEST)
    for revision in ready_revisions:
        if revision not in named:
            rows.append({"revision": revision, "percent": 0, "tag": ""})
    return rows

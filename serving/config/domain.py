"""``config-domain``: which domain suffix a Route gets, chosen by label selectors.

Each key is a domain; its value is empty (the default for every Route) or YAML
``selector: {label: value, ...}`` restricting it to Routes with those labels. The most
specific matching selector wins (most labels; ties go to the alphabetically first domain).
With no keys at all the domain is ``example.com``. Routes labelled
``networking.knative.dev/visibility: cluster-local`` get ``svc.cluster.local``.
Pure; no side effects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

import yaml  # type: ignore[import-untyped, unused-ignore]

from knserve.networking import VISIBILITY_LABEL
from serving.config.parsers import ConfigError, Reader

NAME: Final = "config-domain"
DEFAULT_DOMAIN: Final = "example.com"
CLUSTER_LOCAL_DOMAIN: Final = "svc.cluster.local"


@dataclasses.dataclass(frozen=True)
class DomainConfig:
    # domain -> selector labels (empty selector = matches every Route)
    domains: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ((DEFAULT_DOMAIN, ()),)

    @classmethod
    def from_data(cls, data: Mapping[str, str] | None) -> DomainConfig:
        read = Reader(NAME, data)
        domains: list[tuple[str, tuple[tuple[str, str], ...]]] = []
        for domain, raw in sorted(read.data.items()):
            selector: dict[str, str] = {}
            if raw.strip():
                try:
                    parsed = yaml.safe_load(raw)
                except yaml.YAMLError as error:
                    raise ConfigError(NAME, domain, f"the value is not YAML: {error}") from None
                if parsed is None:
                    parsed = {}
                if not isinstance(parsed, dict) or set(parsed) - {"selector"}:
                    raise ConfigError(NAME, domain, 'the value must be empty or a YAML map "selector: {label: value}"')
                raw_selector = parsed.get("selector") or {}
                if not isinstance(raw_selector, dict):
                    raise ConfigError(NAME, domain, "selector must be a map of label to value")
                selector = {str(k): str(v) for k, v in raw_selector.items()}
            domains.append((domain, tuple(sorted(selector.items()))))
        if not domains:
            return cls()
        return cls(domains=tuple(domains))

    def lookup(self, labels: Mapping[str, str] | None = None) -> str:
        """The domain for a Route with ``labels`` (``svc.cluster.local`` for cluster-local ones)."""
        labels = labels or {}
        if labels.get(VISIBILITY_LABEL) == "cluster-local":
            return CLUSTER_LOCAL_DOMAIN
        best: tuple[int, str] | None = None
        for domain, selector in self.domains:
            if all(labels.get(key) == value for key, value in selector):
                candidate = (-len(selector), domain)
                if best is None or candidate < best:
                    best = candidate
        return best[1] if best else DEFAULT_DOMAIN

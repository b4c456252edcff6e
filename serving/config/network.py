"""``config-network``: host name templates, schemes and rollout settings.

Keys and defaults follow Knative's ``config-network`` (knative.dev/networking). The two
templates are rendered with ``templates.render_template``:

* ``domain-template`` (default ``{{.Name}}.{{.Namespace}}.{{.Domain}}``) gives a Route's host;
  it may use ``.Name``, ``.Namespace``, ``.Domain``, ``.Annotations.x`` and ``.Labels.x``.
* ``tag-template`` (default ``{{.Tag}}-{{.Name}}``) gives the name part for a traffic tag,
  which then goes through ``domain-template`` as ``.Name``.

Pure; no side effects.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Final

from serving.config.parsers import Reader
from serving.config.templates import TemplateError, render_template

NAME: Final = "config-network"
DEFAULT_DOMAIN_TEMPLATE: Final = "{{.Name}}.{{.Namespace}}.{{.Domain}}"
DEFAULT_TAG_TEMPLATE: Final = "{{.Tag}}-{{.Name}}"
DEFAULT_INGRESS_CLASS: Final = "envoy.ingress.networking.knative.dev"
_ENCRYPTION_VALUES: Final = ("Disabled", "Enabled")
_HTTP_PROTOCOL_VALUES: Final = ("Enabled", "Redirected")
_SCHEMES: Final = ("http", "https")
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _title(value: str) -> str:
    return value[:1].upper() + value[1:].lower()


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    domain_template: str = DEFAULT_DOMAIN_TEMPLATE
    tag_template: str = DEFAULT_TAG_TEMPLATE
    ingress_class: str = DEFAULT_INGRESS_CLASS
    certificate_class: str = "cert-manager.certificate.networking.knative.dev"
    external_domain_tls: bool = False
    cluster_local_domain_tls: bool = False
    system_internal_tls: bool = False
    http_protocol: str = "Enabled"
    default_external_scheme: str = "http"
    rollout_duration_seconds: int = 0
    autocreate_cluster_domain_claims: bool = False
    enable_mesh_pod_addressability: bool = False
    mesh_compatibility_mode: str = "auto"

    @classmethod
    def from_data(cls, data: Mapping[str, str] | None) -> NetworkConfig:
        read = Reader(NAME, data)

        def enabled(*keys: str) -> bool:
            value = _title(read.string("Disabled", *keys))
            if value not in _ENCRYPTION_VALUES:
                raise read.error(keys[0], f"{value!r} is not one of Enabled, Disabled")
            return value == "Enabled"

        http_protocol = _title(read.string("Enabled", "http-protocol"))
        if http_protocol not in _HTTP_PROTOCOL_VALUES:
            raise read.error("http-protocol", f"{http_protocol!r} is not one of Enabled, Redirected")
        scheme = read.string("http", "default-external-scheme").lower()
        if scheme not in _SCHEMES:
            raise read.error("default-external-scheme", f"{scheme!r} is not one of http, https")
        rollout = read.integer(0, "rollout-duration")
        if rollout < 0:
            raise read.error("rollout-duration", f"must be a non-negative number of seconds, was {rollout}")
        mesh_mode = read.string("auto", "mesh-compatibility-mode").lower()
        if mesh_mode not in ("auto", "enabled", "disabled"):
            raise read.error("mesh-compatibility-mode", f"{mesh_mode!r} is not one of auto, enabled, disabled")
        config = cls(
            domain_template=read.string(DEFAULT_DOMAIN_TEMPLATE, "domain-template", "domainTemplate"),
            tag_template=read.string(DEFAULT_TAG_TEMPLATE, "tag-template", "tagTemplate"),
            ingress_class=read.string(DEFAULT_INGRESS_CLASS, "ingress-class", "ingress.class"),
            certificate_class=read.string(cls.certificate_class, "certificate-class", "certificate.class"),
            external_domain_tls=enabled("external-domain-tls", "auto-tls", "autoTLS"),
            cluster_local_domain_tls=enabled("cluster-local-domain-tls"),
            system_internal_tls=enabled("system-internal-tls"),
            http_protocol=http_protocol,
            default_external_scheme=scheme,
            rollout_duration_seconds=rollout,
            autocreate_cluster_domain_claims=read.boolean(False, "autocreate-cluster-domain-claims"),
            enable_mesh_pod_addressability=read.boolean(False, "enable-mesh-pod-addressability"),
            mesh_compatibility_mode=mesh_mode,
        )
        problem = _check_domain_template(config.domain_template)
        if problem:
            raise read.error("domain-template", problem)
        problem = _check_tag_template(config.tag_template)
        if problem:
            raise read.error("tag-template", problem)
        return config

    def host(
        self,
        *,
        name: str,
        namespace: str,
        domain: str,
        annotations: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> str:
        """A Route's host name from ``domain-template``."""
        return render_template(
            self.domain_template,
            {
                "Name": name,
                "Namespace": namespace,
                "Domain": domain,
                "Annotations": dict(annotations or {}),
                "Labels": dict(labels or {}),
            },
        )

    def tag_name(self, *, name: str, tag: str) -> str:
        """The name part of a tag's host (``tag-template``), before ``domain-template``."""
        return render_template(self.tag_template, {"Name": name, "Tag": tag})

    def tag_host(
        self,
        *,
        name: str,
        tag: str,
        namespace: str,
        domain: str,
        annotations: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> str:
        """A tag's host: ``tag-template`` then ``domain-template`` (``canary-hello.default.example.com``)."""
        return self.host(
            name=self.tag_name(name=name, tag=tag),
            namespace=namespace,
            domain=domain,
            annotations=annotations,
            labels=labels,
        )


def _check_domain_template(template: str) -> str | None:
    sample = {"Name": "foo", "Namespace": "bar", "Domain": "baz.com", "Annotations": {}, "Labels": {}}
    try:
        rendered = render_template(template, sample)
    except TemplateError as error:
        return f"invalid template {template!r}: {error}"
    if "{{.Name}}" not in template.replace(" ", "") and "index.Name" not in template.replace(" ", ""):
        return f"the template must contain {{{{.Name}}}}, was {template!r}"
    if not _DNS_NAME.match(rendered):
        return f"the template {template!r} renders {rendered!r}, which is not a valid DNS name"
    return None


def _check_tag_template(template: str) -> str | None:
    try:
        render_template(template, {"Name": "foo", "Tag": "v2"})
    except TemplateError as error:
        return f"invalid template {template!r}: {error}"
    compact = template.replace(" ", "")
    if "{{.Tag}}" not in compact or "{{.Name}}" not in compact:
        return f"the template must contain both {{{{.Tag}}}} and {{{{.Name}}}}, was {template!r}"
    return None

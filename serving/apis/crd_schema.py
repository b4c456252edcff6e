"""OpenAPI v3 building blocks for knserve's CRDs: the PodSpec subset a Revision accepts,
TrafficTarget, conditions, and the CEL rules (``x-kubernetes-validations``) that refuse bad
input in the API server with Knative's wording.

Every CEL message renders exactly the error text Knative's webhook would print
(``message: path``), so ``kubectl apply`` shows the same words whichever layer refuses.
Lists and strings that CEL walks carry ``maxItems`` / ``maxLength`` so the API server's cost
estimator accepts the rules. Deep corners of the PodSpec (affinity, tolerations, projected
volume sources, ...) keep ``x-kubernetes-preserve-unknown-fields``.

Pure; builds dicts.
"""

from __future__ import annotations

from typing import Any

from knserve.networking import RESERVED_ENV, RESERVED_PORTS

Schema = dict[str, Any]

RESERVED_SIDECAR_ENV = tuple(name for name in RESERVED_ENV if name != "PORT")  # a sidecar may set PORT
DNS1035_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)

# Sizes that bound CEL cost; generous next to anything a real Revision carries.
MAX_CONTAINERS = 32
MAX_ENV = 512
MAX_PORTS = 16
MAX_TRAFFIC = 100
MAX_NAME = 253
MAX_STRING = 4096
MAX_ANNOTATION_VALUE = 4096
ENV_MESSAGE_CONTAINERS = 4  # containers whose reserved-env message names exact indexes


# --- primitives ---------------------------------------------------------------------------------
def string(description: str | None = None, *, max_length: int | None = None, enum: list[str] | None = None) -> Schema:
    schema: Schema = {"type": "string"}
    if description:
        schema["description"] = description
    if max_length is not None:
        schema["maxLength"] = max_length
    if enum:
        schema["enum"] = enum
    return schema


def integer(description: str | None = None, *, fmt: str = "int32") -> Schema:
    schema: Schema = {"type": "integer", "format": fmt}
    if description:
        schema["description"] = description
    return schema


def boolean(description: str | None = None) -> Schema:
    schema: Schema = {"type": "boolean"}
    if description:
        schema["description"] = description
    return schema


def int_or_string(description: str | None = None) -> Schema:
    schema: Schema = {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True}
    if description:
        schema["description"] = description
    return schema


def quantity(description: str | None = None) -> Schema:
    schema = int_or_string(description)
    schema["pattern"] = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
    return schema


def array(items: Schema, description: str | None = None, *, max_items: int | None = None) -> Schema:
    schema: Schema = {"type": "array", "items": items}
    if description:
        schema["description"] = description
    if max_items is not None:
        schema["maxItems"] = max_items
    return schema


def string_map(description: str | None = None, *, max_length: int | None = None) -> Schema:
    schema: Schema = {"type": "object", "additionalProperties": string(max_length=max_length)}
    if description:
        schema["description"] = description
    return schema


def obj(properties: dict[str, Schema], description: str | None = None, *, required: list[str] | None = None) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if description:
        schema["description"] = description
    if required:
        schema["required"] = required
    return schema


def free_form(description: str | None = None) -> Schema:
    """An object kept as written (deep PodSpec corners the API server need not check)."""
    schema: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if description:
        schema["description"] = description
    return schema


def rule(expression: str, *, message: str | None = None, message_expression: str | None = None,
         field_path: str | None = None, reason: str | None = None) -> Schema:
    result: Schema = {"rule": expression}
    if message is not None:
        result["message"] = message
    if message_expression is not None:
        result["messageExpression"] = message_expression
    if field_path is not None:
        result["fieldPath"] = field_path
    if reason is not None:
        result["reason"] = reason
    return result


def with_rules(schema: Schema, *rules: Schema) -> Schema:
    if rules:
        schema = dict(schema)
        schema["x-kubernetes-validations"] = list(schema.get("x-kubernetes-validations", [])) + list(rules)
    return schema


def cel_str(text: str) -> str:
    """A CEL string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def cel_list(values: tuple[str, ...] | tuple[int, ...]) -> str:
    return "[" + ", ".join(cel_str(v) if isinstance(v, str) else str(v) for v in values) + "]"


# --- PodSpec subset -------------------------------------------------------------------------------
def _local_object_reference() -> Schema:
    return obj({"name": string("Name of the referent.", max_length=MAX_NAME)})


def _key_selector(kind: str) -> Schema:
    return obj(
        {
            "name": string(f"Name of the {kind}.", max_length=MAX_NAME),
            "key": string(f"The key of the {kind} to select from.", max_length=MAX_NAME),
            "optional": boolean(f"Whether the {kind} or its key must be defined."),
        },
        required=["key"],
    )


def _env_var() -> Schema:
    return obj(
        {
            "name": string("Name of the environment variable.", max_length=MAX_NAME),
            "value": string("The value; $(VAR) references are expanded."),
            "valueFrom": obj(
                {
                    "configMapKeyRef": _key_selector("ConfigMap"),
                    "secretKeyRef": _key_selector("Secret"),
                    "fieldRef": obj(
                        {"apiVersion": string(), "fieldPath": string("Path of the field to select.")},
                        "Selects a field of the pod (metadata.name, status.podIP, ...).",
                        required=["fieldPath"],
                    ),
                    "resourceFieldRef": obj(
                        {"containerName": string(), "resource": string(), "divisor": quantity()},
                        "Selects a resource of the container (limits.cpu, requests.memory, ...).",
                        required=["resource"],
                    ),
                },
                "Source for the value; cannot be used if value is not empty.",
            ),
        },
        required=["name"],
    )


def _env_from() -> Schema:
    source = obj({"name": string(max_length=MAX_NAME), "optional": boolean()})
    return obj({"prefix": string(), "configMapRef": source, "secretRef": source})


def _probe() -> Schema:
    return obj(
        {
            "exec": obj({"command": array(string())}),
            "httpGet": obj(
                {
                    "host": string(),
                    "path": string(),
                    "port": int_or_string("Port to probe; empty or 0 means the serving port."),
                    "scheme": string(),
                    "httpHeaders": array(obj({"name": string(), "value": string()}, required=["name", "value"])),
                }
            ),
            "tcpSocket": obj({"host": string(), "port": int_or_string("Port to probe; 0 means the serving port.")}),
            "grpc": obj({"port": integer(), "service": string()}),
            "initialDelaySeconds": integer(),
            "timeoutSeconds": integer(),
            "periodSeconds": integer("How often to probe; 0 lets the queue-proxy probe aggressively."),
            "successThreshold": integer(),
            "failureThreshold": integer(),
            "terminationGracePeriodSeconds": integer(fmt="int64"),
        },
        "A health check of the container.",
    )


def _security_context() -> Schema:
    return obj(
        {
            "capabilities": obj({"add": array(string()), "drop": array(string())}),
            "privileged": boolean(),
            "readOnlyRootFilesystem": boolean(),
            "runAsUser": integer(fmt="int64"),
            "runAsGroup": integer(fmt="int64"),
            "runAsNonRoot": boolean(),
            "allowPrivilegeEscalation": boolean(),
            "seccompProfile": obj({"type": string(), "localhostProfile": string()}),
        }
    )


def container_schema(description: str) -> Schema:
    return obj(
        {
            "name": string("Name of the container (defaulted to user-container).", max_length=MAX_NAME),
            "image": string("Container image reference."),
            "command": array(string(), "Entrypoint; the image's ENTRYPOINT when empty."),
            "args": array(string(), "Arguments to the entrypoint."),
            "workingDir": string(),
            "ports": array(
                obj(
                    {
                        "name": string("Empty, h2c (HTTP/2 cleartext) or http1.", max_length=MAX_NAME),
                        "containerPort": integer("The port the container listens on (default 8080)."),
                        "protocol": string("TCP (the only protocol supported)."),
                    }
                ),
                "The single port the container serves on; only one port is allowed across containers.",
                max_items=MAX_PORTS,
            ),
            "env": array(_env_var(), "Environment variables.", max_items=MAX_ENV),
            "envFrom": array(_env_from(), "Sources of environment variables."),
            "resources": obj(
                {
                    "limits": {"type": "object", "additionalProperties": quantity()},
                    "requests": {"type": "object", "additionalProperties": quantity()},
                },
                "Compute resources (cpu, memory, ephemeral-storage, ...).",
            ),
            "volumeMounts": array(
                obj(
                    {
                        "name": string(max_length=MAX_NAME),
                        "readOnly": boolean(),
                        "mountPath": string(),
                        "subPath": string(),
                        "mountPropagation": string(),
                    },
                    required=["name", "mountPath"],
                )
            ),
            "livenessProbe": _probe(),
            "readinessProbe": _probe(),
            "startupProbe": _probe(),
            "terminationMessagePath": string(),
            "terminationMessagePolicy": string(),
            "imagePullPolicy": string(),
            "securityContext": _security_context(),
        },
        description,
    )


def _volume() -> Schema:
    items = array(obj({"key": string(), "path": string(), "mode": integer()}, required=["key", "path"]))
    return obj(
        {
            "name": string("Name of the volume.", max_length=MAX_NAME),
            "secret": obj({"secretName": string(), "items": items, "defaultMode": integer(), "optional": boolean()}),
            "configMap": obj({"name": string(), "items": items, "defaultMode": integer(), "optional": boolean()}),
            "projected": obj(
                {"sources": array(free_form("A Secret, ConfigMap, serviceAccountToken or downwardAPI projection.")),
                 "defaultMode": integer()}
            ),
            "emptyDir": obj({"medium": string(), "sizeLimit": quantity()}),
            "persistentVolumeClaim": obj({"claimName": string(), "readOnly": boolean()}, required=["claimName"]),
            "hostPath": free_form(),
            "csi": free_form(),
            "ephemeral": free_form(),
            "image": free_form(),
        },
        required=["name"],
    )


def revision_spec_schema(path: str, *, max_timeout: int = 600, max_concurrency: int = 1000) -> Schema:
    """RevisionSpec (a PodSpec plus Knative's fields) with CEL rules whose messages name ``path``."""
    containers = array(container_schema("A container of the revision."), "The containers; one of them serves.",
                       max_items=MAX_CONTAINERS)
    reserved_ports = cel_list(RESERVED_PORTS)
    # Knative checks the first port of each serving container (only one port is allowed).
    bad_port = f"has(c.ports) && size(c.ports) > 0 && has(c.ports[0].containerPort) && c.ports[0].containerPort in {reserved_ports}"

    # The API server's cost estimator gives up on list comprehensions nested in a message, so
    # the env message indexes containers directly: one branch per container, up to ENV_MESSAGE_CONTAINERS.
    def sidecar(i: int) -> str:
        return f"(size(self) > 1 && (!has(self[{i}].ports) || size(self[{i}].ports) == 0))"

    def reserved_env(i: int) -> str:
        return f"({sidecar(i)} ? {cel_list(RESERVED_SIDECAR_ENV)} : {cel_list(RESERVED_ENV)})"

    def bad_env(i: int) -> str:
        return f"(size(self) > {i} && has(self[{i}].env) && self[{i}].env.exists(e, e.name in {reserved_env(i)}))"

    def env_message(i: int) -> str:
        return (
            f"self[{i}].env.filter(e, e.name in {reserved_env(i)}).map(e, "
            f"'\"%s\" is a reserved environment variable: {path}.containers[%d].env[%d].name'"
            f".format([e.name, {i}, self[{i}].env.indexOf(e)]))[0]"
        )

    env_fallback = (
        f"'reserved environment variable (PORT, K_SERVICE, K_CONFIGURATION, K_REVISION): "
        f"{path}.containers[*].env[*].name'"
    )
    env_message_expression = env_fallback
    for i in reversed(range(ENV_MESSAGE_CONTAINERS)):
        env_message_expression = f"{bad_env(i)} ? {env_message(i)} : ({env_message_expression})"
    any_bad_env = (
        "self.exists(c, has(c.env) && c.env.exists(e, e.name in ((size(self) > 1 && (!has(c.ports) || "
        f"size(c.ports) == 0)) ? {cel_list(RESERVED_SIDECAR_ENV)} : {cel_list(RESERVED_ENV)})))"
    )
    containers = with_rules(
        containers,
        rule(
            "self.map(c, has(c.ports) ? size(c.ports) : 0).sum() <= 1",
            message=f"more than one container port is set: {path}.containers[*].ports",
        ),
        rule(
            f"!self.exists(c, {bad_port})",
            message_expression=(
                f"self.filter(c, {bad_port}).map(c, 'invalid value: %d is a reserved port: "
                f"{path}.containers[%d].ports.containerPort'.format([c.ports[0].containerPort, self.indexOf(c)]))[0]"
            ),
            message=f"invalid value: reserved port (8012, 8013, 8022, 9090, 9091, 8008): {path}.containers[*].ports.containerPort",
        ),
        rule(f"!{any_bad_env}", message_expression=env_message_expression,
             message=env_fallback.strip("'")),
    )
    timeout = with_rules(
        integer("Maximum duration in seconds a request may take (default 300).", fmt="int64"),
        rule(
            f"self == 0 || (self >= 0 && self <= {max_timeout})",
            message_expression=f"'expected 0 <= %d <= {max_timeout}: {path}.timeoutSeconds'.format([self])",
        ),
    )
    concurrency = with_rules(
        integer("Maximum concurrent requests per pod; 0 means unlimited.", fmt="int64"),
        rule(
            f"self >= 0 && self <= {max_concurrency}",
            message_expression=f"'expected 0 <= %d <= {max_concurrency}: {path}.containerConcurrency'.format([self])",
        ),
    )
    schema = obj(
        {
            "containerConcurrency": concurrency,
            "timeoutSeconds": timeout,
            "responseStartTimeoutSeconds": integer("Seconds to wait for the first response byte.", fmt="int64"),
            "idleTimeoutSeconds": integer("Seconds a request may go without a byte in either direction.", fmt="int64"),
            "serviceAccountName": string(max_length=MAX_NAME),
            "containers": containers,
            "volumes": array(_volume(), "Volumes the containers may mount."),
            "imagePullSecrets": array(_local_object_reference()),
            "enableServiceLinks": boolean("Inject Service environment variables (default false)."),
            "automountServiceAccountToken": boolean(),
            "affinity": free_form(),
            "topologySpreadConstraints": array(free_form()),
            "hostAliases": array(free_form()),
            "nodeSelector": string_map(),
            "runtimeClassName": string(),
            "tolerations": array(free_form()),
            "securityContext": obj(
                {
                    "runAsUser": integer(fmt="int64"),
                    "runAsGroup": integer(fmt="int64"),
                    "runAsNonRoot": boolean(),
                    "fsGroup": integer(fmt="int64"),
                    "supplementalGroups": array(integer(fmt="int64")),
                    "seccompProfile": obj({"type": string(), "localhostProfile": string()}),
                }
            ),
            "shareProcessNamespace": boolean(),
            "priorityClassName": string(),
            "schedulerName": string(),
            "initContainers": array(container_schema("A container run to completion before the others.")),
            "dnsPolicy": string(),
            "dnsConfig": free_form(),
            "hostIPC": boolean(),
            "hostPID": boolean(),
            "hostNetwork": boolean(),
        },
        "The revision's pod: a PodSpec subset plus Knative's per-revision settings.",
    )
    return with_rules(
        schema,
        rule("has(self.containers) && size(self.containers) > 0", message=f"missing field(s): {path}.containers"),
    )


# --- autoscaling annotations ---------------------------------------------------------------------------
_AUTOSCALING = "autoscaling.knative.dev/"


def template_metadata_schema(path: str) -> Schema:
    """The template's metadata (name, labels, annotations) with autoscaling annotation rules."""

    def int_annotation(key: str) -> Schema:
        full = _AUTOSCALING + key
        return rule(
            f"!({cel_str(full)} in self) || self[{cel_str(full)}].matches('^[0-9]+$')",
            message_expression=(
                f"self[{cel_str(full)}].matches('^-[0-9]+$') ? "
                f"'expected 0 <= ' + self[{cel_str(full)}] + ' <= 2147483647: {path}.annotations.{full}' : "
                f"'invalid value: ' + self[{cel_str(full)}] + ': {path}.annotations.{full}'"
            ),
        )

    number = "^[0-9]+(\\\\.[0-9]*)?$|^\\\\.[0-9]+$"
    target = _AUTOSCALING + "target"
    utilization = _AUTOSCALING + "target-utilization-percentage"
    metric = _AUTOSCALING + "metric"
    window = _AUTOSCALING + "window"
    annotations = with_rules(
        string_map("Annotations; autoscaling.knative.dev/* ones configure the revision's autoscaling.",
                   max_length=MAX_ANNOTATION_VALUE),
        int_annotation("min-scale"),
        int_annotation("max-scale"),
        int_annotation("initial-scale"),
        rule(
            f"!({cel_str(target)} in self) || (self[{cel_str(target)}].matches('{number}') && "
            f"double(self[{cel_str(target)}]) >= 0.01)",
            message_expression=(
                f"self[{cel_str(target)}].matches('{number}') ? "
                f"'target ' + self[{cel_str(target)}] + ' should be at least 0.01: {path}.annotations.{target}' : "
                f"'invalid value: ' + self[{cel_str(target)}] + ': {path}.annotations.{target}'"
            ),
        ),
        rule(
            f"!({cel_str(utilization)} in self) || (self[{cel_str(utilization)}].matches('{number}') && "
            f"double(self[{cel_str(utilization)}]) >= 1.0 && double(self[{cel_str(utilization)}]) <= 100.0)",
            message_expression=(
                f"self[{cel_str(utilization)}].matches('{number}') ? "
                f"'expected 1 <= ' + self[{cel_str(utilization)}] + ' <= 100: {path}.annotations.{utilization}' : "
                f"'invalid value: ' + self[{cel_str(utilization)}] + ': {path}.annotations.{utilization}'"
            ),
        ),
        rule(
            f"!({cel_str(metric)} in self) || "
            f"({cel_str(_AUTOSCALING + 'class')} in self && "
            f"self[{cel_str(_AUTOSCALING + 'class')}] != 'kpa.autoscaling.knative.dev') || "
            f"self[{cel_str(metric)}] in ['concurrency', 'rps']",
            message_expression=f"'invalid value: ' + self[{cel_str(metric)}] + ': {path}.annotations.{metric}'",
        ),
        rule(
            f"!({cel_str(window)} in self) || "
            f"(self[{cel_str(window)}].matches('^([0-9]+(h|m|s))+$') && "
            f"duration(self[{cel_str(window)}]) >= duration('6s') && duration(self[{cel_str(window)}]) <= duration('1h'))",
            message_expression=(
                f"self[{cel_str(window)}].matches('^([0-9]+(h|m|s))+$') ? "
                f"'expected 6s <= ' + self[{cel_str(window)}] + ' <= 1h0m0s: {path}.annotations.{window}' : "
                f"'invalid value: ' + self[{cel_str(window)}] + ': {path}.annotations.{window}'"
            ),
        ),
    )
    return obj(
        {
            "name": string("A name for the revision (must start with the parent's name and '-').", max_length=MAX_NAME),
            "generateName": string(max_length=MAX_NAME),
            "labels": string_map("Labels copied to the revision."),
            "annotations": annotations,
        },
        "Metadata for the revision: its name, labels and annotations.",
    )


def revision_template_schema(path: str, **limits: int) -> Schema:
    return obj(
        {
            "metadata": template_metadata_schema(f"{path}.metadata"),
            "spec": revision_spec_schema(f"{path}.spec", **limits),
        },
        "The template the revisions are made from.",
    )


# --- traffic -------------------------------------------------------------------------------------------
def traffic_target_schema(*, status: bool = False) -> Schema:
    properties: dict[str, Schema] = {
        "tag": string("A name for this target; it gets its own URL (<tag>-<route>...).", max_length=63),
        "revisionName": string("A revision to send traffic to.", max_length=MAX_NAME),
        "configurationName": string("A configuration whose latest ready revision gets the traffic.", max_length=MAX_NAME),
        "latestRevision": boolean("Follow the latest ready revision (defaults to revisionName == \"\")."),
        "percent": integer("Share of the traffic, 0 to 100; all targets sum to 100.", fmt="int64"),
        "url": string("The URL of the tag (status only; may not be set in spec).", max_length=MAX_STRING),
    }
    return obj(properties, "A traffic target." if not status else "A resolved traffic target.")


def _has(field: str, var: str = "t") -> str:
    return f"(has({var}.{field}) && {var}.{field} != '')"


def _duplicate(n: int) -> str:
    """The n-th target whose tag appears more than once (exact when one tag is duplicated;
    a finer search does not fit the API server's cost budget for messages)."""
    return f"self.filter(t, has(t.tag) && t.tag != '' && self.filter(u, has(u.tag) && u.tag == t.tag).size() > 1)[{n}]"


def traffic_list_schema(path: str, *, service: bool) -> Schema:
    """``spec.traffic`` with Knative's traffic rules; ``service`` forbids configurationName."""
    def first_bad(condition: str, message: str) -> Schema:
        """A rule on the list whose message names the first offending item ``t`` and its index."""
        return rule(
            f"!self.exists(t, {condition})",
            message_expression=f"self.filter(t, {condition}).map(t, {message})[0]",
        )

    index = "self.indexOf(t)"
    dns_ok = "t.tag.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')"
    rules = [
        first_bad(
            "has(t.percent) && (t.percent < 0 || t.percent > 100)",
            f"'expected 0 <= %d <= 100: {path}[%d].percent'.format([t.percent, {index}])",
        ),
        first_bad(
            f"has(t.latestRevision) && t.latestRevision == {_has('revisionName')}",
            f"'may not set revisionName \"%s\" when latestRevision is %s: {path}[%d].latestRevision'.format(["
            f"has(t.revisionName) ? t.revisionName : '', t.latestRevision ? 'true' : 'false', {index}])",
        ),
        first_bad(_has("url"), f"'must not set the field(s): {path}[%d].url'.format([{index}])"),
        # Knative renders this path as "spec.traffic.tag[0]" (ErrInvalidArrayValue); so do we.
        first_bad(
            f"has(t.tag) && t.tag != '' && !{dns_ok}",
            f"'invalid value: not a DNS 1035 label: [%s]: {path}.tag[%d]'.format([{cel_str(DNS1035_MESSAGE)}, {index}])",
        ),
        rule(
            "self.all(t, !has(t.tag) || t.tag == '' || self.filter(u, has(u.tag) && u.tag == t.tag).size() == 1)",
            message_expression=(
                f"'Multiple definitions for \"%s\": {path}[%d].tag, {path}[%d].tag'.format(["
                f"{_duplicate(0)}.tag, self.indexOf({_duplicate(0)}), self.indexOf({_duplicate(1)})])"
            ),
        ),
    ]
    if service:
        rules.append(first_bad(_has("configurationName"),
                               f"'must not set the field(s): {path}[%d].configurationName'.format([{index}])"))
        rules.append(rule(
            "size(self) == 0 || self.map(t, has(t.percent) ? t.percent : 0).sum() == 100",
            message_expression=(
                f"'Traffic targets sum to %d, want 100: {path}'.format([self.map(t, has(t.percent) ? t.percent : 0).sum()])"
            ),
        ))
    else:
        rules.append(first_bad(
            f"{_has('revisionName')} && {_has('configurationName')}",
            f"'expected exactly one, got both: {path}[%d].configurationName, {path}[%d].revisionName'"
            f".format([{index}, {index}])",
        ))
        rules.append(first_bad(
            f"!{_has('revisionName')} && !{_has('configurationName')}",
            f"'expected exactly one, got neither: {path}[%d].configurationName, {path}[%d].revisionName'"
            f".format([{index}, {index}])",
        ))
    return with_rules(
        array(traffic_target_schema(), "How traffic is split across revisions.", max_items=MAX_TRAFFIC),
        *rules,
    )


def route_traffic_sum_rule(path: str) -> Schema:
    """On a Route's spec: traffic must sum to 100 (an absent list sums to 0, as in Knative)."""
    total = "(has(self.traffic) ? self.traffic.map(t, has(t.percent) ? t.percent : 0).sum() : 0)"
    return rule(
        f"{total} == 100",
        message_expression=f"'Traffic targets sum to %d, want 100: {path}'.format([{total}])",
        field_path=".traffic",
    )


# --- status ---------------------------------------------------------------------------------------------
def conditions_schema() -> Schema:
    return array(
        obj(
            {
                "type": string("Type of condition."),
                "status": string("True, False or Unknown."),
                "severity": string("Error (empty), Warning or Info."),
                "lastTransitionTime": string("When the status last changed."),
                "reason": string("One-word CamelCase reason for the last transition."),
                "message": string("Human-readable details of the last transition."),
            },
            required=["type", "status"],
        ),
        "The latest observations of the object's state.",
    )


def status_schema(properties: dict[str, Schema], description: str) -> Schema:
    base: dict[str, Schema] = {
        "observedGeneration": integer("The generation last processed by the controller.", fmt="int64"),
        "conditions": conditions_schema(),
        "annotations": string_map("Additional status information."),
    }
    schema = obj({**base, **properties}, description)
    schema["x-kubernetes-preserve-unknown-fields"] = True
    return schema


def addressable_schema() -> Schema:
    return obj({"name": string(), "url": string(), "CACerts": string(), "audience": string()})

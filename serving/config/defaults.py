"""``config-defaults``: revision timeouts, containerConcurrency and container names.

Keys, defaults and checks follow Knative's ``config-defaults``. Pure; no side effects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

from serving.config.parsers import Reader
from serving.config.templates import render_template, validate_template

NAME: Final = "config-defaults"


@dataclasses.dataclass(frozen=True)
class DefaultsConfig:
    revision_timeout_seconds: int = 300
    max_revision_timeout_seconds: int = 600
    revision_response_start_timeout_seconds: int = 300
    revision_idle_timeout_seconds: int = 0
    container_name_template: str = "user-container"
    init_container_name_template: str = "init-container"
    container_concurrency: int = 0
    container_concurrency_max_limit: int = 1000
    allow_container_concurrency_zero: bool = True
    enable_service_links: bool | None = False
    revision_cpu_request: str | None = None
    revision_cpu_limit: str | None = None
    revision_memory_request: str | None = None
    revision_memory_limit: str | None = None
    revision_ephemeral_storage_request: str | None = None
    revision_ephemeral_storage_limit: str | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, str] | None) -> DefaultsConfig:
        read = Reader(NAME, data)
        timeout = read.integer(300, "revision-timeout-seconds")
        max_timeout = read.integer(600, "max-revision-timeout-seconds")
        response_start = read.integer(timeout, "revision-response-start-timeout-seconds")
        idle = read.integer(0, "revision-idle-timeout-seconds")
        max_limit = read.integer(1000, "container-concurrency-max-limit")
        concurrency = read.integer(0, "container-concurrency")
        links: bool | None = False
        if read.has("enable-service-links"):
            raw = read.string("", "enable-service-links").lower()
            links = True if raw == "true" else False if raw == "false" else None
        config = cls(
            revision_timeout_seconds=timeout,
            max_revision_timeout_seconds=max_timeout,
            revision_response_start_timeout_seconds=response_start,
            revision_idle_timeout_seconds=idle,
            container_name_template=read.string("user-container", "container-name-template"),
            init_container_name_template=read.string("init-container", "init-container-name-template"),
            container_concurrency=concurrency,
            container_concurrency_max_limit=max_limit,
            allow_container_concurrency_zero=read.boolean(True, "allow-container-concurrency-zero"),
            enable_service_links=links,
            revision_cpu_request=read.quantity("revision-cpu-request"),
            revision_cpu_limit=read.quantity("revision-cpu-limit"),
            revision_memory_request=read.quantity("revision-memory-request"),
            revision_memory_limit=read.quantity("revision-memory-limit"),
            revision_ephemeral_storage_request=read.quantity("revision-ephemeral-storage-request"),
            revision_ephemeral_storage_limit=read.quantity("revision-ephemeral-storage-limit"),
        )
        if timeout > max_timeout:
            raise read.error(
                "revision-timeout-seconds",
                f"{timeout} cannot be greater than max-revision-timeout-seconds ({max_timeout})",
            )
        if response_start > 0 and response_start > timeout:
            raise read.error(
                "revision-response-start-timeout-seconds",
                f"{response_start} cannot be greater than revision-timeout-seconds ({timeout})",
            )
        if idle > 0 and idle > timeout:
            raise read.error(
                "revision-idle-timeout-seconds", f"{idle} cannot be greater than revision-timeout-seconds ({timeout})"
            )
        if max_limit < 1:
            raise read.error("container-concurrency-max-limit", f"expected 1 <= {max_limit} <= 2147483647")
        if concurrency < 0 or concurrency > max_limit:
            raise read.error("container-concurrency", f"expected 0 <= {concurrency} <= {max_limit}")
        for key, template in (
            ("container-name-template", config.container_name_template),
            ("init-container-name-template", config.init_container_name_template),
        ):
            problem = validate_template(template)
            if problem:
                raise read.error(key, problem)
        return config

    def user_container_name(self, parent_name: str = "", parent_namespace: str = "") -> str:
        return render_template(self.container_name_template, {"Name": parent_name, "Namespace": parent_namespace})

    def init_container_name(self, parent_name: str = "", parent_namespace: str = "") -> str:
        return render_template(self.init_container_name_template, {"Name": parent_name, "Namespace": parent_namespace})

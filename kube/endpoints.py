"""Reading EndpointSlices: which endpoints serve, and at which port.

An endpoint serves when it is ready (``ready`` unset counts as ready, as the API documents)
and not terminating. ``handover_endpoints_at`` also keeps the endpoints that still serve while
they terminate, as long as no other one is ready (kube-proxy's terminating-endpoint fall-back):
a component replaced one pod at a time keeps an address through the hand-over. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from kube.objects import JSON


def is_serving(endpoint: JSON) -> bool:
    conditions = endpoint.get("conditions") or {}
    return conditions.get("ready") is not False and conditions.get("terminating") is not True


def ready_addresses(slices: Iterable[JSON]) -> tuple[str, ...]:
    """The addresses of the ready endpoints of ``slices``, sorted, each once."""
    return tuple(sorted({str(address) for endpoint_slice in slices
                         for endpoint in endpoint_slice.get("endpoints") or [] if is_serving(endpoint)
                         for address in endpoint.get("addresses") or []}))


def ready_endpoints_at(slices: Iterable[JSON], port_name: str) -> tuple[tuple[str, int], ...]:
    """(address, port) of the ready endpoints of ``slices`` at the port named ``port_name``
    (each slice says its own number for it), sorted, each once."""
    found: set[tuple[str, int]] = set()
    for endpoint_slice in slices:
        numbers = [int(p["port"]) for p in endpoint_slice.get("ports") or []
                   if (p.get("name") or "") == port_name and p.get("port") is not None]
        if numbers:
            found.update((address, numbers[0]) for address in ready_addresses([endpoint_slice]))
    return tuple(sorted(found))


def is_serving_while_terminating(endpoint: JSON) -> bool:
    conditions = endpoint.get("conditions") or {}
    return conditions.get("terminating") is True and conditions.get("serving") is not False


def handover_endpoints_at(slices: Iterable[JSON], port_name: str) -> tuple[tuple[str, int], ...]:
    """``ready_endpoints_at``; when none is ready, the endpoints that terminate but still serve
    (their pods drain; the replacement is not ready yet)."""
    slices = list(slices)
    ready = ready_endpoints_at(slices, port_name)
    if ready:
        return ready
    found: set[tuple[str, int]] = set()
    for endpoint_slice in slices:
        numbers = [int(p["port"]) for p in endpoint_slice.get("ports") or []
                   if (p.get("name") or "") == port_name and p.get("port") is not None]
        if not numbers:
            continue
        for endpoint in endpoint_slice.get("endpoints") or []:
            if is_serving_while_terminating(endpoint):
                found.update((str(address), numbers[0]) for address in endpoint.get("addresses") or [])
    return tuple(sorted(found))

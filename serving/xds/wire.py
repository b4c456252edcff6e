"""Protobuf wire encoding for envoy-data-plane messages, and the xDS envelopes built by hand.

betterproto2's ``bytes(message)`` revalidates every nested message through a freshly built
pydantic schema validator, which makes a 1,000-service config take seconds to serialize.
The messages were already validated when they were constructed, so :func:`encode` walks the
same field metadata betterproto2 uses and writes the same bytes (a table test holds the two
equal) at a small fraction of the cost. Wrapped values (``UInt32Value`` weights, ``BoolValue``,
``Duration``) repeat a lot, so each distinct one is encoded once and remembered.

The xDS envelopes are built from bytes: :func:`any_entry` is one ``resources`` entry of a
``DiscoveryResponse`` (an ``Any`` around an already encoded resource), so a response is the
concatenation of cached entries plus three short fields (:func:`discovery_response`), and
:func:`length_delimited` lets a route configuration be assembled from cached virtual hosts.
Pure functions apart from those small module-level caches; no I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any, Final, cast

import betterproto2

_WIRE_VARINT: Final = 0
_WIRE_FIXED64: Final = 1
_WIRE_LEN: Final = 2
_WIRE_FIXED32: Final = 5

_VARINT_TYPES: Final = frozenset(
    {
        betterproto2.TYPE_ENUM,
        betterproto2.TYPE_BOOL,
        betterproto2.TYPE_INT32,
        betterproto2.TYPE_INT64,
        betterproto2.TYPE_UINT32,
        betterproto2.TYPE_UINT64,
    }
)
_ZIGZAG_TYPES: Final = frozenset({betterproto2.TYPE_SINT32, betterproto2.TYPE_SINT64})
_FIXED_FORMATS: Final = {
    betterproto2.TYPE_DOUBLE: ("<d", _WIRE_FIXED64),
    betterproto2.TYPE_FLOAT: ("<f", _WIRE_FIXED32),
    betterproto2.TYPE_FIXED32: ("<I", _WIRE_FIXED32),
    betterproto2.TYPE_FIXED64: ("<Q", _WIRE_FIXED64),
    betterproto2.TYPE_SFIXED32: ("<i", _WIRE_FIXED32),
    betterproto2.TYPE_SFIXED64: ("<q", _WIRE_FIXED64),
}


_ONE_BYTE: Final = tuple(bytes((value,)) for value in range(0x80))


def varint(value: int) -> bytes:
    """The base-128 varint of ``value``; negative numbers as 64-bit two's complement."""
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def length_delimited(field_number: int, payload: bytes) -> bytes:
    """One length-delimited field: key, length, payload (a string, bytes or a nested message)."""
    return varint((field_number << 3) | _WIRE_LEN) + varint(len(payload)) + payload


def _scalar(proto_type: str, value: Any) -> tuple[int, bytes]:
    """(wire type, encoded value) of one non-message value."""
    if proto_type in _VARINT_TYPES:
        return _WIRE_VARINT, varint(int(value))
    if proto_type in _ZIGZAG_TYPES:
        return _WIRE_VARINT, varint(value << 1 if value >= 0 else (value << 1) ^ ~0)
    if proto_type == betterproto2.TYPE_STRING:
        return _WIRE_LEN, value.encode()
    if proto_type == betterproto2.TYPE_BYTES:
        return _WIRE_LEN, bytes(value)
    fmt, wire = _FIXED_FORMATS[proto_type]
    return wire, struct.pack(fmt, value)


# One entry per field: (attribute, field number, proto type, repeated, map value meta, unwrap, default)
_Plan = tuple[tuple[str, int, str, bool, Any, Callable[[], type] | None, Any], ...]
_plans: dict[type, _Plan] = {}


def _plan(cls: type[betterproto2.Message]) -> _Plan:
    plan = _plans.get(cls)
    if plan is None:
        meta = cast(Any, cls)._betterproto
        plan = tuple(
            (
                name,
                field.number,
                field.proto_type,
                bool(field.repeated),
                field.map_meta,
                field.unwrap,
                meta.default_gen[name](),
            )
            for name, field in meta.meta_by_field_name.items()
        )
        _plans[cls] = plan
    return plan


# Wrapped values (BoolValue, UInt32Value, Duration, ...) are few and repeat: encode each once.
_wrapped: dict[tuple[type, Any], bytes] = {}
_WRAPPED_LIMIT: Final = 4096


def _encode_wrapped(wrapper: type, value: Any) -> bytes:
    key = (wrapper, value)
    encoded = _wrapped.get(key)
    if encoded is None:
        if len(_wrapped) >= _WRAPPED_LIMIT:
            _wrapped.clear()
        encoded = _wrapped[key] = encode(wrapper.from_wrapped(value))  # type: ignore[attr-defined]
    return encoded


def _field(number: int, proto_type: str, value: Any, unwrap: Callable[[], type] | None) -> bytes:
    if proto_type == betterproto2.TYPE_MESSAGE:
        body = _encode_wrapped(unwrap(), value) if unwrap is not None else encode(value)
        return length_delimited(number, body)
    wire, payload = _scalar(proto_type, value)
    key = varint((number << 3) | wire)
    return key + varint(len(payload)) + payload if wire == _WIRE_LEN else key + payload


def encode(message: betterproto2.Message) -> bytes:
    """The wire bytes of ``message``, equal to ``bytes(message)`` without the revalidation.

    Follows betterproto2's rules: ``None`` and values equal to the field default are left out,
    repeated scalars are packed, map entries carry both key and value.
    """
    out = bytearray()
    for name, number, proto_type, repeated, map_meta, unwrap, default in _plan(type(message)):
        value = getattr(message, name)
        if value is None or value == default:
            continue
        if repeated:
            if proto_type in _VARINT_TYPES or proto_type in _ZIGZAG_TYPES or proto_type in _FIXED_FORMATS:
                packed = b"".join(_scalar(proto_type, item)[1] for item in value)
                out += length_delimited(number, packed)
            else:
                for item in value:
                    out += _field(number, proto_type, item, unwrap)
        elif map_meta is not None:
            key_meta, value_meta = map_meta
            for key, item in value.items():
                entry = _field(1, key_meta.proto_type, key, None)
                entry += _field(2, value_meta.proto_type, item, value_meta.unwrap)
                out += length_delimited(number, entry)
        else:
            out += _field(number, proto_type, value, unwrap)
    out += message._unknown_fields
    return bytes(out)


# --- xDS envelopes -----------------------------------------------------------------------------

_RESPONSE_VERSION_INFO: Final = 1
_RESPONSE_RESOURCES: Final = 2
_RESPONSE_TYPE_URL: Final = 4
_RESPONSE_NONCE: Final = 5
_ANY_TYPE_URL: Final = 1
_ANY_VALUE: Final = 2


def any_entry(type_url: str, body: bytes) -> bytes:
    """One ``DiscoveryResponse.resources`` entry: an ``Any`` of ``type_url`` holding ``body``."""
    packed = length_delimited(_ANY_TYPE_URL, type_url.encode()) + length_delimited(_ANY_VALUE, body)
    return length_delimited(_RESPONSE_RESOURCES, packed)


def discovery_response(*, version_info: str, type_url: str, nonce: str, entries: Iterable[bytes]) -> bytes:
    """A whole ``DiscoveryResponse`` from resource entries made by :func:`any_entry`."""
    return b"".join(
        (
            length_delimited(_RESPONSE_VERSION_INFO, version_info.encode()),
            *entries,
            length_delimited(_RESPONSE_TYPE_URL, type_url.encode()),
            length_delimited(_RESPONSE_NONCE, nonce.encode()),
        )
    )

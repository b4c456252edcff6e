"""Cluster DNS for the pods of this node: Service names to addresses, the kube-dns way.

Each pod's ``/etc/resolv.conf`` (``resolv_conf``) names a DNS server the agent runs on the
bridge's gateway address, with the search list and ``ndots:5`` the kubelet writes for
``dnsPolicy: ClusterFirst``. That server (``ClusterDnsServer``) answers:

- names under the cluster domain from a ``Directory`` of Services (``resolve``, pure):
  ``<service>.<namespace>.svc.<domain>`` is an A record of the ClusterIP, one A record per
  ready endpoint for a headless Service, a CNAME for an ExternalName Service (followed while
  it stays a cluster Service name); anything else under the domain does not exist;
- other names through the host's own resolver (``getaddrinfo``), A queries only (AAAA gets
  an empty answer, other types NOTIMP). It never sends a packet anywhere itself.

The wire codec (RFC 1035) is the small part of DNS a stub resolver needs: one question in,
A and CNAME records out, names compressed against the ones already written. EDNS is not
spoken (OPT records in a query are ignored), so UDP answers stay within 512 bytes; a longer
one is sent empty with TC set and the client asks again over TCP, which is also served.

Side effects (server only): binds one UDP and one TCP socket on the given address; resolves
names outside the cluster domain through the host's resolver; logs at debug level.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import errno
import ipaddress
import logging
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any, Final, cast

log = logging.getLogger(__name__)

DEFAULT_CLUSTER_DOMAIN: Final = "cluster.local"
CLUSTER_TTL: Final = 5  # seconds, as kube-dns and CoreDNS's kubernetes plugin answer
HOST_TTL: Final = 5
MAX_CNAME_HOPS: Final = 8
HOST_LOOKUP_TIMEOUT: Final = 2.0
UDP_MAX_SIZE: Final = 512  # without EDNS (RFC 1035 4.2.1)
TCP_MAX_SIZE: Final = 65535
TCP_IDLE_TIMEOUT: Final = 10.0
MAX_UDP_IN_FLIGHT: Final = 256

TYPE_A: Final = 1
TYPE_CNAME: Final = 5
TYPE_AAAA: Final = 28
CLASS_IN: Final = 1
OPCODE_QUERY: Final = 0

NOERROR: Final = 0
FORMERR: Final = 1
SERVFAIL: Final = 2
NXDOMAIN: Final = 3
NOTIMP: Final = 4

_HEADER = struct.Struct("!HHHHHH")  # id, flags, qdcount, ancount, nscount, arcount
_QR, _AA, _TC, _RD, _RA = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080
_MAX_NAME_LENGTH = 255  # octets on the wire, length bytes included
_MAX_LABEL_LENGTH = 63
_POINTER = 0xC0
_MAX_POINTER_OFFSET = 0x3FFF


# --- wire codec -----------------------------------------------------------------------


class MalformedMessage(ValueError):
    """A packet that is not a DNS query this codec can read."""


@dataclasses.dataclass(frozen=True)
class Header:
    id: int
    flags: int
    question_count: int

    @property
    def is_response(self) -> bool:
        return bool(self.flags & _QR)

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def recursion_desired(self) -> bool:
        return bool(self.flags & _RD)


@dataclasses.dataclass(frozen=True)
class Question:
    labels: tuple[bytes, ...]  # as sent, case kept: echoed back unchanged
    qtype: int
    qclass: int = CLASS_IN

    @property
    def name(self) -> str:
        """The name in text (labels joined by dots, no trailing dot; "" for the root)."""
        return ".".join(label.decode("ascii", "replace") for label in self.labels)


@dataclasses.dataclass(frozen=True)
class Query:
    header: Header
    question: Question


@dataclasses.dataclass(frozen=True)
class Record:
    """One answer record: ``data`` is a dotted IPv4 address (A) or a name (CNAME)."""

    name: str
    rtype: int
    data: str
    ttl: int = CLUSTER_TTL


def read_header(packet: bytes) -> Header | None:
    """The header of ``packet``, or None when it is too short to hold one."""
    if len(packet) < _HEADER.size:
        return None
    id_, flags, question_count, _, _, _ = _HEADER.unpack_from(packet)
    return Header(id_, flags, question_count)


def _read_name(packet: bytes, offset: int) -> tuple[tuple[bytes, ...], int]:
    """The labels of the name at ``offset`` and the offset just past it (pointers followed)."""
    labels: list[bytes] = []
    end: int | None = None
    length = 0
    jumps = 0
    while True:
        if offset >= len(packet):
            raise MalformedMessage("name runs past the end of the packet")
        size = packet[offset]
        if size & _POINTER == _POINTER:
            if offset + 1 >= len(packet):
                raise MalformedMessage("truncated compression pointer")
            jumps += 1
            if jumps > _MAX_NAME_LENGTH // 2:
                raise MalformedMessage("compression pointers loop")
            if end is None:
                end = offset + 2
            offset = ((size & ~_POINTER) << 8) | packet[offset + 1]
            continue
        if size & _POINTER:
            raise MalformedMessage(f"unknown label type {size >> 6:#x}")
        offset += 1
        if size == 0:
            return tuple(labels), end if end is not None else offset
        length += size + 1
        if length + 1 > _MAX_NAME_LENGTH or offset + size > len(packet):
            raise MalformedMessage("name too long or truncated")
        labels.append(packet[offset:offset + size])
        offset += size


def parse_query(packet: bytes) -> Query:
    """The header and the single question of a query; what follows the question (an EDNS OPT
    record, say) is ignored. Raises ``MalformedMessage``."""
    header = read_header(packet)
    if header is None:
        raise MalformedMessage("shorter than a DNS header")
    if header.is_response:
        raise MalformedMessage("a response, not a query")
    if header.question_count != 1:
        raise MalformedMessage(f"{header.question_count} questions, want exactly one")
    labels, offset = _read_name(packet, _HEADER.size)
    if offset + 4 > len(packet):
        raise MalformedMessage("question type and class truncated")
    qtype, qclass = struct.unpack_from("!HH", packet, offset)
    return Query(header, Question(labels, qtype, qclass))


def _name_labels(name: str) -> tuple[bytes, ...]:
    text = name.rstrip(".")
    labels = tuple(label.encode("ascii") for label in text.split(".")) if text else ()
    if any(not label or len(label) > _MAX_LABEL_LENGTH for label in labels):
        raise ValueError(f"{name!r} is not a valid DNS name")
    return labels


class _Writer:
    """A message being written, remembering where each name suffix went for compression."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.suffixes: dict[tuple[bytes, ...], int] = {}

    def name(self, labels: tuple[bytes, ...]) -> None:
        for index in range(len(labels)):
            suffix = tuple(label.lower() for label in labels[index:])
            offset = self.suffixes.get(suffix)
            if offset is not None:
                self.buffer += struct.pack("!H", (_POINTER << 8) | offset)
                return
            if len(self.buffer) <= _MAX_POINTER_OFFSET:
                self.suffixes[suffix] = len(self.buffer)
            self.buffer += bytes([len(labels[index])]) + labels[index]
        self.buffer.append(0)

    def record(self, record: Record) -> None:
        self.name(_name_labels(record.name))
        self.buffer += struct.pack("!HHI", record.rtype, CLASS_IN, record.ttl)
        length_at = len(self.buffer)
        self.buffer += b"\0\0"
        if record.rtype == TYPE_A:
            self.buffer += ipaddress.IPv4Address(record.data).packed
        elif record.rtype == TYPE_CNAME:
            self.name(_name_labels(record.data))
        else:
            raise ValueError(f"cannot write records of type {record.rtype}")
        struct.pack_into("!H", self.buffer, length_at, len(self.buffer) - length_at - 2)


def _flags(header: Header, rcode: int, *, authoritative: bool, truncated: bool = False) -> int:
    flags = _QR | (header.opcode << 11) | _RA | (header.flags & _RD) | rcode
    if authoritative:
        flags |= _AA
    if truncated:
        flags |= _TC
    return flags


def error_response(header: Header, rcode: int) -> bytes:
    """A bare answer (no question, no records) to a query that could not be read or served."""
    return _HEADER.pack(header.id, _flags(header, rcode, authoritative=False), 0, 0, 0, 0)


def build_response(
    query: Query,
    rcode: int,
    answers: tuple[Record, ...] = (),
    *,
    authoritative: bool = False,
    max_size: int = TCP_MAX_SIZE,
) -> bytes:
    """The response to ``query``: its id and question, RD copied, RA set. When the records do
    not fit in ``max_size`` bytes they are left out and TC is set (the client retries over TCP).
    """
    writer = _Writer()
    writer.buffer += _HEADER.pack(
        query.header.id, _flags(query.header, rcode, authoritative=authoritative), 1, len(answers), 0, 0
    )
    writer.name(query.question.labels)
    writer.buffer += struct.pack("!HH", query.question.qtype, query.question.qclass)
    question_end = len(writer.buffer)
    for record in answers:
        writer.record(record)
    if len(writer.buffer) <= max_size:
        return bytes(writer.buffer)
    flags = _flags(query.header, rcode, authoritative=authoritative, truncated=True)
    return _HEADER.pack(query.header.id, flags, 1, 0, 0, 0) + bytes(writer.buffer[_HEADER.size:question_end])


# --- resolution (pure) ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ServiceRecord:
    cluster_ip: str | None  # None or "None" for a headless Service
    external_name: str | None  # for type ExternalName
    endpoint_ips: tuple[str, ...] = ()  # ready endpoint addresses (answered for headless Services)

    @property
    def headless(self) -> bool:
        return self.cluster_ip is None or self.cluster_ip == "None"


Directory = Callable[[str, str], ServiceRecord | None]
"""(namespace, name) -> the Service, or None when there is none. Called on the event loop:
it must answer from memory."""


class NotOurs(enum.Enum):
    """``resolve``'s answer for a name outside the cluster domain."""

    NOT_OURS = "not ours"


NOT_OURS: Final = NotOurs.NOT_OURS


@dataclasses.dataclass(frozen=True)
class Answer:
    rcode: int
    records: tuple[Record, ...] = ()
    # The CNAME chain ended at this name outside the cluster domain; the server may look it up.
    external_target: str | None = None


def normalize_name(name: str) -> str:
    """``name`` lower-cased without its trailing dot: DNS names compare case-insensitively."""
    return name.lower().removesuffix(".")


def _within(name: str, domain: str) -> bool:
    return name == domain or name.endswith("." + domain)


def _service_key(name: str, domain: str) -> tuple[str, str] | None:
    """(namespace, service) of ``<service>.<namespace>.svc.<domain>``; None for other shapes."""
    if not name.endswith("." + domain):
        return None
    labels = name[: -len(domain) - 1].split(".")
    if len(labels) != 3 or labels[2] != "svc" or not labels[0] or not labels[1]:
        return None
    return labels[1], labels[0]


def _a_records(name: str, addresses: tuple[str, ...]) -> tuple[Record, ...]:
    records = []
    for address in addresses:
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            continue  # an IPv6 endpoint or ClusterIP has no A record
        records.append(Record(name, TYPE_A, address, CLUSTER_TTL))
    return tuple(records)


def resolve(
    qname: str, qtype: int, directory: Directory, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
) -> Answer | NotOurs:
    """What to answer for ``qname``/``qtype`` from the Services of ``directory``; ``NOT_OURS``
    when the name is outside ``cluster_domain``.

    A Service name answers A queries with its ClusterIP, or with its ready endpoints when
    headless (a headless Service without ready endpoints does not exist, as with CoreDNS); an
    ExternalName Service answers every type with a CNAME, followed up to ``MAX_CNAME_HOPS``
    while the target is a cluster Service name. Other types get no records. Any other name
    under the domain is NXDOMAIN.
    """
    domain = normalize_name(cluster_domain)
    name = normalize_name(qname)
    if not _within(name, domain):
        return NOT_OURS
    records: list[Record] = []
    visited = {name}
    while True:
        key = _service_key(name, domain)
        service = directory(*key) if key is not None else None
        if service is None:
            return Answer(NXDOMAIN, tuple(records))
        if service.external_name:
            target = normalize_name(service.external_name)
            records.append(Record(name, TYPE_CNAME, target, CLUSTER_TTL))
            if not _within(target, domain):
                return Answer(NOERROR, tuple(records), external_target=target)
            if qtype == TYPE_CNAME or target in visited or len(records) >= MAX_CNAME_HOPS:
                return Answer(NOERROR, tuple(records))
            visited.add(target)
            name = target
            continue
        if service.headless and not service.endpoint_ips:
            return Answer(NXDOMAIN, tuple(records))
        if qtype != TYPE_A:
            return Answer(NOERROR, tuple(records))
        addresses = service.endpoint_ips if service.headless else (str(service.cluster_ip),)
        return Answer(NOERROR, tuple(records) + _a_records(name, addresses))


def resolv_conf(nameserver: str, namespace: str, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN) -> str:
    """A pod's /etc/resolv.conf as the kubelet writes it for ``dnsPolicy: ClusterFirst``."""
    domain = normalize_name(cluster_domain)
    return (
        f"search {namespace}.svc.{domain} svc.{domain} {domain}\n"
        f"nameserver {nameserver}\n"
        "options ndots:5\n"
    )


# --- answering queries ---------------------------------------------------------------

HostLookup = Callable[[str], Awaitable[tuple[str, ...]]]
"""name -> its IPv4 addresses; raises ``socket.gaierror`` (or OSError) when it cannot."""


async def host_addresses(name: str) -> tuple[str, ...]:
    """The IPv4 addresses of ``name`` by the host's resolver (hosts file, its DNS servers)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(name, None, family=socket.AF_INET, type=socket.SOCK_STREAM)
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


_MISSING_NAME_ERRORS = {socket.EAI_NONAME}
_NO_ADDRESS_ERRORS = {getattr(socket, code) for code in ("EAI_NODATA", "EAI_ADDRFAMILY") if hasattr(socket, code)}


def _looks_like_address(name: str) -> bool:
    try:
        socket.inet_aton(name)  # getaddrinfo takes "127.1" for an address, DNS does not
    except OSError:
        return False
    return True


def _host_lookup_name(question: Question) -> str | None:
    """The question's name as the host resolver may take it, or None when it cannot be one."""
    for label in question.labels:
        if b"." in label or not all(0x21 <= byte < 0x7F for byte in label):
            return None
    name = question.name
    return None if _looks_like_address(name) else name


class DnsResponder:
    """Turns one query packet into its response packet (None: drop it). No sockets here."""

    def __init__(
        self,
        directory: Directory,
        *,
        cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
        host_lookup: HostLookup = host_addresses,
        lookup_timeout: float = HOST_LOOKUP_TIMEOUT,
    ) -> None:
        self.directory = directory
        self.cluster_domain = cluster_domain
        self.host_lookup = host_lookup
        self.lookup_timeout = lookup_timeout

    async def respond(self, packet: bytes, *, max_size: int) -> bytes | None:
        header = read_header(packet)
        if header is None or header.is_response:
            return None  # unreadable, or a response: answering could start a loop
        if header.opcode != OPCODE_QUERY:
            return error_response(header, NOTIMP)
        try:
            query = parse_query(packet)
        except MalformedMessage as error:
            log.debug("malformed DNS query %#06x: %s", header.id, error)
            return error_response(header, FORMERR)
        try:
            rcode, records, authoritative = await self._answer(query.question)
            return build_response(query, rcode, records, authoritative=authoritative, max_size=max_size)
        except Exception:  # a bad record or a failing directory must not stop the server
            log.debug("cannot answer %s", query.question.name, exc_info=True)
            return build_response(query, SERVFAIL, max_size=max_size)

    async def _answer(self, question: Question) -> tuple[int, tuple[Record, ...], bool]:
        """(rcode, records, authoritative) for ``question``."""
        if question.qclass != CLASS_IN:
            return NOTIMP, (), False
        answer = resolve(question.name, question.qtype, self.directory, self.cluster_domain)
        if not isinstance(answer, Answer):
            return await self._answer_host(question)
        if answer.external_target is None or question.qtype != TYPE_A:
            return answer.rcode, answer.records, True
        rcode, addresses = await self._lookup(answer.external_target)
        if rcode == SERVFAIL:
            return SERVFAIL, (), False
        found = tuple(Record(answer.external_target, TYPE_A, address, HOST_TTL) for address in addresses)
        return rcode, answer.records + found, False

    async def _answer_host(self, question: Question) -> tuple[int, tuple[Record, ...], bool]:
        if not question.labels or question.qtype == TYPE_AAAA:
            return NOERROR, (), False
        if question.qtype != TYPE_A:
            return NOTIMP, (), False
        name = _host_lookup_name(question)
        if name is None:
            return NXDOMAIN, (), False
        rcode, addresses = await self._lookup(name)
        return rcode, tuple(Record(name, TYPE_A, address, HOST_TTL) for address in addresses), False

    async def _lookup(self, name: str) -> tuple[int, tuple[str, ...]]:
        """(rcode, IPv4 addresses) of ``name`` by the host lookup."""
        try:
            found = await asyncio.wait_for(self.host_lookup(name), self.lookup_timeout)
        except socket.gaierror as error:
            if error.errno in _MISSING_NAME_ERRORS:
                return NXDOMAIN, ()
            if error.errno in _NO_ADDRESS_ERRORS:
                return NOERROR, ()
            log.debug("host lookup of %s failed: %s", name, error)
            return SERVFAIL, ()
        except (OSError, asyncio.TimeoutError) as error:
            log.debug("host lookup of %s failed: %r", name, error)
            return SERVFAIL, ()
        return NOERROR, tuple(dict.fromkeys(address for address in found if _is_ipv4(address)))


def _is_ipv4(address: str) -> bool:
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return True


# --- the server ----------------------------------------------------------------------


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: ClusterDnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, packet: bytes, address: Any) -> None:
        self.server._spawn_udp(packet, address)

    def error_received(self, error: Exception) -> None:
        log.debug("DNS UDP socket error: %s", error)


class ClusterDnsServer:
    """The DNS server on ``address`` (UDP and TCP, one port): see the module docstring.

    ``start`` binds (port 0 picks a free port, the same for both; ``address`` then tells it);
    ``close`` stops accepting and cancels the queries in progress.
    """

    def __init__(
        self,
        address: tuple[str, int],
        directory: Directory,
        *,
        cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
        host_lookup: HostLookup = host_addresses,
        lookup_timeout: float = HOST_LOOKUP_TIMEOUT,
    ) -> None:
        self.host, self.port = address
        self.responder = DnsResponder(
            directory, cluster_domain=cluster_domain, host_lookup=host_lookup, lookup_timeout=lookup_timeout
        )
        self._udp: _UdpProtocol | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._udp_in_flight = 0

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    async def start(self) -> None:
        attempts = 20 if self.port == 0 else 1
        for attempt in range(attempts):
            udp = await self._bind_udp(self.port)
            port = udp.transport.get_extra_info("sockname")[1] if udp.transport else self.port
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, port)
            except OSError as error:
                if udp.transport is not None:
                    udp.transport.close()
                if error.errno != errno.EADDRINUSE or attempt == attempts - 1:
                    raise
                continue
            self._udp, self.port = udp, port
            log.debug("cluster DNS listening on %s:%d", self.host, port)
            return

    async def _bind_udp(self, port: int) -> _UdpProtocol:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(self.host, port)
        )
        return protocol

    async def close(self) -> None:
        if self._udp is not None and self._udp.transport is not None:
            self._udp.transport.close()
        self._udp = None
        if self._tcp is not None:
            self._tcp.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()
            self._tcp = None

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _spawn_udp(self, packet: bytes, client: Any) -> None:
        if self._udp_in_flight >= MAX_UDP_IN_FLIGHT:
            log.debug("dropping a DNS query from %s: %d in progress", client, self._udp_in_flight)
            return
        self._udp_in_flight += 1
        self._track(asyncio.get_running_loop().create_task(self._serve_udp(packet, client), name="dns-udp-query"))

    async def _serve_udp(self, packet: bytes, client: Any) -> None:
        try:
            response = await self.responder.respond(packet, max_size=UDP_MAX_SIZE)
            udp = self._udp
            if response is not None and udp is not None and udp.transport is not None:
                udp.transport.sendto(response, client)
        except Exception:
            log.debug("DNS query from %s failed", client, exc_info=True)
        finally:
            self._udp_in_flight -= 1

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._track(task)
        try:
            while True:
                prefix = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_TIMEOUT)
                (length,) = struct.unpack("!H", prefix)
                packet = await asyncio.wait_for(reader.readexactly(length), TCP_IDLE_TIMEOUT)
                response = await self.responder.respond(packet, max_size=TCP_MAX_SIZE)
                if response is None:
                    break
                writer.write(struct.pack("!H", len(response)) + response)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            pass
        except Exception:
            log.debug("DNS TCP connection failed", exc_info=True)
        finally:
            writer.close()

"""Cluster DNS: the wire codec, Service name resolution, and the server on a real socket.

Packets are built and read here by hand (struct), independently of the codec under test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import struct
from collections.abc import AsyncIterator

import pytest

from node.dns import (
    FORMERR,
    NOERROR,
    NOT_OURS,
    NOTIMP,
    NXDOMAIN,
    SERVFAIL,
    TYPE_A,
    TYPE_AAAA,
    TYPE_CNAME,
    Answer,
    ClusterDnsServer,
    DnsResponder,
    MalformedMessage,
    Record,
    ServiceRecord,
    build_response,
    parse_query,
    resolv_conf,
    resolve,
)

TYPE_MX = 15
TYPE_OPT = 41

SERVICES = {
    ("default", "web"): ServiceRecord(cluster_ip="10.96.0.10", external_name=None),
    ("default", "db"): ServiceRecord(cluster_ip="None", external_name=None, endpoint_ips=("10.244.3.7", "10.244.3.8")),
    ("default", "empty"): ServiceRecord(cluster_ip=None, external_name=None),
    ("shop", "alias"): ServiceRecord(cluster_ip=None, external_name="web.default.svc.cluster.local"),
    ("shop", "outside"): ServiceRecord(cluster_ip=None, external_name="Example.COM."),
    ("shop", "dangling"): ServiceRecord(cluster_ip=None, external_name="gone.default.svc.cluster.local"),
    ("shop", "ping"): ServiceRecord(cluster_ip=None, external_name="pong.shop.svc.cluster.local"),
    ("shop", "pong"): ServiceRecord(cluster_ip=None, external_name="ping.shop.svc.cluster.local"),
}


def directory(namespace: str, name: str) -> ServiceRecord | None:
    return SERVICES.get((namespace, name))


# --- hand-made packets -------------------------------------------------------------------


def encode_name(name: str) -> bytes:
    labels = [label for label in name.split(".") if label]
    return b"".join(bytes([len(label)]) + label.encode() for label in labels) + b"\0"


def make_query(name: str, qtype: int = TYPE_A, *, id_: int = 0x1234, rd: bool = True, edns: bool = False) -> bytes:
    flags = 0x0100 if rd else 0
    header = struct.pack("!HHHHHH", id_, flags, 1, 0, 0, 1 if edns else 0)
    packet = header + encode_name(name) + struct.pack("!HH", qtype, 1)
    if edns:  # OPT: root name, type 41, UDP size 1232, extended rcode/flags 0, no options
        packet += b"\0" + struct.pack("!HHIH", TYPE_OPT, 1232, 0, 0)
    return packet


@dataclasses.dataclass
class Decoded:
    id: int
    flags: int
    question: tuple[str, int]
    answers: list[tuple[str, int, int, str]]  # name, type, ttl, data

    @property
    def rcode(self) -> int:
        return self.flags & 0xF

    def flag(self, name: str) -> bool:
        bits = {"QR": 0x8000, "AA": 0x0400, "TC": 0x0200, "RD": 0x0100, "RA": 0x0080}
        return bool(self.flags & bits[name])


def decode_name(packet: bytes, offset: int) -> tuple[str, int]:
    labels: list[str] = []
    end = None
    while True:
        size = packet[offset]
        if size >= 0xC0:
            end = end if end is not None else offset + 2
            offset = ((size & 0x3F) << 8) | packet[offset + 1]
            continue
        offset += 1
        if size == 0:
            return ".".join(labels), end if end is not None else offset
        labels.append(packet[offset:offset + size].decode())
        offset += size


def decode(packet: bytes) -> Decoded:
    id_, flags, qdcount, ancount, _, _ = struct.unpack_from("!HHHHHH", packet)
    offset = 12
    question = ("", 0)
    if qdcount:
        qname, offset = decode_name(packet, offset)
        (qtype,) = struct.unpack_from("!H", packet, offset)
        question = (qname, qtype)
        offset += 4
    answers = []
    for _ in range(ancount):
        name, offset = decode_name(packet, offset)
        rtype, _, ttl, length = struct.unpack_from("!HHIH", packet, offset)
        offset += 10
        if rtype == TYPE_A:
            data = socket.inet_ntoa(packet[offset:offset + length])
        else:
            data, _ = decode_name(packet, offset)
        answers.append((name, rtype, ttl, data))
        offset += length
    assert offset == len(packet)
    return Decoded(id_, flags, question, answers)


# --- codec ---------------------------------------------------------------------------------


def test_query_is_read_with_its_edns_record_ignored() -> None:
    query = parse_query(make_query("Web.Default.svc.cluster.local", TYPE_AAAA, id_=77, edns=True))
    assert query.header.id == 77
    assert query.header.recursion_desired
    assert query.question.labels == (b"Web", b"Default", b"svc", b"cluster", b"local")
    assert query.question.qtype == TYPE_AAAA


def test_response_echoes_the_question_and_points_answers_at_it() -> None:
    query = parse_query(make_query("Web.default.svc.cluster.local", id_=0xBEEF))
    records = (
        Record("web.default.svc.cluster.local", TYPE_CNAME, "db.default.svc.cluster.local"),
        Record("db.default.svc.cluster.local", TYPE_A, "10.244.3.7"),
    )
    packet = build_response(query, NOERROR, records, authoritative=True)
    response = decode(packet)
    assert response.id == 0xBEEF
    assert [response.flag(f) for f in ("QR", "AA", "TC", "RD", "RA")] == [True, True, False, True, True]
    assert response.question == ("Web.default.svc.cluster.local", TYPE_A)
    assert response.answers == [
        ("Web.default.svc.cluster.local", TYPE_CNAME, 5, "db.default.svc.cluster.local"),
        ("db.default.svc.cluster.local", TYPE_A, 5, "10.244.3.7"),
    ]
    assert packet[12 + 31 + 4:][:2] == b"\xc0\x0c"  # the first owner name is the question's
    assert len(packet) < 12 + 31 + 4 + 2 * 31  # names are compressed


def test_recursion_desired_is_copied() -> None:
    query = parse_query(make_query("web.default.svc.cluster.local", rd=False))
    assert not decode(build_response(query, NXDOMAIN)).flag("RD")
    assert decode(build_response(query, NXDOMAIN)).rcode == NXDOMAIN


def test_answers_too_long_for_udp_are_left_out_with_tc_set() -> None:
    query = parse_query(make_query("db.default.svc.cluster.local"))
    records = tuple(Record("db.default.svc.cluster.local", TYPE_A, f"10.244.3.{n}") for n in range(2, 60))
    response = decode(build_response(query, NOERROR, records, max_size=512))
    assert response.flag("TC")
    assert response.answers == []
    assert response.question == ("db.default.svc.cluster.local", TYPE_A)
    assert len(decode(build_response(query, NOERROR, records)).answers) == 58


@pytest.mark.parametrize(
    "packet",
    [
        pytest.param(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", id="question-missing"),
        pytest.param(make_query("web.default")[:-3], id="type-truncated"),
        pytest.param(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05ab", id="label-truncated"),
        pytest.param(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01", id="pointer-loop"),
        pytest.param(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x80abc\x00\x00\x01\x00\x01", id="label-type"),
        pytest.param(struct.pack("!HHHHHH", 1, 0x0100, 2, 0, 0, 0) + encode_name("a") + b"\0\1\0\1" * 2, id="two-questions"),
        pytest.param(b"\x12\x34\x01", id="header-short"),
    ],
)
def test_malformed_queries_are_refused(packet: bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse_query(packet)


# --- resolution ----------------------------------------------------------------------------


def a(name: str, address: str) -> Record:
    return Record(name, TYPE_A, address)


def cname(name: str, target: str) -> Record:
    return Record(name, TYPE_CNAME, target)


WEB = "web.default.svc.cluster.local"
DB = "db.default.svc.cluster.local"
ALIAS = "alias.shop.svc.cluster.local"


@pytest.mark.parametrize(
    ("qname", "qtype", "want"),
    [
        pytest.param(WEB, TYPE_A, Answer(NOERROR, (a(WEB, "10.96.0.10"),)), id="cluster-ip"),
        pytest.param(DB, TYPE_A, Answer(NOERROR, (a(DB, "10.244.3.7"), a(DB, "10.244.3.8"))), id="headless"),
        pytest.param("empty.default.svc.cluster.local", TYPE_A, Answer(NXDOMAIN), id="headless-without-endpoints"),
        pytest.param(ALIAS, TYPE_A, Answer(NOERROR, (cname(ALIAS, WEB), a(WEB, "10.96.0.10"))), id="external-name-to-service"),
        pytest.param(ALIAS, TYPE_AAAA, Answer(NOERROR, (cname(ALIAS, WEB),)), id="external-name-aaaa"),
        pytest.param(ALIAS, TYPE_CNAME, Answer(NOERROR, (cname(ALIAS, WEB),)), id="external-name-cname-not-chased"),
        pytest.param(
            "outside.shop.svc.cluster.local",
            TYPE_A,
            Answer(NOERROR, (cname("outside.shop.svc.cluster.local", "example.com"),), external_target="example.com"),
            id="external-name-outside",
        ),
        pytest.param(
            "dangling.shop.svc.cluster.local",
            TYPE_A,
            Answer(NXDOMAIN, (cname("dangling.shop.svc.cluster.local", "gone.default.svc.cluster.local"),)),
            id="external-name-to-nothing",
        ),
        pytest.param(
            "ping.shop.svc.cluster.local",
            TYPE_A,
            Answer(NOERROR, (
                cname("ping.shop.svc.cluster.local", "pong.shop.svc.cluster.local"),
                cname("pong.shop.svc.cluster.local", "ping.shop.svc.cluster.local"),
            )),
            id="external-name-loop",
        ),
        pytest.param("nope.default.svc.cluster.local", TYPE_A, Answer(NXDOMAIN), id="unknown-service"),
        pytest.param("nope.default.svc.cluster.local", TYPE_AAAA, Answer(NXDOMAIN), id="unknown-service-aaaa"),
        pytest.param("web.default.cluster.local", TYPE_A, Answer(NXDOMAIN), id="no-svc-label"),
        pytest.param("x.web.default.svc.cluster.local", TYPE_A, Answer(NXDOMAIN), id="too-deep"),
        pytest.param("default.svc.cluster.local", TYPE_A, Answer(NXDOMAIN), id="namespace-only"),
        pytest.param("cluster.local", TYPE_A, Answer(NXDOMAIN), id="domain-itself"),
        pytest.param(WEB, TYPE_AAAA, Answer(NOERROR), id="aaaa-empty"),
        pytest.param(WEB, TYPE_MX, Answer(NOERROR), id="other-type-empty"),
        pytest.param("WEB.Default.SVC.Cluster.Local.", TYPE_A, Answer(NOERROR, (a(WEB, "10.96.0.10"),)), id="case-and-dot"),
        pytest.param("example.com", TYPE_A, NOT_OURS, id="outside"),
        pytest.param("notcluster.local", TYPE_A, NOT_OURS, id="outside-same-suffix"),
    ],
)
def test_resolve(qname: str, qtype: int, want: Answer) -> None:
    assert resolve(qname, qtype, directory) == want


def test_cname_chains_stop_after_eight_hops() -> None:
    def chain(namespace: str, name: str) -> ServiceRecord:
        hop = int(name.removeprefix("s"))
        return ServiceRecord(cluster_ip=None, external_name=f"s{hop + 1}.{namespace}.svc.cluster.local")

    answer = resolve("s0.default.svc.cluster.local", TYPE_A, chain)
    assert isinstance(answer, Answer)
    assert answer.rcode == NOERROR
    assert [r.rtype for r in answer.records] == [TYPE_CNAME] * 8


def test_other_cluster_domain() -> None:
    assert resolve("web.default.svc.example.internal", TYPE_A, directory, "Example.Internal.") == Answer(
        NOERROR, (a("web.default.svc.example.internal", "10.96.0.10"),)
    )
    assert resolve(WEB, TYPE_A, directory, "example.internal") is NOT_OURS


def test_resolv_conf_is_the_kubelets_cluster_first() -> None:
    assert resolv_conf("10.244.3.1", "shop") == (
        "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 10.244.3.1\n"
        "options ndots:5\n"
    )


# --- responder (no sockets; the host lookup is a fake) ---------------------------------------


class FakeHost:
    def __init__(self, **names: tuple[str, ...] | BaseException) -> None:
        self.names = names
        self.asked: list[str] = []

    async def __call__(self, name: str) -> tuple[str, ...]:
        self.asked.append(name)
        found = self.names.get(name.replace(".", "_"))
        if found is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if isinstance(found, BaseException):
            raise found
        return found


async def respond(query: bytes, host: FakeHost | None = None) -> Decoded:
    responder = DnsResponder(directory, host_lookup=host or FakeHost())
    packet = await responder.respond(query, max_size=512)
    assert packet is not None
    return decode(packet)


async def test_cluster_answers_are_authoritative() -> None:
    response = await respond(make_query(WEB, id_=9, edns=True))
    assert (response.id, response.rcode, response.flag("AA")) == (9, NOERROR, True)
    assert response.answers == [(WEB, TYPE_A, 5, "10.96.0.10")]


async def test_other_names_go_to_the_host_resolver() -> None:
    host = FakeHost(registry_example=("192.0.2.1", "192.0.2.1", "192.0.2.2"))
    response = await respond(make_query("registry.example"), host)
    assert (response.rcode, response.flag("AA")) == (NOERROR, False)
    assert response.answers == [("registry.example", TYPE_A, 5, "192.0.2.1"), ("registry.example", TYPE_A, 5, "192.0.2.2")]
    assert (await respond(make_query("missing.example"), host)).rcode == NXDOMAIN


@pytest.mark.parametrize(
    ("failure", "rcode"),
    [
        pytest.param(socket.gaierror(socket.EAI_AGAIN, "Temporary failure"), SERVFAIL, id="temporary"),
        pytest.param(socket.gaierror(socket.EAI_NODATA, "No address"), NOERROR, id="no-ipv4-address"),
        pytest.param(OSError("broken"), SERVFAIL, id="os-error"),
    ],
)
async def test_host_resolver_failures(failure: BaseException, rcode: int) -> None:
    response = await respond(make_query("flaky.example"), FakeHost(flaky_example=failure))
    assert (response.rcode, response.answers) == (rcode, [])


async def test_slow_host_resolver_is_servfail() -> None:
    async def never(name: str) -> tuple[str, ...]:
        await asyncio.Event().wait()
        return ()

    responder = DnsResponder(directory, host_lookup=never, lookup_timeout=0.01)
    packet = await responder.respond(make_query("slow.example"), max_size=512)
    assert packet is not None
    assert decode(packet).rcode == SERVFAIL


async def test_external_name_outside_the_domain_is_followed_on_the_host() -> None:
    host = FakeHost(example_com=("192.0.2.80",))
    response = await respond(make_query("outside.shop.svc.cluster.local"), host)
    assert response.rcode == NOERROR
    assert response.answers == [
        ("outside.shop.svc.cluster.local", TYPE_CNAME, 5, "example.com"),
        ("example.com", TYPE_A, 5, "192.0.2.80"),
    ]
    nothing = await respond(make_query("outside.shop.svc.cluster.local"), FakeHost())
    assert nothing.rcode == NXDOMAIN
    assert [answer[1] for answer in nothing.answers] == [TYPE_CNAME]


async def test_types_outside_the_domain() -> None:
    host = FakeHost(registry_example=("192.0.2.1",))
    aaaa = await respond(make_query("registry.example", TYPE_AAAA), host)
    assert (aaaa.rcode, aaaa.answers) == (NOERROR, [])
    assert (await respond(make_query("registry.example", TYPE_MX), host)).rcode == NOTIMP
    assert host.asked == []


async def test_addresses_are_not_names() -> None:
    host = FakeHost()
    assert (await respond(make_query("127.0.0.1"), host)).rcode == NXDOMAIN
    assert host.asked == []


async def test_unreadable_packets() -> None:
    responder = DnsResponder(directory, host_lookup=FakeHost())
    assert await responder.respond(b"\x01\x02", max_size=512) is None
    response_packet = make_query(WEB)[:2] + b"\x81\x80" + make_query(WEB)[4:]
    assert await responder.respond(response_packet, max_size=512) is None  # never answer answers
    formerr = await responder.respond(b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fxyz", max_size=512)
    assert formerr is not None
    assert (decode(formerr).id, decode(formerr).rcode, decode(formerr).question) == (0xABCD, FORMERR, ("", 0))
    status = struct.pack("!HHHHHH", 5, 2 << 11, 0, 0, 0, 0)  # opcode STATUS
    notimp = await responder.respond(status, max_size=512)
    assert notimp is not None
    assert decode(notimp).rcode == NOTIMP


async def test_a_failing_directory_is_servfail() -> None:
    def broken(namespace: str, name: str) -> ServiceRecord | None:
        raise RuntimeError("informer not synced")

    packet = await DnsResponder(broken).respond(make_query(WEB), max_size=512)
    assert packet is not None
    assert decode(packet).rcode == SERVFAIL


# --- the server on 127.0.0.1 -----------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[ClusterDnsServer]:
    dns = ClusterDnsServer(("127.0.0.1", 0), directory)
    await dns.start()
    try:
        yield dns
    finally:
        await dns.close()


async def udp_exchange(port: int, packet: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.setblocking(False)
        await loop.sock_sendto(client, packet, ("127.0.0.1", port))
        return await asyncio.wait_for(loop.sock_recv(client, 4096), 10)


async def test_server_answers_a_udp_query(server: ClusterDnsServer) -> None:
    # Header: id 0x4242, RD; one question: web.default.svc.cluster.local IN A.
    query = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    for label in (b"web", b"default", b"svc", b"cluster", b"local"):
        query += struct.pack("!B", len(label)) + label
    query += b"\x00" + struct.pack("!HH", 1, 1)

    reply = await udp_exchange(server.address[1], query)

    id_, flags, qdcount, ancount = struct.unpack_from("!HHHH", reply)
    assert (id_, flags & 0x8000, flags & 0xF, qdcount, ancount) == (0x4242, 0x8000, 0, 1, 1)
    assert reply[-4:] == socket.inet_aton("10.96.0.10")
    assert struct.unpack_from("!HHIH", reply, len(query) + 2) == (TYPE_A, 1, 5, 4)


async def test_server_resolves_other_names_on_the_host(server: ClusterDnsServer) -> None:
    response = decode(await udp_exchange(server.address[1], make_query("localhost")))
    assert response.rcode == NOERROR
    assert ("localhost", TYPE_A, 5, "127.0.0.1") in response.answers


async def test_garbage_does_not_stop_the_server(server: ClusterDnsServer) -> None:
    port = server.address[1]
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        for garbage in (b"", b"\xff", b"\x00" * 5, b"\xff" * 40, bytes(range(256))):
            await loop.sock_sendto(client, garbage, ("127.0.0.1", port))
    formerr = decode(await udp_exchange(port, b"\x00\x07\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0"))
    assert (formerr.id, formerr.rcode) == (7, FORMERR)
    response = decode(await udp_exchange(port, make_query(DB)))
    assert response.rcode == NOERROR
    assert [answer[3] for answer in response.answers] == ["10.244.3.7", "10.244.3.8"]


async def test_server_answers_over_tcp(server: ClusterDnsServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.address[1])
    try:
        for name, want in ((WEB, ["10.96.0.10"]), (DB, ["10.244.3.7", "10.244.3.8"])):
            query = make_query(name)
            writer.write(struct.pack("!H", len(query)) + query)
            await writer.drain()
            (length,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 10))
            response = decode(await asyncio.wait_for(reader.readexactly(length), 10))
            assert [answer[3] for answer in response.answers] == want
    finally:
        writer.close()

"""Synthetic DNS captures that walk Packetbeat's rendering and pairing rules.

Each function returns a ``Capture``; ``tests/protocols/gen_dns_oracle.py`` runs real
Packetbeat 9.3 on them once and stores its events in ``tests/data/dns/``, and
``tests/protocols/test_dns_oracle.py`` checks that wirebeat gives the same events.
"""

from __future__ import annotations

import base64
import struct

from tests.protocols.dns_wire import (
    AA,
    AAAA,
    AD,
    AXFR,
    CAA,
    CD,
    CNAME,
    DNSKEY,
    DS,
    HINFO,
    HTTPS,
    IXFR,
    MX,
    NS,
    NSEC,
    NSEC3,
    NSEC3PARAM,
    PTR,
    QR,
    RA,
    RD,
    RRSIG,
    SOA,
    SRV,
    TC,
    TXT,
    A,
    Capture,
    a,
    framed,
    message,
    name,
    opt,
    query,
    question,
    rr,
    soa,
    txt,
)

SERVER = ("192.0.2.53", 53)
SERVER6 = ("2001:db8::53", 53)


def client(i: int) -> tuple[str, int]:
    return ("192.0.2.10", 40000 + i)


def answer(
    ident: int, qname: str, qtype: int, answers: list[bytes], flags: int = QR | RD | RA, **kw: object
) -> bytes:
    return message(ident, flags, [question(qname, qtype)], answers, **kw)  # type: ignore[arg-type]


def _bitmap(*types: int) -> bytes:
    windows: dict[int, bytearray] = {}
    for t in sorted(types):
        w = windows.setdefault(t >> 8, bytearray(32))
        w[(t & 0xFF) >> 3] |= 0x80 >> (t & 7)
    out = b""
    for w, bits in sorted(windows.items()):
        n = max(i for i, b in enumerate(bits) if b) + 1
        out += bytes((w, n)) + bytes(bits[:n])
    return out


KEY = base64.b64decode(
    "AwEAAagAIKlVZrpC6Ia7gEzahOR+9W29euxhJhVVLOyQbSEW0O8gcCjFFVQUTf6v58fLjwBd0YI0EzrAcQqBGCzh/RStIoO8g0NfnfL2MTJRkxoXbfDaUeVPQuYEhg37NZWAJQ9VnMVDxP/VHL496M/QZxkjf5/Efucp2gaDX6RS6CXpoY68LsvPVjR0ZSwzz1apAzvN9dlzEheX7ICJBBtuA6G3LQpzW5hOA2hzCTMjJPJ8LbqF6dsV6DoBQzgul0sGIcGOYl7OyQdXfZ57relSQageu+ipAdTTJ25AsRTAoub8ONGcLmqrAmRLKBP1dfwhYB4N7knNnulqQxA+Uk1ihz0="
)


def records() -> Capture:
    """One exchange per family of record types."""
    cap = Capture()
    ex: list[tuple[str, int, list[bytes], list[bytes], list[bytes]]] = []
    # addresses
    ex.append(
        (
            "www.example.com",
            A,
            [
                rr(name("www.example.com"), CNAME, name("web.example.net")),
                rr("web.example.net", A, a("192.0.2.1"), ttl=0),
                rr("web.example.net", A, a("198.51.100.255"), ttl=4294967295),
            ],
            [],
            [],
        )
    )
    v6 = [
        bytes.fromhex("20010db8000000000000000000000001"),
        bytes.fromhex("00000000000000000000ffffc0000201"),  # IPv4-mapped
        bytes.fromhex("00000000000000000000000000000001"),
        bytes.fromhex("20010db8000000010000000000000000"),
        bytes.fromhex("20010db8000000000001000000000001"),
        bytes.fromhex("fe800000000000000000000000000000"),
        bytes.fromhex("00000000000000000000000001020304"),
    ]
    ex.append(("six.example.com", AAAA, [rr("six.example.com", AAAA, x) for x in v6], [], []))
    ex.append(
        (
            "example.org",
            MX,
            [
                rr("example.org", MX, struct.pack(">H", p) + name(f"mx{p}.example.org"))
                for p in (0, 10, 65535)
            ],
            [rr("example.org", NS, name("ns1.example.org")), rr("example.org", NS, name("ns2.example.net"))],
            [rr("ns1.example.org", A, a("192.0.2.2")), rr("ns1.example.org", AAAA, v6[0])],
        )
    )
    ex.append(
        (
            "_sip._tcp.example.com",
            SRV,
            [rr("_sip._tcp.example.com", SRV, struct.pack(">HHH", 10, 60, 5060) + name("sip.example.com"))],
            [],
            [],
        )
    )
    ex.append(
        (
            "10.2.0.192.in-addr.arpa",
            PTR,
            [rr("10.2.0.192.in-addr.arpa", PTR, name("host.example.com"))],
            [rr("2.0.192.in-addr.arpa", SOA, soa("ns.example.com", "hostmaster.example.com", 2024010101))],
            [],
        )
    )
    ex.append(
        (
            "txt.example.com",
            TXT,
            [
                rr("txt.example.com", TXT, txt(b"v=spf1 -all")),
                rr("txt.example.com", TXT, txt(b"two", b"strings here")),
                rr(
                    "txt.example.com", TXT, txt(b'quote " and back\\slash', b"tab\there", b"\x00\x7f\xc3\xa9")
                ),
                rr("txt.example.com", TXT, txt(b"")),
                rr("txt.example.com", TXT, txt(b"a" * 255, b"b" * 10)),
            ],
            [],
            [],
        )
    )
    ex.append(
        (
            "caa.example.com",
            CAA,
            [
                rr("caa.example.com", CAA, b"\x00\x05issueletsencrypt.org"),
                rr("caa.example.com", CAA, b"\x80\x05iodefmailto:sec@example.com"),
                rr("caa.example.com", CAA, b"\x00\x09issuewild;"),
            ],
            [],
            [],
        )
    )
    ex.append(
        (
            "example.net",
            DS,
            [
                rr("example.net", DS, struct.pack(">HBB", 31589, 8, 2) + bytes(range(32))),
                rr("example.net", DS, struct.pack(">HBB", 1, 99, 77) + b"\xab\xcd"),
            ],
            [],
            [],
        )
    )
    ex.append(
        (
            "example.net",
            DNSKEY,
            [
                rr("example.net", DNSKEY, struct.pack(">HBB", 257, 3, 8) + KEY),
                rr("example.net", DNSKEY, struct.pack(">HBB", 256, 3, 13) + KEY[:64]),
                rr("example.net", DNSKEY, struct.pack(">HBB", 256, 3, 200) + b"x"),
                rr(
                    "example.net",
                    RRSIG,
                    struct.pack(">HBBIIIH", DNSKEY, 8, 2, 3600, 1893456000, 1700000000, 31589)
                    + name("example.net")
                    + KEY[:40],
                ),
                rr(
                    "example.net",
                    RRSIG,
                    struct.pack(">HBBIIIH", 65280, 15, 0, 0, 0, 4294967295, 0) + name(".") + b"\x01",
                ),
            ],
            [],
            [],
        )
    )
    ex.append(
        (
            "nx.example.net",
            A,
            [],
            [
                rr(
                    "example.net", SOA, soa("ns1.example.net", "dns.example.net", 7, 1800, 900, 604800, 86400)
                ),
                rr(
                    "a.example.net",
                    NSEC,
                    name("z.example.net") + _bitmap(A, NS, SOA, MX, TXT, AAAA, RRSIG, NSEC, DNSKEY, CAA),
                ),
                rr("example.net", NSEC, name("\\000.example.net") + _bitmap(A)),
                rr(
                    "2vptu5timamqttgl4luu9kg21e0aor3s.example.net",
                    NSEC3,
                    bytes((1, 1))
                    + struct.pack(">H", 12)
                    + b"\x04\xaa\xbb\xcc\xdd"
                    + b"\x14"
                    + bytes(range(20))
                    + _bitmap(A, RRSIG),
                ),
                rr(
                    "example.net",
                    NSEC3,
                    bytes((1, 0)) + struct.pack(">H", 0) + b"\x00" + b"\x05" + b"hello" + b"",
                ),
                rr("example.net", NSEC3PARAM, bytes((1, 0)) + struct.pack(">H", 10) + b"\x02\x12\x34"),
                rr("example.net", NSEC3PARAM, bytes((2, 1)) + struct.pack(">H", 0) + b"\x00"),
            ],
            [],
        )
    )
    # Types Packetbeat does not format: their RDATA, re-packed and escaped.
    ex.append(
        (
            "other.example.com",
            255,
            [
                rr("other.example.com", HINFO, txt(b"PDP-11", b"UNIX")),
                rr(
                    "other.example.com",
                    35,
                    struct.pack(">HH", 100, 10) + txt(b"S", b"SIP+D2U", b"") + name("_sip._udp.example.com"),
                ),
                rr("other.example.com", 44, bytes((4, 2)) + bytes(range(32))),
                rr("other.example.com", 52, bytes((3, 1, 1)) + bytes(range(32))),
                rr(
                    "other.example.com",
                    29,
                    bytes((0, 0x12, 0x16, 0x13)) + struct.pack(">III", 2331161276, 2182871112, 10000000),
                ),
                rr("other.example.com", 99, txt(b"v=spf1 ?all")),
                rr("other.example.com", 256, struct.pack(">HH", 1, 2) + b"https://example.com/\\path"),
                rr("other.example.com", 65280, b'\x01\x02private\r\n\t"\\'),
                rr("other.example.com", 10, b"null data"),
                rr("other.example.com", 39, name("target.example.org")),
                rr("other.example.com", 17, name("admin.example.com") + name("info.example.com")),
                rr("other.example.com", 18, struct.pack(">H", 1) + name("afs.example.com")),
                rr("other.example.com", 59, struct.pack(">HBB", 2371, 13, 2) + bytes(32)),
                rr("other.example.com", 60, struct.pack(">HBB", 257, 3, 13) + KEY[:32]),
                rr("other.example.com", 108, bytes.fromhex("00005e0053ff")),
                rr("other.example.com", 109, bytes.fromhex("00005e0053ffff00")),
                rr("other.example.com", 13, txt(b"with space", b"")),
            ],
            [],
            [],
        )
    )
    ex.append(
        (
            "svc.example.com",
            HTTPS,
            [
                rr(
                    "svc.example.com",
                    HTTPS,
                    struct.pack(">H", 1)
                    + name(".")
                    + struct.pack(">HH", 1, 6)
                    + b"\x02h2\x02h3"
                    + struct.pack(">HH", 4, 4)
                    + a("192.0.2.7")
                    + struct.pack(">HH", 6, 16)
                    + bytes.fromhex("20010db8000000000000000000000007"),
                ),
                rr("svc.example.com", 64, struct.pack(">H", 0) + name("alias.example.com")),
            ],
            [],
            [],
        )
    )
    for i, (qname, qtype, ans, auth, add) in enumerate(ex):
        c = client(i)
        req = query(0x1000 + i, qname, qtype, edns=opt(1232))
        rcode = 3 if qname.startswith("nx.") else 0
        resp = message(
            0x1000 + i, QR | RD | RA, [question(qname, qtype)], ans, auth, [*add, opt(1232)], rcode=rcode
        )
        cap.exchange(c, SERVER, req, resp)
    return cap


def edns() -> Capture:
    """EDNS(0) options, extended rcodes, flags and the DO bit."""
    cap = Capture()
    cases = [
        (opt(4096, do=True, options=[(3, b"ns1"), (10, bytes(range(8)) + bytes(range(16)))]), 0),
        (opt(1232, options=[(8, b"\x00\x01\x18\x00\xc0\x00\x02")]), 0),
        (opt(1232, options=[(8, b"\x00\x02\x38\x00\x20\x01\x0d\xb8\x00\x00\x00")]), 0),
        (opt(1232, options=[(8, b"\x00\x00\x00\x00")]), 0),
        (opt(512, options=[(5, bytes([8, 13, 15, 99])), (6, bytes([1, 2, 9])), (7, bytes([1]))]), 0),
        (opt(512, options=[(9, struct.pack(">I", 86400)), (2, struct.pack(">II", 3600, 7200))]), 0),
        (opt(512, options=[(9, b"")]), 0),
        (
            opt(
                512,
                options=[(2, struct.pack(">I", 60)), (1, struct.pack(">HHHQI", 1, 2, 0, 123456789, 3600))],
            ),
            0,
        ),
        (
            opt(
                512, options=[(65001, b"\xde\xad"), (12, bytes(20)), (11, b"\x00\x64"), (15, b"\x00\x12oops")]
            ),
            0,
        ),
        (opt(1232, ext_rcode=1, version=1), 0),
        (opt(1232, ext_rcode=2), 3),
        (opt(1232, version=255, do=True), 0),
    ]
    for i, (o, rcode) in enumerate(cases):
        c = client(100 + i)
        req = query(0x2000 + i, "edns.example.com", A, edns=opt(4096, do=True))
        resp = message(
            0x2000 + i,
            QR | RA | AD,
            [question("edns.example.com", A)],
            [rr("edns.example.com", A, a("192.0.2.9"))],
            [],
            [o],
            rcode=rcode,
        )
        cap.exchange(c, SERVER, req, resp)
    # header flags and opcodes
    flag_cases = [
        (0, 0, QR, 0),
        (QR | AA | TC | RD | RA | AD | CD, 0, QR | AA | TC | RD | RA | AD | CD, 0),
        (RD, 4, QR | AA, 0),  # NOTIFY
        (0, 5, QR, 9),  # UPDATE, NOTAUTH
        (RD, 3, QR | RD, 4),  # opcode 3, NOTIMP
        (RD, 6, QR, 5),  # opcode 6, REFUSED
        (RD, 0, QR | RD | RA, 2),  # SERVFAIL
        (RD, 0, QR | RD | RA, 12),  # unknown rcode
        (RD, 0, QR | RD | RA, 1),  # FORMERR
    ]
    for i, (qflags, op, rflags, rcode) in enumerate(flag_cases):
        c = client(200 + i)
        q = message(0x3000 + i, qflags & ~QR, [question("flags.example.com", A)], opcode=op)
        r = message(0x3000 + i, rflags, [question("flags.example.com", A)], opcode=op, rcode=rcode)
        cap.exchange(c, SERVER, q, r)
    return cap


def names() -> Capture:
    """Question names: escapes, case, the root, public-suffix corner cases, compression."""
    cap = Capture()
    qnames: list[str | bytes] = [
        "example.com",
        "www.example.com",
        "a.b.c.www.example.co.uk",
        "co.uk",
        "uk",
        "com",
        "localhost",
        "foo.github.io",
        "github.io",
        "x.city.kawasaki.jp",
        "city.kawasaki.jp",
        "foo.kawasaki.jp",
        "kawasaki.jp",
        "WWW.Example.COM",
        "www.example.invalidtld",
        "xn--bcher-kva.example",
        "_dmarc.example.com",
        name("."),
        name([b"with space", b"example", b"com"]),
        name([b"dot.inside", b"example", b"com"]),
        name([b"semi;colon@", b"ex(am)ple", b"com"]),
        name([b"bin\x00\xff\x7f", b"example", b"com"]),
        name([b'q"uo\\te', b"example", b"com"]),
        name([b"UPPER", b"CO", b"UK"]),
        "1.0.0.127.in-addr.arpa",
        "s3.amazonaws.com",
        "bucket.s3.amazonaws.com",
        "a." * 60 + "example.com",
    ]
    for i, qn in enumerate(qnames):
        c = client(300 + i)
        qb = qn if isinstance(qn, bytes) else name(qn)
        req = message(0x4000 + i, RD, [qb + struct.pack(">HH", A, 1)])
        # the answer's owner compresses to the question
        resp = message(
            0x4000 + i,
            QR | RD | RA,
            [qb + struct.pack(">HH", A, 1)],
            [rr(struct.pack(">H", 0xC00C), A, a("192.0.2.77"))],
        )
        cap.exchange(c, SERVER, req, resp)
    # classes and odd question types
    for i, (qtype, qclass) in enumerate(
        [(16, 3), (255, 255), (0, 0), (65535, 254), (61234, 1234), (252, 1), (28, 4), (1, 2)]
    ):
        c = client(400 + i)
        q = message(0x4100 + i, RD, [question("class.example.com", qtype, qclass)])
        r = message(
            0x4100 + i,
            QR | RD,
            [question("class.example.com", qtype, qclass)],
            [rr("class.example.com", 1, a("192.0.2.1"), rclass=qclass)],
        )
        cap.exchange(c, SERVER, q, r)
    # compression: pointers to pointers, into the middle of names, inside RDATA
    c = client(500)
    q = question("www.example.com", MX)  # www at 12, example at 16, com at 24
    answers = [
        rr(struct.pack(">H", 0xC00C), MX, struct.pack(">H", 5) + b"\x04mail" + struct.pack(">H", 0xC010)),
        rr(struct.pack(">H", 0xC010), MX, struct.pack(">H", 6) + struct.pack(">H", 0xC00C)),
        rr(b"\x03sub" + struct.pack(">H", 0xC00C), CNAME, struct.pack(">H", 0xC018)),
    ]
    cap.exchange(c, SERVER, message(0x4200, RD, [q]), message(0x4200, QR | RD | RA, [q], answers))
    # IPv6 transport
    cap.exchange(
        ("2001:db8::10", 33333),
        SERVER6,
        query(0x4300, "v6.example.com", AAAA),
        message(
            0x4300,
            QR | RD | RA,
            [question("v6.example.com", AAAA)],
            [rr("v6.example.com", AAAA, bytes.fromhex("20010db8000000000000000000000010"))],
        ),
    )
    return cap


def empty_rdata() -> Capture:
    """RDLENGTH 0 and records that stop at a field boundary (miekg fills in zeros)."""
    cap = Capture()
    cases = [
        [
            rr("e.example.com", t, b"")
            for t in (A, AAAA, CNAME, MX, SOA, SRV, TXT, DS, DNSKEY, RRSIG, NSEC, NSEC3, NSEC3PARAM, PTR, NS)
        ],
        [rr("e.example.com", t, b"") for t in (HINFO, CAA, 29, 65280, 99, 255, 44, 52, 10)],
        [
            rr("p.example.com", MX, b"\x00\x0a"),
            rr("p.example.com", SOA, name("ns.example.com")),
            rr(
                "p.example.com",
                SOA,
                name("ns.example.com") + name("h.example.com") + struct.pack(">II", 1, 2),
            ),
            rr("p.example.com", SRV, struct.pack(">HH", 1, 2)),
            rr("p.example.com", DNSKEY, struct.pack(">HB", 256, 3)),
            rr("p.example.com", DS, struct.pack(">HBB", 1, 8, 2)),
            rr("p.example.com", RRSIG, struct.pack(">HBBI", A, 8, 2, 60)),
            rr("p.example.com", NSEC, name("n.example.com")),
            rr("p.example.com", NSEC3, bytes((1, 0, 0, 5))),
            rr("p.example.com", NSEC3, bytes((1, 0, 0, 0, 0))),
            rr("p.example.com", NSEC3PARAM, bytes((1, 0))),
            rr("p.example.com", CAA, b"\x00\x05issue"),
            rr("p.example.com", CAA, b"\x00"),
            rr("p.example.com", 35, struct.pack(">HH", 1, 2)),
            rr("p.example.com", 44, b"\x01"),
        ],
    ]
    for i, answers in enumerate(cases):
        c = client(600 + i)
        q = question("e.example.com", 255)
        cap.exchange(c, SERVER, message(0x5000 + i, RD, [q]), message(0x5000 + i, QR | RD | RA, [q], answers))
    return cap


def pairing() -> Capture:
    """Orphans, duplicate ids, retransmissions, EDNS mismatches, oversized answers."""
    cap = Capture()
    q = question("pair.example.com", A)
    ans = [rr("pair.example.com", A, a("192.0.2.5"))]
    # a response nobody asked for
    cap.udp(SERVER, client(700), message(0x6000, QR | RD | RA, [q], ans))
    cap.ts += 1_000_000_000
    # a query sent twice (retransmission with the same id), then answered twice
    c = client(701)
    cap.udp(c, SERVER, message(0x6001, RD, [q]))
    cap.udp(c, SERVER, message(0x6001, RD, [q]))
    cap.udp(SERVER, c, message(0x6001, QR | RD | RA, [q], ans))
    cap.udp(SERVER, c, message(0x6001, QR | RD | RA, [q], ans))
    cap.ts += 1_000_000_000
    # the same id from two clients, answered crosswise
    c1, c2 = client(702), client(703)
    cap.udp(c1, SERVER, message(0x6002, RD, [q]))
    cap.udp(c2, SERVER, message(0x6002, RD, [q]))
    cap.udp(SERVER, c2, message(0x6002, QR | RD | RA, [q], ans))
    cap.udp(SERVER, c1, message(0x6002, QR | RD | RA, [q], ans))
    cap.ts += 1_000_000_000
    # EDNS query, plain answer; plain query, EDNS answer
    c = client(704)
    cap.exchange(
        c, SERVER, message(0x6003, RD, [q], additionals=[opt(1232)]), message(0x6003, QR | RD | RA, [q], ans)
    )
    c = client(705)
    cap.exchange(
        c, SERVER, message(0x6004, RD, [q]), message(0x6004, QR | RD | RA, [q], ans, additionals=[opt(1232)])
    )
    # a 700-byte answer without EDNS, and one with it
    big = [rr("pair.example.com", TXT, txt(b"x" * 200)) for _ in range(3)]
    c = client(706)
    cap.exchange(
        c,
        SERVER,
        message(0x6005, RD, [question("pair.example.com", TXT)]),
        message(0x6005, QR | RD | RA, [question("pair.example.com", TXT)], big),
    )
    c = client(707)
    cap.exchange(
        c,
        SERVER,
        message(0x6006, RD, [question("pair.example.com", TXT)], additionals=[opt(4096)]),
        message(0x6006, QR | RD | RA, [question("pair.example.com", TXT)], big, additionals=[opt(4096)]),
    )
    # ... and an oversized answer nobody asked for
    cap.udp(SERVER, client(711), message(0x600B, QR | RD | RA, [question("pair.example.com", TXT)], big))
    cap.ts += 1_000_000_000
    # a truncated (TC) answer
    c = client(708)
    cap.exchange(
        c,
        SERVER,
        message(0x6007, RD, [question("pair.example.com", TXT)]),
        message(0x6007, QR | TC | RD | RA, [question("pair.example.com", TXT)]),
    )
    # a server on the client's port number too (53 → 53)
    cap.exchange(("192.0.2.99", 53), SERVER, message(0x6008, 0, [q]), message(0x6008, QR | AA, [q], ans))
    # a response with no question section
    c = client(709)
    cap.exchange(c, SERVER, message(0x6009, RD, [q]), message(0x6009, QR | RA, [], ans, rcode=1))
    # an answer section of only an OPT, and two OPT records
    c = client(710)
    cap.exchange(
        c,
        SERVER,
        message(0x600A, RD, [q]),
        message(0x600A, QR | RA, [q], [opt(512)], additionals=[opt(1000), opt(2000, do=True)]),
    )
    return cap


def malformed() -> Capture:
    """Messages Packetbeat cannot decode (each followed by a good exchange to show the
    decoder carries on) and ones it decodes despite lying counts."""
    cap = Capture()
    q = question("bad.example.com", A)
    good_q = message(0x7000, RD, [q])
    bad = [
        b"\x12",  # short
        struct.pack(">HHHHHH", 0x7001, QR, 0, 0, 0, 0),  # header only
        struct.pack(">HHHHHH", 0x7002, QR, 1, 0, 0, 0)
        + b"\x03bad\xc0\x0c"
        + b"\x00\x01\x00\x01",  # pointer loop
        struct.pack(">HHHHHH", 0x7003, QR, 1, 0, 0, 0) + b"\xc0\xff\x00\x01\x00\x01",  # pointer past the end
        struct.pack(">HHHHHH", 0x7004, QR, 1, 0, 0, 0)
        + b"\x40abc\x00\x00\x01\x00\x01",  # reserved label type
        struct.pack(">HHHHHH", 0x7005, QR, 2, 0, 0, 0) + q,  # qdcount lies
        message(0x7006, QR, [q], [rr("bad.example.com", A, b"\x01\x02\x03")]),  # A of 3 bytes
        message(0x7007, QR, [q], [rr("bad.example.com", A, a("1.2.3.4"))])[:-2],  # RR cut short
        message(0x7008, QR, [q], [rr("bad.example.com", MX, b"\x00\x01" + name("mx") + b"x")]),  # extra byte
        message(
            0x7009, QR, [q], [rr("bad.example.com", NSEC, name("n") + b"\x00\x00")]
        ),  # empty bitmap block
        message(0x700A, QR, [q], additionals=[opt(options=[(8, b"\x00\x03\x00\x00")])]),  # bad ECS family
        message(0x700B, QR, [q], [rr("bad.example.com", 255, b"\x01")]),  # ANY with RDATA
        message(0x700C, QR, [q], [rr("bad.example.com", MX, b"\x00\x01\xc0\x40")]),  # pointer past the record
        b"\x00" * 11,
        struct.pack(">HHHHHH", 0x700D, QR, 1, 0, 0, 0)
        + name([b"a" * 63] * 4)
        + b"\x00\x01\x00\x01",  # 256-octet name
    ]
    for i, b in enumerate(bad):
        c = client(800 + i)
        cap.udp(c, SERVER, good_q.replace(b"\x70\x00", struct.pack(">H", 0x7100 + i), 1))
        cap.udp(SERVER, c, b)
        cap.udp(
            SERVER, c, message(0x7100 + i, QR | RD | RA, [q], [rr("bad.example.com", A, a("192.0.2.200"))])
        )
        cap.ts += 1_000_000_000
    lying = [
        message(
            0x7201,
            QR | RD | RA,
            [q],
            [rr("bad.example.com", A, a("192.0.2.1"))],
            counts=(1, 65535, 65535, 65535),
        ),
        message(0x7202, QR | RD | RA, [q], [], counts=(1, 10, 0, 0)),
        message(0x7203, QR | RD | RA, [q], [rr("bad.example.com", A, a("192.0.2.1"))], counts=(1, 0, 1, 0)),
        message(0x7204, QR | RD | RA, [], [rr("bad.example.com", A, a("192.0.2.1"))], counts=(0, 1, 0, 0)),
        message(0x7205, QR | RD | RA, [q], [rr("bad.example.com", A, a("192.0.2.1"))]) + b"trailing garbage",
        message(0x7206, QR | RD | RA, [q[:-2]], counts=(1, 0, 0, 0)),  # question without class
        message(0x7207, QR | RD | RA, [q[:-4]], counts=(1, 0, 0, 0)),  # question without type
    ]
    for i, b in enumerate(lying):
        c = client(900 + i)
        ident = 0x7201 + i
        cap.exchange(c, SERVER, message(ident, RD, [q]), b)
    return cap


def tcp() -> Capture:
    """DNS over TCP: pipelining, several messages per segment, messages across segments,
    a zone transfer over several messages, broken responses."""
    cap = Capture()
    srv = ("192.0.2.53", 53)
    q1, q2, q3 = (question(f"t{i}.example.com", A) for i in (1, 2, 3))

    def ans(ident: int, qq: bytes, ip: str) -> bytes:
        return message(ident, QR | RD | RA, [qq], [rr(struct.pack(">H", 0xC00C), A, a(ip))])

    # one query, one answer
    conv = cap.tcp(("192.0.2.20", 50001), srv)
    conv.send(0, framed(message(0x8001, RD, [q1])))
    conv.send(1, framed(ans(0x8001, q1, "192.0.2.1")))
    conv.close()
    cap.add(conv)
    # three pipelined queries in one segment, answers in one segment
    conv = cap.tcp(("192.0.2.20", 50002), srv)
    conv.send(
        0,
        framed(message(0x8002, RD, [q1]))
        + framed(message(0x8003, RD, [q2]))
        + framed(message(0x8004, RD, [q3])),
    )
    conv.send(
        1,
        framed(ans(0x8003, q2, "192.0.2.2"))
        + framed(ans(0x8002, q1, "192.0.2.1"))
        + framed(ans(0x8004, q3, "192.0.2.3")),
    )
    conv.close()
    cap.add(conv)
    # a message split over tiny segments, the length prefix split too
    conv = cap.tcp(("192.0.2.20", 50003), srv, mss=3)
    conv.send(0, framed(message(0x8005, RD, [q1])))
    conv.send(1, framed(ans(0x8005, q1, "192.0.2.5")))
    conv.close()
    cap.add(conv)
    # a zone transfer over three messages
    zone = "zone.example"
    zq = question(zone, AXFR)
    soa_rr = rr(zone, SOA, soa("ns." + zone, "admin." + zone, 2024))
    recs = [rr(f"h{i}.{zone}", A, a(f"192.0.2.{i}")) for i in range(1, 10)]
    msgs = [
        message(0x8010, QR | AA, [zq], [soa_rr, rr(zone, NS, name("ns." + zone)), *recs[:3]]),
        message(0x8010, QR | AA, [], recs[3:6]),
        message(0x8010, QR | AA, [], [*recs[6:], soa_rr]),
    ]
    conv = cap.tcp(("192.0.2.21", 50004), srv)
    conv.send(0, framed(message(0x8010, 0, [zq])))
    conv.send(1, b"".join(framed(m) for m in msgs))
    conv.close()
    cap.add(conv)
    # the same over separate segments
    conv = cap.tcp(("192.0.2.21", 50005), srv)
    conv.send(0, framed(message(0x8011, 0, [zq])))
    for m in msgs:
        conv.send(1, framed(m.replace(b"\x80\x10", b"\x80\x11", 1)))
    conv.close()
    cap.add(conv)
    # IXFR, client up to date: a single SOA
    iq = question(zone, IXFR)
    conv = cap.tcp(("192.0.2.21", 50006), srv)
    conv.send(0, framed(message(0x8012, 0, [iq], authorities=[soa_rr])))
    conv.send(1, framed(message(0x8012, QR | AA, [iq], [soa_rr])))
    conv.close()
    cap.add(conv)
    # refused transfer
    conv = cap.tcp(("192.0.2.21", 50007), srv)
    conv.send(0, framed(message(0x8013, 0, [zq])))
    conv.send(1, framed(message(0x8013, QR, [zq], rcode=5)))
    conv.close()
    cap.add(conv)
    # an undecodable response, then a zero-length one
    conv = cap.tcp(("192.0.2.22", 50008), srv)
    conv.send(0, framed(message(0x8020, RD, [q1])))
    conv.send(1, framed(b"\x80\x20\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01"))
    conv.send(0, framed(message(0x8021, RD, [q2])))
    conv.send(1, b"\x00\x00")
    conv.send(0, framed(message(0x8022, RD, [q3])))
    conv.send(1, framed(ans(0x8022, q3, "192.0.2.3")))
    conv.close()
    cap.add(conv)
    # a response cut short by the server's FIN
    conv = cap.tcp(("192.0.2.22", 50009), srv)
    conv.send(0, framed(message(0x8023, RD, [q1])))
    conv.send(1, framed(ans(0x8023, q1, "192.0.2.1"))[:-3])
    conv.close()
    cap.add(conv)
    return cap


def tcp_tail() -> Capture:
    """A message followed by the start of the next in the same segment."""
    cap = Capture()
    srv = ("192.0.2.53", 53)
    q1, q2 = question("u1.example.com", A), question("u2.example.com", A)
    conv = cap.tcp(("192.0.2.30", 51001), srv)
    m1, m2 = framed(message(0x9001, RD, [q1])), framed(message(0x9002, RD, [q2]))
    conv.send(0, m1 + m2[:5])
    conv.send(0, m2[5:])
    r1 = framed(message(0x9001, QR | RD | RA, [q1], [rr("u1.example.com", A, a("192.0.2.1"))]))
    r2 = framed(message(0x9002, QR | RD | RA, [q2], [rr("u2.example.com", A, a("192.0.2.2"))]))
    conv.send(1, r1 + r2[:7])
    conv.send(1, r2[7:])
    conv.close()
    cap.add(conv)
    return cap


def query_size() -> Capture:
    """Queries over 512 bytes, with and without EDNS (padding makes them big)."""
    cap = Capture()
    q = question("size.example.com", A)
    ans = [rr("size.example.com", A, a("192.0.2.5"))]
    pad = (12, bytes(600))  # RFC 7830 padding option
    cap.exchange(
        client(1000),
        SERVER,
        message(0xA001, RD, [q], additionals=[opt(1232, options=[pad])]),
        message(0xA001, QR | RD | RA, [q], ans, additionals=[opt(1232)]),
    )
    big_plain = message(
        0xA002, RD, [q], additionals=[rr("pad.example.com", TXT, txt(b"p" * 255, b"q" * 255))]
    )
    cap.exchange(client(1001), SERVER, big_plain, message(0xA002, QR | RD | RA, [q], ans))
    return cap


CAPTURES = {
    "records": records,
    "edns": edns,
    "names": names,
    "empty_rdata": empty_rdata,
    "pairing": pairing,
    "malformed": malformed,
    "tcp": tcp,
    "tcp_tail": tcp_tail,
    "query_size": query_size,
}

__all__ = ["AA", "AD", "CAPTURES", "CD", "RA", "TC"]

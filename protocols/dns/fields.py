"""DNS transaction → event dict (Packetbeat ``protos/dns/dns.go`` ``publishTransaction``).

``dns.question.{registered_domain,top_level_domain,subdomain,etld_plus_one}`` come from
the Public Suffix List bundled with the ``publicsuffixlist`` package (ICANN and private
sections, as golang.org/x/net/publicsuffix has them). It reads its own data file and
never touches the network (``publicsuffixlist.update`` is the only code that would, and
it is not imported). Packetbeat's own quirks are kept: a name that is itself a public
suffix, or the root, with exactly one dot still gets ``registered_domain`` (and
``top_level_domain``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from publicsuffixlist import PublicSuffixList

from protocols.common.event import ERROR, OK, add_notes, add_related, transaction_event
from protocols.dns.parser import (
    AA,
    AD,
    CD,
    DO_BIT,
    QR,
    RA,
    RD,
    TC,
    Message,
    class_name,
    opcode_name,
    rcode_name,
    type_name,
)
from protocols.dns.transactions import DnsMessage, DnsTransaction

if TYPE_CHECKING:
    from protocols.dns import DnsPlugin

Record = tuple[str, int, int, int, dict[str, Any] | None]

_PSL: PublicSuffixList | None = None


def _psl() -> PublicSuffixList:
    global _PSL
    if _PSL is None:
        _PSL = PublicSuffixList(only_icann=False)
    return _PSL


@lru_cache(maxsize=8192)
def domain_parts(name: str) -> tuple[tuple[str, str], ...]:
    """The eTLD+1 family of fields for a question name (Packetbeat's rules)."""
    etld1 = None
    if name and name[0] != "." and name[-1] != "." and ".." not in name:
        etld1 = _psl().privatesuffix(name, keep_case=True)
    if etld1:
        out = [("etld_plus_one", etld1), ("registered_domain", etld1)]
        dot = etld1.find(".")
        if dot >= 0:
            out.append(("top_level_domain", etld1[dot + 1 :]))
        sub = (name[: -len(etld1)] if name.endswith(etld1) else name).rstrip(".")
        if sub:
            out.append(("subdomain", sub))
        return tuple(out)
    if name.count(".") == 1:
        tld = name.split(".")[1]
        return (
            (("top_level_domain", tld), ("registered_domain", name))
            if tld
            else (("registered_domain", name),)
        )
    return ()


_FLAG_BITS = (("AA", AA), ("TC", TC), ("RD", RD), ("RA", RA), ("AD", AD), ("CD", CD))
_FLAG_MASK = AA | TC | RD | RA | AD | CD
#: Header flag names in Packetbeat's order, for every combination of the six bits.
_FLAG_NAMES = {
    sum(bit for i, (_, bit) in enumerate(_FLAG_BITS) if n >> i & 1): tuple(
        f for i, (f, _) in enumerate(_FLAG_BITS) if n >> i & 1
    )
    for n in range(1 << len(_FLAG_BITS))
}


def _header_flags(bits: int, msg: Message) -> list[str]:
    hf = list(_FLAG_NAMES[bits & _FLAG_MASK])
    if msg.opt is not None and msg.opt[1] & DO_BIT:
        hf.append("DO")
    return hf


def _records(records: list[Record]) -> list[dict[str, Any]]:
    return [r[4] for r in records if r[4] is not None]


def dns_fields(
    msg: Message,
    include_authorities: bool,
    include_additionals: bool,
    answers: list[Record] | None = None,
    answers_count: int | None = None,
    ips: list[str] | None = None,
) -> dict[str, Any]:
    """Packetbeat's ``addDNSToMapStr`` for one message (a zone transfer passes all of its
    answers)."""
    bits = msg.bits
    d: dict[str, Any] = {
        "id": msg.id,
        "op_code": opcode_name(msg.opcode),
        "flags": {
            "authoritative": bool(bits & AA),
            "truncated_response": bool(bits & TC),
            "recursion_desired": bool(bits & RD),
            "recursion_available": bool(bits & RA),
            "authentic_data": bool(bits & AD),
            "checking_disabled": bool(bits & CD),
        },
        "response_code": rcode_name(msg.rcode),
    }
    d["header_flags"] = _header_flags(bits, msg)
    if msg.questions:
        qname, qtype, qclass = msg.questions[0]
        q = {"name": qname, "type": type_name(qtype), "class": class_name(qclass)}
        q.update(domain_parts(qname))
        d["question"] = q
    opt = msg.opt
    if opt is not None:
        udp, ttl, options = opt
        o: dict[str, Any] = {
            "do": bool(ttl & DO_BIT),
            "version": str((ttl >> 16) & 0xFF),
            "udp_size": udp,
            "ext_rcode": rcode_name((ttl >> 24) << 4),
        }
        o.update(options)
        d["opt"] = o
    if answers is None:
        answers = msg.answers
        answers_count = len(answers)
        ips = msg.ips
    d["answers_count"] = answers_count
    if answers:
        # Packetbeat writes the key for any non-empty section, even when every record in
        # it is left out (an OPT among the answers): the list is then empty.
        d["answers"] = _records(answers)
        if ips:
            d["resolved_ip"] = list(ips)
    d["authorities_count"] = len(msg.authorities)
    if include_authorities and msg.authorities:
        d["authorities"] = _records(msg.authorities)
    d["additionals_count"] = len(msg.additionals) - (1 if msg.opt is not None else 0)
    if include_additionals and msg.additionals:
        rendered = _records(msg.additionals)
        if rendered:  # ... but not for the additional section
            d["additionals"] = rendered
    return d


def to_event(plugin: DnsPlugin, txn: DnsTransaction) -> dict[str, Any]:
    cfg = plugin.config
    req, resp = txn.request, txn.response
    first = req or resp
    assert first is not None
    if req is not None:
        client, server = req.src, req.dst
    else:
        assert resp is not None
        client, server = resp.dst, resp.src
    tr = txn.transfer
    end = None
    dst_bytes = 0
    if resp is not None:
        end = resp.ts
        dst_bytes = resp.size
        if tr is not None and tr.messages > 1:
            end = tr.end_ts
            dst_bytes += tr.size
    status = ERROR
    if req is not None and resp is not None and resp.msg.rcode == 0:
        status = OK
    evt = transaction_event(
        "dns",
        txn.transport,
        status,
        first.ts,
        client,
        server,
        start=req.ts if req is not None else None,
        end=end,
        src_bytes=req.size if req is not None else 0,
        dst_bytes=dst_bytes,
    )
    head = first.msg
    evt["method"] = opcode_name(head.opcode)
    if head.questions:
        qname, qtype, qclass = head.questions[0]
        evt["query"] = f"class {class_name(qclass)}, type {type_name(qtype)}, {qname}"
        evt["resource"] = qname
    shown = resp if resp is not None else req
    assert shown is not None
    if tr is not None and resp is not None:
        answers = resp.msg.answers + tr.answers
        d = dns_fields(
            resp.msg,
            cfg.include_authorities,
            cfg.include_additionals,
            answers,
            tr.count,
            resp.msg.ips + tr.ips,
        )
    else:
        d = dns_fields(shown.msg, cfg.include_authorities, cfg.include_additionals)
    d["type"] = "answer" if resp is not None else "query"
    evt["dns"] = d
    ips = d.get("resolved_ip")
    if ips:
        add_related(evt, "ip", *ips)
    if cfg.send_request and req is not None:
        evt["request"] = message_text(req)
    if cfg.send_response and resp is not None:
        evt["response"] = message_text(resp)
    add_notes(evt, txn.notes)
    return evt


# -- request / response text (Packetbeat's dnsToString) ------------------------------------


_HEADER = frozenset({"name", "type", "class", "ttl", "data"})


def _record_text(fields: dict[str, Any] | None) -> str:
    # Packetbeat prints the string fields sorted by name, then ``data``; its numeric
    # fields (preference, serial, port ...) are not strings and never show.
    if not fields:
        return ""
    parts = [f"{k} {v}, " for k, v in sorted(fields.items()) if k not in _HEADER and isinstance(v, str)]
    if "data" in fields:
        return "".join(parts) + str(fields["data"])
    return "".join(parts)[:-2] if parts else ""


def _records_text(records: list[Record]) -> str:
    return "; ".join([_record_text(r[4]) for r in records])


def message_text(m: DnsMessage) -> str:
    msg = m.msg
    bits = msg.bits
    flags = " ".join(
        f for f, bit in (("aa", AA), ("tc", TC), ("rd", RD), ("ra", RA), ("ad", AD), ("cd", CD)) if bits & bit
    )
    parts = [
        f"ID {msg.id}; QR {'response' if bits & QR else 'query'}; OPCODE {opcode_name(msg.opcode)}; "
        f"FLAGS {flags}; RCODE {rcode_name(msg.rcode)}"
    ]
    if msg.questions:
        qs = "; ".join(f"class {class_name(c)}, type {type_name(t)}, {n}" for n, t, c in msg.questions)
        parts.append("QUESTION " + qs)
    if msg.answers:
        parts.append("ANSWER " + _records_text(msg.answers))
    if msg.authorities:
        parts.append("AUTHORITY " + _records_text(msg.authorities))
    if msg.additionals:
        parts.append("ADDITIONAL " + _records_text(msg.additionals))
    return "; ".join(parts)

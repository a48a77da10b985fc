"""memcache commands, replies, opcodes and status codes as Packetbeat names them.

Text protocol: memcached ``doc/protocol.txt``; binary protocol: the memcached wiki
"BinaryProtocolRevamped". The names in events (``command``, ``type``, ``opcode``,
``status``) are Packetbeat's (``protos/memcache/codes.go``), quirks included: the reply
``TOUCHED`` is called ``TOCHED``, ``lru_crawler crawl`` is reported as
``lru_crawler tocrawl``, binary Flush as ``delete``.
"""

from __future__ import annotations

# -- what a message's fields are made of ------------------------------------------------------

#: Text arguments, in the order the command line carries them. Each is parsed from the next
#: space-separated token and always serialized (with its zero value when it was absent).
A_KEY, A_KEYS, A_FLAGS, A_EXPTIME, A_BYTES, A_CAS, A_NOREPLY = range(7)
A_EXPTIME_OPT, A_CAS_OPT, A_DELTA, A_VALUE, A_VERBOSITY, A_SLEEP_US = range(7, 13)
A_AUTOMOVE, A_SOURCE_CLASS, A_DEST_CLASS, A_RAW, A_ERRMSG, A_STAT = range(13, 19)

#: Binary extras (big-endian, in order), and the stats list of a Stat reply.
X_FLAGS, X_EXPTIME, X_DELTA, X_INITIAL, X_VERBOSITY, X_STATS = range(6)

#: How a message becomes event fields.
K_REQ, K_DATA_REQ, K_DATA_RESP, K_UNKNOWN, K_COUNTER_RESP, K_SUB, K_BINARY = range(7)

#: What the body of a binary message is (beside a plain value).
B_DATA, B_COUNTER, B_VERSION, B_STAT = range(4)


class Cmd:
    """One command or reply kind."""

    __slots__ = ("args", "body", "code", "data", "kind", "resp_args", "sub", "typ")

    def __init__(
        self,
        typ: str,
        code: str,
        kind: int,
        args: tuple[int, ...] = (),
        *,
        data: bool = False,
        resp_args: tuple[int, ...] = (),
        body: int = B_DATA,
        sub: dict[bytes, Cmd] | None = None,
    ) -> None:
        #: Packetbeat's command classification (``Load``, ``Store``, ...).
        self.typ = typ
        #: The ``command`` field (``set``, ``VALUE``, ``<counter_op_res>``, ...).
        self.code = code
        self.kind = kind
        #: Text arguments, or the binary request's extras.
        self.args = args
        #: Binary only: the reply's extras and fields.
        self.resp_args = resp_args
        #: Text only: a data block follows the command line.
        self.data = data
        self.body = body
        self.sub = sub


# -- text protocol ----------------------------------------------------------------------------

_STORE = (A_KEY, A_FLAGS, A_EXPTIME, A_BYTES, A_NOREPLY)


def _store(code: str) -> Cmd:
    return Cmd("Store", code, K_DATA_REQ, _STORE, data=True)


def _success(code: str) -> Cmd:
    return Cmd("Success", code, K_REQ)


def _fail(code: str, *args: int) -> Cmd:
    return Cmd("Fail", code, K_REQ, args)


SLABS = {
    b"reassign": Cmd("SlabCtrl", "slabs reassign", K_REQ, (A_SOURCE_CLASS, A_DEST_CLASS)),
    b"automove": Cmd("SlabCtrl", "slabs automove", K_REQ, (A_AUTOMOVE,)),
}
LRU_CRAWLER = {
    b"enable": Cmd("LRUCrawler", "lru_crawler enable", K_REQ),
    b"disable": Cmd("LRUCrawler", "lru_crawler disable", K_REQ),
    b"sleep": Cmd("LRUCrawler", "lru_crawler sleep", K_REQ, (A_SLEEP_US,)),
    b"tocrawl": Cmd("LRUCrawler", "lru_crawler tocrawl", K_REQ, (A_VALUE,)),
    b"crawl": Cmd("LRUCrawler", "lru_crawler tocrawl", K_REQ, (A_RAW,)),
}

TEXT_REQUESTS: dict[bytes, Cmd] = {
    b"get": Cmd("Load", "get", K_REQ, (A_KEYS,)),
    b"gets": Cmd("Load", "gets", K_REQ, (A_KEYS,)),
    b"set": _store("set"),
    b"add": _store("add"),
    b"replace": _store("replace"),
    b"append": _store("append"),
    b"prepend": _store("prepend"),
    b"cas": Cmd(
        "Store", "cas", K_DATA_REQ, (A_KEY, A_FLAGS, A_EXPTIME, A_BYTES, A_CAS, A_NOREPLY), data=True
    ),
    b"incr": Cmd("Counter", "incr", K_REQ, (A_KEY, A_DELTA, A_NOREPLY)),
    b"decr": Cmd("Counter", "decr", K_REQ, (A_KEY, A_DELTA, A_NOREPLY)),
    b"touch": Cmd("Store", "touch", K_REQ, (A_KEY, A_EXPTIME, A_NOREPLY)),
    b"delete": Cmd("Delete", "delete", K_REQ, (A_KEY, A_NOREPLY)),
    b"flush_all": Cmd("Delete", "flush_all", K_REQ, (A_EXPTIME_OPT,)),
    b"slabs": Cmd("SlabCtrl", "UNKNOWN", K_SUB, sub=SLABS),
    b"lru_crawler": Cmd("LRUCrawler", "UNKNOWN", K_SUB, sub=LRU_CRAWLER),
    b"stats": Cmd("Stats", "stats", K_REQ, (A_RAW,)),
    b"verbosity": Cmd("Info", "verbosity", K_REQ, (A_VERBOSITY,)),
    b"version": Cmd("Info", "version", K_REQ),
    b"quit": Cmd("Info", "quit", K_REQ, (A_NOREPLY,)),
}

VALUE = Cmd("Load", "VALUE", K_DATA_RESP, (A_KEY, A_FLAGS, A_BYTES, A_CAS_OPT), data=True)
END = Cmd("Load", "END", K_REQ)
STAT = Cmd("Stats", "STAT", K_REQ, (A_STAT,))

TEXT_RESPONSES: dict[bytes, Cmd] = {
    b"VALUE": VALUE,
    b"END": END,
    b"STORED": _success("STORED"),
    b"NOT_STORED": _fail("NOT_STORED"),
    b"EXISTS": _success("EXISTS"),
    b"NOT_FOUND": _fail("NOT_FOUND"),
    b"TOUCHED": _success("TOCHED"),
    b"DELETED": _success("DELETED"),
    b"OK": _success("OK"),
    b"ERROR": _fail("ERROR"),
    b"CLIENT_ERROR": _fail("CLIENT_ERROR", A_ERRMSG),
    b"SERVER_ERROR": _fail("SERVER_ERROR", A_ERRMSG),
    b"BUSY": _fail("BUSY", A_ERRMSG),
    b"BADCLASS": _fail("BADCLASS", A_ERRMSG),
    b"NOSPARE": _fail("NOSPARE", A_ERRMSG),
    b"NOTFULL": _fail("NOTFULL", A_ERRMSG),
    b"UNSAFE": _fail("UNSAFE", A_ERRMSG),
    b"SAME": _fail("SAME", A_ERRMSG),
    b"STAT": STAT,
    b"VERSION": Cmd("Info", "VERSION", K_REQ),
}

#: A reply line that starts with a digit: the new value after incr/decr.
COUNTER_RESPONSE = Cmd("Counter", "<counter_op_res>", K_COUNTER_RESP)
#: Any command or reply the tables do not know (only with ``parseunknown``).
UNKNOWN = Cmd("UNKNOWN", "UNKNOWN", K_UNKNOWN)

#: Text failure replies and the transaction status they give (others: ``Error``).
CLIENT_ERRORS = frozenset({"CLIENT_ERROR", "SAME"})
SERVER_ERRORS = frozenset({"SERVER_ERROR", "BUSY", "BADCLASS", "NOSPARE", "NOTFULL", "UNSAFE"})

# -- binary protocol --------------------------------------------------------------------------

MAGIC_REQUEST = 0x80
MAGIC_RESPONSE = 0x81
HEADER_SIZE = 24

OP_GET, OP_SET, OP_QUIT, OP_NOOP, OP_GETK, OP_GETKQ, OP_STAT, OP_QUITQ = (
    0x00,
    0x01,
    0x07,
    0x0A,
    0x0C,
    0x0D,
    0x10,
    0x17,
)
OP_GATK, OP_GATKQ = 0x23, 0x24
#: Replies to these carry the key they answer.
KEYED_REPLIES = frozenset({OP_GETK, OP_GETKQ, OP_GATK, OP_GATKQ})

OPCODE_NAMES: dict[int, str] = {
    0x00: "Get",
    0x01: "Set",
    0x02: "Add",
    0x03: "Replace",
    0x04: "Delete",
    0x05: "Increment",
    0x06: "Decrement",
    0x07: "Quit",
    0x08: "Flush",
    0x09: "GetQ",
    0x0A: "No-op",
    0x0B: "Version",
    0x0C: "GetK",
    0x0D: "GetKQ",
    0x0E: "Append",
    0x0F: "Prepend",
    0x10: "Stat",
    0x11: "SetQ",
    0x12: "AddQ",
    0x13: "ReplaceQ",
    0x14: "DeleteQ",
    0x15: "IncrementQ",
    0x16: "DecrementQ",
    0x17: "QuitQ",
    0x18: "FlushQ",
    0x19: "AppendQ",
    0x1A: "PrependQ",
    0x1B: "Verbosity",
    0x1C: "Touch",
    0x1D: "GAT",
    0x1E: "GATQ",
    0x20: "SASL list mechs",
    0x21: "SASL Auth",
    0x22: "SASL Step",
    0x23: "GatK",
    0x24: "GatKQ",
    0x30: "RGet",
    0x31: "RSet",
    0x32: "RSetQ",
    0x33: "RAppend",
    0x34: "RAppendQ",
    0x35: "RPrepend",
    0x36: "RPrependQ",
    0x37: "RDelete",
    0x38: "RDeleteQ",
    0x39: "RIncr",
    0x3A: "RIncrQ",
    0x3B: "RDecr",
    0x3C: "RDecrQ",
    0x3D: "Set VBucket",
    0x3E: "Get VBucket",
    0x3F: "Del VBucket",
    0x40: "TAP Connect",
    0x41: "TAP Mutation",
    0x42: "TAP Delete",
    0x43: "TAP Flush",
    0x44: "TAP Opaque",
    0x45: "TAP VBucket Set",
    0x46: "TAP Checkpoint Start",
    0x47: "TAP Checkpoint End",
}

#: Opcodes the server may leave unanswered (only errors, and hits of GetQ/GetKQ, get a reply).
QUIET_OPCODES = frozenset(
    {0x09, 0x0D, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1E, 0x24}
    | {0x32, 0x34, 0x36, 0x38, 0x3A, 0x3C}
)

STATUS_NAMES: dict[int, str] = {
    0x00: "Success",
    0x01: "Key not found",
    0x02: "Key exists",
    0x03: "Value too large",
    0x04: "Invalid arguments",
    0x05: "Item not stored",
    0x06: "Incr/Decr on non-numeric value.",
    0x07: "The vbucket belongs to another server",
    0x20: "Authentication error",
    0x21: "Authentication continue",
    0x81: "Unknown command",
    0x82: "Out of memory",
    0x83: "Not supported",
    0x84: "Internal error",
    0x85: "Busy",
    0x86: "Temporary failure",
}


def _binary(
    typ: str, code: str, args: tuple[int, ...] = (), resp_args: tuple[int, ...] = (), body: int = B_DATA
) -> Cmd:
    return Cmd(typ, code, K_BINARY, args, resp_args=resp_args, body=body)


BINARY_UNKNOWN = _binary("UNKNOWN", "UNKNOWN")
BINARY_COMMANDS: dict[int, Cmd] = {}


def _define(opcodes: tuple[int, ...], cmd: Cmd) -> None:
    for op in opcodes:
        BINARY_COMMANDS[op] = cmd


_define((0x00, 0x0C, 0x0D, 0x09), _binary("Load", "get", resp_args=(X_FLAGS,)))
_define((0x04, 0x14), _binary("Delete", "delete"))
_define((0x08, 0x18), _binary("Delete", "delete", (X_EXPTIME,)))
_define((0x01, 0x11), _binary("Store", "set", (X_FLAGS, X_EXPTIME)))
_define((0x02, 0x12), _binary("Store", "add", (X_FLAGS, X_EXPTIME)))
_define((0x03, 0x13), _binary("Store", "replace", (X_FLAGS, X_EXPTIME)))
_define((0x0E, 0x19), _binary("Store", "append"))
_define((0x0F, 0x1A), _binary("Store", "prepend"))
_define((0x0A,), _binary("Info", "noop"))
_define((0x05, 0x15), _binary("Counter", "incr", (X_DELTA, X_INITIAL, X_EXPTIME), body=B_COUNTER))
_define((0x06, 0x16), _binary("Counter", "decr", (X_DELTA, X_INITIAL, X_EXPTIME), body=B_COUNTER))
_define((0x07, 0x17), _binary("Info", "quit"))
_define((0x0B,), _binary("Info", "version", body=B_VERSION))
_define((0x1C,), _binary("Store", "touch", (X_EXPTIME,)))
_define((0x1B,), _binary("Info", "verbosity", (X_VERBOSITY,)))
_define((0x20,), _binary("Auth", "sasl_list"))
_define((0x21,), _binary("Auth", "sasl_auth"))
_define((0x22,), _binary("Auth", "sasl_step"))
_define((0x10,), _binary("Stats", "stats", resp_args=(X_STATS,), body=B_STAT))

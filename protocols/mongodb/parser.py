"""MongoDB wire protocol: message framing and message decoders (sans-IO).

Every message starts with a 16-byte little-endian header (messageLength, requestID,
responseTo, opCode); messageLength counts the header
(https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/). Bodies are decoded
as Packetbeat 9.3 does (``protos/mongodb/mongodb_parser.go``), with BSON decoded by pymongo's
``bson``:

* OP_REPLY: cursorId, startingFrom, numberReturned and that many documents; ``$err`` or
  ``writeErrors`` in the first document make the reply an error.
* OP_QUERY: fullCollectionName, numberToSkip, numberToReturn, the query document and an
  optional returnFieldsSelector; on ``<db>.$cmd`` a known command key names the method.
* OP_UPDATE / OP_DELETE: fullCollectionName and selector (and update) rendered as JSON;
  OP_INSERT: fullCollectionName only; OP_GET_MORE: numberToReturn and cursorId;
  OP_KILL_CURSORS and the old OP_MSG (1000) as they are.
* OP_MSG (2013): flag bits and the *first* section only (a body document, or a document
  sequence whose identifier becomes ``mongodb.message``) -- exactly what Packetbeat keeps.
  Beyond Packetbeat, the command name and namespace of the body give ``method`` and
  ``resource``, and a reply with ``ok: 0``, ``writeErrors`` or ``writeConcernError`` is an
  error (see docs/differences.md, MongoDB).
* OP_COMPRESSED (2012, which Packetbeat does not know): snappy (cramjam), zlib and zstd
  (zstandard) decompressed to at most ``max_message_size`` bytes -- a message that inflates
  past its declared size is a counted bomb -- then decoded as its original opcode.

Framing follows Packetbeat: a header that cannot be a message (length below 16, an unknown
opcode) makes the parser give up on the buffered bytes and start again with the next segment
(``mongodb.bad_headers``). Beyond it, a message longer than ``max_message_size`` is skipped
without being buffered (``mongodb.oversized_messages``), and a malformed body loses that one
message only (``mongodb.malformed_messages``).
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import bson
import cramjam
import zstandard
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.errors import BSONError

from protocols.mongodb.render import clean, render
from protocols.stats import Counters

OP_REPLY = 1
OP_MSG_LEGACY = 1000
OP_UPDATE = 2001
OP_INSERT = 2002
OP_RESERVED = 2003
OP_QUERY = 2004
OP_GET_MORE = 2005
OP_DELETE = 2006
OP_KILL_CURSORS = 2007
OP_COMPRESSED = 2012
OP_MSG = 2013

#: Opcodes Packetbeat accepts as a message (OP_RESERVED is accepted, then fails to parse).
KNOWN_OPCODES = frozenset(
    {
        OP_REPLY,
        OP_MSG_LEGACY,
        OP_UPDATE,
        OP_INSERT,
        OP_RESERVED,
        OP_QUERY,
        OP_GET_MORE,
        OP_DELETE,
        OP_KILL_CURSORS,
        OP_MSG,
        OP_COMPRESSED,
    }
)

#: OP_MSG flag bits.
CHECKSUM_PRESENT = 1 << 0
MORE_TO_COME = 1 << 1

COMPRESSORS = {0: "noop", 1: "snappy", 2: "zlib", 3: "zstd"}

_HEADER = struct.Struct("<iiii")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
_I32I32 = struct.Struct("<ii")
_REPLY = struct.Struct("<iqii")
_COMPRESSED = struct.Struct("<iiB")

#: How pymongo's ``bson`` decodes for us: raw milliseconds for dates (Go accepts any), each
#: invalid UTF-8 byte kept (as a lone surrogate) instead of failing the document.
CODEC: CodecOptions[dict[str, Any]] = CodecOptions(
    unicode_decode_error_handler="surrogateescape",
    datetime_conversion=DatetimeConversion.DATETIME_MS,
)


# Command names Packetbeat recognises in an OP_QUERY on ``<db>.$cmd`` (compared without
# case; ``protos/mongodb/mongodb_structs.go``: the output of ``db.listCommands()``).
def _lower_set(words: str) -> frozenset[str]:
    return frozenset(w.lower() for w in words.split())


DATABASE_COMMANDS = _lower_set(
    """
getLastError connPoolSync top dropIndexes explain grantRolesToRole dropRole
dropAllRolesFromDatabase listCommands replSetReconfig replSetFresh writebacklisten
setParameter update replSetGetStatus find resync appendOplogNote revokeRolesFromRole compact
createUser replSetElect getPrevError serverStatus getShardVersion updateRole replSetFreeze
getCmdLineOpts applyOps count aggregate copydbsaslstart distinct repairDatabase profile
replSetStepDown findAndModify _transferMods filemd5 forceerror getnonce saslContinue clone
saslStart _getUserCacheGeneration _recvChunkCommit whatsmyuri repairCursor validate dbHash
planCacheListFilters touch mergeChunks cursorInfo _recvChunkStart unsetSharding
revokePrivilegesFromRole logout group shardConnPoolStats listDatabases buildInfo
availableQueryOptions _isSelf splitVector geoSearch dbStats connectionStatus currentOpCtx copydb
insert reIndex moveChunk cleanupOrphaned driverOIDTest isMaster getParameter replSetHeartbeat
ping listIndexes dropUser dropDatabase dataSize convertToCapped planCacheSetFilter usersInfo
grantPrivilegesToRole handshake _mergeAuthzCollections mapreduce.shardedfinish _recvChunkAbort
authSchemaUpgrade replSetGetConfig replSetSyncFrom collStats replSetMaintenance createRole
copydbgetnonce cloneCollectionAsCapped _migrateClone parallelCollectionScan connPoolStats
revokeRolesFromUser authenticate create shutdown invalidateUserCache shardingState
renameCollection replSetGetRBID splitChunk createIndexes updateUser cloneCollection logRotate
planCacheListPlans medianKey hostInfo geoNear fsync checkShardingIndex getShardMap
planCacheClear listCollections collMod _recvChunkStatus planCacheListQueryShapes delete
planCacheClearFilters mapReduce rolesInfo eval drop grantRolesToUser resetError getLog
dropAllUsersFromDatabase diagLogging replSetUpdatePosition setShardVersion replSetInitiate
"""
)


class Malformed(ValueError):
    """A message body that does not decode (short, lying lengths, bad BSON)."""


class Message:
    """One decoded message. ``event`` holds the ``mongodb.*`` fields Packetbeat sets."""

    __slots__ = (
        "command",
        "compressor",
        "documents",
        "error",
        "event",
        "is_response",
        "length",
        "method",
        "more_to_come",
        "ok_error",
        "opcode",
        "params",
        "request_id",
        "resource",
        "response_to",
        "ts",
    )

    def __init__(self, ts: int, length: int, request_id: int, response_to: int, opcode: int) -> None:
        self.ts = ts
        self.length = length
        self.request_id = request_id
        self.response_to = response_to
        self.opcode = opcode
        self.is_response = False
        self.more_to_come = False
        self.method = ""
        self.resource = ""
        self.error = ""
        #: A command reply's ``ok: 0`` message; an error only if the request was a command.
        self.ok_error = ""
        #: The request is a command (OP_QUERY on ``<db>.$cmd``, or OP_MSG).
        self.command = False
        self.compressor = ""
        self.documents: list[Any] | None = None
        self.params: dict[str, Any] | None = None
        self.event: dict[str, Any] = {}

    def awaits_reply(self) -> bool:
        op = self.opcode
        if op == OP_MSG:
            return not self.is_response and not self.more_to_come
        return op == OP_QUERY or op == OP_GET_MORE


class MessageStream:
    """Cuts one direction of a connection into messages.

    ``feed(data, ts)`` returns the messages completed by ``data`` (one TCP segment). A
    message's time is that of the segment it starts in, as in Packetbeat. At most one
    message's bytes (``max_size``) are buffered.
    """

    __slots__ = ("buf", "buf_ts", "drop_rest", "max_size", "need", "skip", "stats")

    def __init__(self, stats: Counters, max_size: int) -> None:
        self.stats = stats
        self.max_size = max_size
        #: The start of a message still short of ``need`` bytes (grown in place: linear).
        self.buf = bytearray()
        self.need = 0
        self.buf_ts = 0
        self.skip = 0
        #: After skipping, discard the rest of that segment (Packetbeat's stream drop).
        self.drop_rest = False

    @property
    def pending(self) -> int:
        return len(self.buf) + self.skip

    def feed(self, data: bytes, ts: int) -> list[Message]:
        if self.skip:
            n = len(data)
            if n <= self.skip:
                self.skip -= n
                return []
            data = data[self.skip :]
            self.skip = 0
            if self.drop_rest:
                self.drop_rest = False
                return []
        start_ts = ts
        if self.buf:
            self.buf += data
            if len(self.buf) < self.need:
                return []
            data = bytes(self.buf)
            self.buf = bytearray()
            start_ts = self.buf_ts
        out: list[Message] = []
        pos = 0
        n = len(data)
        stats = self.stats
        need = 4
        while n - pos >= 4:
            length = _I32.unpack_from(data, pos)[0]
            if length < 16:
                # Packetbeat reads the header within the stated length: an opcode of 0.
                stats.incr("mongodb.bad_headers")
                if length >= 0 and n - pos < length:
                    self.skip = length - (n - pos)
                    self.drop_rest = True
                return out
            if n - pos < 16:
                need = 16
                break
            opcode = _I32.unpack_from(data, pos + 12)[0]
            if opcode not in KNOWN_OPCODES:
                stats.incr("mongodb.bad_headers")
                stats.incr("mongodb.unknown_opcodes")
                if n - pos < length:
                    self.skip = length - (n - pos)
                    self.drop_rest = True
                return out
            if length > self.max_size:
                stats.incr("mongodb.oversized_messages")
                if n - pos < length:
                    self.skip = length - (n - pos)
                    return out
                pos += length
                start_ts = ts
                continue
            if n - pos < length:
                need = length
                break
            msg = parse_message(data, pos, length, start_ts, self.max_size, stats)
            if msg is not None:
                out.append(msg)
            pos += length
            start_ts = ts
        if pos < n:
            self.buf = bytearray(memoryview(data)[pos:])
            self.need = need
            self.buf_ts = start_ts
        return out


def parse_message(
    data: bytes, pos: int, length: int, ts: int, max_size: int, stats: Counters
) -> Message | None:
    """Decode the message ``data[pos:pos+length]`` (its header already checked)."""
    _, request_id, response_to, opcode = _HEADER.unpack_from(data, pos)
    msg = Message(ts, length, request_id, response_to, opcode)
    body = data[pos + 16 : pos + length]
    try:
        if opcode == OP_COMPRESSED:
            opcode, body, msg.compressor = _decompress(body, max_size, stats)
            msg.opcode = opcode
        decode_body(msg, opcode, body)
    except _Bomb:
        stats.incr("mongodb.decompression_bombs")
        return None
    except _DECODE_ERRORS:
        stats.incr("mongodb.malformed_messages")
        return None
    return msg


#: What a body that does not decode raises (bson's own errors included).
_DECODE_ERRORS = (BSONError, struct.error, IndexError, ValueError, TypeError, OverflowError, RecursionError)


class _Bomb(Malformed):
    """A compressed message that inflates past its declared size (or the limit)."""


def _decompress(body: bytes, max_size: int, stats: Counters) -> tuple[int, bytes, str]:
    if len(body) < 9:
        raise Malformed("short OP_COMPRESSED")
    opcode, size, compressor = _COMPRESSED.unpack_from(body, 0)
    if opcode in (OP_COMPRESSED,) or opcode not in KNOWN_OPCODES:
        raise Malformed(f"bad original opcode {opcode}")
    if size < 0 or size + 16 > max_size:
        raise _Bomb(f"declared size {size}")
    data = body[9:]
    name = COMPRESSORS.get(compressor, "unknown")
    try:
        if compressor == 0:
            out = bytes(data)
        elif compressor == 1:
            claimed = cramjam.snappy.decompress_raw_len(data)
            if claimed != size:
                raise _Bomb(f"snappy says {claimed} bytes, header {size}")
            out = bytes(cramjam.snappy.decompress_raw(data))
        elif compressor == 2:
            d = zlib.decompressobj()
            out = d.decompress(data, size + 1)
            if len(out) > size or d.unconsumed_tail:
                raise _Bomb("zlib output beyond the declared size")
        elif compressor == 3:
            reader = zstandard.ZstdDecompressor().stream_reader(data)
            chunks = []
            total = 0
            while total <= size:
                chunk = reader.read(min(size + 1 - total, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
            if total > size:
                raise _Bomb("zstd output beyond the declared size")
            out = b"".join(chunks)
        else:
            raise Malformed(f"unknown compressor {compressor}")
    except _Bomb:
        raise
    except Malformed:
        stats.incr("mongodb.decompression_errors")
        raise
    except Exception as exc:  # the libraries' own errors: corrupt input
        stats.incr("mongodb.decompression_errors")
        raise Malformed(f"decompression failed: {exc}") from exc
    if len(out) != size:
        stats.incr("mongodb.decompression_errors")
        raise Malformed(f"decompressed {len(out)} bytes, header says {size}")
    return opcode, out, name


# -- bodies --------------------------------------------------------------------------------


def _cstring(body: bytes, pos: int) -> tuple[str, int]:
    end = body.find(b"\x00", pos)
    if end < 0:
        raise Malformed("cstring not finished")
    return clean(body[pos:end].decode("utf-8", "surrogateescape")), end + 1


def _document(body: bytes, pos: int) -> tuple[dict[str, Any], int]:
    """One BSON document at ``pos`` (bounded by the message), and the position after it."""
    if len(body) - pos < 4:
        raise Malformed("no document length")
    size = _I32.unpack_from(body, pos)[0]
    end = pos + size
    if size < 5 or end > len(body):
        raise Malformed("document out of bounds")
    return bson.decode(body[pos:end], CODEC), end


def _document_str(body: bytes, pos: int) -> tuple[str, int]:
    doc, pos = _document(body, pos)
    return render(doc), pos


def decode_body(msg: Message, opcode: int, body: bytes) -> None:
    decoder = _DECODERS.get(opcode)
    if decoder is None:
        raise Malformed(f"opcode {opcode} has no body decoder")
    decoder(msg, body)


def _reply(msg: Message, body: bytes) -> None:
    msg.is_response = True
    if len(body) < 20:
        raise Malformed("short OP_REPLY")
    _flags, cursor_id, starting_from, number_returned = _REPLY.unpack_from(body, 0)
    ev = msg.event
    ev["cursorId"] = cursor_id
    ev["startingFrom"] = starting_from
    ev["numberReturned"] = number_returned
    if number_returned < 0:
        raise Malformed("negative numberReturned")
    docs: list[Any] = []
    pos = 20
    for i in range(number_returned):
        doc, pos = _document(body, pos)
        if i == 0:
            if "$err" in doc:
                msg.error = render(doc["$err"])
            if "writeErrors" in doc:
                msg.error = render(doc["writeErrors"])
            msg.ok_error = _ok_error(doc)
        docs.append(doc)
    msg.documents = docs


def _msg_legacy(msg: Message, body: bytes) -> None:
    msg.method = "msg"
    msg.event["message"], _ = _cstring(body, 0)


def _update(msg: Message, body: bytes) -> None:
    msg.method = "update"
    ev = msg.event
    ev["fullCollectionName"], pos = _cstring(body, 4)
    pos += 4  # flags
    ev["selector"], pos = _document_str(body, pos)
    ev["update"], pos = _document_str(body, pos)


def _insert(msg: Message, body: bytes) -> None:
    msg.method = "insert"
    if len(body) < 4:
        raise Malformed("short OP_INSERT")
    msg.event["fullCollectionName"], _ = _cstring(body, 4)


def _is_database_command(key: str, value: Any) -> bool:
    if key.lower() not in DATABASE_COMMANDS:
        return False
    # A string (the collection) or the double 1 (as the mongo shell sends it).
    return (isinstance(value, str)) or (type(value) is float and value == 1)


def _query(msg: Message, body: bytes) -> None:
    if len(body) < 4:
        raise Malformed("short OP_QUERY")
    name, pos = _cstring(body, 4)
    ev = msg.event
    ev["fullCollectionName"] = name
    if len(body) - pos < 8:
        raise Malformed("short OP_QUERY")
    ev["numberToSkip"], ev["numberToReturn"] = _I32I32.unpack_from(body, pos)
    pos += 8
    # Packetbeat keeps only the error of the *last* document read: a broken query followed
    # by a good returnFieldsSelector passes (with an empty query).
    query: dict[str, Any] | None = None
    err: Exception | None = None
    try:
        query, pos = _document(body, pos)
    except (Malformed, BSONError) as exc:
        err = exc
        pos = _skip_document(body, pos)
    if pos < len(body):
        try:
            ev["returnFieldsSelector"], pos = _document_str(body, pos)
            err = None
        except (Malformed, BSONError) as exc:
            err = exc
    if name.endswith(".$cmd"):
        msg.command = True
        msg.method = "otherCommand"
        msg.resource = name
        if query:
            for key, val in list(query.items()):
                if _is_database_command(key, val):
                    if isinstance(val, str):
                        msg.resource = name[:-4] + clean(val)
                    del query[key]
                    msg.method = key
    else:
        msg.method = "find"
        msg.resource = name
    msg.params = query
    if err is not None:
        raise Malformed(str(err))


def _skip_document(body: bytes, pos: int) -> int:
    """Where Packetbeat's reader stands after a document that failed to decode."""
    if len(body) - pos < 4:
        return len(body) + 1
    size = _I32.unpack_from(body, pos)[0]
    return pos + size if size >= 0 else len(body) + 1


def _get_more(msg: Message, body: bytes) -> None:
    msg.method = "getMore"
    name, pos = _cstring(body, 4)
    if len(body) - pos < 12 or len(body) < 4:
        raise Malformed("short OP_GET_MORE")
    ev = msg.event
    ev["fullCollectionName"] = name
    ev["numberToReturn"] = _I32.unpack_from(body, pos)[0]
    ev["cursorId"] = _I64.unpack_from(body, pos + 4)[0]


def _delete(msg: Message, body: bytes) -> None:
    msg.method = "delete"
    ev = msg.event
    ev["fullCollectionName"], pos = _cstring(body, 4)
    pos += 4  # flags
    ev["selector"], pos = _document_str(body, pos)


def _kill_cursors(msg: Message, body: bytes) -> None:
    msg.method = "killCursors"


def _op_msg(msg: Message, body: bytes) -> None:
    msg.method = "msg"
    msg.command = True
    # Packetbeat's rule: a message answering something (responseTo > 0) is a reply.
    if msg.response_to > 0:
        msg.is_response = True
    if len(body) < 5:
        raise Malformed("short OP_MSG")
    flags = _I32.unpack_from(body, 0)[0]
    msg.more_to_come = bool(flags & MORE_TO_COME)
    end = len(body) - 4 if flags & CHECKSUM_PRESENT else len(body)
    kind = body[4]
    pos = 5
    cmd: dict[str, Any] | None = None
    if kind == 0:
        doc, pos = _document(body, pos)
        msg.documents = [doc]
        cmd = doc
    elif kind == 1:
        start = pos
        if len(body) - pos < 4:
            raise Malformed("short document sequence")
        size = _I32.unpack_from(body, pos)[0]
        msg.event["message"], pos = _cstring(body, pos + 4)
        docs = []
        while pos < start + size:
            doc, pos = _document(body, pos)
            docs.append(doc)
        msg.documents = docs
        cmd = _find_body(body, start + size, end)
    elif kind == 2:
        pass  # "internal purposes" section: ignored, as by Packetbeat
    else:
        raise Malformed(f"unknown OP_MSG section kind {kind}")
    if cmd is None:
        return
    if msg.is_response:
        _reply_errors(msg, cmd)
    else:
        _name_command(msg, cmd)


def _find_body(body: bytes, pos: int, end: int) -> dict[str, Any] | None:
    """The kind-0 section after a leading document sequence (None if it does not decode)."""
    try:
        while pos < end:
            kind = body[pos]
            if kind == 0:
                return _document(body, pos + 1)[0]
            if kind != 1:
                return None
            pos += 1 + _I32.unpack_from(body, pos + 1)[0]
    except (Malformed, BSONError, struct.error, IndexError):
        return None
    return None


#: OP_MSG commands whose value is a collection name (the rest name a user, a replica set ...).
COLLECTION_COMMANDS = _lower_set(
    """
find insert update delete aggregate count distinct findAndModify create drop createIndexes
listIndexes dropIndexes deleteIndexes collMod killCursors mapReduce collStats validate compact
convertToCapped cloneCollectionAsCapped reIndex geoNear geoSearch planCacheClear
planCacheClearFilters planCacheListFilters planCacheSetFilter listSearchIndexes
createSearchIndexes dropSearchIndex updateSearchIndex analyzeShardKey
"""
)
#: OP_MSG commands whose value is a whole namespace (``db.collection``).
NAMESPACE_COMMANDS = _lower_set("renameCollection shardCollection dataSize splitVector splitChunk moveChunk")


def _name_command(msg: Message, cmd: dict[str, Any]) -> None:
    """``method`` = the command (the body's first key); ``resource`` = ``<$db>.<collection>``
    for commands on a collection, else ``<$db>.$cmd`` (what the legacy OP_QUERY form shows)."""
    if not cmd:
        return
    name, value = next(iter(cmd.items()))
    msg.method = clean(name)
    db = cmd.get("$db")
    db = clean(db) if isinstance(db, str) else ""
    lname = name.lower()
    coll = None
    if isinstance(value, str) and value:
        if lname in NAMESPACE_COMMANDS:
            msg.resource = clean(value)
            return
        if lname in COLLECTION_COMMANDS:
            coll = clean(value)
    elif lname == "getmore":
        c = cmd.get("collection")
        coll = clean(c) if isinstance(c, str) and c else None
    if coll is None:
        msg.resource = f"{db}.$cmd" if db else ""
    else:
        msg.resource = f"{db}.{coll}" if db else coll


def _ok_error(doc: dict[str, Any]) -> str:
    ok = doc.get("ok", 1)
    if isinstance(ok, (int, float)) and not ok:
        errmsg = doc.get("errmsg")
        if isinstance(errmsg, str) and errmsg:
            return clean(errmsg)
        code = doc.get("codeName", doc.get("code"))
        return f"command failed: {code}" if code is not None else "command failed"
    return ""


def _reply_errors(msg: Message, doc: dict[str, Any]) -> None:
    msg.ok_error = _ok_error(doc)
    if "writeConcernError" in doc:
        msg.error = render(doc["writeConcernError"])
    if "writeErrors" in doc:
        msg.error = render(doc["writeErrors"])


def _reserved(msg: Message, body: bytes) -> None:
    raise Malformed("OP_RESERVED")


_DECODERS = {
    OP_REPLY: _reply,
    OP_MSG_LEGACY: _msg_legacy,
    OP_UPDATE: _update,
    OP_INSERT: _insert,
    OP_RESERVED: _reserved,
    OP_QUERY: _query,
    OP_GET_MORE: _get_more,
    OP_DELETE: _delete,
    OP_KILL_CURSORS: _kill_cursors,
    OP_MSG: _op_msg,
}

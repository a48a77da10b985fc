"""Redis command names: which words make up ``method`` and which argument is ``resource``.

Packetbeat (``redis_parse.go``) takes the first word as the method when it is a known
command, else the first two words when they form a known command (``CONFIG GET``),
and the next argument as the resource. Its table stops at Redis 3; this one adds the
commands of later versions so modern traffic gets the same treatment. A client command
that is in neither table is still a request here (the direction says so) and its first
word becomes the method.
"""

from __future__ import annotations

# Packetbeat's one-word commands, then the ones newer Redis versions added.
_ONE_WORD = """
APPEND AUTH BGREWRITEAOF BGSAVE BITCOUNT BITOP BITPOS BLPOP BRPOP BRPOPLPUSH DBSIZE DECR
DECRBY DEL DISCARD DUMP ECHO EVAL EVALSHA EXEC EXISTS EXPIRE EXPIREAT FLUSHALL FLUSHDB GET
GETBIT GETRANGE GETSET HDEL HEXISTS HGET HGETALL HINCRBY HINCRBYFLOAT HKEYS HLEN HMGET HMSET
HSCAN HSET HSETINX HVALS INCR INCRBY INCRBYFLOAT INFO KEYS LASTSAVE LINDEX LINSERT LLEN LPOP
LPUSH LPUSHX LRANGE LREM LSET LTRIM MGET MIGRATE MONITOR MOVE MSET MSETNX MULTI OBJECT PERSIST
PEXPIRE PEXPIREAT PFADD PFCOUNT PFMERGE PING PSETEX PSUBSCRIBE PTTL PUBLISH PUBSUB PUNSUBSCRIBE
QUIT RANDOMKEY RENAME RENAMENX RESTORE RPOP RPOPLPUSH RPUSH RPUSHX SADD SAVE SCAN SCARD SDIFF
SDIFFSTORE SELECT SET SETBIT SETEX SETNX SETRANGE SHUTDOWN SINTER SINTERSTORE SISMEMBER SLAVEOF
SLOWLOG SMEMBERS SMOVE SORT SPOP SRANDMEMBER SREM SSCAN STRLEN SUBSCRIBE SUNION SUNIONSTORE
SYNC TIME TTL TYPE UNSUBSCRIBE UNWATCH WATCH ZADD ZCARD ZCOUNT ZINCRBY ZINTERSTORE ZRANGE
ZRANGEBYSCORE ZRANK ZREM ZREMRANGEBYLEX ZREMRANGEBYRANK ZREMRANGEBYSCORE ZREVRANGE
ZREVRANGEBYSCORE ZREVRANK ZSCAN ZSCORE ZUNIONSTORE
ASKING BITFIELD BITFIELD_RO BLMOVE BLMPOP BZMPOP BZPOPMAX BZPOPMIN COPY EVALSHA_RO EVAL_RO
EXPIRETIME FAILOVER FCALL FCALL_RO GEOADD GEODIST GEOHASH GEOPOS GEORADIUS GEORADIUSBYMEMBER
GEORADIUSBYMEMBER_RO GEORADIUS_RO GEOSEARCH GEOSEARCHSTORE GETDEL GETEX HELLO HEXPIRE
HEXPIREAT HEXPIRETIME HGETDEL HGETEX HPERSIST HPEXPIRE HPEXPIREAT HPEXPIRETIME HPTTL
HRANDFIELD HSETEX HSETNX HSTRLEN HTTL LCS LMOVE LMPOP LOLWUT LPOS PEXPIRETIME PFDEBUG
PFSELFTEST PSYNC READONLY READWRITE REPLCONF REPLICAOF RESET ROLE SINTERCARD SMISMEMBER
SORT_RO SPUBLISH SSUBSCRIBE SUNSUBSCRIBE SWAPDB TOUCH UNLINK WAIT WAITAOF XACK XADD XAUTOCLAIM
XCLAIM XDEL XLEN XPENDING XRANGE XREAD XREADGROUP XREVRANGE XSETID XTRIM ZDIFF ZDIFFSTORE
ZINTER ZINTERCARD ZLEXCOUNT ZMPOP ZMSCORE ZPOPMAX ZPOPMIN ZRANDMEMBER ZRANGEBYLEX ZRANGESTORE
ZREVRANGEBYLEX ZUNION
"""

# Packetbeat's two-word commands.
_TWO_WORD = """
CLIENT GETNAME|CLIENT KILL|CLIENT LIST|CLIENT PAUSE|CLIENT SETNAME|CONFIG GET|CONFIG RESETSTAT|
CONFIG REWRITE|CONFIG SET|DEBUG OBJECT|DEBUG SEGFAULT|SCRIPT EXISTS|SCRIPT FLUSH|SCRIPT KILL|
SCRIPT LOAD
"""

#: Container commands whose first argument is a subcommand (``CLIENT SETINFO``): the
#: method is both words whatever the subcommand. OBJECT, PUBSUB and SLOWLOG are left out:
#: Packetbeat knows them as one-word commands with the subcommand as the resource.
CONTAINERS = frozenset(
    b"ACL CLIENT CLUSTER COMMAND CONFIG DEBUG FUNCTION LATENCY MEMORY MODULE SCRIPT XGROUP XINFO".split()
)

ONE_WORD = frozenset(w.encode() for w in _ONE_WORD.split())
TWO_WORD = frozenset(w.strip().encode() for w in _TWO_WORD.replace("\n", "").split("|"))

#: Subscribe-family commands: their replies are confirmations, one per channel.
SUBSCRIBE_FAMILY = {
    b"SUBSCRIBE": b"subscribe",
    b"PSUBSCRIBE": b"psubscribe",
    b"SSUBSCRIBE": b"ssubscribe",
    b"UNSUBSCRIBE": b"unsubscribe",
    b"PUNSUBSCRIBE": b"punsubscribe",
    b"SUNSUBSCRIBE": b"sunsubscribe",
}
#: Push message kinds that are never a reply to a request.
PUSH_KINDS = frozenset({b"message", b"pmessage", b"smessage", b"invalidate"})


def split_command(parts: list[bytes]) -> tuple[bytes, bytes]:
    """(method, resource) for a request's parts (method upper-cased, as Packetbeat)."""
    first = parts[0].upper()
    n = len(parts)
    if first in ONE_WORD:
        return first, parts[1] if n > 1 else b""
    if n > 1:
        two = first + b" " + parts[1].upper()
        if first in CONTAINERS or two in TWO_WORD:
            return two, parts[2] if n > 2 else b""
    return first, parts[1] if n > 1 else b""

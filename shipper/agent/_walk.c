/* The part of a replay's walk over a mapped capture that needs no Python.

Every worker of a multi-process replay walks every record of the capture and keeps the
ones whose connection hashes to it (``shipper/agent/workers.py``, ``own_mapped``). In Python
the walk costs about 0.8 microseconds per record, most of it for records the worker then
ignores: with two workers, about a tenth of each worker's time. ``Walker.own`` walks the
records in C up to the first one the Python loop must look at and returns the worker's
packets with their positions; the Python loop then handles that record exactly as it would
without this module. ``Walker.chunk`` cuts the file into ``Decoder.feed_many`` chunks for a
single process; with flows off, into ``Decoder.feed_parsed`` chunks, whose TCP segments come
parsed as ``feed_many``'s inline path would hand them to the TCP tracker. The module is optional (``WIREBEAT_PURE_PYTHON=1``, or a machine without a
compiler, gives the Python loops alone, with the same results): written by hand because it
is a loop over bytes and nothing else, where a Python step per record is the cost.

A worker's walk stops before a record that is not whole, or whose header and 48 bytes of
frame are not in the file; whose time is at or after the next tick; that is not untagged
Ethernet, IPv4 without options, not a fragment, TCP or UDP, 38 bytes or more (the Python
loop hashes those itself). Of the others it keeps those whose connection hashes to the
worker (``workers._mix``; the tests compare the two), but pure ACKs when they are skipped
(TCP, no SYN/FIN/RST, the IP total length equal to the headers' and within the captured
bytes: ``Decoder.feed_many`` would only count them).
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define MAX_RECORD 262144 /* capture.pcapfile.MAX_RECORD */

static const uint64_t K1 = 0x9E3779B97F4A7C15ULL;
static const uint64_t K2 = 0xC2B2AE3D27D4EB4FULL;

typedef struct {
    PyObject_HEAD
    Py_buffer view;
    int held;
    uint64_t n;
    uint64_t idx;
    int skip_acks;
    long long mult;
    int big_endian;
    unsigned long linktype;
    int parse_tcp;
    Py_ssize_t end; /* the walks stop here: the buffer's length, or less (shrink) */
} Walker;

static inline uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
}

static inline uint32_t be16(const unsigned char *p) { return (uint32_t)p[0] << 8 | (uint32_t)p[1]; }

/* The address and port objects of the segments handed to the TCP tracker, made once and
   shared: a replay sees few distinct addresses and ports, and the tracker hashes them into
   its connection keys for every segment (a bytes object computes its hash once). Bounded: a
   direct-mapped table of addresses (a collision replaces the entry) and one slot per port. */
#define ADDR_SLOTS 4096
static PyObject *addr_cache[ADDR_SLOTS];
static uint32_t addr_keys[ADDR_SLOTS];
static PyObject *port_cache[65536];

static PyObject *cached_addr(const unsigned char *a) {
    uint32_t k = be32(a);
    uint32_t slot = (uint32_t)((k * 2654435761u) >> 20) & (ADDR_SLOTS - 1);
    PyObject *o = addr_cache[slot];
    if (o == NULL || addr_keys[slot] != k) {
        PyObject *n = PyBytes_FromStringAndSize((const char *)a, 4);
        if (n == NULL)
            return NULL;
        Py_XDECREF(o);
        addr_cache[slot] = o = n;
        addr_keys[slot] = k;
    }
    Py_INCREF(o);
    return o;
}

static PyObject *cached_port(uint32_t port) {
    PyObject *o = port_cache[port];
    if (o == NULL) {
        o = PyLong_FromUnsignedLong(port);
        if (o == NULL)
            return NULL;
        port_cache[port] = o;
    }
    Py_INCREF(o);
    return o;
}

/* A record header field in the file's byte order. */
static inline uint32_t rd32(const unsigned char *p, int big_endian) { return big_endian ? be32(p) : le32(p); }

static uint64_t mix(uint64_t addrs, uint64_t ports) {
    uint64_t h = addrs * K1 + ports * K2;
    return h ^ (h >> 31) ^ (h >> 47);
}

static int Walker_init(Walker *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"buffer", "workers",  "index",     "skip_acks", "mult",
                             "big_endian", "linktype", "parse_tcp", NULL};
    PyObject *buf;
    unsigned long long n, idx;
    int skip_acks, big_endian = 0, parse_tcp = 0;
    long long mult;
    unsigned long linktype = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OKKpL|pkp", kwlist, &buf, &n, &idx, &skip_acks, &mult, &big_endian,
                                     &linktype, &parse_tcp))
        return -1;
    if (n == 0 || idx >= n) {
        PyErr_SetString(PyExc_ValueError, "index must be below workers (at least one)");
        return -1;
    }
    if (mult < 1 || mult > 1000000000LL) {
        PyErr_SetString(PyExc_ValueError, "mult out of range");
        return -1;
    }
    if (self->held) {
        PyBuffer_Release(&self->view);
        self->held = 0;
    }
    if (PyObject_GetBuffer(buf, &self->view, PyBUF_SIMPLE) < 0)
        return -1;
    self->held = 1;
    self->end = self->view.len;
    self->n = n;
    self->idx = idx;
    self->skip_acks = skip_acks;
    self->mult = mult;
    self->big_endian = big_endian;
    self->linktype = linktype;
    self->parse_tcp = parse_tcp;
    return 0;
}

static void Walker_dealloc(Walker *self) {
    if (self->held)
        PyBuffer_Release(&self->view);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* shrink(end): walk no further than ``end`` (the file was truncated under the mapping). */
static PyObject *Walker_shrink(Walker *self, PyObject *arg) {
    Py_ssize_t end = PyLong_AsSsize_t(arg);
    if (end == -1 && PyErr_Occurred())
        return NULL;
    if (end < 0) {
        PyErr_SetString(PyExc_ValueError, "negative end");
        return NULL;
    }
    if (end < self->end)
        self->end = end;
    Py_RETURN_NONE;
}

static PyObject *Walker_release(Walker *self, PyObject *Py_UNUSED(ignored)) {
    if (self->held) {
        PyBuffer_Release(&self->view);
        self->held = 0;
    }
    Py_RETURN_NONE;
}

/* Whether Decoder.feed_many's inline path takes a whole frame ``f`` of ``incl`` captured
bytes whose IPv4 header starts at ``l2`` (14: Ethernet, 16: Linux cooked): TCP over IPv4
without options, not a fragment, both headers' fixed part captured. */
static inline int inline_tcp4(const unsigned char *f, uint32_t incl, uint32_t l2) {
    return incl >= l2 + 40 && f[l2 - 2] == 0x08 && f[l2 - 1] == 0x00 && f[l2] == 0x45 && f[l2 + 9] == 6 &&
           (be16(f + l2 + 6) & 0x3FFF) == 0;
}

/* The pure-ACK test of that path: no SYN/FIN/RST, no payload, nothing cut short. */
static inline int pure_ack(const unsigned char *f, uint32_t incl, uint32_t l2) {
    if (!inline_tcp4(f, incl, l2))
        return 0;
    unsigned doff = f[l2 + 32], flags = f[l2 + 33];
    unsigned hl = 20 + ((doff >> 4) << 2);
    return (flags & 0x07) == 0 && doff >= 0x50 && be16(f + l2 + 2) == hl && hl <= incl - l2;
}

/* The record at ``r`` (``left`` >= 16 bytes of the file from there): 1 and its captured and
   wire lengths and time in nanoseconds if it is whole (its captured length is possible and
   its frame is in the file), else 0 (PcapMap.finish describes why the walk stopped). */
static inline int whole_record(const unsigned char *r, Py_ssize_t left, int be, long long mult, uint32_t *incl,
                               uint32_t *wire, long long *ts) {
    *incl = rd32(r + 8, be);
    if (*incl > MAX_RECORD || (Py_ssize_t)*incl > left - 16)
        return 0;
    *wire = rd32(r + 12, be);
    /* seconds < 2**32 and fraction * mult < 2**62: no overflow */
    *ts = (long long)rd32(r, be) * 1000000000LL + (long long)rd32(r + 4, be) * mult;
    return 1;
}

/* The arguments of own() and chunk(): ``nargs`` non-negative sizes (the first an offset),
   then the next tick's time (clamped to the long long range). 0, or -1 with an exception. */
static int parse_args(Walker *self, PyObject *const *args, Py_ssize_t nargs, Py_ssize_t want, const char *usage,
                      Py_ssize_t *sizes, long long *next_tick) {
    if (nargs != want + 1) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    if (!self->held) {
        PyErr_SetString(PyExc_ValueError, "released");
        return -1;
    }
    for (Py_ssize_t i = 0; i < want; i++) {
        sizes[i] = PyLong_AsSsize_t(args[i]);
        if (sizes[i] == -1 && PyErr_Occurred())
            return -1;
    }
    if (sizes[0] < 0) {
        PyErr_SetString(PyExc_ValueError, "negative offset");
        return -1;
    }
    int overflow = 0;
    *next_tick = PyLong_AsLongLongAndOverflow(args[want], &overflow);
    if (*next_tick == -1 && PyErr_Occurred())
        return -1;
    if (overflow > 0)
        *next_tick = LLONG_MAX;
    else if (overflow < 0)
        *next_tick = LLONG_MIN;
    return 0;
}

/* A packet as capture sources yield them: (ts, linktype, frame, wire_len); appended to
   ``out`` (0), or -1 with an exception. */
static int append_packet(PyObject *out, long long ts, PyObject *linktype, const unsigned char *frame, uint32_t incl,
                         uint32_t wire) {
    PyObject *item =
        Py_BuildValue("(LOy#k)", ts, linktype, (const char *)frame, (Py_ssize_t)incl, (unsigned long)wire);
    if (item == NULL)
        return -1;
    int rc = PyList_Append(out, item);
    Py_DECREF(item);
    return rc;
}

/* Decoder.feed_many's inline path, in C, for a whole frame ``f`` of ``incl`` captured bytes
   whose IPv4 header starts at ``l2`` (14 or 16): a TCP segment over IPv4 without options,
   not a fragment, with sane lengths is appended to ``out`` as the arguments feed_many would
   give the TCP tracker, ``(ts, src, dst, sport, dport, seq, ack, flags, payload, missing)``
   (1); a pure ACK before ``next_tick``, which it would only count, is left out (2); anything
   else is for the caller to append whole (0); -1 with an exception. */
static int append_segment(PyObject *out, long long ts, const unsigned char *f, uint32_t incl, uint32_t l2,
                          long long next_tick) {
    if (!inline_tcp4(f, incl, l2))
        return 0;
    uint32_t end = l2 + be16(f + l2 + 2), p = l2 + 20, missing = 0;
    if (end < p + 20)
        return 0;
    if (end > incl) {
        missing = end - incl;
        end = incl;
    }
    uint32_t doff = (uint32_t)(f[l2 + 32] >> 4) << 2;
    if (doff < 20 || p + doff > end)
        return 0;
    unsigned flags = f[l2 + 33];
    if (p + doff == end && !(flags & 0x07) && !missing)
        return ts < next_tick ? 2 : 0; /* a pure ACK: feed_many ticks on it if one is due */
    PyObject *item = PyTuple_New(10);
    if (item == NULL)
        return -1;
    PyObject *v;
#define SET(i, expr)                                                                                                   \
    if ((v = (expr)) == NULL) {                                                                                        \
        Py_DECREF(item);                                                                                               \
        return -1;                                                                                                     \
    }                                                                                                                  \
    PyTuple_SET_ITEM(item, i, v)
    SET(0, PyLong_FromLongLong(ts));
    SET(1, cached_addr(f + l2 + 12));
    SET(2, cached_addr(f + l2 + 16));
    SET(3, cached_port(be16(f + l2 + 20)));
    SET(4, cached_port(be16(f + l2 + 22)));
    SET(5, PyLong_FromUnsignedLong((unsigned long)be32(f + l2 + 24)));
    SET(6, PyLong_FromUnsignedLong((unsigned long)be32(f + l2 + 28)));
    SET(7, PyLong_FromUnsignedLong(flags));
    SET(8, PyBytes_FromStringAndSize((const char *)(f + p + doff), (Py_ssize_t)(end - p - doff)));
    SET(9, PyLong_FromUnsignedLong(missing));
#undef SET
    int rc = PyList_Append(out, item);
    Py_DECREF(item);
    return rc < 0 ? -1 : 1;
}

/* own(off, limit, most, next_tick) -> (off, walked, positions, packets): walk at most
   ``limit`` records from ``off``, keeping this worker's packets (not its pure ACKs when
   they are skipped) with their positions (records walked before each), at most ``most``
   of them; stop before the first record the Python loop must look at itself. With
   ``parse_tcp`` (and pure ACKs skipped: flows off) the TCP segments of feed_many's inline
   path come parsed, for Decoder.feed_parsed (see append_segment). */
static PyObject *Walker_own(Walker *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t sizes[3];
    long long next_tick;
    if (parse_args(self, args, nargs, 3, "own(off, limit, most, next_tick)", sizes, &next_tick) < 0)
        return NULL;
    if (self->big_endian || self->linktype != 1) {
        PyErr_SetString(PyExc_ValueError, "own() walks little-endian Ethernet captures only");
        return NULL;
    }
    Py_ssize_t off = sizes[0], limit = sizes[1], most = sizes[2];
    const unsigned char *buf = (const unsigned char *)self->view.buf;
    const Py_ssize_t fend = self->end;
    const uint64_t n = self->n, idx = self->idx;
    const long long mult = self->mult;
    const int skip_acks = self->skip_acks;
    const int parse_tcp = skip_acks && self->parse_tcp;
    PyObject *positions = PyList_New(0), *packets = PyList_New(0), *one = PyLong_FromLong(1);
    if (positions == NULL || packets == NULL || one == NULL)
        goto fail;
    Py_ssize_t walked = 0, got = 0;
    while (walked < limit && got < most && off <= fend - 64) {
        const unsigned char *r = buf + off;
        uint32_t incl, wire;
        long long ts;
        if (!whole_record(r, fend - off, 0, mult, &incl, &wire, &ts))
            break;
        if (ts >= next_tick)
            break;
        const unsigned char *f = r + 16;
        unsigned proto = f[23];
        if (!(f[12] == 0x08 && f[13] == 0x00 && incl >= 38 && f[14] == 0x45 && (be16(f + 20) & 0x3FFF) == 0 &&
              (proto == 6 || proto == 17)))
            break;
        uint64_t h = mix((uint64_t)(be32(f + 26) ^ be32(f + 30)), (uint64_t)(be16(f + 34) ^ be16(f + 36)));
        if (h % n == idx && !(skip_acks && pure_ack(f, incl, 14))) {
            PyObject *at = PyLong_FromSsize_t(walked);
            if (at == NULL)
                goto fail;
            int rc = PyList_Append(positions, at);
            Py_DECREF(at);
            if (rc < 0)
                goto fail;
            /* (a pure ACK is not left here: it was skipped above, or is kept with flows on) */
            rc = parse_tcp ? append_segment(packets, ts, f, incl, 14, next_tick) : 0;
            if (rc < 0 || (rc != 1 && append_packet(packets, ts, one, f, incl, wire) < 0))
                goto fail;
            got++;
        }
        off += 16 + (Py_ssize_t)incl;
        walked++;
    }
    Py_DECREF(one);
    return Py_BuildValue("(nnNN)", off, walked, positions, packets);
fail:
    Py_XDECREF(positions);
    Py_XDECREF(packets);
    Py_XDECREF(one);
    return NULL;
}

/* chunk(off, limit, most, next_tick) -> (off, walked, packets): the next ``most`` packets
   for Decoder.feed_many, at most ``limit`` records walked, from ``off`` to the first record
   that is not whole (the caller's PcapMap.finish describes it) or the end, in either byte
   order and for any link type. With ``skip_acks`` (one worker of one: every record is its
   own), the pure ACKs of Ethernet or Linux cooked frames before ``next_tick`` are walked
   over and not returned: feed_many would only count them. */
static PyObject *Walker_chunk(Walker *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t sizes[3];
    long long next_tick;
    if (parse_args(self, args, nargs, 3, "chunk(off, limit, most, next_tick)", sizes, &next_tick) < 0)
        return NULL;
    Py_ssize_t off = sizes[0], limit = sizes[1], most = sizes[2];
    const unsigned char *buf = (const unsigned char *)self->view.buf;
    const Py_ssize_t fend = self->end;
    const long long mult = self->mult;
    const int be = self->big_endian;
    const uint32_t l2 = self->linktype == 1 ? 14 : self->linktype == 113 ? 16 : 0;
    const int skip_acks = self->skip_acks && self->n == 1 && l2;
    const int parse_tcp = skip_acks && self->parse_tcp;
    PyObject *packets = PyList_New(0), *lt = PyLong_FromUnsignedLong(self->linktype);
    if (packets == NULL || lt == NULL)
        goto fail;
    Py_ssize_t walked = 0, got = 0;
    while (walked < limit && got < most && off <= fend - 16) {
        const unsigned char *r = buf + off;
        uint32_t incl, wire;
        long long ts;
        if (!whole_record(r, fend - off, be, mult, &incl, &wire, &ts))
            break;
        const unsigned char *f = r + 16;
        int done = 0;
        if (parse_tcp) {
            int rc = append_segment(packets, ts, f, incl, l2, next_tick);
            if (rc < 0)
                goto fail;
            done = rc > 0;
            got += rc == 1;
        } else if (skip_acks && ts < next_tick && pure_ack(f, incl, l2)) {
            done = 1;
        }
        if (!done) {
            if (append_packet(packets, ts, lt, f, incl, wire) < 0)
                goto fail;
            got++;
        }
        off += 16 + (Py_ssize_t)incl;
        walked++;
    }
    Py_DECREF(lt);
    return Py_BuildValue("(nnN)", off, walked, packets);
fail:
    Py_XDECREF(packets);
    Py_XDECREF(lt);
    return NULL;
}

static PyMethodDef Walker_methods[] = {
    {"own", (PyCFunction)(void (*)(void))Walker_own, METH_FASTCALL,
     "own(off, limit, most, next_tick) -> (off, walked, positions, packets): a worker's packets "
     "up to the first record the Python walk must look at."},
    {"chunk", (PyCFunction)(void (*)(void))Walker_chunk, METH_FASTCALL,
     "chunk(off, limit, most, next_tick) -> (off, walked, packets): the next packets for feed_many "
     "(a single process's replay)."},
    {"shrink", (PyCFunction)Walker_shrink, METH_O, "shrink(end): walk no further than end."},
    {"release", (PyCFunction)Walker_release, METH_NOARGS, "Release the buffer (before closing a mmap)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject WalkerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shipper.agent._walk.Walker",
    .tp_basicsize = sizeof(Walker),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Walker(buffer, workers, index, skip_acks, mult, big_endian=False, linktype=1): a record "
              "walker over a classic pcap file in memory (mult: nanoseconds per time fraction).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Walker_init,
    .tp_dealloc = (destructor)Walker_dealloc,
    .tp_methods = Walker_methods,
};

static PyObject *py_mix(PyObject *Py_UNUSED(self), PyObject *args) {
    unsigned long long a, p;
    if (!PyArg_ParseTuple(args, "KK", &a, &p))
        return NULL;
    return PyLong_FromUnsignedLongLong(mix(a, p));
}

static PyMethodDef module_methods[] = {
    {"mix", py_mix, METH_VARARGS, "mix(addrs, ports): the connection hash (for tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef walkmodule = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_walk",
    .m_doc = "A worker's record skipper (optional; see workers.py).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__walk(void) {
    if (PyType_Ready(&WalkerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&walkmodule);
    if (m == NULL)
        return NULL;
    Py_INCREF(&WalkerType);
    if (PyModule_AddObject(m, "Walker", (PyObject *)&WalkerType) < 0) {
        Py_DECREF(&WalkerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/* The part of a worker's walk over a mapped capture that needs no Python: skipping records.

Every worker of a multi-process replay walks every record of the capture and keeps the
ones whose connection hashes to it (``shipper/agent/workers.py``, ``own_mapped``). In Python
the walk costs about 0.8 microseconds per record, most of it for records the worker then
ignores: with two workers, about a tenth of each worker's time. ``Walker.skip`` passes over
those records in C and stops at the first one the Python loop must look at; the Python loop
then handles that record exactly as it would without this module, which stays optional
(``WIREBEAT_PURE_PYTHON=1`` or a machine without a compiler gives the Python loop alone).

A record is skipped only if the Python loop would do nothing with it but count it:
  - it is whole and its header and the 48 bytes after it are in the file;
  - its time is before the next tick (sec * 10**9 + frac * mult < next_tick);
  - it is untagged Ethernet, IPv4 without options, not a fragment, TCP or UDP, at least
    38 bytes captured (the connection-hash fast path);
  - its connection hashes to another worker, or it is this worker's pure ACK and pure ACKs
    are skipped (TCP, no SYN/FIN/RST, the IP total length equal to the headers' length and
    within the captured bytes).
The hash is the one ``workers._mix`` computes; tests compare the two.
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
} Walker;

static inline uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
}

static inline uint32_t be16(const unsigned char *p) { return (uint32_t)p[0] << 8 | (uint32_t)p[1]; }

static uint64_t mix(uint64_t addrs, uint64_t ports) {
    uint64_t h = addrs * K1 + ports * K2;
    return h ^ (h >> 31) ^ (h >> 47);
}

static int Walker_init(Walker *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"buffer", "workers", "index", "skip_acks", "mult", NULL};
    PyObject *buf;
    unsigned long long n, idx;
    int skip_acks;
    long long mult;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OKKpL", kwlist, &buf, &n, &idx, &skip_acks, &mult))
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
    self->n = n;
    self->idx = idx;
    self->skip_acks = skip_acks;
    self->mult = mult;
    return 0;
}

static void Walker_dealloc(Walker *self) {
    if (self->held)
        PyBuffer_Release(&self->view);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Walker_release(Walker *self, PyObject *Py_UNUSED(ignored)) {
    if (self->held) {
        PyBuffer_Release(&self->view);
        self->held = 0;
    }
    Py_RETURN_NONE;
}

/* The pure-ACK test of Decoder.feed_many's inline path, on a whole Ethernet frame ``f`` of
``incl`` captured bytes (at least 48 of them readable): TCP over IPv4 without options, not a
fragment, no SYN/FIN/RST, no payload, nothing cut short. */
static inline int pure_ack(const unsigned char *f, uint32_t incl) {
    if (!(f[12] == 0x08 && f[13] == 0x00 && incl >= 54 && f[14] == 0x45 && f[23] == 6 &&
          (be16(f + 20) & 0x3FFF) == 0))
        return 0;
    unsigned doff = f[46], flags = f[47];
    unsigned hl = 20 + ((doff >> 4) << 2);
    return (flags & 0x07) == 0 && doff >= 0x50 && be16(f + 16) == hl && hl <= incl - 14;
}

/* skip(off, limit, next_tick) -> (off, skipped): at most ``limit`` records skipped. */
static PyObject *Walker_skip(Walker *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "skip(off, limit, next_tick)");
        return NULL;
    }
    if (!self->held) {
        PyErr_SetString(PyExc_ValueError, "released");
        return NULL;
    }
    Py_ssize_t off = PyLong_AsSsize_t(args[0]);
    if (off == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t limit = PyLong_AsSsize_t(args[1]);
    if (limit == -1 && PyErr_Occurred())
        return NULL;
    int overflow = 0;
    long long next_tick = PyLong_AsLongLongAndOverflow(args[2], &overflow);
    if (next_tick == -1 && PyErr_Occurred())
        return NULL;
    if (overflow > 0)
        next_tick = LLONG_MAX;
    else if (overflow < 0)
        next_tick = LLONG_MIN;
    if (off < 0) {
        PyErr_SetString(PyExc_ValueError, "negative offset");
        return NULL;
    }
    const unsigned char *buf = (const unsigned char *)self->view.buf;
    const Py_ssize_t fend = self->view.len;
    const uint64_t n = self->n, idx = self->idx;
    const long long mult = self->mult;
    const int skip_acks = self->skip_acks;
    Py_ssize_t skipped = 0;
    while (skipped < limit && off <= fend - 64) {
        const unsigned char *r = buf + off;
        uint32_t sec = le32(r), frac = le32(r + 4), incl = le32(r + 8);
        if (incl > MAX_RECORD || (Py_ssize_t)incl > fend - off - 16)
            break;
        /* sec < 2**32 and frac * mult < 2**62: no overflow */
        long long ts = (long long)sec * 1000000000LL + (long long)frac * mult;
        if (ts >= next_tick)
            break;
        const unsigned char *f = r + 16;
        unsigned proto = f[23];
        if (!(f[12] == 0x08 && f[13] == 0x00 && incl >= 38 && f[14] == 0x45 && (be16(f + 20) & 0x3FFF) == 0 &&
              (proto == 6 || proto == 17)))
            break;
        uint64_t h = mix((uint64_t)(be32(f + 26) ^ be32(f + 30)), (uint64_t)(be16(f + 34) ^ be16(f + 36)));
        if (h % n == idx && !(skip_acks && pure_ack(f, incl)))
            break;
        off += 16 + (Py_ssize_t)incl;
        skipped++;
    }
    return Py_BuildValue("(nn)", off, skipped);
}

/* chunk(off, most, next_tick) -> (off, walked, packets): the next ``most`` packets as
   ``(ts, 1, frame, wire_len)`` for Decoder.feed_many, from ``off`` to the first record that
   is not whole (the caller's PcapMap.finish describes it) or the end. With ``skip_acks``
   (one worker of one: every record is its own), pure ACKs before ``next_tick`` are walked
   over and not returned: feed_many would only count them. */
static PyObject *Walker_chunk(Walker *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "chunk(off, most, next_tick)");
        return NULL;
    }
    if (!self->held) {
        PyErr_SetString(PyExc_ValueError, "released");
        return NULL;
    }
    Py_ssize_t off = PyLong_AsSsize_t(args[0]);
    if (off == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t most = PyLong_AsSsize_t(args[1]);
    if (most == -1 && PyErr_Occurred())
        return NULL;
    int overflow = 0;
    long long next_tick = PyLong_AsLongLongAndOverflow(args[2], &overflow);
    if (next_tick == -1 && PyErr_Occurred())
        return NULL;
    if (overflow > 0)
        next_tick = LLONG_MAX;
    else if (overflow < 0)
        next_tick = LLONG_MIN;
    if (off < 0) {
        PyErr_SetString(PyExc_ValueError, "negative offset");
        return NULL;
    }
    const unsigned char *buf = (const unsigned char *)self->view.buf;
    const Py_ssize_t fend = self->view.len;
    const long long mult = self->mult;
    const int skip_acks = self->skip_acks && self->n == 1;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    PyObject *one = PyLong_FromLong(1);
    if (one == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    Py_ssize_t walked = 0, got = 0;
    while (got < most && off <= fend - 16) {
        const unsigned char *r = buf + off;
        uint32_t sec = le32(r), frac = le32(r + 4), incl = le32(r + 8), wire = le32(r + 12);
        if (incl > MAX_RECORD || (Py_ssize_t)incl > fend - off - 16)
            break;
        long long ts = (long long)sec * 1000000000LL + (long long)frac * mult;
        if (!(skip_acks && ts < next_tick && off <= fend - 64 && pure_ack(r + 16, incl))) {
            PyObject *item = Py_BuildValue("(LOy#k)", ts, one, (const char *)(r + 16), (Py_ssize_t)incl,
                                           (unsigned long)wire);
            if (item == NULL || PyList_Append(out, item) < 0) {
                Py_XDECREF(item);
                Py_DECREF(one);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(item);
            got++;
        }
        off += 16 + (Py_ssize_t)incl;
        walked++;
    }
    Py_DECREF(one);
    PyObject *res = Py_BuildValue("(nnN)", off, walked, out);
    return res;
}

static PyMethodDef Walker_methods[] = {
    {"chunk", (PyCFunction)(void (*)(void))Walker_chunk, METH_FASTCALL,
     "chunk(off, most, next_tick) -> (off, walked, packets): the next packets for feed_many "
     "(a single process's replay)."},
    {"skip", (PyCFunction)(void (*)(void))Walker_skip, METH_FASTCALL,
     "skip(off, limit, next_tick) -> (off, skipped): pass over the records the Python walk "
     "would only count, at most limit of them; stop at the first it must look at."},
    {"release", (PyCFunction)Walker_release, METH_NOARGS, "Release the buffer (before closing a mmap)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject WalkerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shipper.agent._walk.Walker",
    .tp_basicsize = sizeof(Walker),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Walker(buffer, workers, index, skip_acks, mult): a worker's record skipper over a "
              "little-endian classic pcap with Ethernet frames (mult: nanoseconds per time fraction).",
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

"""``detect_mime_type`` (in Packetbeat's stock packetbeat.yml for the HTTP bodies): the
MIME type of a field's content, as libbeat's ``mime.Detect`` finds it — file signatures
first (h2non/filetype; the common ones are here), then Go's ``http.DetectContentType``
sniffing (WHATWG), then JSON and XML for text. Binary content no rule knows gives none."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from shipper.pipeline.fieldpath import FieldError, path
from shipper.pipeline.processors.base import Context, Event, Opts, Processor, ProcessorError, register

MAX_HEADER = 8192


def _riff(kind: bytes) -> Any:
    return lambda b: b[:4] == b"RIFF" and b[8:12] == kind


#: h2non/filetype signatures (a subset: images, archives, executables, documents, media).
FILETYPES: list[tuple[Any, str]] = [
    (lambda b: b[:3] == b"\xff\xd8\xff", "image/jpeg"),
    (lambda b: b[:8] == b"\x89PNG\r\n\x1a\n", "image/png"),
    (lambda b: b[:3] == b"GIF", "image/gif"),
    (_riff(b"WEBP"), "image/webp"),
    (lambda b: b[:2] == b"BM", "image/bmp"),
    (lambda b: b[:4] in (b"II*\x00", b"MM\x00*"), "image/tiff"),
    (lambda b: b[:4] == b"\x00\x00\x01\x00", "image/vnd.microsoft.icon"),
    (lambda b: b[:4] == b"wOFF", "application/font-woff"),
    (lambda b: b[:4] == b"wOF2", "application/font-woff"),
    (lambda b: b[:4] == b"\x00asm", "application/wasm"),
    (lambda b: b[:4] == b"\x7fELF", "application/x-executable"),
    (lambda b: b[:2] == b"MZ", "application/vnd.microsoft.portable-executable"),
    (lambda b: b[:4] == b"%PDF", "application/pdf"),
    (lambda b: b[:4] == b"PK\x03\x04", "application/zip"),
    (lambda b: b[:3] == b"\x1f\x8b\x08", "application/gzip"),
    (lambda b: b[:3] == b"BZh", "application/x-bzip2"),
    (lambda b: b[:6] == b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (lambda b: b[:6] == b"\xfd7zXZ\x00", "application/x-xz"),
    (lambda b: b[:6] == b"Rar!\x1a\x07", "application/vnd.rar"),
    (lambda b: b[257:262] == b"ustar", "application/x-tar"),
    (lambda b: b[:16] == b"SQLite format 3\x00", "application/vnd.sqlite3"),
    (lambda b: b[:3] == b"ID3" or b[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"), "audio/mpeg"),
    (lambda b: b[:4] == b"OggS", "audio/ogg"),
    (lambda b: b[:4] == b"fLaC", "audio/x-flac"),
    (_riff(b"WAVE"), "audio/x-wav"),
    (_riff(b"AVI "), "video/x-msvideo"),
    (lambda b: b[4:8] == b"ftyp", "video/mp4"),
    (lambda b: b[:4] == b"\x1a\x45\xdf\xa3", "video/webm"),
]

_WS = b"\t\n\x0c\r "
_HTML_TAGS = [
    b"<!DOCTYPE HTML",
    b"<HTML",
    b"<HEAD",
    b"<SCRIPT",
    b"<IFRAME",
    b"<H1",
    b"<DIV",
    b"<FONT",
    b"<TABLE",
    b"<A",
    b"<STYLE",
    b"<TITLE",
    b"<B",
    b"<BODY",
    b"<BR",
    b"<P",
    b"<!--",
]
#: Go's exact and masked signatures (net/http/sniff.go), after the HTML ones.
_EXACT: list[tuple[bytes, str]] = [
    (b"%PDF-", "application/pdf"),
    (b"%!PS-Adobe-", "application/postscript"),
    (b"\xfe\xff", "text/plain; charset=utf-16be"),
    (b"\xff\xfe", "text/plain; charset=utf-16le"),
    (b"\xef\xbb\xbf", "text/plain; charset=utf-8"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
    (b"\x00\x00\x02\x00", "image/x-icon"),
    (b"BM", "image/bmp"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"ID3", "audio/mpeg"),
    (b"OggS\x00", "application/ogg"),
    (b"MThd\x00\x00\x00\x06", "audio/midi"),
    (b"\x1a\x45\xdf\xa3", "video/webm"),
    (b"\x00\x01\x00\x00", "font/ttf"),
    (b"OTTO", "font/otf"),
    (b"ttcf", "font/collection"),
    (b"wOFF", "font/woff"),
    (b"wOF2", "font/woff2"),
    (b"\x1f\x8b\x08", "application/x-gzip"),
    (b"PK\x03\x04", "application/zip"),
    (b"Rar!\x1a\x07\x00", "application/x-rar-compressed"),
    (b"Rar!\x1a\x07\x01\x00", "application/x-rar-compressed"),
    (b"\x00asm", "application/wasm"),
]
_BINARY = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")


def _sniff(data: bytes) -> str:
    """Go's ``http.DetectContentType``."""
    b = data[:512]
    ws = b.lstrip(_WS)
    upper = ws[:16].upper()
    for tag in _HTML_TAGS:
        if upper.startswith(tag) and len(ws) > len(tag) and ws[len(tag)] in b" >":
            return "text/html; charset=utf-8"
    if ws[:5] == b"<?xml":
        return "text/xml; charset=utf-8"
    for sig, mime in _EXACT:
        if b.startswith(sig):
            return mime
    for ok, mime in (
        (b[:4] == b"FORM" and b[8:12] == b"AIFF", "audio/aiff"),
        (b[:4] == b"RIFF" and b[8:12] == b"AVI ", "video/avi"),
        (b[:4] == b"RIFF" and b[8:12] == b"WAVE", "audio/wave"),
        (b[:4] == b"RIFF" and b[8:14] == b"WEBPVP", "image/webp"),
        (len(b) >= 12 and b[4:8] == b"ftyp" and b[8:11] != b"qt ", "video/mp4"),
    ):
        if ok:
            return mime
    if not _BINARY.search(b):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def detect(data: bytes, text: str | None = None) -> str:
    """The MIME type of ``data`` ("" when unknown); ``text``, when given, is the same
    content as decoded text, used for the JSON and XML checks."""
    header = data[:MAX_HEADER]
    for match, mime in FILETYPES:
        if match(header):
            return mime
    net = _sniff(header)
    if net.startswith("text/plain"):
        try:
            json.loads(data if text is None else text, parse_constant=_no_constant)
            return "application/json"
        except (ValueError, UnicodeDecodeError):
            pass
        try:
            ET.fromstring(data if text is None else text)
            return "text/xml"
        except ET.ParseError:
            pass
    if net == "application/octet-stream":
        return ""
    return net


@register("detect_mime_type")
def detect_mime_type(o: Opts, ctx: Context) -> Processor:
    o.require("field", "target")
    o.allow("field", "target")
    field = path(o.str("field", required=True))
    target = path(o.str("target", required=True))
    o.writes(target.key)

    def run(evt: Event) -> Event:
        v = field.get(evt)
        if not isinstance(v, str) or not v:
            return evt
        # Text that only holds code points < 256 is taken byte for byte (binary content
        # decoded as latin-1); anything else is UTF-8, as it was on the wire.
        try:
            raw = v.encode("latin-1")
        except UnicodeEncodeError:
            raw = v.encode("utf-8", "surrogatepass")
        mime = detect(raw, v)
        if mime:
            try:
                target.put(evt, mime)
            except FieldError as exc:
                raise ProcessorError(str(exc), evt) from None
        return evt

    return run

"""libbeat's field actions (libbeat/processors/actions): add, drop, keep, rename, copy,
replace, truncate and decode fields, with libbeat's options, defaults and messages."""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import zlib
from typing import Any

from shipper.pipeline.conditions import networks_matcher, parse_ip
from shipper.pipeline.fieldpath import MISSING, FieldError, deep_update, path
from shipper.pipeline.goregexp import RegexpError, compile_go
from shipper.pipeline.processors.base import (
    Backup,
    Context,
    Event,
    Opts,
    Processor,
    ProcessorError,
    add_tags,
    clone,
    put_error,
    register,
)

#: libbeat's ``processors.MandatoryExportedFields``: never dropped, always included.
MANDATORY = ("type",)
#: Bound of ``decompress_gzip_field`` output (a gzip bomb must not take the agent down).
MAX_DECOMPRESSED = 16 << 20


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "mapstr.M"
    if value is None:
        return "<nil>"
    return type(value).__name__


# -- adding ----------------------------------------------------------------------------------------


def _add_fields(fields: dict[str, Any], overwrite: bool = True) -> Processor:
    def add_fields(evt: Event) -> Event:
        deep_update(evt, clone(fields), overwrite)
        return evt

    return add_fields


@register("add_fields")
def add_fields(o: Opts, ctx: Context) -> Processor:
    o.require("fields")
    o.allow("fields", "target")
    fields = o.mapping("fields", required=True)
    target = o.opt_str("target")
    if target is None:
        target = "fields"
    if target:
        wrapped: dict[str, Any] = {}
        path(target).put(wrapped, fields)
        fields = wrapped
    o.writes(*fields)
    if not fields:
        return lambda evt: evt
    return _add_fields(fields)


def flatten_labels(labels: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """go-ucfg's flattened keys, every value as a string (libbeat's add_labels)."""
    out: dict[str, str] = {}
    for k, v in labels.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(flatten_labels(v, key))
        elif isinstance(v, list):
            out.update(flatten_labels({str(i): x for i, x in enumerate(v)}, key))
        elif isinstance(v, bool):
            out[key] = "true" if v else "false"
        elif v is None:
            out[key] = ""
        else:
            out[key] = str(v)
    return out


@register("add_labels")
def add_labels(o: Opts, ctx: Context) -> Processor:
    o.require("labels")
    o.allow("labels")
    labels = flatten_labels(o.mapping("labels", required=True))
    o.writes("labels")
    return _add_fields({"labels": labels})


@register("add_tags")
def add_tags_proc(o: Opts, ctx: Context) -> Processor:
    o.require("tags")
    o.allow("tags", "target")
    tags = o.strings("tags", required=True)
    target = o.str("target") or "tags"
    tp = path(target)
    o.writes(target)

    def add_tags_run(evt: Event) -> Event:
        old = tp.get(evt)
        if type(old) is list:
            old.extend(tags)
        elif old is MISSING:
            try:
                tp.put(evt, list(tags))
            except FieldError:
                pass
        return evt

    return add_tags_run


# -- dropping and keeping ------------------------------------------------------------------------


@register("drop_event")
def drop_event(o: Opts, ctx: Context) -> Processor:
    o.writes()
    return lambda evt: None


def _flat_keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    """mapstr's ``FlattenKeys``: every key path, objects included, children first."""
    out = []
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else k
        if type(v) is dict:
            out.extend(_flat_keys(v, key))
        out.append(key)  # after its children, as libbeat lists them
    return out


def _delete(evt: Event, key: str) -> None:
    """``beat.Event.Delete``: ``@timestamp`` and ``@metadata`` cannot be deleted."""
    if key == "@timestamp":
        raise FieldError("unable to delete @timestamp")
    if key == "@metadata":
        raise FieldError("can not modify @metadata key")
    path(key).delete(evt)


@register("drop_fields")
def drop_fields(o: Opts, ctx: Context) -> Processor:
    o.require("fields")
    o.allow("fields", "ignore_missing")
    fields = o.strings("fields", required=True)
    ignore_missing = o.bool("ignore_missing", False)
    plain: list[str] = []
    patterns: list[re.Pattern[str]] = []
    for i, f in enumerate(fields):
        if f in MANDATORY or any(f.startswith(m + ".") for m in MANDATORY):
            continue
        if len(f) > 2 and f.startswith("/") and f.endswith("/"):
            try:
                patterns.append(compile_go(f[1:-1]))
            except RegexpError as exc:
                raise o.error(f"fields.{i}", f"wrong configuration in drop_fields[{i}]={f}. {exc}") from None
        else:
            plain.append(f)
    if not patterns:
        o.writes(*plain)

    def drop(evt: Event, key: str, errs: list[str]) -> None:
        try:
            _delete(evt, key)
        except FieldError as exc:
            if not ignore_missing or str(exc) != "key not found":
                errs.append(f"failed to drop field [{key}], error: {exc}")

    if not patterns and ignore_missing:
        paths = [path(f) for f in plain]
        if "@timestamp" not in plain and "@metadata" not in plain:

            def drop_fields_fast(evt: Event) -> Event:
                for p in paths:
                    p.pop(evt)
                return evt

            return drop_fields_fast

    def drop_fields_run(evt: Event) -> Event:
        errs: list[str] = []
        for key in plain:
            drop(evt, key, errs)
        for rx in patterns:
            keys = _flat_keys({k: v for k, v in evt.items() if k not in ("@timestamp", "@metadata")})
            for key in keys:
                if rx.search(key):
                    drop(evt, key, errs)
        if errs:
            raise ProcessorError("; ".join(errs), evt)
        return evt

    return drop_fields_run


@register("include_fields")
def include_fields(o: Opts, ctx: Context) -> Processor:
    o.require("fields")
    o.allow("fields")
    fields = o.strings("fields", required=True)
    for m in MANDATORY:
        if m not in fields:
            fields.append(m)
    paths = [path(f) for f in fields]

    def include(evt: Event) -> Event:
        kept: Event = {}
        errs = []
        for p in paths:
            v = p.get(evt)
            if v is MISSING:
                continue
            try:
                p.put(kept, v)
            except FieldError as exc:
                errs.append(str(exc))
        # @timestamp and @metadata are not fields of a libbeat event: they stay.
        for k in ("@timestamp", "@metadata"):
            if k in evt:
                kept[k] = evt[k]
        evt.clear()
        evt.update(kept)
        if errs:
            raise ProcessorError(", ".join(errs), evt)
        return evt

    return include


# -- moving ------------------------------------------------------------------------------------------


def _fail_on_error_runner(
    name: str,
    prefix: str,
    keys: list[str],
    steps: list[Any],
    fail_on_error: bool,
    *,
    put_message: bool = True,
) -> Processor:
    """Run ``steps`` (each ``(evt) -> None`` or raising FieldError/ValueError, and leaving
    the event unchanged when it raises) with libbeat's ``fail_on_error`` rule: on the first
    failure the event is restored and carries ``error.message``; without it, failures are
    skipped."""
    backup = Backup(keys)
    # Every step changes the event only when it succeeds, so a single step needs no copy.
    keep = fail_on_error and len(steps) > 1

    def run(evt: Event) -> Event:
        saved = backup.take(evt) if keep else None
        for step in steps:
            try:
                step(evt)
            except (FieldError, ValueError) as exc:
                if fail_on_error:
                    if saved is not None:
                        backup.restore(evt, saved)
                    msg = f"{prefix}: {exc}"
                    if put_message:
                        put_error(evt, msg)
                    raise ProcessorError(msg, evt) from None
        return evt

    run.__name__ = name
    return run


def _check_target_free(evt: Event, to: str) -> None:
    if path(to).get(evt) is not MISSING:
        raise FieldError(f"target field {to} already exists, drop or rename this field first")


def _fetch(evt: Event, key: str, ignore_missing: bool, what: str = "value") -> Any:
    v = path(key).get(evt)
    if v is MISSING:
        if ignore_missing:
            return MISSING
        raise FieldError(f"could not fetch {what} for key: {key}, Error: key not found")
    return v


@register("rename")
def rename(o: Opts, ctx: Context) -> Processor:
    o.require("fields")
    pairs = o.from_to("fields")
    ignore_missing = o.bool("ignore_missing", False)
    fail_on_error = o.bool("fail_on_error", True)

    def step(src: str, dst: str) -> Any:
        sp, dp = path(src), path(dst)
        special = src in ("@timestamp", "@metadata")

        def do(evt: Event) -> None:
            if dp.get(evt) is not MISSING:
                raise FieldError(f"target field {dst} already exists, drop or rename this field first")
            found = sp.holder(evt)
            if found is None or special:
                if found is None and ignore_missing:
                    return
                if special:
                    _delete(evt, src)
                raise FieldError(f"could not fetch value for key: {src}, Error: key not found")
            holder, key = found
            v = holder.pop(key)  # first, so that a can become a.b
            try:
                dp.put(evt, v)
            except FieldError:
                holder[key] = v
                raise

        return do

    keys = [k for pair in pairs for k in pair]
    o.writes(*keys, "error")
    return _fail_on_error_runner(
        "rename", "Failed to rename fields in processor", keys, [step(a, b) for a, b in pairs], fail_on_error
    )


@register("copy_fields")
def copy_fields(o: Opts, ctx: Context) -> Processor:
    o.require("fields")
    pairs = o.from_to("fields")
    ignore_missing = o.bool("ignore_missing", False)
    fail_on_error = o.bool("fail_on_error", True)

    def step(src: str, dst: str) -> Any:
        sp, dp = path(src), path(dst)

        def do(evt: Event) -> None:
            if dp.get(evt) is not MISSING:
                raise FieldError(f"target field {dst} already exists, drop or rename this field first")
            v = sp.get(evt)
            if v is MISSING:
                if ignore_missing:
                    return
                raise FieldError(f"could not fetch value for key: {src}, Error: key not found")
            dp.put(evt, clone(v))

        return do

    keys = [b for _, b in pairs]
    o.writes(*keys, "error")
    return _fail_on_error_runner(
        "copy_fields",
        "Failed to copy fields in copy_fields processor",
        keys,
        [step(a, b) for a, b in pairs],
        fail_on_error,
    )


def go_replacement(template: str) -> str:
    """Go's ``ReplaceAllString`` template (``$1``, ``${name}``, ``$$``) → ``re.sub``'s."""
    out = []
    i = 0
    while i < len(template):
        c = template[i]
        if c == "\\":
            out.append("\\\\")
            i += 1
            continue
        if c != "$":
            out.append(c)
            i += 1
            continue
        if template.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        m = re.match(r"\$\{(\w+)\}|\$(\w+)", template[i:])
        if not m:
            out.append("$")
            i += 1
            continue
        name = m.group(1) or m.group(2)
        out.append(f"\\g<{name}>")
        i += m.end()
    return "".join(out)


@register("replace")
def replace(o: Opts, ctx: Context) -> Processor:
    o.require("fields")
    ignore_missing = o.bool("ignore_missing", False)
    fail_on_error = o.bool("fail_on_error", True)
    steps = []
    keys = []
    for i, item in enumerate(o.mappings("fields", required=True)):
        field = item.get("field")
        if not isinstance(field, str) or not field:
            raise o.error(f"fields.{i}.field", "missing required field accessing 'field'")
        pattern = item.get("pattern")
        if not isinstance(pattern, str):
            raise o.error(f"fields.{i}.pattern", "missing required field accessing 'pattern'")
        if "replacement" not in item:
            raise o.error(f"fields.{i}", "missing replacement")
        repl = item["replacement"]
        repl = "" if repl is None else str(repl)
        try:
            rx = compile_go(pattern)
        except RegexpError as exc:
            raise o.error(f"fields.{i}.pattern", str(exc)) from None
        template = go_replacement(repl)
        try:
            rx.sub(template, "")
        except (re.error, IndexError) as exc:
            raise o.error(f"fields.{i}.replacement", f"invalid replacement {repl!r}: {exc}") from None
        keys.append(field)
        steps.append(_replace_step(field, rx, template, ignore_missing))
    o.writes(*keys, "error")
    return _fail_on_error_runner(
        "replace", "Failed to replace fields in processor", keys, steps, fail_on_error
    )


def _replace_step(field: str, rx: re.Pattern[str], template: str, ignore_missing: bool) -> Any:
    fp = path(field)

    def do(evt: Event) -> None:
        v = _fetch(evt, field, ignore_missing)
        if v is MISSING:
            return
        if not isinstance(v, str):
            raise FieldError(f"key '{field}' expected type string, but got {_go_type(v)} with value '{v}'")
        fp.put(evt, rx.sub(template, v))

    return do


@register("truncate_fields")
def truncate_fields(o: Opts, ctx: Context) -> Processor:
    o.require("fields")
    fields = o.strings("fields", required=True)
    has_bytes, has_chars = o.has("max_bytes"), o.has("max_characters")
    if has_bytes == has_chars:
        raise o.error(None, "exactly one of max_bytes and max_characters must be set")
    max_bytes = o.int("max_bytes", 0, minimum=0)
    max_chars = o.int("max_characters", 0, minimum=0)
    ignore_missing = o.bool("ignore_missing", False)
    fail_on_error = o.bool("fail_on_error", True)

    def cut(value: str) -> tuple[str, bool]:
        if max_bytes > 0:
            raw = value.encode("utf-8", "surrogatepass")
            if len(raw) <= max_bytes:
                return value, False
            # Go keeps the bytes; a cut rune becomes U+FFFD when the string is encoded.
            return raw[:max_bytes].decode("utf-8", "replace"), True
        if len(value) <= max_chars:
            return value, False
        return value[:max_chars], True

    def step(field: str) -> Any:
        fp = path(field)

        def do(evt: Event) -> None:
            v = fp.get(evt)
            if v is MISSING:
                if ignore_missing:
                    return
                raise FieldError(f"could not fetch value for key '{field}': key not found")
            if isinstance(v, bytes | bytearray):
                v = bytes(v).decode("utf-8", "replace")
            if not isinstance(v, str):
                raise ValueError(f"value cannot be truncated: {v}")
            text, cutoff = cut(v)
            fp.put(evt, text)
            if cutoff:
                add_tags(evt, "log.flags", ["truncated"])

        return do

    o.writes(*fields, "log.flags")
    return _fail_on_error_runner(
        "truncate_fields",
        "Failed to truncate fields",
        [*fields, "log.flags"],
        [step(f) for f in fields],
        fail_on_error,
        put_message=False,
    )


# -- decoding ------------------------------------------------------------------------------------------


class _NotStructured(Exception):
    pass


def _decode_json(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


def _is_structured(s: str) -> bool:
    s = s.strip()
    return len(s) > 1 and ((s[0] == "[" and s[-1] == "]") or (s[0] == "{" and s[-1] == "}"))


def _unmarshal(text: str, depth: int, process_array: bool) -> Any:
    value = _decode_json(text)
    depth -= 1
    if depth == 0:
        return value
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        if not process_array:
            raise _NotStructured
        items = enumerate(value)
    else:
        return value
    for k, v in list(items):
        if isinstance(v, str) and _is_structured(v):
            try:
                value[k] = _unmarshal(v, depth, process_array)
            except _NotStructured:
                value[k] = v
            except ValueError:
                pass
    return value


def expand_keys(m: dict[str, Any]) -> None:
    """libbeat's jsontransform ``expandFields``: dotted keys become nested objects.
    ValueError when two keys conflict."""
    for k in list(m):
        v = m[k]
        if isinstance(v, dict):
            try:
                expand_keys(v)
            except ValueError as exc:
                raise ValueError(f"error expanding {k!r}: {exc}") from None
        if "." not in k:
            continue
        del m[k]
        try:
            old = path(k).put(m, v)
        except FieldError as exc:
            raise ValueError(f"cannot expand {k!r}: found conflicting key: {exc}") from None
        if old is MISSING:
            continue
        if not isinstance(v, dict):
            raise ValueError(f"cannot expand {k!r}: found existing ({_go_type(old)}) value")
        if not isinstance(old, dict):
            raise ValueError(f"cannot expand {k!r}: found conflicting key")
        _merge_objects(v, old)


def _merge_objects(lhs: dict[str, Any], rhs: dict[str, Any]) -> None:
    for k, r in rhs.items():
        if k not in lhs:
            lhs[k] = r
            continue
        left = lhs[k]
        if not isinstance(left, dict) or not isinstance(r, dict):
            raise ValueError(f"cannot merge {k!r}: found ({_go_type(left)}) value")
        _merge_objects(left, r)


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_ISO8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?[+-]\d{4}$")


def _set_json_error(evt: Event, add: bool, message: str, data: str = "", field: str = "") -> None:
    if not add:
        return
    err: dict[str, Any] = {"message": message, "type": "json"}
    if data:
        err["data"] = data
    if field:
        err["field"] = field
    evt["error"] = err


def _write_json_keys(evt: Event, keys: dict[str, Any], expand: bool, overwrite: bool, add_err: bool) -> None:
    if expand:
        try:
            expand_keys(keys)
        except ValueError as exc:
            _set_json_error(evt, add_err, str(exc))
            return
    if not overwrite:
        keys.pop("@timestamp", None)
        keys.pop("@metadata", None)
        deep_update(evt, keys, overwrite=False)
        return
    ts = keys.pop("@timestamp", MISSING)
    if ts is not MISSING:
        if not isinstance(ts, str):
            _set_json_error(evt, add_err, "@timestamp not overwritten (not string)")
        elif not (_RFC3339.match(ts) or _ISO8601.match(ts)):
            _set_json_error(evt, add_err, f"@timestamp not overwritten (parse error on {ts})")
        else:
            evt["@timestamp"] = ts
    meta = keys.pop("@metadata", MISSING)
    if meta is not MISSING:
        if isinstance(meta, dict):
            cur = evt.get("@metadata")
            cur = dict(cur) if isinstance(cur, dict) else {}
            deep_update(cur, meta)
            evt["@metadata"] = cur
        else:
            _set_json_error(evt, add_err, "failed to update @metadata")
    tp = keys.pop("type", MISSING)
    if tp is not MISSING:
        if not isinstance(tp, str):
            _set_json_error(evt, add_err, "type not overwritten (not string)")
        elif not tp or tp[0] == "_":
            _set_json_error(evt, add_err, f"type not overwritten (invalid value [{tp}])")
        else:
            evt["type"] = tp
    deep_update(evt, keys)


@register("decode_json_fields")
def decode_json_fields(o: Opts, ctx: Context) -> Processor:
    o.require("fields")
    o.allow(
        "fields",
        "max_depth",
        "overwrite_keys",
        "add_error_key",
        "process_array",
        "target",
        "document_id",
        "expand_keys",
    )
    fields = o.strings("fields", required=True)
    max_depth = o.int("max_depth", 1, minimum=1)
    expand = o.bool("expand_keys", False)
    overwrite = o.bool("overwrite_keys", False)
    add_err = o.bool("add_error_key", False)
    process_array = o.bool("process_array", False)
    target = o.opt_str("target")
    document_id = o.str("document_id")
    if target != "":
        o.writes(*(fields if target is None else [target]), "error", "@metadata")

    def run(evt: Event) -> Event:
        errs: list[str] = []
        for field in fields:
            text = path(field).get(evt)
            if not isinstance(text, str):
                continue  # absent or not a string: left alone
            try:
                output = _unmarshal(text, max_depth, process_array)
            except _NotStructured:
                output = _decode_json(text)
            except (ValueError, RecursionError) as exc:
                msg = str(exc)
                errs.append(msg)
                _set_json_error(evt, add_err, f"parsing input as JSON: {msg}", text, field)
                continue
            doc_id = ""
            if document_id and isinstance(output, dict):
                v = path(document_id).get(output)
                if isinstance(v, str):
                    doc_id = v
                    path(document_id).pop(output)
            dest = field if target is None else target
            if dest:
                if expand:
                    if isinstance(output, dict):
                        try:
                            expand_keys(output)
                        except ValueError as exc:
                            _set_json_error(evt, add_err, str(exc))
                    else:
                        errs.append("failed to expand keys")
                try:
                    path(dest).put(evt, output)
                except FieldError as exc:
                    errs.append(str(exc))
                    continue
            elif isinstance(output, dict):
                _write_json_keys(evt, output, expand, overwrite, add_err)
            else:
                errs.append("failed to add target to root")
            if doc_id:
                meta = evt.get("@metadata")
                meta = dict(meta) if isinstance(meta, dict) else {}
                meta["_id"] = doc_id
                evt["@metadata"] = meta
        if errs:
            raise ProcessorError(", ".join(errs), evt)
        return evt

    return run


def _from_to_single(o: Opts) -> tuple[str, str]:
    f = o.mapping("field", required=True)
    src, dst = f.get("from"), f.get("to", "")
    if not isinstance(src, str) or not src:
        raise o.error("field.from", "missing required field accessing 'from'")
    if dst is None:
        dst = ""
    if not isinstance(dst, str):
        raise o.error("field.to", f"expected a string, got {dst!r}")
    return src, dst


@register("decode_base64_field")
def decode_base64_field(o: Opts, ctx: Context) -> Processor:
    o.require("field")
    o.allow("field", "ignore_missing", "fail_on_error")
    src, dst = _from_to_single(o)
    ignore_missing = o.bool("ignore_missing", False)
    fail_on_error = o.bool("fail_on_error", True)
    target = src if not dst or dst == src else dst
    o.writes(target, "error")

    def do(evt: Event) -> None:
        v = _fetch(evt, src, ignore_missing, "base64 value")
        if v is MISSING:
            return
        if not isinstance(v, str):
            raise ValueError(f"invalid type for `from`, expecting a string received {_go_type(v)}")
        body = v.rstrip("=")
        try:
            # RawStdEncoding after trimming the padding: strict alphabet, no newlines.
            if not re.fullmatch(r"[A-Za-z0-9+/]*", body) or len(body) % 4 == 1:
                raise binascii.Error("illegal base64 data")
            data = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        except binascii.Error as exc:
            raise ValueError(f"error trying to decode {v}: {exc}") from None
        path(target).put(evt, data.decode("utf-8", "replace"))

    return _fail_on_error_runner(
        "decode_base64_field", "failed to decode base64 fields in processor", [target], [do], fail_on_error
    )


@register("decompress_gzip_field")
def decompress_gzip_field(o: Opts, ctx: Context) -> Processor:
    o.require("field")
    o.allow("field", "ignore_missing", "overwrite_keys", "fail_on_error")
    src, dst = _from_to_single(o)
    ignore_missing = o.bool("ignore_missing", False)
    fail_on_error = o.bool("fail_on_error", True)
    o.used.add("overwrite_keys")
    o.writes(dst, "error")

    def do(evt: Event) -> None:
        v = _fetch(evt, src, ignore_missing)
        if v is MISSING:
            return
        if isinstance(v, str):
            raw = v.encode("latin-1", "surrogateescape") if all(ord(c) < 256 for c in v) else v.encode()
        elif isinstance(v, bytes | bytearray):
            raw = bytes(v)
        else:
            raise ValueError(f"cannot decompress type {v}")
        try:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = d.decompress(raw, MAX_DECOMPRESSED + 1)
            if len(out) > MAX_DECOMPRESSED:
                raise ValueError(f"error while decompressing field: more than {MAX_DECOMPRESSED} bytes")
            if not d.eof:
                raise ValueError("error while decompressing field: unexpected EOF")
        except (zlib.error, gzip.BadGzipFile) as exc:
            raise ValueError(f"error decompressing field {src}: {exc}") from None
        path(dst).put(evt, out.decode("utf-8", "replace"))

    return _fail_on_error_runner(
        "decompress_gzip_field",
        "Failed to decompress field in decompress_gzip_field processor",
        [dst],
        [do],
        fail_on_error,
    )


# -- network direction ---------------------------------------------------------------------------------


@register("add_network_direction")
def add_network_direction(o: Opts, ctx: Context) -> Processor:
    o.require("source", "destination", "target", "internal_networks")
    o.allow("source", "destination", "target", "internal_networks")
    src = path(o.str("source", required=True))
    dst = path(o.str("destination", required=True))
    target = path(o.str("target", required=True))
    o.writes(target.key)
    try:
        internal = networks_matcher(o.strings("internal_networks", required=True))
    except ValueError as exc:
        raise o.error("internal_networks", str(exc)) from None

    def run(evt: Event) -> Event:
        s, d = src.get(evt), dst.get(evt)
        if not isinstance(s, str) or not isinstance(d, str) or not s or not d:
            return evt
        sa, da = parse_ip(s), parse_ip(d)
        if sa is None or da is None:
            return evt
        si, di = internal(sa), internal(da)
        direction = "internal" if si and di else "outbound" if si else "inbound" if di else "external"
        try:
            target.put(evt, direction)
        except FieldError:
            pass
        return evt

    return run


__all__ = ["MANDATORY", "expand_keys", "flatten_labels", "go_replacement"]

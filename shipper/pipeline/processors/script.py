"""``script``: JavaScript ``process(event)`` functions, run by QuickJS (the ``quickjs``
package from PyPI, an embedded ES2020 engine; libbeat uses goja, an ES5.1 engine, so every
libbeat script runs here too).

The event API is libbeat's ``Event``: ``Get``, ``Put``, ``Rename``, ``Delete``, ``Cancel``,
``Tag``, ``AppendTo`` and the ``fields`` object, with mapstr's dotted-key rules; ``new
Event({...})`` works in ``test()``. Each event crosses into the engine as JSON and comes
back the same way. One engine per processor, used under a lock (QuickJS contexts are not
thread-safe). Not available: libbeat's ``require()`` modules (``path``, ``net``,
``windows``) and ``only_cached_sessions``; numbers beyond 2^53 lose precision in
JavaScript (as in goja).
"""

from __future__ import annotations

import glob
import json
import logging
import os
import threading
from typing import Any

from shipper.pipeline.processors.base import (
    Context,
    Event,
    Opts,
    Processor,
    ProcessorError,
    add_tags,
    register,
)

log = logging.getLogger("processors.script")

#: Our implementation of libbeat's JavaScript event API (beatevent_v0), on a plain object.
PRELUDE = r"""
var Event = (function () {
  function isObj(v) { return v !== null && typeof v === 'object' && !Array.isArray(v); }
  function typeName(v) { return v === null ? '<nil>' : Array.isArray(v) ? '[]interface {}' : typeof v; }
  // mapstr's mapFind: the whole remaining key first, then the part before the first dot.
  function find(obj, key, create) {
    for (;;) {
      if (Object.prototype.hasOwnProperty.call(obj, key)) return {h: obj, k: key, found: true};
      var i = key.indexOf('.');
      if (i < 0) return {h: obj, k: key, found: false};
      var head = key.substring(0, i);
      var d = obj[head];
      if (d === undefined) {
        if (!create) return null;
        d = obj[head] = {};
      } else if (!isObj(d)) {
        throw new Error('expected map but type is ' + typeName(d));
      }
      obj = d;
      key = key.substring(i + 1);
    }
  }
  function Event(fields) {
    this.fields = isObj(fields) ? fields : {};
    this._cancelled = false;
  }
  Event.prototype.Get = function (key) {
    if (key === undefined) return this.fields;
    var r;
    try { r = find(this.fields, String(key), false); } catch (e) { return null; }
    if (r === null || !r.found) return null;
    return r.h[r.k];
  };
  Event.prototype.Put = function (key, value) {
    if (arguments.length !== 2) throw new Error('Put requires two arguments (key and value)');
    var r = find(this.fields, String(key), true);
    var old = r.found ? r.h[r.k] : null;
    r.h[r.k] = value;
    return old === undefined ? null : old;
  };
  Event.prototype.Delete = function (key) {
    if (arguments.length !== 1) throw new Error('Delete requires one argument');
    var r;
    try { r = find(this.fields, String(key), false); } catch (e) { return false; }
    if (r === null || !r.found) return false;
    delete r.h[r.k];
    return true;
  };
  Event.prototype.Rename = function (from, to) {
    if (arguments.length !== 2) throw new Error('Rename requires two arguments (from and to)');
    from = String(from); to = String(to);
    var t;
    try { t = find(this.fields, to, false); } catch (e) { t = null; }
    if (t !== null && t.found) return false;
    var r;
    try { r = find(this.fields, from, false); } catch (e) { return false; }
    if (r === null || !r.found) return false;
    var v = r.h[r.k];
    delete r.h[r.k];
    try { this.Put(to, v); } catch (e) { this.Put(from, v); return false; }
    return true;
  };
  Event.prototype.Cancel = function () { this._cancelled = true; };
  Event.prototype.IsCancelled = function () { return this._cancelled; };
  function appendString(ev, field, value, alwaysArray) {
    var cur = ev.Get(field);
    if (cur === null || cur === undefined) {
      ev.Put(field, alwaysArray ? [value] : value);
    } else if (typeof cur === 'string') {
      if (cur !== value) ev.Put(field, [cur, value]);
    } else if (Array.isArray(cur)) {
      for (var i = 0; i < cur.length; i++) if (cur[i] === value) return;
      cur.push(value);
    } else {
      throw new Error('unexpected type ' + typeName(cur) + ' found for ' + field + ' field');
    }
  }
  Event.prototype.Tag = function (tag) {
    if (arguments.length !== 1) throw new Error('Tag requires one argument');
    appendString(this, 'tags', String(tag), true);
  };
  Event.prototype.AppendTo = function (field, value) {
    if (arguments.length !== 2) throw new Error('AppendTo requires two arguments (field and value)');
    appendString(this, String(field), String(value), false);
  };
  return Event;
})();
var console = {
  log: function () { __wb_log('info', Array.prototype.slice.call(arguments).join(' ')); },
  info: function () { __wb_log('info', Array.prototype.slice.call(arguments).join(' ')); },
  debug: function () { __wb_log('debug', Array.prototype.slice.call(arguments).join(' ')); },
  warn: function () { __wb_log('warning', Array.prototype.slice.call(arguments).join(' ')); },
  error: function () { __wb_log('error', Array.prototype.slice.call(arguments).join(' ')); }
};
function __wb_run(text) {
  var ev = new Event(JSON.parse(text));
  process(ev);
  if (ev._cancelled) return null;
  return JSON.stringify(ev.fields);
}
"""


def _engine() -> Any:
    try:
        import quickjs
    except ImportError:
        return None
    return quickjs


def _js_log(level: str, text: str) -> None:
    log.log(logging.getLevelName(level.upper()), "%s", text)


def _json_default(v: Any) -> Any:
    if isinstance(v, bytes | bytearray):
        return bytes(v).decode("utf-8", "replace")
    if isinstance(v, set | tuple):
        return list(v)
    raise TypeError(f"not JSON: {type(v).__name__}")


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _read_sources(o: Opts, ctx: Context) -> str:
    source = o.str("source")
    file = o.str("file")
    files = o.strings("files")
    given = sum(1 for x in (source, file, files) if x)
    if given == 0:
        raise o.error(None, "javascript must be defined via 'file', 'files', or inline as 'source'")
    if given > 1:
        raise o.error(None, "javascript can be defined in only one of 'file', 'files', or inline as 'source'")
    if source:
        return source
    texts = []
    for i, pattern in enumerate([file] if file else files):
        key = "file" if file else f"files.{i}"
        full = pattern if os.path.isabs(pattern) else os.path.join(ctx.config_dir, pattern)
        matches = sorted(glob.glob(full))
        if not matches:
            raise o.error(key, f"no sources were found in {full}")
        for m in matches:
            try:
                with open(m, encoding="utf-8") as fh:
                    texts.append(fh.read())
            except OSError as exc:
                raise o.error(key, f"cannot read {m}: {exc.strerror}") from None
    return "\n;\n".join(texts)


@register("script")
def script(o: Opts, ctx: Context) -> Processor:
    lang = o.str("lang", required=True).lower()
    if lang not in ("javascript", "js"):
        raise o.error("lang", f"script type not supported: {lang!r} (only javascript)")
    quickjs = _engine()
    if quickjs is None:
        raise o.error(
            None, "processor 'script' is not supported: the JavaScript engine (quickjs) is not installed"
        )
    code = _read_sources(o, ctx)
    params = o.mapping("params")
    timeout = o.duration("timeout", 0.0)
    tag_on_exception = o.str("tag_on_exception", "_js_exception")
    o.str("tag")
    o.int("max_cached_sessions", 4, minimum=0)
    o.bool("only_cached_sessions", False)

    js = quickjs.Context()
    js.set_memory_limit(256 << 20)
    js.add_callable("__wb_log", _js_log)
    try:
        js.eval(PRELUDE)
        js.eval(code)
        if js.eval("typeof process") != "function":
            raise o.error("source", "process function not found")
        if params:
            if js.eval("typeof register") != "function":
                raise o.error("params", "params were given but no register function is defined")
            js.eval(f"register({json.dumps(params, default=_json_default)})")
        if js.eval("typeof test") == "function":
            js.eval("test()")
    except quickjs.JSException as exc:
        raise o.error(None, f"failed to load the javascript: {_error_text(exc)}") from None
    if timeout > 0:
        js.set_time_limit(timeout)
    run_js = js.get("__wb_run")
    lock = threading.Lock()
    dumps = json.dumps
    loads = json.loads

    def run(evt: Event) -> Event | None:
        meta = evt.get("@metadata")
        text = dumps({k: v for k, v in evt.items() if k != "@metadata"}, default=_json_default)
        try:
            with lock:
                out = run_js(text)
        except quickjs.JSException as exc:
            msg = f"failed in process function: {_error_text(exc)}"
            if tag_on_exception:
                add_tags(evt, "tags", [tag_on_exception])
            _append_message(evt, msg)
            raise ProcessorError(msg, evt) from None
        if out is None:
            return None
        new: Event = loads(out)
        if meta is not None:
            new["@metadata"] = meta
        return new

    return run


def _append_message(evt: Event, msg: str) -> None:
    err = evt.get("error")
    if not isinstance(err, dict):
        if err is not None:
            return
        err = evt["error"] = {}
    cur = err.get("message")
    if cur is None:
        err["message"] = msg
    elif isinstance(cur, str):
        if cur != msg:
            err["message"] = [cur, msg]
    elif isinstance(cur, list) and msg not in cur:
        cur.append(msg)

"""Command line compatible with Packetbeat's.

``wirebeat [run] -c FILE -e -d SELECTORS -E key=value -I PCAP -t -l N -O -dump PREFIX``,
``wirebeat devices``, ``wirebeat test config|output``, ``wirebeat version``,
``wirebeat export config|template|ilm-policy|index-pattern|dashboard|fields``,
``wirebeat setup [--index-management] [--dashboards]``,
``wirebeat keystore create|add|list|remove`` (``--force``, ``--stdin``), ``--strict.perms``.

Errors end in one line on stderr, ``Exiting: <reason>``, and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import logging
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from capture import CaptureError
from protocols import compiled
from shipper.agent.config import ConfigError
from shipper.agent.settings import DEFAULT_CONFIG_NAMES, Settings, load_settings
from shipper.agent.version import PACKETBEAT_COMPAT, VERSION
from shipper.outputs.base import OutputError

COMMANDS = ("run", "devices", "test", "export", "setup", "version", "keystore", "help")


COMMANDS_HELP = """commands:
  run                     capture (or read -I FILE) and publish events (the default)
  devices                 list the capture devices
  test config             check the config file (-c FILE, else wirebeat.yml, packetbeat.yml)
  test output             check that every configured output can be reached
  export config           print the configuration (${KEY} references, never secrets)
  export template         print the index template (--es.version, --noilm, --dir)
  export ilm-policy       print the ILM policy
  export index-pattern    print the Kibana index pattern (data view)
  export dashboard        print a dashboard (--id ID)
  export fields           print the field reference (markdown, from the fields.yml files)
  setup                   install the index template, ILM policy and dashboards
                          (--index-management, --dashboards, --pipelines)
  keystore create         create the secrets keystore (--force to replace it)
  keystore add KEY        add a secret, typed at a prompt or read with --stdin (--force)
  keystore list           list the keys of the keystore
  keystore remove KEY...  remove secrets from the keystore
  version                 print the version
  help                    print this help
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's default prints usage and exits 2
        raise Exit(1, f"Exiting: {message} (see 'wirebeat --help')")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="wirebeat",
        description="Passive network monitor, Packetbeat-compatible.",
        epilog=COMMANDS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("words", nargs="*", help=argparse.SUPPRESS)
    g = p.add_argument_group("global flags (libbeat)")
    g.add_argument(
        "-c", "--c", dest="config", help="configuration file (default wirebeat.yml or packetbeat.yml)"
    )
    g.add_argument("-e", "--e", dest="stderr", action="store_true", help="log to stderr")
    g.add_argument(
        "-d",
        "--d",
        dest="selectors",
        action="append",
        default=[],
        help="debug selectors, e.g. 'publish,tcp,http' or '*'",
    )
    g.add_argument(
        "-E",
        "--E",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting",
    )
    g.add_argument("-v", "--v", dest="verbose", action="store_true", help="log at info level")
    g.add_argument("--path.home", dest="path_home")
    g.add_argument("--path.config", dest="path_config")
    g.add_argument("--path.data", dest="path_data")
    g.add_argument("--path.logs", dest="path_logs")
    g.add_argument(
        "--strict.perms",
        dest="strict_perms",
        default="true",
        metavar="BOOL",
        help="refuse a config file or keystore others may write (default true)",
    )
    r = p.add_argument_group("run flags (Packetbeat)")
    r.add_argument("-I", "--I", dest="pcap", help="read packets from a pcap/pcapng file instead of sniffing")
    r.add_argument(
        "-t",
        "--t",
        dest="topspeed",
        action="store_true",
        help="read the file as fast as possible (timestamps are always the capture's)",
    )
    r.add_argument(
        "-l", "--l", dest="loops", type=int, default=1, help="replay the file N times (0 = forever)"
    )
    r.add_argument(
        "-O", "--O", dest="one_at_a_time", action="store_true", help="read packets one at a time (Enter)"
    )
    r.add_argument(
        "-dump", "--dump", dest="dump", default="", help="write captured packets to PREFIX-<time>.pcap"
    )
    r.add_argument(
        "-N", "--N", dest="no_publish", action="store_true", help="disable publishing (discard output)"
    )
    r.add_argument(
        "--workers",
        dest="workers",
        type=int,
        default=None,
        help="decoding processes (packetbeat.workers; 0 = one per CPU, 1 = a single process)",
    )
    r.add_argument("-devices", dest="devices_flag", action="store_true", help=argparse.SUPPRESS)
    r.add_argument("-version", dest="version_flag", action="store_true", help=argparse.SUPPRESS)
    r.add_argument("-configtest", dest="configtest_flag", action="store_true", help=argparse.SUPPRESS)
    s = p.add_argument_group("setup / export flags")
    s.add_argument("--index-management", dest="index_management", action="store_true")
    s.add_argument("--dashboards", dest="dashboards", action="store_true")
    s.add_argument("--pipelines", dest="pipelines", action="store_true")
    s.add_argument("--template", dest="template", action="store_true")
    s.add_argument("--ilm-policy", dest="ilm_policy", action="store_true")
    s.add_argument("--es.version", dest="es_version", default="")
    s.add_argument("--dir", dest="export_dir", default="")
    s.add_argument("--noilm", dest="noilm", action="store_true")
    s.add_argument("--id", dest="dashboard_id", default="")
    k = p.add_argument_group("keystore flags")
    k.add_argument("--force", dest="force", action="store_true", help="create/add: replace what exists")
    k.add_argument("--stdin", dest="stdin", action="store_true", help="add: read the value from stdin")
    return p


class Exit(Exception):
    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _fail(message: str, code: int = 1) -> Exit:
    return Exit(code, f"Exiting: {message}")


def strict_perms(args: argparse.Namespace) -> bool:
    value = str(args.strict_perms).strip().lower()
    if value in ("true", "1", "yes", "on", "t"):
        return True
    if value in ("false", "0", "no", "off", "f"):
        return False
    raise _fail(f"invalid value {args.strict_perms!r} for --strict.perms (true or false)")


def config_path(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """The config file to read (``-c``, relative to ``--path.config``; else the first of
    wirebeat.yml, packetbeat.yml in ``--path.config`` or the working directory) and the
    files looked for."""
    import os

    path = args.config
    if path is not None:
        if args.path_config and not os.path.isabs(path):
            path = os.path.join(args.path_config, path)  # libbeat: -c is relative to path.config
        return path, [path]
    base = args.path_config or "."
    looked = [os.path.join(base, name) for name in DEFAULT_CONFIG_NAMES]
    return next((c for c in looked if os.path.exists(c)), None), looked


def load(args: argparse.Namespace, *, need_file: bool = False) -> Settings:
    overrides = list(args.overrides)
    for flag, key in (
        ("path_home", "path.home"),
        ("path_config", "path.config"),
        ("path_data", "path.data"),
        ("path_logs", "path.logs"),
    ):
        value = getattr(args, flag)
        if value:
            overrides.append(f"{key}={value}")
    if getattr(args, "workers", None) is not None:
        overrides.append(f"packetbeat.workers={args.workers}")
    import os

    path, looked = config_path(args)
    if path is None and need_file:
        shown = ", ".join(os.path.abspath(p) for p in looked)
        raise _fail(
            f"error loading config file: no config file found (looked for {shown}); give one with -c FILE"
        )
    settings, warnings = load_settings(
        path, overrides, required=args.config is not None, strict_perms=strict_perms(args)
    )
    _pending_warnings.extend(warnings)
    return settings


_pending_warnings: list[str] = []


def setup_logs(args: argparse.Namespace, settings: Settings | None) -> None:
    from shipper.agent.logs import setup_logging

    lg = settings.logging if settings is not None else None
    selectors = [s for item in args.selectors for s in item.split(",")]
    if lg is not None:
        selectors += lg.selectors if lg.level == "debug" else []
    setup_logging(
        level=("info" if args.verbose else (lg.level if lg else "info")),
        selectors=selectors,
        to_stderr=args.stderr or (lg.to_stderr if lg else False) or settings is None,
        to_files=lg.to_files if lg else False,
        json_format=lg.json if lg else True,
        log_dir=(Path(lg.files.path) if lg and lg.files.path else settings.logs_path)
        if settings is not None
        else None,
        name=lg.files.name if lg else "wirebeat",
        rotate_bytes=lg.files.rotateeverybytes if lg else 10 * 1024 * 1024,
        keep=lg.files.keepfiles if lg else 7,
        permissions=lg.files.permissions if lg else 0o600,
    )
    log = logging.getLogger("config")
    for w in _pending_warnings:
        log.warning("%s", w)
    _pending_warnings.clear()


def cmd_run(args: argparse.Namespace) -> int:
    settings = load(args)
    if args.no_publish:
        settings = _with_output(settings, "discard")
    if not args.dump and settings.packetbeat.interfaces[0].dumpfile:
        args.dump = settings.packetbeat.interfaces[0].dumpfile  # -dump's config key
    setup_logs(args, settings)
    from shipper.agent.beat import Beat

    beat = Beat(settings)
    log = logging.getLogger("beat")
    log.info("wirebeat %s starting (output %s)", VERSION, settings.output_name())
    log.log(logging.WARNING if compiled.STALE else logging.INFO, "%s", compiled.status())
    if args.pcap:
        return beat.run_file(
            args.pcap,
            topspeed=args.topspeed,
            loops=args.loops,
            one_at_a_time=args.one_at_a_time,
            dump_prefix=args.dump,
        )
    run_live = _optional("shipper.agent.live", "run_live")
    if run_live is None:
        raise _fail("live capture is not available in this build; use -I FILE")
    code: int = run_live(beat, args)
    return code


def _with_output(settings: Settings, name: str) -> Settings:
    import attrs

    from shipper.agent.settings import output_module

    return attrs.evolve(settings, output={name: output_module(name).CONFIG()})


def _optional(module: str, attr: str) -> Callable[..., Any] | None:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    fn: Callable[..., Any] | None = getattr(mod, attr, None)
    return fn


def cmd_devices(args: argparse.Namespace) -> int:
    from capture.devices import list_devices

    for d in list_devices():
        print(d.line())
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    print(
        f"wirebeat version {VERSION} ({arch}), Packetbeat-compatible {PACKETBEAT_COMPAT}, "
        f"Python {platform.python_version()}"
    )
    return 0


def cmd_test(args: argparse.Namespace, what: str) -> int:
    if what == "config":
        settings = load(args, need_file=True)
        setup_logs(args, None)
        from protocols.registry import ProtocolConfigError
        from shipper.agent.beat import Beat

        try:
            # Build what `run` builds, short of opening devices, files and connections.
            Beat(settings).dry_build()
        except ProtocolConfigError as exc:
            raise _fail(f"packetbeat.protocols: {exc}") from None
        check = _optional("shipper.agent.live", "check_interfaces")
        if check is not None:
            check(settings)
        print("Config OK")
        return 0
    if what == "output":
        settings = load(args)
        setup_logs(args, None)
        test_output = _optional("shipper.agent.testoutput", "test_output")
        if test_output is None:
            raise _fail(f"test output is not available for output {settings.output_name()!r}")
        code: int = test_output(settings)
        return code
    raise _fail(f"unknown test {what!r}; use 'test config' or 'test output'")


def cmd_export(args: argparse.Namespace, what: str) -> int:
    if what == "config":
        settings = load(args)
        sys.stdout.write(yaml.safe_dump(settings.raw, sort_keys=False, default_flow_style=False))
        return 0
    export = _optional("shipper.setup.export", "export")
    if export is None:
        raise _fail(f"export {what} is not available in this build")
    settings = load(args)
    setup_logs(args, None)
    code: int = export(what, settings, args)
    return code


def cmd_setup(args: argparse.Namespace) -> int:
    setup = _optional("shipper.setup.run", "run_setup")
    if setup is None:
        raise _fail("setup is not available in this build")
    settings = load(args)
    setup_logs(args, None)
    code: int = setup(settings, args)
    return code


def cmd_keystore(args: argparse.Namespace, words: list[str]) -> int:
    """``keystore create|add|list|remove``: the keystore of ``keystore.path`` or
    ``${path.data}/wirebeat.keystore``, read from the config file and ``-E`` without
    building the rest of the config (a broken config does not lock the keystore out)."""
    from shipper.agent.config import expand_dotted, load_yaml, parse_override, set_path
    from shipper.agent.keystore import KeystoreError, keystore_path, run_command

    path, _ = config_path(args)
    tree: dict[str, Any] = expand_dotted(load_yaml(path)) if path is not None else {}
    if path is not None and strict_perms(args):
        from shipper.agent.keystore import check_file_perms

        try:
            check_file_perms(path, exact=False)
        except KeystoreError as exc:
            raise _fail(f"error loading config file: {exc}") from None
    overrides = list(args.overrides)
    for flag, key in (("path_home", "path.home"), ("path_data", "path.data")):
        if getattr(args, flag):
            overrides.append(f"{key}={getattr(args, flag)}")
    for item in overrides:
        key, value = parse_override(item)
        set_path(tree, key, value)
    try:
        flags = [f for f, on in (("--force", args.force), ("--stdin", args.stdin)) if on]
        return run_command(
            keystore_path(expand_dotted(tree)), [*words, *flags], strict_perms=strict_perms(args)
        )
    except KeystoreError as exc:
        raise _fail(str(exc)) from None


def dispatch(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    words = list(args.words)
    if args.version_flag:
        return cmd_version(args)
    if args.devices_flag:
        return cmd_devices(args)
    if args.configtest_flag:
        return cmd_test(args, "config")
    cmd = words[0] if words else "run"
    if cmd not in COMMANDS:
        raise _fail(f"unknown command {cmd!r} (commands: {', '.join(COMMANDS)})")
    rest = words[1:]
    if cmd == "help":
        parser.print_help()
        return 0
    if cmd == "run":
        return cmd_run(args)
    if cmd == "devices":
        return cmd_devices(args)
    if cmd == "version":
        return cmd_version(args)
    if cmd == "test":
        if not rest:
            raise _fail("test needs a subcommand: config or output")
        return cmd_test(args, rest[0])
    if cmd == "export":
        if not rest:
            raise _fail("export needs a subcommand: config, template, ilm-policy, index-pattern, dashboard")
        return cmd_export(args, rest[0])
    if cmd == "setup":
        return cmd_setup(args)
    if cmd == "keystore":
        return cmd_keystore(args, rest)
    raise _fail(f"unknown command {cmd!r}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        code = dispatch(argv)
    except Exit as exc:
        if exc.message:
            print(exc.message, file=sys.stderr)
        code = exc.code
    except CaptureError as exc:
        print(f"Exiting: {exc}", file=sys.stderr)
        code = 1
    except OutputError as exc:
        print(f"Exiting: error initializing the output: {exc}", file=sys.stderr)
        code = 1
    except ConfigError as exc:
        msg = str(exc)
        if not msg.startswith("error loading config"):
            msg = f"error loading config: {msg}"
        print(f"Exiting: {msg}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = EXIT_SIGPIPE
    except Exception as exc:
        # A bug: one line, the traceback only when asked for (-d '*').
        from shipper.agent.logs import tracebacks_enabled

        wanted = tracebacks_enabled() or _asks_for_tracebacks(argv)
        if wanted:
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        text = str(exc)
        what = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        hint = "" if wanted else " (run with -d '*' for the traceback)"
        print(f"Exiting: internal error: {what}{hint}", file=sys.stderr)
        code = 1
    if code == EXIT_SIGPIPE:
        _stdout_gone()
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        code = _stdout_gone() if code == 0 else code
    sys.exit(code)


#: What a shell reports for a process killed by SIGPIPE (128 + 13).
EXIT_SIGPIPE = 141


def _asks_for_tracebacks(argv: list[str]) -> bool:
    """``-d '*'`` (or ``-d 'a,*'``) on the command line."""
    for flag, value in itertools.pairwise(argv):
        if flag in ("-d", "--d") and "*" in value.split(","):
            return True
    return any(a.startswith(("-d=", "--d=")) and "*" in a.split("=", 1)[1].split(",") for a in argv)


def _stdout_gone() -> int:
    """stdout's reader went away (``| head``): end like a Unix tool killed by SIGPIPE,
    without Python's "Exception ignored ... BrokenPipeError" at exit (what is still
    buffered goes to /dev/null)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_SIGPIPE


if __name__ == "__main__":
    main()

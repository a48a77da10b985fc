"""The secrets keystore: ``wirebeat keystore create|add|list|remove`` and the ``${KEY}``
lookups of the config loader (the keystore first, then the environment, as in libbeat).

The file is ``keystore.path``, by default ``${path.data}/wirebeat.keystore``, created
0600 and, with ``strict.perms`` (the default), refused unless it is owned by the user
(or root) and readable and writable by its owner only, in libbeat's words.

Format: libbeat's own (``libbeat/keystore/file_keystore.go``), chosen so that a
``packetbeat.keystore`` works as ``keystore.path`` and the other way round, and because
the work is small with ``cryptography`` (already a dependency):
``v1`` + base64(salt[64] | iv[12] | AES-256-GCM(JSON ``{KEY: {"value": base64}}``)), the
key derived with PBKDF2-HMAC-SHA512 (10,000 rounds) from the empty password. Like
libbeat's, this is obfuscation, not protection: anyone who can read the file can read
the secrets; what keeps them is the file's 0600 mode. What it does buy: secrets are not
in the config file, not in ``export config`` (it prints the ``${KEY}`` references), not
in ``ps`` or the environment of the process, and not readable by ``grep`` over ``/etc``.

Values come from a prompt (no echo) or, with ``--stdin``, from standard input, where one
trailing newline is dropped (``echo secret | wirebeat keystore add K --stdin``; libbeat
keeps it, and its docs have to say ``echo -n``).
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

VERSION = b"v1"
SALT_LEN = 64
IV_LEN = 12
ROUNDS = 10_000
FILE_MODE = 0o600
#: Largest keystore file read (a keystore holds a few passwords; this is no database).
MAX_FILE = 16 << 20


class KeystoreError(Exception):
    """A keystore that cannot be used; the message says why (never a secret)."""


def _key(salt: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    return PBKDF2HMAC(algorithm=hashes.SHA512(), length=32, salt=salt, iterations=ROUNDS).derive(b"")


def encode(secrets: dict[str, bytes]) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    plain = json.dumps({k: {"value": base64.b64encode(v).decode()} for k, v in secrets.items()}).encode()
    salt, iv = os.urandom(SALT_LEN), os.urandom(IV_LEN)
    sealed = AESGCM(_key(salt)).encrypt(iv, plain + b"\n", None)
    return VERSION + base64.b64encode(salt + iv + sealed)


def decode(raw: bytes, where: str) -> dict[str, bytes]:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if raw[: len(VERSION)] != VERSION:
        raise KeystoreError(f"keystore {where}: format doesn't match expected version: 'v1' got {raw[:2]!r}")
    try:
        data = base64.b64decode(raw[len(VERSION) :].strip(), validate=True)
    except ValueError:
        raise KeystoreError(f"keystore {where}: corrupt (not base64)") from None
    if len(data) < SALT_LEN + IV_LEN + 16:
        raise KeystoreError(f"keystore {where}: corrupt or empty")
    salt, iv, sealed = data[:SALT_LEN], data[SALT_LEN : SALT_LEN + IV_LEN], data[SALT_LEN + IV_LEN :]
    try:
        plain = AESGCM(_key(salt)).decrypt(iv, sealed, None)
    except InvalidTag:
        raise KeystoreError(f"keystore {where}: could not decrypt (corrupt, or not a keystore)") from None
    try:
        doc = json.loads(plain)
        return {str(k): base64.b64decode(v["value"]) for k, v in doc.items()}
    except (ValueError, TypeError, KeyError, AttributeError):
        raise KeystoreError(f"keystore {where}: corrupt (unexpected content)") from None


def check_file_perms(path: str, *, exact: bool) -> None:
    """libbeat's strict.perms: owned by the effective user or root and, for a config file,
    not writable by group or others; for the keystore, exactly 0600 (``exact``).
    Raises KeystoreError (with libbeat's message) otherwise."""
    if os.name != "posix":
        return
    st = os.stat(path)
    euid = os.geteuid()
    if st.st_uid not in (0, euid):
        raise KeystoreError(
            f'config file ("{path}") must be owned by the user identifier (uid={euid}) or root'
        )
    perm = stat.S_IMODE(st.st_mode) & 0o777
    shown = "-" + stat.filemode(perm)[1:]
    if exact and perm != FILE_MODE:
        raise KeystoreError(
            f'file ("{path}") can only be writable and readable by the owner but the permissions are '
            f"\"{shown}\" (to fix the permissions use: 'chmod go-wrx {os.path.abspath(path)}')"
        )
    if not exact and perm & 0o022:
        raise KeystoreError(
            f'config file ("{path}") can only be writable by the owner but the permissions are '
            f"\"{shown}\" (to fix the permissions use: 'chmod go-w {os.path.abspath(path)}')"
        )


class Keystore:
    """One keystore file; the secrets are read when it is opened."""

    def __init__(self, path: str | Path, *, strict_perms: bool = True) -> None:
        self.path = str(path)
        self.strict_perms = strict_perms
        self.secrets: dict[str, bytes] = {}
        if self.exists():
            self._load()

    def exists(self) -> bool:
        return os.path.isfile(self.path)

    def _load(self) -> None:
        try:
            if self.strict_perms:
                check_file_perms(self.path, exact=True)
            with open(self.path, "rb") as fh:
                raw = fh.read(MAX_FILE + 1)
        except OSError as exc:
            raise KeystoreError(f"cannot read the keystore {self.path}: {exc.strerror}") from None
        if len(raw) > MAX_FILE:
            raise KeystoreError(f"keystore {self.path}: larger than {MAX_FILE >> 20} MiB; not a keystore")
        self.secrets = decode(raw, self.path)

    def get(self, key: str) -> str | None:
        value = self.secrets.get(key)
        return None if value is None else value.decode("utf-8", "replace")

    def names(self) -> list[str]:
        return sorted(self.secrets)

    def save(self) -> None:
        """Write atomically (a temporary file renamed over the old one), mode 0600."""
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, mode=0o750, exist_ok=True)
            tmp = f"{self.path}.tmp"
            if os.path.exists(tmp):
                os.unlink(tmp)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            with os.fdopen(fd, "wb") as fh:
                fh.write(encode(self.secrets))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise KeystoreError(f"cannot save the keystore {self.path}: {exc.strerror}") from None


def keystore_path(tree: dict[str, Any]) -> str:
    """``keystore.path``, else ``${path.data}/wirebeat.keystore`` (``path.data`` defaulting
    to ``${path.home}/data``, as :class:`~shipper.agent.settings.Settings` does), from the
    raw config tree; ``${VAR}`` in those paths comes from the environment."""

    def get(*keys: str) -> str:
        node: Any = tree
        for k in keys:
            node = node.get(k) if isinstance(node, dict) else None
        if not isinstance(node, str | int | float) or isinstance(node, bool) or node == "":
            return ""
        from shipper.agent.config import expand_vars

        return str(expand_vars(str(node)))

    explicit = get("keystore", "path")
    if explicit:
        return explicit
    data = get("path", "data") or os.path.join(get("path", "home") or ".", "data")
    return os.path.join(data, "wirebeat.keystore")


# -- the keystore command ----------------------------------------------------------------------


class _Answers:
    """Prompts (y/n questions, secret values) on the terminal or stdin."""

    def __init__(self, read_line: Callable[[], str] | None = None) -> None:
        self.read_line = read_line or sys.stdin.readline

    def yes_no(self, question: str, default: bool) -> bool:
        hint = "[Y/n]" if default else "[y/N]"
        while True:
            sys.stdout.write(f"{question} {hint}: ")
            sys.stdout.flush()
            line = self.read_line()
            if not line:  # end of input: the default
                sys.stdout.write("\n")
                return default
            answer = line.strip().lower()
            if not answer:
                return default
            if answer in ("y", "yes"):
                return True
            if answer in ("n", "no"):
                return False
            sys.stdout.write("Please write 'y' or 'n'\n")

    def secret(self, key: str) -> bytes:
        if sys.stdin.isatty():
            import getpass

            return getpass.getpass(f"Enter value for {key}: ").encode()
        sys.stdout.write(f"Enter value for {key}: ")
        sys.stdout.flush()
        line = self.read_line()
        sys.stdout.write("\n")
        return line.rstrip("\r\n").encode()


def _strip_newline(data: bytes) -> bytes:
    if data.endswith(b"\r\n"):
        return data[:-2]
    return data[:-1] if data.endswith(b"\n") else data


def run_command(path: str, words: list[str], *, strict_perms: bool = True) -> int:
    """``wirebeat keystore SUBCOMMAND [--force] [--stdin] [KEY...]`` (libbeat's messages).
    Raises KeystoreError for what ends the command with ``Exiting: ...``."""
    flags = {w for w in words if w.startswith("--")}
    args = [w for w in words if not w.startswith("--")]
    if not args:
        raise KeystoreError("keystore needs a subcommand: create, add, list or remove")
    sub, keys = args[0], args[1:]
    allowed = {"create": {"--force"}, "add": {"--force", "--stdin"}, "list": set(), "remove": set()}
    if sub not in allowed:
        raise KeystoreError(f"unknown keystore subcommand {sub!r} (create, add, list, remove)")
    unknown = flags - allowed[sub]
    if unknown:
        raise KeystoreError(f"keystore {sub}: unknown flag {sorted(unknown)[0]}")
    force = "--force" in flags
    ask = _Answers()
    store = Keystore(path, strict_perms=strict_perms)
    if sub == "create":
        if keys:
            raise KeystoreError("keystore create takes no key")
        if store.exists() and not force and not ask.yes_no("A keystore already exists, Overwrite?", True):
            print("Exiting without creating keystore.")
            return 0
        store.secrets = {}
        store.save()
        print("Created wirebeat keystore")
        return 0
    if sub == "list":
        for key in store.names():
            print(key)
        return 0
    if sub == "remove":
        if not keys:
            raise KeystoreError("you must supply at least one key to remove")
        if not store.exists():
            raise KeystoreError("the keystore doesn't exist. Use the 'create' command to create one")
        for key in (k.strip() for k in keys):
            if key not in store.secrets:
                raise KeystoreError(f"could not find key '{key}' in the keystore")
            del store.secrets[key]
            store.save()
            print(f"successfully removed key: {key}")
        return 0
    # add
    if not keys:
        raise KeystoreError("failed to create the secret: no key provided")
    if len(keys) > 1:
        raise KeystoreError(
            f"could not create secret for: {keys}, you can only provide one key per invocation"
        )
    key = keys[0].strip()
    if not key or any(c in key for c in "${}:") or any(c.isspace() for c in key):
        raise KeystoreError(f"invalid key name {key!r} (no spaces, '$', '{{', '}}' or ':')")
    from_stdin = "--stdin" in flags
    if not store.exists():
        if not force and not ask.yes_no("The keystore does not exist. Do you want to create it?", False):
            raise KeystoreError("exiting without creating keystore")
        store.secrets = {}
        store.save()
        print("Created keystore")
    if key in store.secrets and not force:
        if from_stdin:
            raise KeystoreError(
                f"the settings {key} already exist in the keystore use `--force` to replace it"
            )
        if not ask.yes_no(f"Setting {key} already exists, Overwrite?", False):
            print("Exiting without modifying keystore.")
            return 0
    if from_stdin:
        value = _strip_newline(sys.stdin.buffer.read(MAX_FILE + 1))
        if len(value) > MAX_FILE:
            raise KeystoreError(f"the value on stdin is larger than {MAX_FILE >> 20} MiB")
    else:
        value = ask.secret(key)
    store.secrets[key] = value
    store.save()
    print("Successfully updated the keystore")
    return 0

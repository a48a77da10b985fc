"""The secrets keystore: ``wirebeat keystore create|add|list|remove`` as libbeat's, the file
(0600, libbeat's format), ``${KEY}`` resolved from it before the environment, secrets kept
out of ``export config``, error messages and logs, and strict.perms on the keystore.

Everything runs the CLI in a subprocess; the keystore lives in ``tmp/data`` (path.data).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from shipper.agent.keystore import Keystore, KeystoreError, decode, encode
from tests.helpers import need, shared_pcap
from tests.shipper.shiprun import Run, wirebeat

SECRET = "s3cr3t-Hunter2"


def store_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "wirebeat.keystore"


def add(tmp_path: Path, key: str, value: str, *extra: str) -> Run:
    return wirebeat("keystore", "add", key, "--stdin", *extra, tmp=tmp_path, stdin=value)


def test_create_add_list_remove(tmp_path: Path) -> None:
    run = wirebeat("keystore", "create", tmp=tmp_path)
    assert run.rc == 0, run
    assert run.stdout == "Created wirebeat keystore\n"
    path = store_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"v1")

    assert add(tmp_path, "ES_PWD", SECRET + "\n").stdout == "Successfully updated the keystore\n"
    assert add(tmp_path, "KAFKA_PWD", "other").rc == 0
    listed = wirebeat("keystore", "list", tmp=tmp_path)
    assert listed.rc == 0 and listed.stdout == "ES_PWD\nKAFKA_PWD\n", listed  # keys only
    assert SECRET not in path.read_text()  # obfuscated, as libbeat's
    assert Keystore(path).get("ES_PWD") == SECRET  # one trailing newline of stdin dropped
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    # An existing key needs --force with --stdin (libbeat's message).
    again = add(tmp_path, "ES_PWD", "new")
    assert again.rc == 1
    assert again.stderr == (
        "Exiting: the settings ES_PWD already exist in the keystore use `--force` to replace it\n"
    )
    assert add(tmp_path, "ES_PWD", "new", "--force").rc == 0
    assert Keystore(path).get("ES_PWD") == "new"

    removed = wirebeat("keystore", "remove", "ES_PWD", "KAFKA_PWD", tmp=tmp_path)
    assert removed.rc == 0, removed
    assert removed.stdout == "successfully removed key: ES_PWD\nsuccessfully removed key: KAFKA_PWD\n"
    assert wirebeat("keystore", "list", tmp=tmp_path).stdout == ""
    missing = wirebeat("keystore", "remove", "NOPE", tmp=tmp_path)
    assert (missing.rc, missing.stderr) == (1, "Exiting: could not find key 'NOPE' in the keystore\n")


def test_create_asks_before_replacing_and_force_does_not(tmp_path: Path) -> None:
    assert wirebeat("keystore", "create", tmp=tmp_path).rc == 0
    assert add(tmp_path, "K", "v").rc == 0
    keep = wirebeat("keystore", "create", tmp=tmp_path, stdin="n\n")
    assert keep.rc == 0 and "A keystore already exists, Overwrite? [Y/n]" in keep.stdout, keep
    assert "Exiting without creating keystore." in keep.stdout
    assert Keystore(store_path(tmp_path)).names() == ["K"]
    assert wirebeat("keystore", "create", "--force", tmp=tmp_path).rc == 0
    assert Keystore(store_path(tmp_path)).names() == []


def test_add_without_a_keystore_asks_to_create_it(tmp_path: Path) -> None:
    no = wirebeat("keystore", "add", "K", tmp=tmp_path, stdin="\n")  # default: no
    assert no.rc == 1 and no.stderr == "Exiting: exiting without creating keystore\n", no
    assert not store_path(tmp_path).exists()
    yes = wirebeat("keystore", "add", "K", tmp=tmp_path, stdin="y\nprompted-value\n")
    assert yes.rc == 0, yes
    assert "Created keystore" in yes.stdout and "Enter value for K:" in yes.stdout
    assert "prompted-value" not in yes.stdout
    assert Keystore(store_path(tmp_path)).get("K") == "prompted-value"
    forced = add(tmp_path / "other", "K", "v", "--force")  # --force creates it without asking
    assert forced.rc == 0 and forced.stdout == "Created keystore\nSuccessfully updated the keystore\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add"], "failed to create the secret: no key provided"),
        (["add", "A", "B"], "you can only provide one key per invocation"),
        (["remove"], "you must supply at least one key to remove"),
        (["frob"], "unknown keystore subcommand 'frob'"),
        ([], "keystore needs a subcommand"),
        (["list", "--stdin"], "keystore list: unknown flag --stdin"),
    ],
)
def test_usage_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    run = wirebeat("keystore", *args, tmp=tmp_path, stdin="")
    assert run.rc == 1, run
    assert run.stderr.startswith("Exiting: ") and message in run.stderr and run.stderr.count("\n") == 1


def test_remove_without_a_keystore(tmp_path: Path) -> None:
    run = wirebeat("keystore", "remove", "K", tmp=tmp_path)
    assert run.rc == 1
    assert "the keystore doesn't exist. Use the 'create' command to create one" in run.stderr


CONFIG = """\
name: ${NAME_FROM_STORE}
output.elasticsearch:
  hosts: ["http://127.0.0.1:9"]
  username: elastic
  password: ${ES_PWD}
packetbeat.protocols:
- type: http
  ports: [8080]
"""


def config(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "wirebeat.yml"
    path.write_text(text)
    path.chmod(0o644)
    return path


def test_keys_resolve_before_the_environment_and_never_show(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    assert add(tmp_path, "ES_PWD", SECRET, "--force").rc == 0
    assert add(tmp_path, "NAME_FROM_STORE", "from-store").rc == 0
    env = {"NAME_FROM_STORE": "from-env", "ES_PWD": "env-password"}
    # The keystore wins over the environment (libbeat resolves keystore keys first).
    events = wirebeat(
        "-c", cfg, "-E", "output.console.enabled=true", "-E", "output.elasticsearch.enabled=false",
        "-t", "-I", shared_pcap("http_post"), "-E", "packetbeat.protocols.0.ports=[8080,80,8000]",
        tmp=tmp_path, env=env,
    )  # fmt: skip
    assert events.rc == 0, events
    assert events.events and {e["agent"]["name"] for e in events.events} == {"from-store"}
    # A key the keystore does not have comes from the environment.
    wirebeat("keystore", "remove", "NAME_FROM_STORE", tmp=tmp_path)
    ok = wirebeat("test", "config", "-c", cfg, tmp=tmp_path, env=env)
    assert ok.rc == 0, ok
    exported = wirebeat("export", "config", "-c", cfg, tmp=tmp_path, env=env)
    assert exported.rc == 0, exported
    assert "password: ${ES_PWD}" in exported.stdout and "name: ${NAME_FROM_STORE}" in exported.stdout
    assert SECRET not in exported.stdout and "env-password" not in exported.stdout
    # Every debug log of a run that fails to connect with the secret: never the secret.
    run = wirebeat(
        "-c", cfg, "-e", "-d", "*", "-t", "-I", shared_pcap("http_post"),
        "-E", "output.elasticsearch.max_retries=0", "-E", "output.elasticsearch.backoff.max=1s",
        "-E", "packetbeat.shutdown_timeout=2s",
        tmp=tmp_path, env=env, timeout=90,
    )  # fmt: skip
    assert run.stderr, run
    assert SECRET not in run.stderr + run.stdout


def test_a_bad_value_from_the_keystore_is_named_but_not_shown(tmp_path: Path) -> None:
    cfg = config(tmp_path, "queue.mem.events: ${EVENTS}\n")
    assert add(tmp_path, "EVENTS", "17", "--force").rc == 0
    run = wirebeat("test", "config", "-c", cfg, tmp=tmp_path)
    assert run.rc == 1
    assert run.stderr == (
        "Exiting: error loading config: requires value >= 32 accessing 'queue.mem.events' "
        f"(got <hidden>, from the keystore key ${{EVENTS}}, referenced in {cfg})\n"
    )
    # The same from the environment shows the value (the environment is no secret store).
    other = tmp_path / "other"
    run = wirebeat("test", "config", "-c", cfg, tmp=other, env={"EVENTS": "17"})
    assert run.stderr == (
        "Exiting: error loading config: requires value >= 32 accessing 'queue.mem.events' "
        f"(got 17, from the environment variable ${{EVENTS}}, referenced in {cfg})\n"
    )


def test_missing_key_names_both_places(tmp_path: Path) -> None:
    cfg = config(tmp_path, "name: ${NOWHERE_KEY}\n")
    run = wirebeat("test", "config", "-c", cfg, tmp=tmp_path)
    assert run.rc == 1
    assert "missing field accessing 'NOWHERE_KEY'" in run.stderr
    assert "neither in the keystore nor in the environment" in run.stderr


def test_keystore_path_setting(tmp_path: Path) -> None:
    elsewhere = tmp_path / "secrets" / "my.keystore"
    run = wirebeat("keystore", "add", "K", "--stdin", "--force", "-E", f"keystore.path={elsewhere}",
                   tmp=tmp_path, stdin="v")  # fmt: skip
    assert run.rc == 0, run
    assert elsewhere.exists() and not store_path(tmp_path).exists()
    cfg = config(tmp_path, f"keystore.path: {elsewhere}\nname: ${{K}}\n")
    exported = wirebeat("test", "config", "-c", cfg, tmp=tmp_path)
    assert exported.rc == 0, exported


def test_strict_perms_on_the_keystore(tmp_path: Path) -> None:
    cfg = config(tmp_path, "name: ${K}\n")
    assert add(tmp_path, "K", "v", "--force").rc == 0
    path = store_path(tmp_path)
    path.chmod(0o640)
    run = wirebeat("test", "config", "-c", cfg, tmp=tmp_path)
    assert run.rc == 1
    assert run.stderr == (
        f'Exiting: error loading config: file ("{path}") can only be writable and readable by the '
        f"owner but the permissions are \"-rw-r-----\" (to fix the permissions use: 'chmod go-wrx {path}')\n"
    )
    assert wirebeat("keystore", "list", tmp=tmp_path).rc == 1
    assert wirebeat("test", "config", "-c", cfg, "--strict.perms=false", tmp=tmp_path).rc == 0
    assert wirebeat("keystore", "list", "--strict.perms=false", tmp=tmp_path).stdout == "K\n"


def test_strict_perms_owner_of_the_keystore(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        need("root, to give the file to another user")
    assert add(tmp_path, "K", "v", "--force").rc == 0
    path = store_path(tmp_path)
    os.chown(path, 65534, 65534)
    run = wirebeat("keystore", "list", tmp=tmp_path)
    assert run.rc == 1
    assert f'config file ("{path}") must be owned by the user identifier (uid=0) or root' in run.stderr


def test_corrupt_keystore_is_one_line(tmp_path: Path) -> None:
    path = store_path(tmp_path)
    path.parent.mkdir(parents=True)
    for content in (b"v1" + b"A" * 200, b"v2whatever", b"v1!!!"):
        path.write_bytes(content)
        path.chmod(0o600)
        run = wirebeat("keystore", "list", tmp=tmp_path)
        assert run.rc == 1 and run.stderr.startswith("Exiting: keystore ") and run.stderr.count("\n") == 1, (
            run
        )


def test_format_round_trip_and_libbeat_layout() -> None:
    secrets = {"A": b"x", "B": "é\n".encode()}
    raw = encode(secrets)
    assert decode(raw, "t") == secrets
    import base64

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from shipper.agent.keystore import _key

    # v1 | base64(salt[64] | iv[12] | AES-256-GCM(JSON)), the key from PBKDF2 of "".
    body = base64.b64decode(raw[2:])
    plain = AESGCM(_key(body[:64])).decrypt(body[64:76], body[76:], None)
    assert json.loads(plain) == {
        "A": {"value": "eA=="},
        "B": {"value": base64.b64encode("é\n".encode()).decode()},
    }
    assert encode(secrets)[2:80] != raw[2:80]  # a fresh salt and iv each time
    with pytest.raises(KeystoreError):
        decode(raw[:-4] + b"AAAA", "t")


def packetbeat_binary() -> Path:
    from tests.oracle.oracle import packetbeat

    return packetbeat()


def test_packetbeat_reads_our_keystore_and_we_read_its(tmp_path: Path) -> None:
    """The same file format as libbeat's: Packetbeat 9.3 lists and resolves what wirebeat
    stored, and wirebeat resolves what Packetbeat stored."""
    pb = packetbeat_binary()
    ours = tmp_path / "ours"
    assert add(ours, "FROM_WIREBEAT", SECRET, "--force").rc == 0
    pb_home = tmp_path / "pb"
    pb_home.mkdir()
    (pb_home / "packetbeat.yml").write_text(
        "packetbeat.interfaces.device: lo\noutput.console.enabled: true\n"
    )
    (pb_home / "packetbeat.yml").chmod(0o600)
    (pb_home / "data").mkdir()
    os.link(store_path(ours), pb_home / "data" / "packetbeat.keystore")

    def packetbeat(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(pb), *args, "--path.home", str(pb_home), "-c", str(pb_home / "packetbeat.yml")],
            input=stdin, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    listed = packetbeat("keystore", "list")
    assert listed.returncode == 0, listed
    assert listed.stdout.split() == ["FROM_WIREBEAT"]
    added = packetbeat("keystore", "add", "FROM_PACKETBEAT", "--stdin", "--force", stdin="pb-value")
    assert added.returncode == 0, added
    store = Keystore(pb_home / "data" / "packetbeat.keystore")
    assert store.get("FROM_PACKETBEAT") == "pb-value"
    assert store.get("FROM_WIREBEAT") == SECRET


def test_keystore_commands_check_the_config_file_too(tmp_path: Path) -> None:
    cfg = config(tmp_path, "name: x\n")
    cfg.chmod(0o666)
    run = wirebeat("keystore", "list", "-c", cfg, tmp=tmp_path)
    assert run.rc == 1 and "can only be writable by the owner" in run.stderr, run
    assert wirebeat("keystore", "list", "-c", cfg, "--strict.perms=false", tmp=tmp_path).rc == 0


@pytest.mark.parametrize(
    "secret", ["yes", "off", "0123", "abc #1", "1.50", "[x", "  spaced  ", "x: y", "- a"]
)
def test_a_secret_comes_through_unchanged(tmp_path: Path, secret: str) -> None:
    """YAML would read these as true, false, 83, "abc", 1.5, a mapping, a list or fail; a password is
    its text (lists and mappings in ${...} are still read as YAML: -E hosts=${HOSTS})."""
    from shipper.agent.settings import load_settings

    store = Keystore(tmp_path / "data" / "wirebeat.keystore")
    store.secrets = {"PW": secret.encode(), "HOSTS": b'["http://127.0.0.1:9200", "http://127.0.0.2:9200"]'}
    store.save()
    cfg = config(tmp_path, "output.elasticsearch: {hosts: '${HOSTS}', username: u, password: '${PW}'}\n")
    settings, _ = load_settings(str(cfg), [f"path.data={tmp_path / 'data'}"], required=True)
    es = settings.output_config()
    assert es.password == secret
    assert es.hosts == ["http://127.0.0.1:9200", "http://127.0.0.2:9200"]

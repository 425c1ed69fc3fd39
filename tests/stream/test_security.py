"""Security basics: SASL/TLS settings reach every Kafka client, secrets never reach logs, and
model state is never deserialised with anything that can execute code.

(The HTTP API's read-only surface and escaping are tested with the API, tests/stream/test_api.py.)
"""

from __future__ import annotations

import ast
import asyncio
import json
import pickle
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import faust
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from click.testing import CliRunner
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from spikedetect import kafka_clients
from spikedetect.cli import main
from spikedetect.core.config import DetectorConfig
from spikedetect.core.counter import ClosedWindow
from spikedetect.core.errors import StateError
from spikedetect.core.scorer import Scorer
from spikedetect.core.state import export_key
from spikedetect.stream.app import _credentials, make_app
from spikedetect.stream.metrics import Metrics
from spikedetect.stream.owner import PartitionOwner
from spikedetect.stream.settings import Settings
from tests.stream.harness import LiveRun
from tests.stream.streams import outage_stream

SECRET = "s3cr3t-Pa55w0rd-7f1d"
SRC = Path(__file__).resolve().parents[2] / "src" / "spikedetect"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A throwaway CA and a client certificate signed by it (openssl)."""
    d = tmp_path_factory.mktemp("tls")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=spikedetect-test-ca",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "client.key",
        "-out",
        "client.csr",
        "-subj",
        "/CN=spikedetect-client",
    )
    run(
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "client.pem",
        "-days",
        "2",
    )
    return {"ca": str(d / "ca.pem"), "cert": str(d / "client.pem"), "key": str(d / "client.key")}


def sasl_ssl_env(tls: dict[str, str], mechanism: str = "SCRAM-SHA-512") -> dict[str, str]:
    return {
        "SPIKEDETECT_KAFKA": "broker-1.example:9093,broker-2.example:9093",
        "SPIKEDETECT_SECURITY_PROTOCOL": "SASL_SSL",
        "SPIKEDETECT_SASL_MECHANISM": mechanism,
        "SPIKEDETECT_SASL_USERNAME": "spikedetect",
        "SPIKEDETECT_SASL_PASSWORD": SECRET,
        "SPIKEDETECT_SSL_CAFILE": tls["ca"],
        "SPIKEDETECT_SSL_CERTFILE": tls["cert"],
        "SPIKEDETECT_SSL_KEYFILE": tls["key"],
    }


def sasl_ssl_settings(tls: dict[str, str], mechanism: str = "SCRAM-SHA-512") -> Settings:
    return Settings.from_env(sasl_ssl_env(tls, mechanism))


# -- SASL_SSL configuration -----------------------------------------------------------------
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_kafka_kwargs_carry_sasl_ssl_to_aiokafka(tls_files: dict[str, str], mechanism: str) -> None:
    s = sasl_ssl_settings(tls_files, mechanism)
    kw = s.kafka_kwargs()
    assert kw["bootstrap_servers"] == "broker-1.example:9093,broker-2.example:9093"
    assert kw["security_protocol"] == "SASL_SSL"
    assert kw["sasl_mechanism"] == mechanism
    assert kw["sasl_plain_username"] == "spikedetect"
    assert kw["sasl_plain_password"] == SECRET
    ctx = kw["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname, "TLS must verify the broker"
    assert any(c.get("subject") == ((("commonName", "spikedetect-test-ca"),),) for c in ctx.get_ca_certs())

    async def construct() -> None:  # aiokafka accepts exactly these arguments (its constructors check them)
        AIOKafkaProducer(**kw)
        AIOKafkaConsumer(**kw, group_id="g")

    asyncio.run(construct())


class _Captured(Exception):
    pass


@pytest.mark.parametrize(
    "command", [["replay", "--topic", "reports"], ["simulate", "--topic", "reports", "--days", "0.01"]]
)
def test_replay_and_simulate_connect_with_the_workers_sasl_ssl(
    tls_files: dict[str, str], monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    """A cluster the worker can use can be replayed and fed: ``replay --topic`` and
    ``simulate --topic`` read the worker's SPIKEDETECT_* security settings and build their
    Kafka client with them (spikedetect.kafka_clients), not from a bare bootstrap string."""
    seen: list[dict[str, Any]] = []

    def capture(*args: Any, **kwargs: Any) -> None:
        seen.append(kwargs)
        raise _Captured("no network in this test")

    monkeypatch.setattr(kafka_clients, "AIOKafkaConsumer", capture)
    monkeypatch.setattr(kafka_clients, "AIOKafkaProducer", capture)
    res = CliRunner().invoke(main, [*command, "--bootstrap", "broker-3.example:9093"], env=sasl_ssl_env(tls_files))
    assert len(seen) == 1, res.output
    kw = seen[0]
    assert kw["bootstrap_servers"] == "broker-3.example:9093"  # the flag wins over SPIKEDETECT_KAFKA
    assert kw["security_protocol"] == "SASL_SSL" and kw["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kw["sasl_plain_username"] == "spikedetect" and kw["sasl_plain_password"] == SECRET
    assert isinstance(kw["ssl_context"], ssl.SSLContext) and kw["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert SECRET not in res.output


def test_offline_commands_refuse_a_bad_security_setting_in_one_line() -> None:
    res = CliRunner().invoke(main, ["replay", "--topic", "reports"], env={"SPIKEDETECT_SECURITY_PROTOCOL": "TLS"})
    assert res.exit_code == 2 and "security_protocol 'TLS'" in res.output and "Traceback" not in res.output


def test_ssl_without_sasl_and_plaintext(tls_files: dict[str, str]) -> None:
    ssl_only = Settings.from_env(
        {"SPIKEDETECT_SECURITY_PROTOCOL": "SSL", "SPIKEDETECT_SSL_CAFILE": tls_files["ca"]}
    )
    kw = ssl_only.kafka_kwargs()
    assert kw["security_protocol"] == "SSL" and isinstance(kw["ssl_context"], ssl.SSLContext)
    assert not any(k.startswith("sasl") for k in kw)
    assert isinstance(_credentials(ssl_only), faust.SSLCredentials)
    plain = Settings()
    assert plain.kafka_kwargs() == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}
    assert _credentials(plain) is None


def test_faust_credentials_carry_sasl_ssl(tls_files: dict[str, str]) -> None:
    s = sasl_ssl_settings(tls_files)
    creds = _credentials(s)
    assert isinstance(creds, faust.SASLCredentials)
    auth = credentials_to_aiokafka_auth(creds)  # what Faust hands its aiokafka clients
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert auth["sasl_plain_username"] == "spikedetect"
    assert auth["sasl_plain_password"] == SECRET
    assert isinstance(auth["ssl_context"], ssl.SSLContext)
    app = make_app(s.replace(web_enabled=False))
    assert app.conf.broker_credentials is not None
    assert credentials_to_aiokafka_auth(app.conf.broker_credentials)["sasl_plain_password"] == SECRET


def test_describe_and_repr_never_show_the_password(tls_files: dict[str, str]) -> None:
    s = sasl_ssl_settings(tls_files)
    described = s.describe()
    assert described["sasl_password"] == "***"
    assert described["sasl_username"] == "spikedetect"
    for text in (repr(s), str(s), json.dumps(described, default=str), str(_credentials(s))):
        assert SECRET not in text


def test_config_errors_do_not_echo_the_password() -> None:
    with pytest.raises(Exception) as info:
        Settings.from_env(
            {
                "SPIKEDETECT_SECURITY_PROTOCOL": "SASL_SSL",
                "SPIKEDETECT_SASL_MECHANISM": "MD5",
                "SPIKEDETECT_SASL_PASSWORD": SECRET,
            }
        )
    assert SECRET not in str(info.value)


@pytest.mark.kafka
@pytest.mark.timeout(300)
def test_worker_logs_never_contain_the_secret(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Two real workers at debug level with the password in their environment: one working
    normally (PLAINTEXT, so the SASL settings are carried but unused), one failing to
    authenticate (SASL_PLAINTEXT against a PLAINTEXT listener): the error path must not
    print the secret either."""
    path = tmp_path / "small.jsonl"
    outage_stream(path, seed=5, days=0.2, spike_start_min=120, spike_minutes=20)
    run = LiveRun(
        kafka_bootstrap,
        tmp_path,
        extra={
            "SPIKEDETECT_SASL_USERNAME": "spikedetect",
            "SPIKEDETECT_SASL_PASSWORD": SECRET,
            "SPIKEDETECT_LOG_LEVEL": "debug",
            "SPIKEDETECT_SUMMARY_INTERVAL_S": "1",
        },
    )
    run.create_input()
    run.produce_file(path)
    failing = LiveRun(
        kafka_bootstrap,
        tmp_path / "failing",
        app_id=run.app_id + "-f",
        extra={
            **run.extra,
            "SPIKEDETECT_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "SPIKEDETECT_SASL_MECHANISM": "PLAIN",
        },
    )
    failing.workdir.mkdir()
    try:
        run.start_worker()
        failing.start_worker()
        deadline = time.monotonic() + 120
        while (
            not run.summaries()
            or int(run.summaries()[-1]["consumed"]) != 0
            or not any(int(line["consumed"]) for line in run.summaries())
        ):
            run.assert_alive()
            assert time.monotonic() < deadline, run.log_tail()
            time.sleep(1)
        time.sleep(3)
    finally:
        run.stop_all()
        failing.stop_all()
    logs = {p: p.read_text(errors="replace") for p in [*run.logs, *failing.logs]}
    assert sum(len(t) for t in logs.values()) > 2000, "the workers logged next to nothing"
    assert "level=debug" in logs[run.logs[0]], "debug logging was not on"
    for p, text in logs.items():
        assert SECRET not in text, f"{p.name} contains the SASL password"


# -- no unsafe deserialisation ----------------------------------------------------------------
UNSAFE_MODULES = {
    "pickle",
    "cPickle",
    "_pickle",
    "marshal",
    "shelve",
    "dill",
    "cloudpickle",
    "joblib",
    "jsonpickle",
}


def _unsafe_uses(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            found.append(f"from {node.module}")
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            if name in ("eval", "exec") and not owner:
                found.append(f"{name}()")
            if owner == "yaml" and name in ("load", "load_all", "unsafe_load", "full_load"):
                found.append(f"yaml.{name}()")
            if name in ("loads", "load") and owner in UNSAFE_MODULES:
                found.append(f"{owner}.{name}()")
            for kw in node.keywords:  # numpy.load(..., allow_pickle=True) and friends
                if kw.arg == "allow_pickle" and not (
                    isinstance(kw.value, ast.Constant) and kw.value.value is False
                ):
                    found.append("allow_pickle=")
        elif isinstance(node, ast.Constant) and node.value in ("pickle", "binary|pickle"):
            found.append(f"the string {node.value!r} (a Faust serializer name?)")
    return found


def test_the_checker_catches_what_it_looks_for() -> None:
    bad = (
        "import pickle\nfrom marshal import loads\nimport yaml\nyaml.load(s)\nnp.load(f, allow_pickle=True)\n"
        "eval('1')\nfaust.Schema(value_serializer='pickle')\n"
    )
    assert len(_unsafe_uses(ast.parse(bad))) == 6


def test_source_tree_never_unpickles_or_evaluates() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 30
    offenders = {
        str(f.relative_to(SRC)): uses for f in files if (uses := _unsafe_uses(ast.parse(f.read_text())))
    }
    assert not offenders, f"unsafe deserialisation in src/: {offenders}"


def test_the_app_serialises_state_as_raw_bytes() -> None:
    """Faust can (de)serialise with pickle; the worker's table and internal topic must not."""
    app = make_app(Settings(app_id="sd-security-check", web_enabled=False))
    state = app.tables["state"]
    assert state.value_serializer == "raw"
    changelog = state.changelog_topic
    assert changelog.value_serializer == "raw"
    assert changelog.key_serializer in ("raw", "json")
    for topic in [changelog, *(a.channel for a in app.agents.values())]:
        schema = getattr(topic, "schema", None)
        serializers = {
            topic.key_serializer,
            topic.value_serializer,
            getattr(schema, "key_serializer", None),
            getattr(schema, "value_serializer", None),
        }
        assert not any("pickle" in str(x) for x in serializers), f"{topic}: {serializers}"


# -- malformed state records -------------------------------------------------------------------
class _Exploit:
    """Unpickling this would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


def _good_key_record() -> dict:
    s = Scorer(DetectorConfig(), sources=(0,))
    s.add_partial(0, ClosedWindow(60_000, {"ig": {("US/CA", "feed", "app"): 3}}))
    s.set_watermark(0, 10**6)
    s.close_ready()
    return export_key(s, ("ig", "US"))


GOOD = _good_key_record()
BAD_RECORDS = {
    "not json": ("0|k|ig|US", b"\x00\x01 not json"),
    "json list": ("0|k|ig|US", b"[1, 2, 3]"),
    "json string": ("0|k|ig|US", b'"b"'),
    "no baseline": ("0|k|ig|US", orjson.dumps({k: v for k, v in GOOD.items() if k != "b"})),
    "baseline of wrong shape": ("0|k|ig|US", orjson.dumps({**GOOD, "b": {**GOOD["b"], "prof": "AAAA"}})),
    "infinite number": ("0|k|ig|US", orjson.dumps(GOOD)[:-1] + b',"x":1e400}'),
    "seen as text": ("0|k|ig|US", orjson.dumps({**GOOD, "seen": "yesterday"})),
    "tracker of wrong types": ("0|k|ig|US", orjson.dumps({**GOOD, "t": {"phase": 5, "first_ws": "x"}})),
    "tracker in no known phase": (
        "0|k|ig|US",
        orjson.dumps({**GOOD, "t": {"phase": "rm -rf", "first_ws": 0}}),
    ),
    "tracker with extra fields": (
        "0|k|ig|US",
        orjson.dumps({**GOOD, "t": {"phase": "open", "first_ws": 0, "__class__": "os.system"}}),
    ),
    "meta not an object": ("0|meta", b"[1]"),
    "meta of wrong types": ("0|meta", orjson.dumps({"next_ws": "soon", "n_src": 4})),
    "mark without wm": ("0|m|0", orjson.dumps({"idle": False})),
    "mark of wrong type": ("0|m|0", orjson.dumps({"wm": [1], "idle": False})),
    "mark of a non-numeric source": ("0|m|x", orjson.dumps({"wm": 1, "idle": False})),
    "pending partial not ours": ("0|p|60000|0|ig|0", b'{"t": "p", "rows": "drop table"}'),
    "pending pack not ours": ("0|p|60000|0|ig|60000.0-0", b'{"t": "pk", "src": 0, "svc": "ig", "w": "drop"}'),
    "pending pack empty": ("0|p|60000|0|ig|60000.0-0", b'{"t": "pk", "src": 0, "svc": "ig", "w": []}'),
    "pending mark instead of a partial": ("0|p|60000|0|ig|0", b'{"t": "m", "src": 0, "wm": 1, "idle": false, "n_src": 1}'),
    "a decoded object instead of bytes": ("0|meta", {"next_ws": 0, "n_src": 1}),
}


@pytest.mark.parametrize("name", list(BAD_RECORDS))
def test_a_malformed_state_record_raises_state_error(name: str) -> None:
    key, value = BAD_RECORDS[name]
    table = {"0|m|1": orjson.dumps({"wm": 120_000, "idle": False}), key: value}
    with pytest.raises(StateError):
        PartitionOwner(0, DetectorConfig(), table, Metrics())


def test_a_pickled_payload_is_rejected_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    payload = pickle.dumps(_Exploit(marker))
    pickle.loads(pickle.dumps(_Exploit(tmp_path / "control")))  # the payload does run when unpickled
    assert (tmp_path / "control").exists()
    for key in ("0|k|ig|US", "0|meta", "0|m|0", "0|p|60000|0|ig|0"):
        with pytest.raises(StateError):
            PartitionOwner(0, DetectorConfig(), {key: payload}, Metrics())
    assert not marker.exists()


def test_well_formed_state_is_restored() -> None:
    """The control for the cases above: the same owner restores what an owner wrote."""
    table = {
        "0|k|ig|US": orjson.dumps(GOOD),
        "0|meta": orjson.dumps({"next_ws": 120_000, "n_src": 2}),
        "0|m|0": orjson.dumps({"wm": 120_000, "idle": False}),
    }
    owner = PartitionOwner(0, DetectorConfig(), table, Metrics())
    assert ("ig", "US") in owner.scorer.keyspace.index
    assert owner.scorer.next_ws == 120_000 and owner.scorer.watermarks[0] == 120_000

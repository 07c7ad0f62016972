"""Records and metrics answers of an unexpected shape: a message and an exit code, never a traceback.

resume/report on a record that is truncated, not an object or not what the schema says refuse it before the
lock; a Prometheus answer of an unexpected shape makes the source unreadable (exit 7); the report draws any
record, however far from its schema.
"""

from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollbackctl.cli import main
from rollbackctl.errors import ExitCode, MetricsUnavailable, RollbackctlError, UsageError
from rollbackctl.record import IncidentRecord, schema_problems
from rollbackctl.report import render
from rollbackctl.triggers import PrometheusSource

AUTHORITY = {"decided_by": "Dana", "role": "cto", "basis": "tertiary"}


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("ROLLBACKCTL_INCIDENTS_DIR", str(tmp_path / "incidents"))
    monkeypatch.setenv("ROLLBACKCTL_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "incidents").mkdir()
    return tmp_path


def _valid_record(base: Path, incident: str = "INC-1") -> dict:
    record = IncidentRecord.create(base, incident, inventory=str(base), to_version="v0.9.0", reason="r",
                                   authority=AUTHORITY)
    record.start_phase("preflight")
    record.finish_phase("preflight", "failed", error="boom")
    record.set_outcome("failed", "stopped in phase preflight")
    record.save()
    return json.loads((record.path / "incident.json").read_text())


def _write(base: Path, incident: str, text: str) -> None:
    (base / incident).mkdir(parents=True, exist_ok=True)
    (base / incident / "incident.json").write_text(text, encoding="utf-8")


def _broken_records(valid: dict) -> list[tuple[str, str]]:
    text = json.dumps(valid)
    cases = [("truncated", text[: len(text) // 2]), ("empty", ""), ("list", "[1, 2]"), ("string", '"x"'),
             ("null", "null"), ("deep", "[" * 50_000), ("huge-int", '{"schema_version": ' + "9" * 5000 + "}"),
             ("nan", text.replace('"schema_version": 1', '"schema_version": NaN'))]
    for field, value in [("phases", "x"), ("phases", [1]), ("outcome", None), ("environment", {}), ("mode", 7),
                         ("incident_id", "../../etc"), ("created_at", "0001-01-01T00:00:00Z"),
                         ("updated_at", "9999-12-31T23:59:59Z"), ("authority", []), ("database", "x")]:
        broken = copy.deepcopy(valid)
        broken[field] = value
        cases.append((f"{field}={value!r}"[:30], json.dumps(broken)))
    missing = copy.deepcopy(valid)
    del missing["outcome"]
    cases.append(("no-outcome", json.dumps(missing)))
    stamp = copy.deepcopy(valid)
    stamp["phases"][0]["attempts"][0]["started_at"] = "2026-02-30T00:00:00Z"
    cases.append(("bad-date", json.dumps(stamp)))
    return cases


def test_resume_refuses_every_broken_record_before_the_lock(isolated, capsys):
    valid = _valid_record(isolated / "incidents")
    for index, (name, text) in enumerate(_broken_records(valid)):
        incident = f"BROKEN-{index}"
        _write(isolated / "incidents", incident, text.replace('"INC-1"', f'"{incident}"'))
        assert main(["resume", incident]) == ExitCode.ERROR, name
        err = capsys.readouterr().err
        assert "Traceback" not in err and incident in err and "internal error" not in err, (name, err)
        assert not (isolated / "state").exists(), name  # no lock, no runner folder


def test_a_record_in_the_wrong_folder_is_not_resumed(isolated, capsys):
    valid = _valid_record(isolated / "incidents")
    _write(isolated / "incidents", "OTHER", json.dumps(valid))
    assert main(["resume", "OTHER"]) == ExitCode.ERROR
    assert "names incident 'INC-1'" in capsys.readouterr().err
    assert not (isolated / "state").exists()


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_report_answers_every_broken_record(isolated, capsys, fmt):
    valid = _valid_record(isolated / "incidents")
    for index, (name, text) in enumerate(_broken_records(valid)):
        incident = f"BROKEN-{index}"
        _write(isolated / "incidents", incident, text)
        code = main(["report", incident, "--format", fmt])
        _out, err = capsys.readouterr()
        assert code in (ExitCode.OK, ExitCode.ERROR), name
        assert "Traceback" not in err and "internal error" not in err, (name, err)
        if code == ExitCode.OK:
            assert "does not match the incident schema" in err, name  # rendered with its problems first


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*prefix, index)
            yield from _paths(value, (*prefix, index))


ODD_VALUES = [None, 0, -1, 10**30, 1.5, 1e308, "", "x", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
              "2026-02-30T00:00:00Z", [], {}, [1], {"a": 1}, True, "\x00", "\u202e", "<script>", "{{ 7*7 }}"]


@pytest.fixture(scope="module")
def valid_record(tmp_path_factory) -> dict:
    return _valid_record(tmp_path_factory.mktemp("incidents"))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_report_draws_any_mutation_of_a_record(valid_record, data):
    valid = valid_record
    paths = list(_paths(valid))
    record = copy.deepcopy(valid)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        where = data.draw(st.sampled_from(paths))
        node = record
        try:
            for key in where[:-1]:
                node = node[key]
            if data.draw(st.booleans()) and data.draw(st.booleans()):
                del node[where[-1]]
            else:
                node[where[-1]] = copy.deepcopy(data.draw(st.sampled_from(ODD_VALUES)))
        except (KeyError, IndexError, TypeError):
            continue
    for fmt in ("md", "html"):
        try:
            text = render(record, fmt)
        except RollbackctlError:
            continue
        assert text
        if not schema_problems(record):
            continue
        assert "does not match the incident schema" in text or "problem" in text.lower()


# ---- Prometheus answers -------------------------------------------------------------------------------

class _Answer(BaseHTTPRequestHandler):
    body: bytes = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, *args):
        pass


@pytest.fixture
def prometheus():
    handler = type("Answer", (_Answer,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _answer(result_type, result) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": result_type, "result": result}}).encode()


ANSWERS = [
    _answer("vector", [{"metric": {}}]),  # no value
    _answer("vector", [{"metric": {}, "value": [1700000000, "high"]}]),
    _answer("vector", [{"metric": {}, "value": [1700000000]}]),
    _answer("vector", [{"metric": {}, "value": ["soon", "1"]}]),
    _answer("vector", [{"metric": {}, "value": [1e300, "1"]}]),
    _answer("vector", [{"metric": {}, "value": [-1, "1"]}]),
    _answer("vector", [{"metric": {}, "value": [1700000000, None]}]),
    _answer("vector", [{"metric": {}, "value": [1700000000, [1]]}]),
    _answer("vector", [{"metric": {}, "value": [1700000000, True]}]),
    _answer("vector", ["x"]),
    _answer("vector", [None]),
    _answer("vector", {"value": [1, "1"]}),
    _answer("matrix", [{"metric": {}}]),
    _answer("matrix", [{"metric": {}, "values": [[1700000000, "x"]]}]),
    _answer("matrix", [{"metric": {}, "values": "x"}]),
    _answer("matrix", [{"metric": {}, "values": [1]}]),
    _answer("scalar", [1700000000]),
    _answer("scalar", "1"),
    _answer("string", [1700000000, "1"]),
    _answer(None, None),
    b'{"status": "success", "data": {"resultType": "vector", "result": [{"value": [1700000000, "1' + b"9" * 5000
    + b'"]}]}}',
    b'{"status": "success", "data": ' + b"[" * 100_000,
    b'{"status": "success", "data": {"resultType": "vector", "result": ' + b"9" * 5000 + b"}}",
    b'{"status": "success", "data": []}',
    b'{"status": "success"}',
    b'{"status": "error", "error": ' + b"[" * 100_000,
    b"[]",
    b"not json at all",
    b"",
]


@pytest.mark.parametrize("body", ANSWERS, ids=range(len(ANSWERS)))
def test_an_answer_of_an_unexpected_shape_is_unreadable(prometheus, body):
    handler, url = prometheus
    handler.body = body
    source = PrometheusSource(url, sleep=lambda _: None, max_consecutive_errors=1)
    try:
        source.collect()
    except MetricsUnavailable as exc:
        assert exc.exit_code == ExitCode.METRICS_UNREADABLE
        assert "unreadable" in str(exc) or "not JSON" in str(exc) or "no data" in str(exc) or "error" in str(exc)
    else:  # the only answers that can be read are numbers (a huge-digit value is a float: inf)
        assert body.startswith(b'{"status": "success", "data": {"resultType": "vector", "result": [{"value"')


def test_the_cli_says_unreadable_with_exit_7(prometheus, capsys):
    handler, url = prometheus
    handler.body = _answer("vector", [{"metric": {}}])
    assert main(["triggers", "--prometheus", url]) == ExitCode.METRICS_UNREADABLE
    err = capsys.readouterr().err
    assert "metrics source unreadable" in err and "has no 'value'" in err and "Traceback" not in err


# ---- ids before folders: every writer of a record (the wrapper and the callback use IncidentRecord.create) ----

@pytest.mark.parametrize("incident", ["../escape", "a/b", "/abs", "..", "", ".hidden", "a" * 129, "x\x00y", "é"])
def test_a_record_is_never_created_from_a_malformed_id(tmp_path, incident):
    base = tmp_path / "incidents"
    with pytest.raises(UsageError):
        IncidentRecord.create(base, incident, inventory="x", to_version="v0.9.0", reason="r", authority=AUTHORITY)
    assert not base.exists() and not list(tmp_path.iterdir())


def test_a_record_that_would_be_invalid_creates_no_folder(tmp_path):
    base = tmp_path / "incidents"
    with pytest.raises(RollbackctlError, match="invalid"):
        IncidentRecord.create(base, "INC-2", inventory="x", to_version="v0.9.0", reason="r", authority=AUTHORITY,
                              triggers={"not": "a report"})
    assert not (base / "INC-2").exists()


def test_an_existing_incident_is_refused_naming_the_option_before_anything(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ROLLBACKCTL_INCIDENTS_DIR", str(tmp_path / "incidents"))
    monkeypatch.setenv("ROLLBACKCTL_STATE_DIR", str(tmp_path / "state"))
    _valid_record(tmp_path / "incidents", "TAKEN")
    before = sorted(str(p) for p in (tmp_path / "incidents").rglob("*"))
    code = main(["run", "standard", "-i", str(tmp_path), "--to", "v0.9.0", "--reason", "r", "--decided-by", "Dana",
                 "--role", "cto", "--incident-id", "TAKEN"])
    assert code == ExitCode.USAGE
    assert "--incident-id: incident TAKEN already has a record" in capsys.readouterr().err
    assert sorted(str(p) for p in (tmp_path / "incidents").rglob("*")) == before
    assert not (tmp_path / "state").exists()

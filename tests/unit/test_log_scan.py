"""Logic of the log_scan module_utils: pm2 timestamps, continuation lines, tails, missing files, redaction."""

from __future__ import annotations

import datetime
import os

import pytest
from ansible_collections.chatbot.rollback.plugins.module_utils.log_scan import (
    DEFAULT_PATTERNS,
    MAX_SAMPLES,
    UTC,
    line_time,
    parse_since,
    read_tail,
    redact,
    scan,
    scan_lines,
)

SINCE = datetime.datetime(2026, 1, 31, 12, 0, 0, tzinfo=UTC)


def _at(text: str) -> datetime.datetime:
    return parse_since(text)


# ---- times ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31T12:00:00Z", SINCE),
        ("2026-01-31T12:00:00+00:00", SINCE),
        ("2026-01-31T12:00:00", SINCE),  # no zone: UTC
        ("2026-01-31T14:00:00+02:00", SINCE),
        ("2026-01-31T12:00:00.250Z", SINCE.replace(microsecond=250000)),
    ],
)
def test_parse_since_is_utc(text, expected):
    assert parse_since(text) == expected
    assert parse_since(text).utcoffset() == datetime.timedelta(0)


@pytest.mark.parametrize("text", ["", "yesterday", "2026-31-01T12:00:00Z"])
def test_parse_since_rejects_garbage(text):
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_since(text)


def test_line_time_reads_the_pm2_prefix():
    line = '2026-01-31T12:00:05: {"level":"info","msg":"listening"}'
    assert line_time(line, UTC) == SINCE + datetime.timedelta(seconds=5)
    offset = datetime.timezone(datetime.timedelta(hours=2))
    assert line_time("2026-01-31T14:00:05: x", offset) == SINCE + datetime.timedelta(seconds=5)
    assert line_time("2026-01-31T12:00:05Z: x", offset) == SINCE + datetime.timedelta(seconds=5)
    assert line_time("2026-01-31T14:00:05+0200: x") == SINCE + datetime.timedelta(seconds=5)


@pytest.mark.parametrize("line", ["    at Server.<anonymous> (/app/dist/routes.js:12:5)", "", "2026-13-45T99:00:00: x",
                                  '{"ts":"2026-01-31T12:00:05.000Z"}'])
def test_line_time_none_without_a_valid_prefix(line):
    assert line_time(line, UTC) is None


def test_line_time_without_zone_defaults_to_local_time():
    naive = datetime.datetime(2026, 1, 31, 12, 0, 5)
    assert line_time("2026-01-31T12:00:05: x") == naive.astimezone().astimezone(UTC)


# ---- which lines count -------------------------------------------------------------------------

LOG = [
    "    at old.frame (/app/x.js:1:1)",                      # before the first prefix: an older entry, cut off
    "2026-01-31T11:59:59: TypeError: old failure",          # before since
    "    at Object.<anonymous> (/app/dist/server.js:3:9)",   # continuation of the old failure
    "2026-01-31T12:00:00: ReferenceError: x is not defined",  # at since (whole second): counts
    "    at Module._compile (node:internal/modules:1:1)",    # continuation of a new entry: counts if it matches
    "Error: continuation line that matches",                 # continuation: counts
    '2026-01-31T12:00:01: {"level":"info","msg":"listening"}',
    '2026-01-31T12:00:02: {"level":"error","msg":"boom"}',
]


def test_continuation_lines_belong_to_the_last_prefixed_line():
    result = scan_lines(LOG, SINCE, DEFAULT_PATTERNS, UTC)
    assert result["timestamped"] is True
    assert result["matches"] == [
        "2026-01-31T12:00:00: ReferenceError: x is not defined",
        "Error: continuation line that matches",
        '2026-01-31T12:00:02: {"level":"error","msg":"boom"}',
    ]
    assert result["scanned"] == 5


def test_since_within_a_second_keeps_that_second():
    # Prefixes have whole seconds: a line of 12:00:00 may have been written at 12:00:00.9.
    result = scan_lines(["2026-01-31T12:00:00: FATAL x"], SINCE.replace(microsecond=600000), DEFAULT_PATTERNS, UTC)
    assert result["matches"] == ["2026-01-31T12:00:00: FATAL x"]


def test_nothing_new_means_nothing_scanned():
    result = scan_lines(LOG, SINCE + datetime.timedelta(hours=1), DEFAULT_PATTERNS, UTC)
    assert result == {"matches": [], "attributed": [], "scanned": 0, "timestamped": True}


def test_lines_without_any_prefix_count_only_when_all_new():
    lines = ["Error: a", "fine", "Unhandled rejection"]
    assert scan_lines(lines, SINCE, DEFAULT_PATTERNS, UTC)["matches"] == []
    assert scan_lines(lines, SINCE, DEFAULT_PATTERNS, UTC, all_new=True)["matches"] == ["Error: a",
                                                                                        "Unhandled rejection"]


def test_patterns_are_case_sensitive_substrings():
    lines = ["2026-01-31T12:00:01: error: lower case is not a pattern", "2026-01-31T12:00:01: connect ECONNREFUSED"]
    assert scan_lines(lines, SINCE, DEFAULT_PATTERNS, UTC)["matches"] == [lines[1]]
    assert scan_lines(lines, SINCE, ["error:"], UTC)["matches"] == [lines[0]]


# ---- files ---------------------------------------------------------------------------------------

def test_read_tail_drops_the_partial_first_line(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("first line that is long\nsecond\nthird\n")
    lines, cut = read_tail(str(path), max_bytes=12)
    assert (lines, cut) == (["third"], True)
    lines, cut = read_tail(str(path), max_bytes=10_000)
    assert (lines, cut) == (["first line that is long", "second", "third"], False)


def test_scan_reads_only_the_tail(tmp_path):
    path = tmp_path / "app-err.log"
    old_error = "2026-01-31T12:00:01: TypeError: far back in the file\n"
    path.write_text(old_error + "2026-01-31T12:00:02: fine\n" * 1000)
    result = scan([str(path)], SINCE, max_bytes=4096, zone=UTC)
    assert result["check"]["verdict"] == "pass"
    assert result["files"][0]["cut"] is True
    assert scan([str(path)], SINCE, zone=UTC)["check"]["value"] == 1


def test_scan_passes_on_clean_logs_and_fails_on_errors(tmp_path):
    out, err = tmp_path / "app-out.log", tmp_path / "app-err.log"
    out.write_text('2026-01-31T12:00:01: {"level":"info","msg":"listening"}\n')
    err.write_text("2026-01-31T11:00:00: TypeError: before the rollback\n")
    clean = scan([str(err), str(out)], SINCE, zone=UTC)
    assert clean["check"] == {
        "name": "app_log_errors", "scope": "app", "value": 0, "threshold": 0, "unit": "lines", "verdict": "pass",
        "detail": "0 error lines since 2026-01-31T12:00:00Z in app-err.log: 0, app-out.log: 0",
    }
    assert clean["samples"] == []
    with err.open("a") as handle:
        handle.write("2026-01-31T12:00:03: TypeError: Cannot read properties of undefined (reading 'text')\n")
    dirty = scan([str(err), str(out)], SINCE, zone=UTC)
    assert dirty["check"]["verdict"] == "fail"
    assert dirty["check"]["value"] == 1
    assert "app-err.log: 1" in dirty["check"]["detail"]
    assert dirty["samples"] == ["2026-01-31T12:00:03: TypeError: Cannot read properties of undefined (reading 'text')"]


def test_missing_file_fails_with_its_name_unless_missing_ok(tmp_path):
    present = tmp_path / "app-out.log"
    present.write_text("2026-01-31T12:00:01: ok\n")
    missing = tmp_path / "app-err.log"
    failed = scan([str(missing), str(present)], SINCE, zone=UTC)
    assert failed["check"]["verdict"] == "fail"
    assert f"{missing} is missing" in failed["check"]["detail"]
    tolerated = scan([str(missing), str(present)], SINCE, missing_ok=True, zone=UTC)
    assert tolerated["check"]["verdict"] == "pass"
    assert f"{missing} is missing" in tolerated["check"]["detail"]
    only_missing = scan([str(missing)], SINCE, missing_ok=True, zone=UTC)
    assert only_missing["check"]["verdict"] == "skip"
    assert only_missing["check"]["value"] is None


def test_no_file_given_is_skipped():
    assert scan([], SINCE)["check"]["verdict"] == "skip"


def test_file_without_timestamps_is_judged_by_its_modification_time(tmp_path):
    path = tmp_path / "plain.log"
    path.write_text("Error: no timestamps here\n")
    old = SINCE.timestamp() - 3600
    os.utime(path, (old, old))
    assert scan([str(path)], SINCE, zone=UTC)["check"]["verdict"] == "pass"
    new = SINCE.timestamp() + 60
    os.utime(path, (new, new))
    result = scan([str(path)], SINCE, zone=UTC)
    assert result["check"]["verdict"] == "fail"
    assert "no pm2 timestamps" in result["check"]["detail"]


def test_samples_are_at_most_five_redacted_and_short(tmp_path):
    path = tmp_path / "app-err.log"
    lines = [f"2026-01-31T12:00:0{i}: Error: connect to mongodb://chatbot:S3cret-pw@db:27017/chatbot failed"
             for i in range(8)]
    lines.append("2026-01-31T12:00:09: FATAL " + "x" * 1000)
    path.write_text("\n".join(lines) + "\n")
    result = scan([str(path)], SINCE, zone=UTC)
    assert result["check"]["value"] == 9
    assert len(result["samples"]) == MAX_SAMPLES
    assert all("S3cret-pw" not in s for s in result["samples"])
    assert "S3cret-pw" not in result["check"]["detail"]
    assert "mongodb://chatbot:***@db:27017/chatbot" in result["samples"][0]
    long_path = tmp_path / "long.log"
    long_path.write_text(lines[-1] + "\n")
    sample = scan([str(long_path)], SINCE, zone=UTC)["samples"][0]
    assert len(sample) == 303 and sample.endswith("...")


# ---- redaction -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("mongodb://chatbot:pa55word@127.0.0.1:27017/chatbot-platform", "pa55word"),
        ("redis://:onlypass@cache:6379/0", "onlypass"),
        ("GET /api Authorization: Bearer eyJhbGciOi.abc-def_ghi", "eyJhbGciOi.abc-def_ghi"),
        ('{"token":"Zm9vYmFyYmF6cXV4"}', "Zm9vYmFyYmF6cXV4"),
        ("retry with access_token=abcdef123456&x=1", "abcdef123456"),
        ("password: hunter22 rejected", "hunter22"),
        ("X-Maintenance-Bypass-Token: Qm9vbTEyMzQ1Njc4", "Qm9vbTEyMzQ1Njc4"),
        ("x-maintenance-bypass: Qm9vbTEyMzQ1Njc4", "Qm9vbTEyMzQ1Njc4"),
        ('{"msg":"login","secret":"s-e-c-r-e-t"}', "s-e-c-r-e-t"),
    ],
)
def test_redact_removes_secrets(line, secret):
    redacted = redact(line)
    assert secret not in redacted
    assert "***" in redacted


@pytest.mark.parametrize(
    "line",
    [
        '2026-01-31T12:00:00: {"level":"info","msg":"listening","port":3000}',
        "mongodb://127.0.0.1:27017/chatbot-platform",
        "TypeError: Cannot read properties of undefined (reading 'text')",
        "mongodb://chatbot:***@127.0.0.1:27017/chatbot-platform",
    ],
)
def test_redact_leaves_ordinary_lines_alone(line):
    assert redact(line) == line


# ---- attribution ----------------------------------------------------------------------------------

def test_error_lines_before_the_end_of_the_switch_are_attributed_not_counted(tmp_path):
    log = tmp_path / "app-err.log"
    log.write_text("2026-01-31T12:00:05: TypeError: old release draining (password=hunter2)\n"
                   "    at serialize (v1.0.0/src/messages.js:10)\n"
                   "2026-01-31T12:00:30: TypeError: the target fails\n")
    until = SINCE + datetime.timedelta(seconds=20)
    lines = log.read_text().splitlines()
    result = scan_lines(lines, SINCE, DEFAULT_PATTERNS, UTC, attributed_before=until)
    assert result["matches"] == [lines[2]] and result["attributed"] == [lines[0]]
    found = scan([str(log)], SINCE, DEFAULT_PATTERNS, zone=UTC, attributed_before=until)
    check = found["check"]
    assert (check["value"], check["verdict"], found["attributed"]) == (1, "fail", 1)
    assert "1 error lines before 2026-01-31T12:00:20Z attributed to the switch or the restore" in check["detail"]
    assert "hunter2" not in check["detail"]
    # only the old release's lines: the target passes, and the detail still says what was seen
    log.write_text(lines[0] + "\n")
    calm = scan([str(log)], SINCE, DEFAULT_PATTERNS, zone=UTC, attributed_before=until)["check"]
    assert (calm["value"], calm["verdict"]) == (0, "pass") and "attributed" in calm["detail"]
    # without a boundary every line counts, as before
    assert scan([str(log)], SINCE, DEFAULT_PATTERNS, zone=UTC)["check"]["value"] == 1

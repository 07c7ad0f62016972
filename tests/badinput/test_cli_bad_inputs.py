"""Bad inputs over every option of every sub-command, through the real command line (a subprocess each).

For every case: no traceback, an exit code that the command's --help documents (and not 0, but where the
command documents a success for it: `report` draws a schema-invalid record with a warning), a message that
names the option or the input, a short message (a 100,000-character value is not echoed back), and nothing
created: the incidents folder, the state folder (locks, ansible-runner's folders), the sandbox folder, HOME
and TMPDIR of the case are as they were. The project is a skeleton with no playbooks
(ROLLBACKCTL_PROJECT), so even an input that slipped through could not start a playbook on a platform; that
it started none is checked by the absence of any runner folder.

The table covers each option with empty, whitespace, control and invisible characters, huge (100k) values,
zero/negative/overflowing numbers, malformed URLs, paths that are files, folders, missing or '..', ids with
'/', deep or aliased documents, and the environment variables the commands read. The property tests add
generated bad values for the free-text, name, id, URL and duration options.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollbackctl.record import IncidentRecord

from . import conftest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
HUGE = "x" * 100_000
WORKERS = 2

# ---- the world the cases run in ---------------------------------------------------------------------------


# A platform as the lock knows one (app and db hosts); nothing ever connects to it.
PLATFORM_INVENTORY = ("all:\n  children:\n    app:\n      hosts:\n        app1: {ansible_connection: local}\n"
                      "    db:\n      hosts:\n        db1: {ansible_connection: local}\n")


def _make_world(root: Path) -> dict[str, str]:
    """Files and folders the cases point at, a project skeleton and a folder of prepared incident records."""
    project = root / "project"
    for folder in ("playbooks", "roles", "inventories/local"):
        (project / folder).mkdir(parents=True)
    (project / "ansible.cfg").write_text("[defaults]\n")
    (project / "inventories/local/hosts.yml").write_text(PLATFORM_INVENTORY)
    files = root / "files"
    files.mkdir()
    inventory = files / "inventory.yml"
    inventory.write_text(PLATFORM_INVENTORY)
    a_file = files / "plain.txt"
    a_file.write_text("not json, not a folder\n")
    (files / "folder").mkdir()
    obs = {"source": "t", "collected_at": "2026-11-28T16:00:00Z", "interval_seconds": 60,
           "metrics": {"api_5xx_ratio": 0.0}}
    documents = {
        "OBS": ("obs.json", json.dumps(obs)),
        "DEEP_JSON": ("deep.json", "[" * 100_000),
        "NEST_JSON": ("nest.json", '{"a":' * 80 + "1" + "}" * 80),
        "DEEP_YAML": ("deep.yml", "a:" + " [" * 5000 + " ]" * 5000),
        "BOMB": ("bomb.yml", "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(9))),
        "LIST_JSON": ("list.json", "[1, 2, 3]"),
        "HUGEINT_JSON": ("hugeint.json", '{"collected_at": "2026-11-28T16:00:00Z", "metrics": {"cpu_percent": '
                         + "9" * 5000 + "}}"),
        "TRUNC_JSON": ("trunc.json", json.dumps(obs)[:40]),
        "YEAR1_OBS": ("year1.json", json.dumps({**obs, "collected_at": "0001-01-01T00:00:00Z"})),
        "YEAR9999_OBS": ("year9999.json", json.dumps({**obs, "collected_at": "9999-12-31T23:59:59Z"})),
        "YEAR1_SAMPLE": ("year1-sample.json", json.dumps({**obs, "metrics": {"cpu_percent": [
            {"t": "0001-01-01T00:00:00Z", "v": 95}]}})),
        "BIGINTERVAL_OBS": ("interval.json", json.dumps({**obs, "interval_seconds": 10**30})),
        "HUGEVAL_OBS": ("hugeval.json", json.dumps(obs).replace("0.0", "1" + "0" * 400)),
        "NOTOBJ_METRICS": ("metrics.json", json.dumps({**obs, "metrics": [1]})),
        "BADUTF8": ("badutf8.json", None),
    }
    roster = yaml.safe_load((ROOT / "inventories" / "local" / "group_vars" / "all" / "roster.yml").read_text())
    roles = roster["rollback_roster"]["roles"]
    documents.update({
        "ROSTER_DUP": ("roster-dup.yml", yaml.safe_dump({"rollback_roster": {"roles": [*roles, roles[0]]}})),
        "ROSTER_UNKNOWN": ("roster-unknown.yml", yaml.safe_dump({"roles": [{**roles[0], "role": "boss"}, *roles]})),
        "ROSTER_NOBODY": ("roster-nobody.yml", yaml.safe_dump({"roles": [{**roles[0], "name": ""}, *roles[1:]]})),
        "ROSTER_AUTH": ("roster-auth.yml", yaml.safe_dump({"roles": roles, "decision_authority": [
            {"name": "Cy Tee", "role": "cto"}]})),
    })
    world = {"INV": str(inventory), "FILE": str(a_file), "DIR": str(files / "folder"),
             "MISSING": str(files / "missing"), "PROJECT": str(project)}
    for key, (name, text) in documents.items():
        path = files / name
        if text is None:
            path.write_bytes(b'{"collected_at": "\xff\xfe"}')
        else:
            path.write_text(text)
        world[key] = str(path)
    incidents = root / "prepared-incidents"
    record = IncidentRecord.create(incidents, "GOOD", inventory=str(inventory), to_version="v0.9.0",
                                   reason="bad day", authority={"decided_by": "Dana", "role": "cto",
                                                                "basis": "tertiary"})
    record.start_phase("preflight")
    record.finish_phase("preflight", "failed", error="boom")
    record.set_outcome("failed", "stopped in phase preflight")
    record.save()
    good = json.loads((incidents / "GOOD" / "incident.json").read_text())
    broken = {
        "TRUNC": json.dumps(good)[:300],
        "LIST": "[1, 2]",
        "DEEP": "[" * 100_000,
        "HUGEINT": '{"schema_version": ' + "9" * 5000 + "}",
        "SCHEMA": json.dumps({**good, "incident_id": "SCHEMA", "phases": "none", "outcome": None}),
        "YEAR1": json.dumps({**good, "incident_id": "YEAR1", "created_at": "0001-01-01T00:00:00Z"}),
        "Y9999": json.dumps({**good, "incident_id": "Y9999", "updated_at": "9999-12-31T23:59:59Z"}),
        "ELSEWHERE": json.dumps(good),  # the record of GOOD in another folder
        "NOINV": json.dumps({**good, "incident_id": "NOINV", "environment": {"inventory": str(files / "gone")}}),
    }
    for name, text in broken.items():
        (incidents / name).mkdir()
        (incidents / name / "incident.json").write_text(text)
    world["PREPARED"] = str(incidents)
    return world


def _fill(text: str, world: dict[str, str]) -> str:
    return re.sub(r"@([A-Z0-9_]+)@", lambda m: world[m.group(1)], text)


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under `root` with its size and mtime (what 'nothing created or changed' is judged by)."""
    found = {}
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        found[str(path.relative_to(root))] = (stat.st_size if path.is_file() else 0, stat.st_mtime_ns)
    return found


# ---- the cases --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    names: str  # what stderr must mention: the option, the variable or the input
    env: tuple[tuple[str, str], ...] = ()
    prepared: bool = False  # the incidents folder holds the prepared records (copied for the case)
    success_documented: bool = False  # the command documents exit 0 for this input (and warns)
    command: str = field(default="")

    def __post_init__(self):
        object.__setattr__(self, "command", self.argv[0] if self.argv else "")


BASE = {
    "decide": ["decide", "--issue-type", "data", "--severity", "high"],
    "triggers": ["triggers", "--observations", "@OBS@"],
    "prometheus": ["triggers", "--prometheus", "http://127.0.0.1:9"],
    "run": ["run", "standard", "-i", "@INV@", "--to", "v0.9.0", "--reason", "bad day", "--decided-by", "Dana",
            "--role", "cto"],
    "resume": ["resume", "GOOD"],
    "ack": ["ack", "GOOD", "--as", "Dana"],
    "rehearse": ["rehearse", "-i", "@INV@"],
    "report": ["report", "GOOD"],
    "sandbox": ["sandbox", "status"],
}

TEXT_BAD = ["", "   ", "\t\n ", "a\x01b", "esc\x1b[31m", "bell\x07", "cr\rlf", "\u202edesrever", "a\x7fb", HUGE]
NAME_BAD = ["", "   ", "Da\u200bna", "\u200b", "Dana\x07", "Da\nna", "\u202eanaD", "Dana\u2028", "\ufeffDana",
            "Dana\u00ad", "x" * 200, HUGE]
ROLE_BAD = ["", "  ", "cto\x07", "c\u200bto", "x" * 200, HUGE]
CONSENSUS_BAD = ["", "alice", ":senior", "alice:", "Al\u200bice:senior", "alice\x01:senior", "alice:sen\u200bior",
                 HUGE + ":senior", "alice:" + HUGE]
ID_BAD = ["", " ", "../x", "..", "a/b", "/etc/passwd", "../../tmp/evil", ".hidden", "a..b", "-rf", "a b", "é",
          "a\x01", "a" * 129, HUGE]
VERSION_BAD = ["", " ", "0.9.0", "v1", "v0.9.0\n", "v0.9.0/../../x", "v" + "9" * 5000 + ".0.0", HUGE]
DURATION_BAD = ["", " ", "1e20", "1e20s", "-5m", "5", "1.5h", "5m5h", "9" * 5000 + "s", "99999999999999999999h",
                "9999999h", "x" * 100_000]
URL_BAD = ["", " ", "127.0.0.1:9090", "ftp://host", "http://", "http://:80", "http://[::1", "http://[zz]:1",
           "http://h:abc", "http://h:99999", "http://h:0", "http://h:", "http://h x", "http://h\x01",
           "http://a..b", "http://" + "a" * 300, "http://" + "a" * 100_000, "http://h/?q=1", "http://\u200bh",
           "http://h:²"]
TIME_BAD = ["", " ", "yesterday", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-13-01T00:00:00Z",
            "1969-12-31T23:59:59Z", HUGE]
DIR_BAD = ["", "@FILE@", "@FILE@/sub", "a\x01b", "x" * 5000]
PORT_BAD = ["", " ", "²", "١٢٣", "-1", "0", "65534", "99999999999999999999", "abc", "1e3", "9" * 5000]
CHOICE_BAD = ["", " ", "maybe", HUGE]


def _with(base: list[str], option: str, value: str) -> list[str]:
    argv = list(base)
    if option in argv:
        argv[argv.index(option) + 1] = value
        return argv
    return [*argv, option, value]


def _cases() -> list[Case]:
    cases: list[Case] = []

    def add(label, argv, names, **kw):
        cases.append(Case(f"{label}-{len(cases)}", tuple(argv), names, **kw))

    def each(label, base, option, values, names=None, **kw):
        for value in values:
            add(label, _with(BASE[base], option, value), names or option, **kw)

    # decide
    each("decide", "decide", "--issue-type", CHOICE_BAD)
    each("decide", "decide", "--severity", CHOICE_BAD)
    each("decide", "decide", "--fix-estimate", DURATION_BAD)
    add("decide", ["decide", "--severity", "high"], "--issue-type")
    add("decide", [*BASE["decide"], "--json=yes"], "--json")
    add("decide", [*BASE["decide"], "--bogus"], "--bogus")

    # triggers
    files = ["", "@DIR@", "@MISSING@", "@FILE@", "@DEEP_JSON@", "@NEST_JSON@", "@DEEP_YAML@", "@BOMB@", "@LIST_JSON@",
             "@HUGEINT_JSON@", "@TRUNC_JSON@", "@YEAR1_OBS@", "@YEAR9999_OBS@", "@YEAR1_SAMPLE@", "@BIGINTERVAL_OBS@",
             "@HUGEVAL_OBS@", "@NOTOBJ_METRICS@", "@BADUTF8@", "a\x01b"]
    for value in files:
        add("triggers", _with(BASE["triggers"], "--observations", value), value.replace("\x01", "") or
            "--observations")
    each("triggers", "prometheus", "--prometheus", URL_BAD)
    each("triggers", "prometheus", "--at", TIME_BAD)
    each("triggers", "prometheus", "--interval", [*DURATION_BAD, "0s", "0m"])
    each("triggers", "prometheus", "--query", ["", " ", "cpu_percent", "nope=up", "cpu_percent=", "a\x01=b", HUGE])
    each("triggers", "prometheus", "--threshold", ["", "nope=1", "cpu_percent", "cpu_window=99999999h",
                                                   "cpu_window=0m", "cpu_window=", "api_5xx_ratio=" + "9" * 5000,
                                                   "api_5xx_ratio=nan", "api_5xx_ratio=1e999", "a\x01", HUGE])
    each("triggers", "prometheus", "--missing", CHOICE_BAD)
    add("triggers", [*BASE["triggers"], "--at", "2026-11-28T16:00:00Z"], "--at")
    add("triggers", [*BASE["triggers"], "--interval", "1m"], "--interval")
    add("triggers", [*BASE["triggers"], "--at", ""], "--at")
    add("triggers", [*BASE["triggers"], "--prometheus", "http://127.0.0.1:9"], "--prometheus")
    add("triggers", ["triggers"], "--observations")
    add("triggers", [*BASE["triggers"], "--json=1"], "--json")

    # run
    each("run", "run", "-i", ["", " ", "a\x01", "\u200b", HUGE, "@MISSING@", "../../../nowhere"], names="inventory")
    add("run", ["run", "emergency", *BASE["run"][2:]], "emergency")
    add("run", ["run", "bogus", *BASE["run"][2:]], "bogus")
    add("run", ["run", "", *BASE["run"][2:]], "procedure")
    each("run", "run", "--to", VERSION_BAD)
    each("run", "run", "--reason", TEXT_BAD)
    each("run", "run", "--decided-by", NAME_BAD)
    each("run", "run", "--role", ROLE_BAD)
    add("run", _with(BASE["run"], "--role", "qa-engineer"), "refused")
    each("run", "run", "--consensus", CONSENSUS_BAD)
    add("run", [*_with(_with(BASE["run"], "--role", "senior"), "--decided-by", "Alice"), "--consensus",
                "ALICE:senior"], "refused")
    add("run", [*_with(_with(BASE["run"], "--role", "senior"), "--decided-by", "Alice"), "--consensus",
                "\uff21lice:senior"], "refused")
    each("run", "run", "--database", CHOICE_BAD)
    each("run", "run", "--backup", ID_BAD)
    each("run", "run", "--incident-id", ID_BAD)
    add("run", _with(BASE["run"], "--incident-id", "GOOD"), "--incident-id", prepared=True)
    add("run", [*BASE["run"], "--issue-type", "data"], "--severity")
    add("run", [*BASE["run"], "--fix-estimate", "2h"], "--fix-estimate")
    add("run", [*BASE["run"], "--fix-estimate", ""], "--fix-estimate")
    for value in DURATION_BAD:
        add("run", [*BASE["run"], "--issue-type", "data", "--severity", "high", "--fix-estimate", value],
            "--fix-estimate")
    each("run", "run", "--issue-type", CHOICE_BAD)
    each("run", "run", "--triggers-report", ["", "@DIR@", "@MISSING@", "@FILE@", "@DEEP_JSON@", "@NEST_JSON@",
                                             "@LIST_JSON@", "@HUGEINT_JSON@", "@TRUNC_JSON@", "@OBS@", "@BADUTF8@"])
    each("run", "run", "--incidents-dir", DIR_BAD)
    for var, value in [("ROLLBACKCTL_STATE_DIR", "@FILE@"), ("ROLLBACKCTL_STATE_DIR", "@FILE@/sub"),
                       ("ROLLBACKCTL_INCIDENTS_DIR", "@FILE@"), ("ROLLBACKCTL_INCIDENTS_DIR", "@FILE@/sub")]:
        add("run", BASE["run"], var, env=((var, value),))
    add("run", [*BASE["run"], "--check=yes"], "--check")
    add("run", [*BASE["run"], "--quiet=1"], "--quiet")
    add("run", [*BASE["run"], "--break-lock=1"], "--break-lock")
    add("run", [*BASE["run"], "--zero-downtime=1"], "--zero-downtime")
    add("run", [*BASE["run"], "--zero-downtime", "--database", "yes"], "--zero-downtime")
    add("run", ["run", "standard", "-i", "@INV@"], "required")
    each("run", "run", "--roster", ["", "@DIR@", "@MISSING@", "@FILE@", "@DEEP_YAML@", "@BOMB@", "@LIST_JSON@",
                                    "@BADUTF8@", "@ROSTER_DUP@", "@ROSTER_UNKNOWN@", "@ROSTER_NOBODY@", "a\x01b"],
         names="roster")
    add("run", [*BASE["run"], "--roster", "@ROSTER_AUTH@"], "not in the roster's decision authority")
    each("run", "run", "--ack-timeout", ["", " ", "-1", "nan", "inf", "1e999", "3601", "soon", "9" * 5000])
    each("run", "run", "--retry-estimate", [*DURATION_BAD, "0s"])
    each("run", "run", "--tickets-repo", ["", " ", "owner", "a/b/c", "../x", "a /b", "a\x01/b", HUGE])
    add("run", [*BASE["run"], "--tickets-api", "http://127.0.0.1:9"], "--tickets-repo")
    add("run", [*BASE["run"], "--tickets-label", "x"], "--tickets-repo")
    for value in URL_BAD:
        add("run", [*BASE["run"], "--tickets-repo", "o/r", "--tickets-api", value], "--tickets-api")
    for value in ["", " ", "a\x01", "x" * 51]:
        add("run", [*BASE["run"], "--tickets-repo", "o/r", "--tickets-label", value], "--tickets-label")

    # resume
    for value in [*ID_BAD, "NOPE"]:
        add("resume", ["resume", value], "INCIDENT_ID" if value not in ("NOPE",) else "NOPE", prepared=True)
    for incident in ("TRUNC", "LIST", "DEEP", "HUGEINT", "SCHEMA", "YEAR1", "Y9999", "ELSEWHERE", "NOINV"):
        add("resume", ["resume", incident], incident, prepared=True)
    each("resume", "resume", "--incidents-dir", DIR_BAD, prepared=True)
    each("resume", "resume", "--incidents-dir", ["@MISSING@", "@DIR@"], prepared=True, names="GOOD")
    for var, value in [("ROLLBACKCTL_STATE_DIR", "@FILE@"), ("ROLLBACKCTL_STATE_DIR", "@FILE@/sub")]:
        add("resume", BASE["resume"], var, env=((var, value),), prepared=True)
    add("resume", BASE["resume"], "ROLLBACKCTL_INCIDENTS_DIR", env=(("ROLLBACKCTL_INCIDENTS_DIR", "@FILE@"),))
    add("resume", ["resume"], "INCIDENT_ID")
    add("resume", [*BASE["resume"], "--break-lock=x"], "--break-lock", prepared=True)
    add("resume", [*BASE["resume"], "--quiet=x"], "--quiet", prepared=True)
    each("resume", "resume", "--tickets-repo", ["", "owner", "a/b/c", "../x"], prepared=True)
    add("resume", [*BASE["resume"], "--tickets-api", "http://127.0.0.1:9"], "--tickets-repo", prepared=True)
    add("resume", [*BASE["resume"], "--tickets-label", "x"], "--tickets-repo", prepared=True)
    add("resume", [*BASE["resume"], "--tickets-repo", "o/r", "--tickets-api", "ftp://h"], "--tickets-api",
        prepared=True)

    # ack
    for value in [*ID_BAD, "NOPE"]:
        add("ack", ["ack", value, "--as", "Dana"], "INCIDENT_ID" if value != "NOPE" else "NOPE", prepared=True)
    for incident in ("TRUNC", "LIST", "DEEP", "HUGEINT", "SCHEMA"):
        add("ack", ["ack", incident, "--as", "Dana"], incident, prepared=True)
    each("ack", "ack", "--as", NAME_BAD, prepared=True)
    add("ack", ["ack", "GOOD"], "--as", prepared=True)
    each("ack", "ack", "--incidents-dir", DIR_BAD, prepared=True)
    each("ack", "ack", "--incidents-dir", ["@MISSING@", "@DIR@"], prepared=True, names="GOOD")

    # rehearse
    each("rehearse", "rehearse", "-i", ["", " ", "a\x01", HUGE, "@MISSING@"], names="inventory")
    each("rehearse", "rehearse", "--deploy", ["", "0.9.0", "v0.9.0\n", HUGE])
    each("rehearse", "rehearse", "--to", ["", "v1", "v0.9.0/../../x", HUGE])
    each("rehearse", "rehearse", "--database", CHOICE_BAD)
    each("rehearse", "rehearse", "--missing", CHOICE_BAD)
    each("rehearse", "rehearse", "--incident-id", ["", "../x", "a/b", "/etc/passwd", "a" * 129, HUGE])
    add("rehearse", _with(BASE["rehearse"], "--incident-id", "GOOD"), "--incident-id", prepared=True)
    # the authority options are run's (one helper): a few values each
    each("rehearse", "rehearse", "--decided-by", ["", "Da\u200bna", "Dana\x07", HUGE])
    each("rehearse", "rehearse", "--role", ["", "c\u200bto"])
    each("rehearse", "rehearse", "--consensus", ["alice", "Al\u200bice:senior"])
    each("rehearse", "rehearse", "--incidents-dir", DIR_BAD)
    for value in ("", "²", "0", "65534", "9" * 5000):
        add("rehearse", ["rehearse"], "ROLLBACK_SANDBOX_PORT_BASE", env=(("ROLLBACK_SANDBOX_PORT_BASE", value),))
    for value in ("", "@FILE@", "@FILE@/sub"):
        add("rehearse", ["rehearse"], "ROLLBACK_SANDBOX_DIR", env=(("ROLLBACK_SANDBOX_DIR", value),))
    add("rehearse", BASE["rehearse"], "ROLLBACKCTL_STATE_DIR", env=(("ROLLBACKCTL_STATE_DIR", "@FILE@"),))
    add("rehearse", [*BASE["rehearse"], "--break-lock=1"], "--break-lock")
    add("rehearse", [*BASE["rehearse"], "--quiet=1"], "--quiet")

    # report
    for value in [*ID_BAD, "NOPE"]:
        add("report", ["report", value], "INCIDENT_ID" if value != "NOPE" else "NOPE", prepared=True)
    for incident in ("TRUNC", "LIST", "DEEP", "HUGEINT"):
        add("report", ["report", incident], incident, prepared=True)
    for incident in ("SCHEMA", "YEAR1", "Y9999"):
        for fmt in ("md", "html"):
            add("report", ["report", incident, "--format", fmt], incident, prepared=True, success_documented=True)
    each("report", "report", "--format", [*CHOICE_BAD, "pdf"], prepared=True)
    each("report", "report", "--output", ["", "@DIR@", "@MISSING@/r.md", "@FILE@/r.md", "a\x01b", "x" * 5000],
         prepared=True)
    each("report", "report", "--incidents-dir", [*DIR_BAD, "@MISSING@"], prepared=True)

    # sandbox
    add("sandbox", ["sandbox", "bogus"], "bogus")
    add("sandbox", ["sandbox", ""], "action")
    add("sandbox", ["sandbox"], "action")
    for action in ("status", "up", "down"):
        for value in PORT_BAD if action == "status" else ("", "²", "65534"):
            add("sandbox", ["sandbox", action], "ROLLBACK_SANDBOX_PORT_BASE",
                env=(("ROLLBACK_SANDBOX_PORT_BASE", value),))
        for value in ("", "@FILE@", "@FILE@/sub"):
            add("sandbox", ["sandbox", action], "ROLLBACK_SANDBOX_DIR", env=(("ROLLBACK_SANDBOX_DIR", value),))
    add("sandbox", ["sandbox", "up", "--check=1"], "--check")
    return cases


CASES = _cases()


# ---- running a case ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    code: int
    stderr: str
    created: list[str]


def _run(case_argv: list[str], env_overrides: dict[str, str], prepared: bool, world: dict[str, str],
         where: Path) -> Outcome:
    where.mkdir(parents=True)
    for folder in ("home", "tmp"):
        (where / folder).mkdir()
    incidents = where / "incidents"
    if prepared:
        shutil.copytree(world["PREPARED"], incidents)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONPATH": str(SRC),
           "HOME": str(where / "home"), "TMPDIR": str(where / "tmp"), "ROLLBACKCTL_PROJECT": world["PROJECT"],
           "ROLLBACKCTL_INCIDENTS_DIR": str(incidents), "ROLLBACKCTL_STATE_DIR": str(where / "state"),
           "XDG_STATE_HOME": str(where / "xdg"), "ROLLBACK_SANDBOX_DIR": str(where / "sandbox"),
           "PYTHONDONTWRITEBYTECODE": "1"}
    env.update({key: _fill(value, world) for key, value in env_overrides.items()})
    before = _tree(where)
    proc = subprocess.run([sys.executable, "-m", "rollbackctl", *(_fill(a, world) for a in case_argv)],
                          capture_output=True, env=env, cwd=where, timeout=120, check=False)
    after = _tree(where)
    created = sorted(set(after) - set(before)) + sorted(k for k in before if k in after and after[k] != before[k])
    created += sorted(set(before) - set(after))
    return Outcome(proc.returncode, proc.stderr.decode("utf-8", "backslashreplace"), created)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("badinput")
    world = _make_world(root)
    world["ROOT"] = str(root)
    return world


COMMANDS = ("decide", "triggers", "run", "resume", "ack", "rehearse", "report", "sandbox")


@pytest.fixture(scope="module")
def helps() -> dict[str, str]:
    """Each command's --help, from the real command line."""
    return {command: subprocess.run([sys.executable, "-m", "rollbackctl", command, "--help"], capture_output=True,
                                    text=True, env={"PYTHONPATH": str(SRC), "PATH": os.environ.get("PATH", "")},
                                    check=True).stdout for command in COMMANDS}


@pytest.fixture(scope="module")
def documented(helps) -> dict[str, set[int]]:
    """Per command, the exit codes its --help lists."""
    codes = {}
    for command, text in helps.items():
        epilog = text[text.rindex("exit codes:"):]
        codes[command] = {int(n) for n in re.findall(r"^  (\d+)  ", epilog, re.MULTILINE)}
    assert all({1, 2} <= found for found in codes.values()), codes
    return codes


@pytest.fixture(scope="module")
def outcomes(world) -> dict[str, Outcome]:
    """Every table case, run two at a time (the machine is shared)."""
    root = Path(world["ROOT"]) / "cases"

    def one(case: Case) -> tuple[str, Outcome]:
        return case.id, _run(list(case.argv), dict(case.env), case.prepared, world, root / case.id)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return dict(pool.map(one, CASES))


def _judge(outcome: Outcome, *, command: str, names: str, documented: dict[str, set[int]],
           success_documented: bool = False, world: dict[str, str] | None = None) -> list[str]:
    problems = []
    names = _fill(names, world or {})
    err = outcome.stderr
    allowed = documented.get(command, {2}) if command in documented else {2}
    if "Traceback" in err:
        problems.append("a traceback")
    if "internal error" in err:
        problems.append("an internal error")
    if outcome.code not in allowed:
        problems.append(f"exit {outcome.code}, not one of {sorted(allowed)}")
    if outcome.code == 0 and not success_documented:
        problems.append("accepted (exit 0)")
    if success_documented and outcome.code == 0 and "warning" not in err:
        problems.append("accepted without a warning")
    if names not in err:
        problems.append(f"the message does not name {names[:60]!r}")
    if len(err) > 4000:
        problems.append(f"a {len(err)}-character message")
    if outcome.created:
        problems.append(f"created or changed {outcome.created[:5]}")
    return problems


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_input_is_refused_with_a_message_and_nothing_is_created(case, outcomes, documented, world):
    outcome = outcomes[case.id]
    problems = _judge(outcome, command=case.command, names=case.names, documented=documented,
                      success_documented=case.success_documented, world=world)
    conftest.record(not problems)
    shown = [a if len(a) < 80 else f"{a[:40]}...({len(a)} characters)" for a in case.argv]
    assert not problems, f"{shown!r} env={case.env!r}: {'; '.join(problems)}\nstderr: {outcome.stderr[:600]}"


def test_every_option_of_every_command_is_tried(helps):
    """Each option a --help lists appears in at least one case (so a new option cannot go untested)."""
    tried: dict[str, set[str]] = {}
    for case in CASES:
        tried.setdefault(case.command, set()).update(a.split("=")[0] for a in case.argv if a.startswith("-"))
    for command, text in helps.items():
        options = set(re.findall(r"^  (--?[a-z][a-z-]*)", text, re.MULTILINE)) - {"-h", "--help"}
        long_options = {o for o in options if o.startswith("--")} | ({"-i"} & options)
        missing = {o for o in long_options if o not in tried.get(command, set())
                   and not (o == "-i" and "-i" in tried.get(command, set()))}
        assert not missing, f"{command}: no bad-input case for {sorted(missing)}"


# ---- property-style: generated bad values ---------------------------------------------------------------

PROPERTY = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
                    database=None)
plain = st.text(st.characters(categories=["L", "N"], codec="utf-8"), min_size=1, max_size=20)
refused_in_text = st.sampled_from(["\x01", "\x02", "\x08", "\x0b", "\x0c", "\x0e", "\x1b", "\x7f", "\x9b", "\r",
                                   "\u202e", "\u2066"])
invisible = st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e", "\u200e", "\x01",
                             "\x1b", "\u2028"])
_counter = iter(range(10**9))


def _splice(text: str, char: str, at: int) -> str:
    at %= len(text) + 1
    return text[:at] + char + text[at:]


def _property_case(world, documented, argv, names, command):
    where = Path(world["ROOT"]) / "property" / str(next(_counter))
    outcome = _run(argv, {}, False, world, where)
    problems = _judge(outcome, command=command, names=names, documented=documented)
    conftest.record(not problems)
    assert not problems, f"{argv!r}: {'; '.join(problems)}\nstderr: {outcome.stderr[:600]}"


@PROPERTY
@given(text=plain, char=refused_in_text, at=st.integers(min_value=0))
def test_generated_reasons_with_control_characters_are_refused(world, documented, text, char, at):
    _property_case(world, documented, _with(BASE["run"], "--reason", _splice(text, char, at)), "--reason", "run")


@PROPERTY
@given(name=plain, char=invisible, at=st.integers(min_value=0), option=st.sampled_from(["--decided-by",
                                                                                       "--consensus"]))
def test_generated_names_with_invisible_characters_are_refused(world, documented, name, char, at, option):
    value = _splice(name, char, at)
    argv = _with(BASE["run"], option, value if option == "--decided-by" else f"{value}:senior")
    _property_case(world, documented, argv, option, "run")


@PROPERTY
@given(head=plain, tail=plain, sep=st.sampled_from(["/", "../", "/..", "\\..\\", "/./"]),
       option=st.sampled_from(["--incident-id", "--backup"]))
def test_generated_ids_with_path_separators_are_refused(world, documented, head, tail, sep, option):
    _property_case(world, documented, _with(BASE["run"], option, f"{head}{sep}{tail}"), option, "run")


@PROPERTY
@given(host=st.text(st.sampled_from("ab1.-[]:"), min_size=1, max_size=12),
       port=st.text(st.characters(categories=["L", "P", "S"], codec="utf-8"), min_size=1, max_size=6))
def test_generated_urls_with_a_bad_port_are_refused(world, documented, host, port):
    _property_case(world, documented, _with(BASE["prometheus"], "--prometheus", f"http://{host}:{port}"),
                   "--prometheus", "triggers")


@PROPERTY
@given(digits=st.integers(min_value=4301, max_value=6000), unit=st.sampled_from(["h", "m", "s", ""]),
       option=st.sampled_from(["--fix-estimate", "--interval"]))
def test_generated_overflowing_durations_are_refused(world, documented, digits, unit, option):
    if option == "--interval":
        argv = _with(BASE["prometheus"], option, "9" * digits + unit)
        command = "triggers"
    else:
        argv = [*BASE["decide"], option, "9" * digits + unit]
        command = "decide"
    _property_case(world, documented, argv, option, command)


def test_the_suite_sees_what_a_valid_run_creates(world):
    """A control: the same run with valid inputs gets past validation (on the skeleton project it fails in
    preflight, which has no playbook) and leaves a record, a lock folder and runner folders, all of which the
    cases above would have reported."""
    outcome = _run(BASE["run"], {}, False, world, Path(world["ROOT"]) / "control")
    created = {path.split("/")[0] for path in outcome.created}
    assert {"incidents", "state"} <= created, outcome
    assert any(path.startswith("state/runs/") for path in outcome.created), outcome.created
    assert "Traceback" not in outcome.stderr

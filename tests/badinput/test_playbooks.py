"""Bad inputs to every operator playbook, by plain ansible-playbook against one real sandbox.

For each operator playbook (playbooks/vars/inputs.yml: playbook_inputs_playbooks) and each class of bad value
- empty, wrong type, `..`, huge, malformed or unknown choice, template text, control characters - one run sets
every variable the playbook takes to a bad value of that class (batched: one ansible-playbook per playbook and
class, --check besides). Each run must end with ansible-playbook's documented exit code 2, a message naming
every refused variable, no traceback, and no host but the controller's localhost touched; template text must
run nothing (a marker file). After the whole suite the platform is what it was before: the release served and
its workers, the database's content hashes, maintenance state, nginx's configuration, no incident record or
backup written. Good values of every variable pass the same contract.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from rollbackctl.paths import INCIDENTS_ENV

pytestmark = pytest.mark.sandbox

PROJECT = Path(__file__).resolve().parents[2]
CONTRACT = yaml.safe_load((PROJECT / "playbooks" / "vars" / "inputs.yml").read_text())
SPEC = CONTRACT["playbook_inputs_spec"]
PLAYBOOKS = CONTRACT["playbook_inputs_playbooks"]
FREE_TEXT = ("text", "text_list")
# Playbooks that take no extra vars still check any the contract knows (a typo'd run must not run code).
FOREIGN = ["incident_id", "backup"]
MARKER = Path(f"/tmp/badinput-marker-{uuid.uuid4().hex}")  # a name nobody else uses
TEMPLATE = f"{{{{ lookup('ansible.builtin.pipe', 'touch {MARKER}') }}}}"
SKIP = object()


def _bad(klass: str, rule: dict):
    """A bad value of `klass` for a variable of `rule`, or SKIP when the class does not apply to it."""
    kind, free = rule["type"], rule["type"] in FREE_TEXT
    if klass == "empty":
        if rule.get("empty"):
            return SKIP
        return {"list": [], "text_list": [""]}.get(kind, "")
    if klass == "wrong_type":
        return {"int": "many", "float": "much", "list": "v0.9.0"}.get(kind, {"nested": ["x"]})
    if klass == "dotdot":
        if free:
            return SKIP  # people may write '..'
        return {"path": "/srv/../etc/cron.d", "list": ["../v0.9.0"], "int": "../1", "float": "../1"}.get(kind,
                                                                                                        "../../etc")
    if klass == "huge":
        return {"int": str(10 ** 40), "float": "1e300", "list": ["v0.9.0"] * 5000,
                "text_list": ["a:senior-engineer"] * 5000}.get(kind, "x" * 100_000)
    if klass == "malformed":
        if rule.get("choices"):
            return "maybe"
        return {"int": "-7", "float": "-1", "path": "relative/dir", "list": ["v1"], "text": "bell \x07",
                "text_list": ["esc \x1b[31m:senior-engineer"]}.get(kind, "-not-a-valid-form")
    if klass == "control":
        return SKIP if kind in ("int", "float") else ({"list": ["v0.9.0\n"], "text_list": ["nul\x00:x"]}.get(
            kind, "nul\x00byte" if free else "v0.9.0\r\n"))
    if klass == "template":
        if free:
            return SKIP  # free text may hold template text: it stays data (tests/integration/test_free_text_*)
        return {"list": [TEMPLATE], "int": TEMPLATE, "float": TEMPLATE}.get(kind, TEMPLATE)
    raise KeyError(klass)


CLASSES = ("empty", "wrong_type", "dotdot", "huge", "malformed", "control", "template")


def _cases():
    cases = []
    for playbook, entry in PLAYBOOKS.items():
        names = entry["takes"] or FOREIGN
        for klass in CLASSES:
            values = {name: value for name in names if (value := _bad(klass, SPEC[name])) is not SKIP}
            if values:
                cases.append((playbook, klass, values))
        if entry["required"]:
            cases.append((playbook, "missing", {}))
    return cases


CASES = _cases()
CASE_IDS = [f"{playbook}-{klass}" for playbook, klass, _ in CASES]
VALID = {
    "rollback_to": "v0.9.0", "rollback_from": "v1.0.0", "deploy_version": "v1.0.0", "rehearsal_bad_version": "v1.0.0",
    "package_versions": ["v0.9.0", "v1.0.0"], "verify_expected_version": "v0.9.0", "incident_id": "INC-BADINPUT-OK",
    "backup": "pre-deploy-v1.0.0", "database": "no", "maintenance_state": "off", "verify_scope": "app",
    "notify_event": "rollback_started", "procedure": "standard", "verify_expected_schema": 1, "verify_observe_s": "1",
    "log_lines": 50, "verify_log_since": "2026-01-31T12:00:00Z",
    "verify_log_attributed_before": "2026-01-31T12:05:00Z", "incident_logs_dir": "/srv/incidents/x/logs",
    "rollback_incidents_dir": "/srv/incidents",
    "verify_backup_manifest": "", "reason": f"checks {TEMPLATE}", "decided_by": "Dana Ops",
    "acknowledged_by": f"Quinn QA {TEMPLATE}",
    "decided_by_role": "cto", "authority": "cto (role)", "consensus": "alice:senior-engineer,bob:senior-engineer",
    "roles_text": f"Rollback Coordinator: Dana Ops {TEMPLATE}", "retry_eta": "not before 2026-12-02T20:00:00Z",
}


def _playbook(sandbox, args: list[str], tmp: Path, values: dict | None = None, cli: dict | None = None):
    """ansible-playbook as an operator runs it; bad values in a vars file (-e @file), template text on the CLI."""
    command = ["ansible-playbook", "-i", str(sandbox.inventory), *args]
    if values:
        path = tmp / f"vars-{uuid.uuid4().hex}.json"
        path.write_text(json.dumps(values))
        command += ["-e", f"@{path}"]
    if cli:
        command += ["-e", json.dumps(cli)]
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
           "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg")}
    proc = subprocess.run(["nice", *command], cwd=PROJECT, capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    return proc.returncode, proc.stdout + proc.stderr


def _refused(output: str) -> dict[str, str]:
    """The contract's problems by variable name, from the failed task's result."""
    for line in output.splitlines():
        if line.startswith("fatal: [localhost]: FAILED! => "):
            result = json.loads(line.split("=> ", 1)[1])
            return {problem.split(" ", 1)[0]: problem for problem in result.get("problems", [])}
    return {}


def _platform(sandbox, tmp: Path) -> dict:
    """What must not change: the release and its workers, the data, maintenance, nginx, records, backups."""
    from rollbackctl.runner import run_playbook

    fingerprint = run_playbook(project=PROJECT, playbook="fingerprint.yml", inventory=sandbox.inventory,
                               runs_dir=tmp / "runs").custom_stats["fingerprint"]
    root = sandbox.directory
    nginx = root / "nginx"
    pm2 = subprocess.run(["pm2", "jlist"], env={**os.environ, "PM2_HOME": str(root / "app" / "pm2")},
                         capture_output=True, text=True, check=True, timeout=60).stdout
    workers = sorted((p["pid"], p["pm2_env"]["status"]) for p in json.loads(pm2[pm2.index("["):]))
    incidents = Path(os.environ[INCIDENTS_ENV])
    return {
        "fingerprint": fingerprint,
        "current": os.readlink(root / "app" / "opt" / "chatbot-platform" / "current"),
        "workers": workers,
        "health": {k: v for k, v in sandbox.health().items() if k in ("http_status", "version", "git_sha")},
        "maintenance_files": sorted(p.name for p in (nginx / "conf.d").glob("chatbot-maintenance*")),
        "site": (nginx / "conf.d" / "chatbot.conf").read_text(),
        "incidents": sorted(p.name for p in incidents.iterdir()) if incidents.exists() else [],
        "backups": sorted(str(p.relative_to(root)) for p in (root / "backups").rglob("*")) if (
            root / "backups").exists() else [],
        "releases": (root / "app" / "opt" / "chatbot-platform" / "releases" / "manifest.jsonl").read_text(),
    }


@pytest.fixture(scope="module")
def suite(sandbox, tmp_path_factory):
    """Every case run once (two at a time: the machine is shared), with the platform read before and after."""
    tmp = tmp_path_factory.mktemp("badinput")
    MARKER.unlink(missing_ok=True)
    before = _platform(sandbox, tmp)

    def bad(case):
        playbook, klass, values = case
        cli = values if klass == "template" else None  # the CLI path, where ansible-core trusts extra vars
        return _playbook(sandbox, ["--check", f"playbooks/{playbook}.yml"], tmp,
                         values=None if cli else values, cli=cli)

    def good(playbook):
        takes = PLAYBOOKS[playbook]["takes"]
        return _playbook(sandbox, ["playbooks/inputs.yml"], tmp, values={n: VALID[n] for n in takes},
                         cli={"playbook_inputs_for": playbook})

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(CASE_IDS, pool.map(bad, CASES), strict=True))
        passed = dict(zip(PLAYBOOKS, pool.map(good, PLAYBOOKS), strict=True))
    after = _platform(sandbox, tmp)
    yield {"bad": results, "good": passed, "before": before, "after": after}
    MARKER.unlink(missing_ok=True)


@pytest.mark.parametrize(("playbook", "klass", "values"), CASES, ids=CASE_IDS)
def test_bad_inputs_are_refused_by_name_before_any_host(suite, playbook, klass, values):
    rc, output = suite["bad"][f"{playbook}-{klass}"]
    assert "Traceback" not in output, output[-3000:]
    assert rc == 2, (rc, output[-3000:])
    refused = _refused(output)
    expected = set(values) if klass != "missing" else set(PLAYBOOKS[playbook]["required"])
    assert expected <= set(refused), (expected - set(refused), output[-3000:])
    for name in expected:
        assert len(refused[name]) < 400, "a huge value is not echoed whole"
    assert f"inputs of {playbook}.yml refused" in output
    # only the controller's contract play ran: no app or db host took a task
    assert "sandbox-app" not in output and "sandbox-db" not in output, output[-3000:]
    assert not MARKER.exists(), f"template text ran a command ({playbook}, {klass})"


@pytest.mark.parametrize("playbook", list(PLAYBOOKS))
def test_good_inputs_pass_the_same_contract(suite, playbook):
    rc, output = suite["good"][playbook]
    assert rc == 0, output[-3000:]
    assert "Traceback" not in output


def test_the_platform_is_unchanged_after_the_whole_suite(suite):
    before, after = suite["before"], suite["after"]
    assert after == before
    assert before["maintenance_files"] == [] and before["health"]["http_status"] == 200
    assert not MARKER.exists()


def test_the_suite_tries_many_bad_inputs():
    count = sum(len(values) or len(PLAYBOOKS[playbook]["required"]) for playbook, _, values in CASES)
    print(f"\nbad-input cases: {count} (variable, bad value) pairs in {len(CASES)} ansible-playbook runs "
          f"over {len(PLAYBOOKS)} playbooks; {len(PLAYBOOKS)} good-input runs")
    assert count >= 150

"""AWX configuration as code (awx/): surveys valid by AWX's rules and equal to the playbooks' inputs contract, the
awx.awx task arguments, the workflow's graph, and its data flow the way AWX merges variables between nodes."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml
from ansible_collections.chatbot.rollback.plugins.module_utils.playbook_inputs import validate

from .awx_rules import awx_answer_problems, awx_problems, expected_question, question_form

PROJECT = Path(__file__).resolve().parents[2]
AWX = PROJECT / "awx"
CONTRACT = yaml.safe_load((PROJECT / "playbooks" / "vars" / "inputs.yml").read_text())
SPEC, PLAYBOOKS = CONTRACT["playbook_inputs_spec"], CONTRACT["playbook_inputs_playbooks"]


class _Loader(yaml.SafeLoader):
    """YAML as Ansible reads it here: `!unsafe` strings are plain strings."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
CONFIG = yaml.load((AWX / "vars" / "main.yml").read_text(), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
TEMPLATES = {t["name"]: t for t in CONFIG["awx_rollback_job_templates"]}
SURVEYED = [t for t in CONFIG["awx_rollback_job_templates"] if t["survey"]]
WORKFLOW_SURVEY = "workflow_rollback.yml"


def _survey(name: str) -> dict:
    return yaml.safe_load((AWX / "surveys" / name).read_text())


def contract_differences(survey: dict, contract: str, leaves_out, extra_vars, spec=SPEC, playbooks=PLAYBOOKS):
    """Every difference between a survey and what the contract says its playbook accepts (empty: they agree)."""
    entry = playbooks[contract]
    takes, required = set(entry["takes"]), set(entry["required"])
    asked = {q["variable"]: q for q in survey["spec"]}
    problems = []
    for name in sorted(set(asked) | set(leaves_out) | set(extra_vars)):
        if name not in takes:
            problems.append(f"{name} is not an input of {contract}.yml")
    for name in sorted(takes - set(asked) - set(leaves_out) - set(extra_vars)):
        problems.append(f"{name}, an input of {contract}.yml, is neither asked nor left out with a reason")
    for name in sorted(required - set(asked) - set(extra_vars)):
        problems.append(f"{name} is required by {contract}.yml and not asked")
    for name, question in asked.items():
        if name not in spec or name in leaves_out:
            continue
        expected = expected_question(name, spec[name], name in required)
        if expected is None:
            problems.append(f"{name}: the contract's {spec[name]['type']} has no survey type")
        elif question_form(question) != expected:
            problems.append(f"{name}: survey {question_form(question)} != contract {expected}")
        if "default" in question:
            _, bad = validate(spec, {name: question["default"]})
            problems += [f"{name}: the default is refused by the contract: {p}" for p in bad]
    return problems


# --- surveys -------------------------------------------------------------------------------------------------------


def test_every_template_with_a_survey_has_its_file_and_every_file_is_used():
    files = sorted(p.name for p in (AWX / "surveys").glob("*.yml"))
    assert files == sorted([t["survey"] for t in SURVEYED] + [WORKFLOW_SURVEY])
    names = {t["name"] for t in SURVEYED}
    assert {
        "Rollback - preflight",
        "Rollback - standard",
        "Rollback - pre-deployment backup",
        "Rollback - rehearsal",
    } <= names


@pytest.mark.parametrize("name", sorted(p.name for p in (AWX / "surveys").glob("*.yml")))
def test_every_survey_is_valid_by_awx_rules(name):
    assert awx_problems(_survey(name)) == []


def test_the_awx_rules_refuse_what_awx_refuses():
    good = {
        "name": "s",
        "description": "",
        "spec": [
            {
                "question_name": "q",
                "variable": "a",
                "type": "multiplechoice",
                "required": False,
                "choices": ["x", "y"],
                "default": "x",
            }
        ],
    }
    assert awx_problems(good) == []
    cases = {
        "type": {"type": "select"},
        "choices format": {"choices": 3},
        "default among choices": {"default": "z"},
        "variable name": {"variable": "a-b"},
        "required bool": {"required": "yes"},
        "one default": {"default": "x\ny"},
        "encrypted": {"default": "$encrypted$"},
    }
    for why, change in cases.items():
        bad = copy.deepcopy(good)
        bad["spec"][0].update(change)
        assert awx_problems(bad), why
    text = {"question_name": "t", "variable": "b", "type": "text", "required": True, "min": 3, "max": 2}
    assert awx_problems({**good, "spec": [text]}), "min > max"
    number = {
        "question_name": "n",
        "variable": "c",
        "type": "integer",
        "required": False,
        "min": 1,
        "max": 5,
        "default": 9,
    }
    assert awx_problems({**good, "spec": [number]}), "default outside min/max"
    assert awx_problems({**good, "spec": good["spec"] * 2}), "duplicate variable"
    assert awx_problems({**good, "spec": []}), "empty spec"


@pytest.mark.parametrize("template", SURVEYED, ids=[t["name"] for t in SURVEYED])
def test_each_survey_is_exactly_its_playbooks_inputs_contract(template):
    playbook = yaml.safe_load((PROJECT / template["playbook"]).read_text())
    assert playbook[0]["vars"]["playbook_inputs_for"] == template["contract"]  # the contract of that very playbook
    survey = _survey(template["survey"])
    assert survey["name"] == template["name"]
    assert contract_differences(survey, template["contract"], template["leaves_out"], template["extra_vars"]) == []
    for name, why in template["leaves_out"].items():
        assert name not in PLAYBOOKS[template["contract"]]["required"] and why.strip(), name


def test_the_workflow_survey_is_the_rollback_contract():
    standard = TEMPLATES["Rollback - standard"]
    survey = _survey(WORKFLOW_SURVEY)
    assert contract_differences(survey, "rollback", standard["leaves_out"], standard["extra_vars"]) == []


def test_a_contract_change_fails_the_comparison():
    """The check can fail: a choice added, a bound moved, a requirement or an input added each show up."""
    template = TEMPLATES["Rollback - standard"]
    survey = _survey(template["survey"])
    args = (template["leaves_out"], template["extra_vars"])
    spec, playbooks = copy.deepcopy(SPEC), copy.deepcopy(PLAYBOOKS)
    spec["database"]["choices"].append("ask")
    spec["reason"]["max_length"] = 500
    playbooks["rollback"]["required"].append("reason")
    playbooks["rollback"]["takes"].append("log_lines")
    problems = contract_differences(survey, "rollback", *args, spec=spec, playbooks=playbooks)
    assert any(p.startswith("database:") for p in problems)
    assert any(p.startswith("reason:") for p in problems)
    assert any(p.startswith("log_lines, an input of rollback.yml") for p in problems)
    changed = copy.deepcopy(survey)
    changed["spec"][0]["required"] = False  # rollback_to
    assert contract_differences(changed, "rollback", *args)


# --- the configure playbook ----------------------------------------------------------------------------------------

PLAY = yaml.safe_load((AWX / "configure.yml").read_text())[0]
TASKS = {next(k for k in task if k.startswith("awx.awx.")): task for task in PLAY["tasks"]}


def _render_nodes() -> list[dict]:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)  # noqa: S701 - YAML, not HTML
    env.filters["to_json"] = json.dumps
    text = env.from_string((AWX / "workflow_rollback.yml.j2").read_text()).render(**CONFIG)
    return yaml.safe_load(text)


def test_templates_refuse_launch_variables_and_simultaneous_runs():
    for module in ("awx.awx.job_template", "awx.awx.workflow_job_template"):
        args = TASKS[module][module]
        assert args["ask_variables_on_launch"] is False and args["allow_simultaneous"] is False, module
        assert args["survey_enabled"] is True or "item.survey" in str(args["survey_enabled"])
    for template in CONFIG["awx_rollback_job_templates"]:
        assert (PROJECT / template["playbook"]).is_file(), template["playbook"]


def test_credential_types_inject_extra_vars_or_env_only():
    injected = {}
    for kind in CONFIG["awx_rollback_credential_types"]:
        assert set(kind["injectors"]) <= {"extra_vars", "env"}, kind["name"]
        fields = {f["id"]: f for f in kind["inputs"]["fields"]}
        for values in kind["injectors"].values():
            for name, value in values.items():
                field = value.strip("{} ")
                assert field in fields, (kind["name"], name)
                injected[name] = fields[field]
    for name in (
        "chatbot_mongodb_uri",
        "chatbot_notify_webhook_url",
        "chatbot_statuspage_api_key",
        "chatbot_maintenance_bypass_token",
    ):
        assert injected[name].get("secret") is True, name
    assert "ROLLBACKCTL_INCIDENTS_DIR" in injected
    # the secrets are read by the playbooks under these names
    text = "\n".join(p.read_text() for p in (PROJECT / "playbooks").glob("*.yml"))
    for name in injected:
        if name.startswith("chatbot_"):
            assert name in text, name


def _awx_docs(modules) -> dict:
    proc = subprocess.run(["ansible-doc", "-j", *modules], capture_output=True, text=True, check=True, timeout=120)
    return {name: doc["doc"]["options"] for name, doc in json.loads(proc.stdout).items()}


def _unknown(args: dict, options: dict, where: str) -> list[str]:
    problems = []
    names = {**{k: v for k, v in options.items()}, **{a: v for v in options.values() for a in v.get("aliases") or []}}
    for key, value in args.items():
        if key not in names:
            problems.append(f"{where}: {key} is not an option")
            continue
        option = names[key]
        choices = option.get("choices")
        if choices and isinstance(value, (str, int)) and "{{" not in str(value) and str(value) not in map(str, choices):
            problems.append(f"{where}: {key}={value!r} is not among {choices}")
        if isinstance(value, dict) and option.get("suboptions"):
            problems += _unknown(value, option["suboptions"], f"{where}.{key}")
        if isinstance(value, list) and option.get("suboptions"):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    problems += _unknown(item, option["suboptions"], f"{where}.{key}[{index}]")
    return problems


@pytest.mark.skipif(not shutil.which("ansible-doc"), reason="ansible-doc is not installed")
def test_every_awx_awx_argument_is_an_option_of_the_installed_collection():
    """ansible-lint's args rule stops at the first templated value; this checks every key, the literal choices and the
    rendered workflow nodes against the installed awx.awx documentation."""
    docs = _awx_docs(sorted(TASKS))
    problems = []
    for module, task in TASKS.items():
        problems += _unknown(task[module], docs[module], module)
    nodes = _render_nodes()
    problems += _unknown({"workflow_nodes": nodes}, docs["awx.awx.workflow_job_template"], "workflow")
    assert problems == []


@pytest.mark.skipif(not shutil.which("ansible-lint"), reason="ansible-lint is not installed")
def test_ansible_lint_production_with_argument_checks_passes_on_awx():
    proc = subprocess.run(
        ["ansible-lint", "-c", "awx/ansible-lint.yml", "--nocolor", "awx/"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]


# --- the workflow ----------------------------------------------------------------------------------------------------

NODES = {n["identifier"]: n for n in _render_nodes()}


def _next(node: str, kind: str) -> set[str]:
    return {n["identifier"] for n in (NODES[node].get("related") or {}).get(f"{kind}_nodes", [])}


def test_the_workflow_graph_is_preflight_approval_rollback_with_its_failure_paths():
    assert _next("preflight", "success") == {"approval"}
    approval = NODES["approval"]["unified_job_template"]
    assert approval["type"] == "workflow_approval" and approval["timeout"] == CONFIG["awx_rollback_approval_timeout"]
    assert _next("approval", "success") == {"rollback"} and _next("approval", "failure") == {"not_approved"}
    assert _next("rollback", "failure") == {"notify_failed", "collect_logs"}
    assert NODES["notify_failed"]["extra_data"] == {"notify_event": "rollback_failed"}
    notify_survey = {q["variable"] for q in _survey(TEMPLATES["Rollback - notify"]["survey"])["spec"]}
    assert set(NODES["notify_failed"]["extra_data"]) <= notify_survey, "AWX would drop the node's extra_data"
    for node in NODES.values():
        assert not node.get("extra_data") or TEMPLATES[node["unified_job_template"]["name"]]["survey"], node
    for node in NODES.values():
        ujt = node["unified_job_template"]
        if ujt["type"] == "job_template":
            assert ujt["name"] in TEMPLATES, ujt["name"]
    parents = [
        i for n in NODES.values() for kind in ("success", "failure", "always") for i in _next(n["identifier"], kind)
    ]
    assert sorted(parents) == sorted(set(NODES) - {"preflight"}), "every node but the root has exactly one parent"


def awx_node_extra_vars(node: str, jobs: dict[str, dict], workflow_extra_vars: dict) -> dict:
    """The extra vars AWX gives the job of `node` (awx/main/models/workflow.py, WorkflowJobNode.get_job_kwargs, 24.6.1):
    the node's own extra_data, updated with its ancestors' artifacts (each parent's ancestor_artifacts, then the
    parent job's artifacts - an approval has none), updated with the workflow job's extra vars, which win.
    `_ansible_no_log` is dropped (it only masks the values). A node's extra_data reaches the job only for variables its
    template prompts for (its survey); the notify template's survey has notify_event (checked below)."""

    def ancestor_artifacts(identifier: str) -> dict:
        merged: dict = {}
        for parent, candidate in NODES.items():
            if any(identifier in _next(parent, kind) for kind in ("success", "failure", "always")):
                merged.update(ancestor_artifacts(parent))
                merged.update(jobs.get(candidate["identifier"], {}))
        return merged

    extra_vars = dict(NODES[node].get("extra_data") or {})
    artifacts = ancestor_artifacts(node)
    artifacts.pop("_ansible_no_log", None)
    extra_vars.update(artifacts)
    extra_vars.update(workflow_extra_vars)
    return extra_vars


def _preflight_artifacts(incident_id: str) -> dict:
    """What preflight.yml publishes with set_stats (its keys read from the playbook), with a run's values."""
    plays = yaml.safe_load((PROJECT / "playbooks" / "preflight.yml").read_text())
    published = [
        t["ansible.builtin.set_stats"]["data"]
        for p in plays
        for t in p.get("tasks", [])
        if "ansible.builtin.set_stats" in t
    ]
    keys = set().union(*published)
    assert {"rollback", "incident_id"} <= keys, keys
    return {
        "rollback": {"needed": True, "incident_id": incident_id, "from_versions": {"app1": "v1.0.0"}},
        "incident_id": incident_id,
    }


def test_preflight_artifacts_become_the_rollback_jobs_extra_vars_and_the_workflow_survey_wins():
    answers = {
        "rollback_to": "v0.9.0",
        "reason": "messaging 5xx {{ not templated }}",
        "decided_by": "Dana Ops",
        "decided_by_role": "lead-devops-engineer",
        "database": "auto",
        "procedure": "standard",
    }
    jobs = {"preflight": _preflight_artifacts("20261202T100000Z-rollback-v0.9.0")}
    # the artifact also carries a key the workflow sets: the workflow's answer wins
    jobs["preflight"]["rollback_to"] = "v0.8.0"

    rollback = awx_node_extra_vars("rollback", jobs, answers)
    assert rollback["incident_id"] == "20261202T100000Z-rollback-v0.9.0"  # through the approval node
    assert rollback["rollback_to"] == "v0.9.0" and rollback["reason"] == answers["reason"]
    free, problems = validate(SPEC, rollback, required=PLAYBOOKS["rollback"]["required"])
    assert problems == [] and free["reason"] == answers["reason"]

    # the workflow's own incident_id (a survey answer) wins over preflight's
    assert awx_node_extra_vars("rollback", jobs, {**answers, "incident_id": "INC-42"})["incident_id"] == "INC-42"

    # the failure paths: the failed rollback job published preflight's keys too (rollback.yml imports preflight.yml)
    jobs["rollback"] = _preflight_artifacts("20261202T100000Z-rollback-v0.9.0")
    notify = awx_node_extra_vars("notify_failed", jobs, answers)
    assert notify["notify_event"] == "rollback_failed" and notify["incident_id"] == rollback["incident_id"]
    assert validate(SPEC, notify, required=PLAYBOOKS["notify"]["required"])[1] == []
    logs = awx_node_extra_vars("collect_logs", jobs, answers)
    assert logs["incident_id"] == rollback["incident_id"]
    # a denial: the not-approved notice names the same incident
    assert (
        awx_node_extra_vars("not_approved", {"preflight": jobs["preflight"]}, answers)["incident_id"]
        == rollback["incident_id"]
    )


def test_node_extra_data_loses_to_artifacts_and_the_workflow():
    jobs = {"preflight": {"incident_id": "A"}, "rollback": {"notify_event": "rollback_completed"}}
    assert awx_node_extra_vars("notify_failed", jobs, {})["notify_event"] == "rollback_completed"
    assert (
        awx_node_extra_vars("notify_failed", jobs, {"notify_event": "extended_downtime"})["notify_event"]
        == "extended_downtime"
    )


# --- the execution environment ---------------------------------------------------------------------------------------


def test_the_execution_environment_carries_what_the_jobs_import():
    """execution-environment.yml (ansible-builder v3): a local base image, no Galaxy, rollbackctl's dependencies as
    pyproject.toml lists them, the package and the collection from this checkout."""
    import tomllib

    ee = yaml.safe_load((PROJECT / "execution-environment.yml").read_text())
    assert ee["version"] == 3 and ee["images"]["base_image"]["name"].startswith("localhost/")
    deps = ee["dependencies"]
    assert "galaxy" not in deps and not deps.get("system") and ee["options"]["skip_pip_install"] is True
    pyproject = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["dependencies"]
    by_name = {d.split(">")[0].split("<")[0].split("=")[0].strip().lower(): d for d in pyproject}
    assert deps["ansible_core"]["package_pip"] == by_name.pop("ansible-core")
    assert deps["ansible_runner"]["package_pip"] == by_name.pop("ansible-runner")
    assert sorted(deps["python"], key=str.lower) == sorted(by_name.values(), key=str.lower)
    steps = "\n".join(ee["additional_build_steps"]["append_final"])
    assert "rollbackctl-*.whl" in steps and "chatbot-rollback-*.tar.gz" in steps
    script = (PROJECT / "scripts" / "build-ee.sh").read_text()
    assert "--pull=never" in script and "ansible-builder build" in script


# --- answers: what AWX lets through, the playbook accepts ------------------------------------------------------------

# A valid answer per surveyed variable, as AWX passes it (a survey answer is a string, an integer or a choice).
GOOD_ANSWERS = {
    "rollback_to": "v0.9.0",
    "rollback_from": "v1.0.0",
    "deploy_version": "v1.0.0",
    "rehearsal_bad_version": "v1.0.0",
    "incident_id": "INC-2026.12_01",
    "backup": "pre-deploy-v1.0.0",
    "reason": "messaging 5xx\nsince 10:02",
    "decided_by": "Dana Ops",
    "acknowledged_by": "Quinn QA",
    "decided_by_role": "lead-devops-engineer",
    "authority": "cto (role)",
    "consensus": "alice:senior-engineer,bob:senior-engineer",
}


def _answers(question: dict):
    """(answer, awx_accepts) pairs at and around the question's limits."""
    if question["type"] in ("multiplechoice", "multiselect"):
        return [(c, True) for c in question["choices"]] + [("maybe", False)]
    if question["type"] in ("integer", "float"):
        low, high = question["min"], question["max"]
        return [(low, True), (high, True), (low - 1, False), (high + 1, False)]
    good = GOOD_ANSWERS[question["variable"]]
    high = question["max"]
    too_long = (good * (high // len(good) + 2))[: high + 1]
    cases = [(good, True), (too_long, False)]
    if question["min"] > 1:
        cases.append((good[: question["min"] - 1], False))
    return cases


SURVEY_QUESTIONS = [
    (name, q) for name in sorted(p.name for p in (AWX / "surveys").glob("*.yml")) for q in _survey(name)["spec"]
]


@pytest.mark.parametrize(
    ("survey", "question"), SURVEY_QUESTIONS, ids=[f"{s}-{q['variable']}" for s, q in SURVEY_QUESTIONS]
)
def test_awx_refuses_only_what_the_playbook_refuses_and_passes_its_valid_inputs(survey, question):
    """The survey is never stricter than the playbook (a valid input is never blocked at launch), and what it lets
    through beyond its limits does not exist: past min/max the playbook refuses too. (Patterns, which AWX cannot
    express, are the playbook's to check.)"""
    name = question["variable"]
    for answer, awx_accepts in _answers(question):
        awx_ok = not awx_answer_problems(question, answer)
        _, problems = validate(SPEC, {name: answer})
        assert awx_ok == awx_accepts, (name, answer)
        if not awx_ok:
            assert problems, f"{name}={answer!r}: AWX refuses it, the playbook would accept it"
        elif awx_accepts and answer in (GOOD_ANSWERS.get(name), *question.get("choices", [])):
            assert problems == [], f"{name}={answer!r}: AWX passes it, the playbook refuses it: {problems}"

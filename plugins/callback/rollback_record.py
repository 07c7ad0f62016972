"""Write the incident record when playbooks/rollback.yml runs under ansible-playbook or AWX.

The plays of rollback.yml carry `rollback_phase`; this callback follows them, times each phase, folds in
what the phases publish with set_stats (preflight, backup, restore, verifications, notifications) and
writes the same record as `rollbackctl run` - with the same code (rollbackctl.record).
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: rollback_record
type: notification
short_description: Write the rollback incident record (incident.json, incident.md, events.jsonl, logs)
description:
  - Active only for plays that carry the C(rollback_phase) variable (the imports of playbooks/rollback.yml);
    any other playbook is ignored.
  - Writes C(<incidents dir>/<incident id>/) with the same record implementation as the rollbackctl wrapper,
    validated against its JSON Schema; secrets are redacted.
  - The wrapper sets C(ROLLBACKCTL_RECORD=off) because it writes the record itself.
  - Decision authority is not enforced here; with C(decided_by) and C(decided_by_role) (and optionally
    C(consensus), a list of NAME:ROLE) it is checked and recorded, otherwise recorded as not checked.
  - The extra var C(rollback_incidents_dir) wins over the incidents_dir option. Under AWX (C(JOB_ID) or
    C(AWX_ISOLATED_DATA_DIR) set), where the private data dir is deleted after the job, the folder must be a mounted
    persistent volume (it or its parent must exist); without one the record goes to the job's artifacts dir, with a
    warning that it will not survive the job (rollbackctl.awx).
  - The play of rollback.yml that carries C(rollback_record_summary) makes the callback close the phases and save
    the record, so that its task can publish the summary with set_stats (the job's artifacts under AWX).
  - At the end of the playbook a short markdown summary of the record is printed, redacted.
requirements:
  - the rollbackctl Python package (C(pip install rollbackctl); it is in the execution environment)
options:
  incidents_dir:
    description: Where incident folders are written; default C(incidents/) in the project.
    type: path
    env:
      - name: ROLLBACKCTL_INCIDENTS_DIR
  enabled:
    description: C(off) disables the callback.
    type: str
    default: "on"
    env:
      - name: ROLLBACKCTL_RECORD
"""

import os
from pathlib import Path

from ansible import context
from ansible.plugins.callback import CallbackBase

try:
    from rollbackctl import authority as authority_mod
    from rollbackctl import awx, record
except ImportError as exc:  # the collection without its Python package: say so, never fail the playbook
    ROLLBACKCTL_IMPORT_ERROR = exc
else:
    ROLLBACKCTL_IMPORT_ERROR = None


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "rollback_record"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = None
        self.extra = {}
        self.rec = None
        self.pending = []  # (method, args) replayed once the record exists
        self.phase = None
        self.phase_failed = []
        self.phase_ran = False
        self.any_phase_ran = False  # a task of some rollback phase ran (not only skipped)
        self.phase_changed_hosts = set()
        self.phase_changed = 0
        self.any_failure = None
        self.incidents_dir = None
        self.where = None  # awx.Where: the incidents folder chosen when the record is created
        self.nothing_ran = False  # settled with no task of any rollback phase run (no record)
        self.enabled = True
        self.roster = None  # the inventory's rollback_roster (rollbackctl.roster), read at the first phase play

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        self.enabled = str(self.get_option("enabled")).lower() not in ("off", "0", "false", "no")
        if self.enabled and ROLLBACKCTL_IMPORT_ERROR is not None:
            self._display.warning(f"rollback_record: no incident record is written: the rollbackctl Python package "
                                  f"is not importable ({ROLLBACKCTL_IMPORT_ERROR}); install it next to ansible-core")
            self.enabled = False
        self.incidents_dir = self.get_option("incidents_dir")

    # --- the record ------------------------------------------------------------------------

    def _create(self, incident_id):
        extra = self.extra
        decided_by, role = str(extra.get("decided_by", "") or ""), str(extra.get("decided_by_role", "") or "")
        consensus = extra.get("consensus") or []
        if isinstance(consensus, str):
            consensus = [c for c in consensus.split(",") if c.strip()]
        try:
            granted = authority_mod.check_authority(decided_by, role, list(consensus)).to_dict()
        except Exception as exc:  # refused or not given: the playbook runs anyway; say so in the record
            granted = {"decided_by": decided_by or "(not given)", "role": role or "(not given)",
                       "basis": "not_checked", "consensus": [], "approved_by": [],
                       "explanation": f"run with ansible-playbook: decision authority not enforced ({exc})"}
        self.where = awx.incidents_dir(extra, os.environ, self.project, self.incidents_dir)
        if self.where.warning:
            self._display.warning(self.where.warning)
        base = self.where.path
        inventory = ",".join(context.CLIARGS.get("inventory") or ()) or "(default)"
        self.rec = record.IncidentRecord.create(
            base, incident_id, writer="callback", mode="check" if context.CLIARGS.get("check") else "run",
            procedure=str(extra.get("procedure", "standard")), inventory=inventory,
            reason=str(extra.get("reason", "") or ""), to_version=extra.get("rollback_to"), authority=granted,
            database=str(extra.get("database", "auto")), secrets=self._extra_secrets())
        if self.roster is not None:
            from rollbackctl import people

            people.start(self.rec, self.roster)
        for method, args in self.pending:
            getattr(self, method)(*args)
        self.pending = []

    def _read_roster(self, play):
        """The inventory's ``rollback_roster`` as a host of the play sees it (group_vars/all, or what AWX imported);
        an invalid one is reported and left out of the record - the rollback is not stopped for it."""
        from rollbackctl.errors import UsageError
        from rollbackctl.roster import VARIABLE, parse_roster

        manager = play.get_variable_manager()
        inventory = getattr(manager, "_inventory", None)
        hosts = inventory.get_hosts(play.hosts) if inventory is not None else []
        if not hosts:
            return None
        value = manager.get_vars(play=play, host=hosts[0], include_hostvars=False).get(VARIABLE)
        if not value:
            return None
        try:
            return parse_roster(value, "the inventory")
        except UsageError as exc:
            self._display.warning(f"rollback_record: the roster is not recorded: {exc}")
            return None

    def _extra_secrets(self):
        """The values of secret extra vars (AWX injects its credentials as extra vars: webhook URL, API key, bypass
        token), redacted wherever they appear in the record, its events and the summary."""
        from rollbackctl.redact import is_secret_key

        return [str(v) for k, v in self.extra.items() if isinstance(v, str) and v and is_secret_key(k)]

    def _ensure(self, incident_id=None):
        if self.rec is None:
            self._create(incident_id or self.extra.get("incident_id")
                         or record.make_incident_id(self.extra.get("rollback_to")))

    def _later(self, method, *args):
        if self.rec is None:
            self.pending.append((method, args))
        else:
            getattr(self, method)(*args)

    def _do_start(self, name, playbook, at):
        self.rec.start_phase(name, [playbook] if playbook else [], at=at)
        self.rec.save()

    def _do_finish(self, name, status, hosts, changed, error, at):
        self.rec.finish_phase(name, status, hosts_changed=hosts, changed=changed, error=error, at=at)
        self.rec.save()

    def _do_stats(self, data, phase):
        self.rec.apply_stats(data, phase=phase)

    def _do_event(self, event):
        self.rec.add_event(event)

    # --- phases ----------------------------------------------------------------------------

    def _close_phase(self):
        if not self.phase:
            return
        self.any_phase_ran = self.any_phase_ran or self.phase_ran or bool(self.phase_failed)
        if self.phase_failed:
            status, error = "failed", "; ".join(self.phase_failed[:3])
        else:
            status, error = ("ok" if self.phase_ran else "skipped"), None
        self._later("_do_finish", self.phase, status, sorted(self.phase_changed_hosts), self.phase_changed, error,
                    record.utcnow())
        self.phase = None

    def v2_playbook_on_start(self, playbook):
        self.project = str(Path(playbook._file_name).resolve().parent.parent)

    def v2_playbook_on_play_start(self, play):
        if not self.enabled:
            return
        name = (play.vars or {}).get("rollback_phase")
        if not name:
            if (play.vars or {}).get("rollback_record_summary") and (self.phase or self.rec or self.pending):
                self._settle()  # rollback.yml's summary play reads the record: every phase is closed and saved
            return
        if not self.extra:
            self.extra = dict(play.get_variable_manager().extra_vars)
            self.roster = self._read_roster(play)
        if name == self.phase:
            return
        self._close_phase()
        self.phase, self.phase_failed, self.phase_ran = name, [], False
        self.phase_changed_hosts, self.phase_changed = set(), 0
        self._later("_do_start", name, None, record.utcnow())

    def _result_event(self, kind, result):
        if not self.phase:
            return
        res = result._result or {}
        host = result._host.get_name()
        event = {"event": kind, "phase": self.phase, "host": host, "task": result._task.get_name(),
                 "changed": bool(res.get("changed")), "msg": str(res.get("msg", ""))[:2000]}
        event["created"] = record.utcnow()
        self._later("_do_event", event)
        stats = res.get("ansible_stats")
        if kind == "runner_on_ok" and isinstance(stats, dict) and isinstance(stats.get("data"), dict):
            data = stats["data"]
            if isinstance(data.get("rollback"), dict) and self.rec is None:
                self._ensure(data["rollback"].get("incident_id"))
            self._later("_do_stats", data, self.phase)

    def v2_runner_on_ok(self, result):
        if self.phase:
            self.phase_ran = True
            if (result._result or {}).get("changed"):
                self.phase_changed += 1
                self.phase_changed_hosts.add(result._host.get_name())
        self._result_event("runner_on_ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if self.phase and not ignore_errors:
            self.phase_ran = True
            msg = str((result._result or {}).get("msg", ""))[:500]
            self.phase_failed.append(f"{result._host.get_name()}: {result._task.get_name()}: {msg}")
            self.any_failure = self.any_failure or (self.phase, self.phase_failed[-1])
        self._result_event("runner_on_failed", result)

    def v2_runner_on_unreachable(self, result):
        if self.phase:
            self.phase_failed.append(f"{result._host.get_name()}: unreachable")
            self.any_failure = self.any_failure or (self.phase, self.phase_failed[-1])
        self._result_event("runner_on_unreachable", result)

    def v2_playbook_on_stats(self, stats):
        if not self.enabled or (self.phase is None and self.rec is None and not self.pending and not self.nothing_ran):
            return
        rec = self._settle()
        if rec is None:
            self._display.display("rollback_record: no task of a rollback phase ran; no incident record written")
            return
        self._display.display(f"incident record: {rec.path}/incident.json")
        # The job's output ends with the record for people (AWX keeps the output; the folder may not survive).
        self._display.display(awx.summary_markdown(awx.summary(rec.rendered(), self.where, rec.secrets), rec.secrets))

    def _settle(self):
        """Close the current phase, set the outcome and save; the record, or None when no phase ran."""
        self._close_phase()
        if self.rec is None and not self.any_phase_ran:
            # Every task of every rollback play was skipped (an import under `when: false`, say a rehearsal's
            # check step): no rollback happened, so no record claims one did.
            self.pending = []
            self.nothing_ran = True
            return None
        self._ensure()
        rec = self.rec
        data = rec.data
        if rec.phase("collect_logs")["status"] == "pending":
            rec.skip_phase("collect_logs", "not part of rollback.yml (it writes files): run playbooks/collect_logs.yml "
                                           f"-e incident_logs_dir={rec.path / 'logs'}")
        if self.any_failure:
            phase, error = self.any_failure
            rec.set_outcome("failed", f"stopped in phase {phase}: {error}",
                            "maintenance mode stays on when it was enabled; fix the cause and run rollback.yml "
                            "again (phases are idempotent)")
        elif any(p["status"] == "pending" for p in data["phases"]):
            rec.set_outcome("interrupted", "the playbook ended before every phase ran",
                            "run rollback.yml again (phases are idempotent)")
        else:
            rec.conclude()
        rec.save()
        return rec

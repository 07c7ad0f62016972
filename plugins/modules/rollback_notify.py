#!/usr/bin/python
"""Ansible module: send one rollback notification to a chat webhook or a status page, once."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rollback_notify
short_description: Send a rollback notification to a chat webhook or a status page, exactly once
description:
  - Sends one notification about a rollback incident to one channel, either a Slack-compatible
    incoming webhook (O(channel=webhook)) or a Statuspage-compatible API (O(channel=statuspage)).
  - The message is rendered by the caller (the C(notify) role renders its Jinja2 templates); this module
    builds the payload, sends it and records it.
  - Idempotent through a state file; a notification already sent for the same O(incident_id), O(event)
    and O(channel) is not sent again (RV(status=already_sent), not changed).
  - On the status page, one incident is opened per rollback incident (on its first event) and updated
    with C(PATCH) on later events; its id is kept in the state file.
  - A notification that cannot be delivered does not fail the task. The module returns
    RV(status=failed) with an error text (webhook URL and API key redacted) and a warning; the caller
    decides whether that is fatal.
  - Retries twice, with exponential backoff, on 5xx answers and connection errors; never on 4xx answers.
    Redirects are not followed.
version_added: "0.1.0"
author: Chatbot platform rollback toolkit maintainers (@chatbot-platform)
extends_documentation_fragment:
  - chatbot.rollback.attributes
options:
  incident_id:
    description:
      - Identifier of the rollback incident, the dedupe key together with O(event) and O(channel).
      - Letters, digits, C(.), C(_) and C(-), starting with a letter or digit, at most 128 characters.
    type: str
    required: true
  event:
    description: What happened.
    type: str
    required: true
    choices: [rollback_started, rollback_completed, rollback_failed, extended_downtime, maintenance_on,
              maintenance_off]
  channel:
    description: Where to send it.
    type: str
    required: true
    choices: [webhook, statuspage]
  title:
    description:
      - Short title (the Slack header; the name of a status page incident when this event opens it).
      - Defaults to the event name.
    type: str
    default: ""
  body:
    description: The rendered message (Slack section text; status page incident update body).
    type: str
    default: ""
  fields:
    description:
      - Label/value pairs shown as Slack fields (for example environment, versions, reason).
        Empty values are left out; an C(Incident) field is added unless present. Ignored by the status page.
    type: dict
    default: {}
  maintenance:
    description:
      - Whether the maintenance page is up. On the status page, O(event=rollback_started) and
        O(event=extended_downtime) then set components to C(under_maintenance) instead of C(major_outage).
    type: bool
    default: false
  webhook_url:
    description: Incoming webhook URL (a secret). Required by O(channel=webhook).
    type: str
  statuspage_api:
    description: Base URL of the status page API (C(/v1/pages/...) is appended).
    type: str
    default: https://api.statuspage.io
  statuspage_page_id:
    description: Status page id. Required by O(channel=statuspage).
    type: str
  statuspage_api_key:
    description:
      - "Status page API key (a secret), sent as C(Authorization: OAuth <key>)."
      - Required by O(channel=statuspage).
    type: str
  statuspage_component_ids:
    description: Status page components whose status follows the event.
    type: list
    elements: str
    default: []
  state_file:
    description:
      - JSON file recording the notifications sent (time, channel, event, HTTP status, status page
        incident id; never a URL or key). Created 0600 in a 0700 directory.
    type: path
    required: true
  timeout:
    description: Seconds to wait for each HTTP attempt.
    type: int
    default: 10
attributes:
  check_mode:
    support: full
    details: Reports RV(status=would_send) (changed) without sending anything or writing the state file.
  diff_mode:
    support: none
notes:
  - Missing channel settings (no webhook URL, no API key, a URL that is not http(s)) are reported as
    RV(status=failed) like a delivery failure, so that a misconfigured channel never stops a rollback.
  - "Delegate to the controller (C(delegate_to: localhost), C(run_once: true)); the state file lives there."
"""

EXAMPLES = r"""
- name: Announce the rollback in the team channel
  chatbot.rollback.rollback_notify:
    incident_id: 20240501T101500Z-api-5xx
    event: rollback_started
    channel: webhook
    title: "Rollback started: production v1.0.0 -> v0.9.0"
    body: "Rollback decision made by the Lead DevOps Engineer. Please acknowledge."
    fields:
      Environment: production
      Versions: v1.0.0 -> v0.9.0
      Reason: API endpoints returning 5xx errors
    webhook_url: "{{ vault_slack_webhook_url }}"
    state_file: /var/lib/rollbackctl/notify-state.json
  delegate_to: localhost
  run_once: true
  register: notify_webhook

- name: Open (or update) the status page incident
  chatbot.rollback.rollback_notify:
    incident_id: 20240501T101500Z-api-5xx
    event: rollback_started
    channel: statuspage
    title: "Chatbot platform: degraded service"
    body: "We identified a problem with a recent update and are restoring the previous version."
    statuspage_page_id: kctbh9vrtdwd
    statuspage_api_key: "{{ vault_statuspage_api_key }}"
    statuspage_component_ids: [8kbf7d35c070, vtnh60py4yd7]
    state_file: /var/lib/rollbackctl/notify-state.json
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
status:
  description:
    - V(sent), V(already_sent) (sent by an earlier run; nothing sent now), V(would_send) (check mode)
      or V(failed) (nothing delivered; see RV(error)).
  returned: always
  type: str
  sample: sent
record:
  description:
    - The notification record for the incident record. Never holds a URL or key.
    - For V(already_sent), the original send's time and HTTP status.
  returned: always
  type: dict
  sample: {"channel": "statuspage", "event": "rollback_started", "status": "sent", "http_status": 201,
           "sent_at": "2024-05-01T10:16:02Z", "statuspage_incident_id": "p31zjtct2jer"}
error:
  description: Why nothing was delivered, with the webhook URL and API key redacted.
  returned: when status is failed
  type: str
  sample: "POST https://hooks.slack.com/******** failed after 3 attempt(s): HTTP 500 Internal Server Error"
http_status:
  description: HTTP status of the last answer, if any.
  returned: always
  type: int
  sample: 200
attempts:
  description: HTTP attempts made by this run (0 when nothing was sent).
  returned: always
  type: int
  sample: 1
action:
  description: V(post) (webhook), V(create) or V(update) (status page incident), or V(none).
  returned: always
  type: str
  sample: create
statuspage_incident_id:
  description: Id of the status page incident of this rollback incident.
  returned: when O(channel=statuspage) and the incident exists
  type: str
incident_status:
  description: Status page incident status set by this event.
  returned: when O(channel=statuspage)
  type: str
  sample: identified
component_status:
  description: Status page component status set by this event.
  returned: when O(channel=statuspage)
  type: str
  sample: major_outage
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.chatbot.rollback.plugins.module_utils.notify import (
    CHANNELS,
    EVENTS,
    NotifyError,
    NotifyState,
    StateError,
    locked,
    make_record,
    opens_maintenance,
    redact,
    send,
    slack_payload,
    statuspage_incident,
    statuspage_request,
    statuspage_status,
    utcnow,
    valid_incident_id,
    webhook_request,
    webhook_secrets,
)


def _missing(params: dict) -> str | None:
    if params["channel"] == "webhook":
        return None if params["webhook_url"] else "webhook_url is not set"
    names = ("statuspage_api", "statuspage_page_id", "statuspage_api_key")
    absent = [name for name in names if not params[name]]
    return f"{', '.join(absent)} not set" if absent else None


def _statuspage_plan(params: dict, state: NotifyState) -> dict:
    known = state.statuspage_incident(params["incident_id"]) or {}
    scheduled = bool(known["scheduled"]) if known else opens_maintenance(params["event"])
    incident_status, component_status = statuspage_status(
        params["event"], maintenance=params["maintenance"], scheduled=scheduled)
    return {"id": known.get("id"), "scheduled": scheduled, "incident_status": incident_status,
            "component_status": component_status, "action": "update" if known.get("id") else "create"}


def _plan_facts(plan: dict | None) -> dict:
    if plan is None:
        return {"action": "post"}
    return {key: plan[key] for key in ("action", "incident_status", "component_status")}


def _build(params: dict, plan: dict | None):
    if params["channel"] == "webhook":
        payload = slack_payload(title=params["title"], message=params["body"], fields=params["fields"],
                                incident_id=params["incident_id"], event=params["event"])
        return webhook_request(params["webhook_url"], payload)
    payload = statuspage_incident(name=params["title"], status=plan["incident_status"],
                                  body=params["body"], component_ids=params["statuspage_component_ids"],
                                  component_status=plan["component_status"], create=plan["id"] is None,
                                  scheduled=plan["scheduled"])
    return statuspage_request(api=params["statuspage_api"], page_id=params["statuspage_page_id"],
                              api_key=params["statuspage_api_key"], payload=payload,
                              statuspage_incident_id=plan["id"])


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "incident_id": {"type": "str", "required": True},
            "event": {"type": "str", "required": True, "choices": list(EVENTS)},
            "channel": {"type": "str", "required": True, "choices": list(CHANNELS)},
            "title": {"type": "str", "default": ""},
            "body": {"type": "str", "default": ""},
            "fields": {"type": "dict", "default": {}},
            "maintenance": {"type": "bool", "default": False},
            "webhook_url": {"type": "str", "no_log": True},
            "statuspage_api": {"type": "str", "default": "https://api.statuspage.io"},
            "statuspage_page_id": {"type": "str"},
            "statuspage_api_key": {"type": "str", "no_log": True},
            "statuspage_component_ids": {"type": "list", "elements": "str", "default": []},
            "state_file": {"type": "path", "required": True},
            "timeout": {"type": "int", "default": 10},
        },
        supports_check_mode=True,
    )
    params = module.params
    incident_id, event, channel = params["incident_id"], params["event"], params["channel"]
    if not valid_incident_id(incident_id):
        module.fail_json(msg="incident_id must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    secrets = [*webhook_secrets(params["webhook_url"] or ""), params["statuspage_api_key"] or ""]
    result = {"changed": False, "http_status": None, "attempts": 0, "action": "none"}

    def finish(status: str, record: dict, **extra) -> None:
        result.update(extra)
        result.update(status=status, record=record, http_status=record.get("http_status"))
        if record.get("statuspage_incident_id"):
            result["statuspage_incident_id"] = record["statuspage_incident_id"]
        if status == "failed":
            result["error"] = record["error"]
            module.warn(f"{channel} notification {event} for {incident_id} not sent: {record['error']}")
        result["msg"] = f"{channel} {event}: {status}"
        module.exit_json(**result)

    def failed(error: str, **extra) -> None:
        finish("failed", make_record(channel=channel, event=event, status="failed",
                                     http_status=extra.pop("http_status", None),
                                     statuspage_incident_id=extra.pop("statuspage_incident_id", None),
                                     error=redact(error, secrets)), **extra)

    def already_sent(previous: dict) -> None:
        record = dict(previous, status="already_sent")
        finish("already_sent", record, statuspage_incident_id=previous.get("statuspage_incident_id"))

    if module.check_mode:
        try:
            state = NotifyState.load(params["state_file"])
        except StateError as exc:
            failed(str(exc))
        previous = state.sent(incident_id, event, channel)
        if previous:
            already_sent(previous)
        if _missing(params):
            failed(_missing(params))
        plan = _statuspage_plan(params, state) if channel == "statuspage" else None
        result["changed"] = True
        finish("would_send", make_record(channel=channel, event=event, status="would_send",
                                         statuspage_incident_id=plan and plan["id"]), **_plan_facts(plan))

    missing = _missing(params)
    try:
        with locked(params["state_file"]):
            state = NotifyState.load(params["state_file"])
            previous = state.sent(incident_id, event, channel)
            if previous:
                already_sent(previous)
            if missing:
                failed(missing)
            plan = _statuspage_plan(params, state) if channel == "statuspage" else None
            extra = _plan_facts(plan)
            try:
                response = send(_build(params, plan), timeout=params["timeout"], secrets=secrets)
            except NotifyError as exc:
                failed(str(exc), http_status=exc.http_status, attempts=exc.attempts,
                       statuspage_incident_id=plan and plan["id"], **extra)
            statuspage_id = None
            if plan:
                statuspage_id = plan["id"]
                if statuspage_id is None:
                    body = response.body if isinstance(response.body, dict) else {}
                    statuspage_id = str(body.get("id") or "")
                    if not statuspage_id:
                        failed(f"the status page answered HTTP {response.status} without an incident id",
                               http_status=response.status, attempts=response.attempts, **extra)
                    state.set_statuspage_incident(incident_id, statuspage_id, plan["scheduled"])
            record = make_record(channel=channel, event=event, status="sent", http_status=response.status,
                                 sent_at=utcnow(), statuspage_incident_id=statuspage_id)
            state.remember(incident_id, record)
            result["changed"] = True
            try:
                state.save(params["state_file"])
            except StateError as exc:
                module.warn(f"{exc}; a re-run would send {channel} {event} again")
            finish("sent", record, attempts=response.attempts, **extra)
    except StateError as exc:
        failed(str(exc))


if __name__ == "__main__":
    main()

"""Action plugin: check a playbook's extra vars against its contract, raw, and publish free text as inert data.

ansible-core 2.19 trusts extra vars given on the command line as templates: a reason passed as
`-e reason="{{ lookup('ansible.builtin.pipe', 'cmd') }}"` runs `cmd` on the controller the moment a task reads
`reason`. This action reads the extra vars without templating them (from the variable manager), so that
nothing in them is evaluated here; it refuses template text in every value that is not free text, checks
each value against its rule (module_utils/playbook_inputs.py) and returns the free text as a fact whose
strings are marked unsafe (never templated, by any later task or role). Playbooks read free text only from
that fact: `hostvars['localhost'].rollback_free_text.reason`.
"""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.unsafe_proxy import wrap_var
from ansible.utils.vars import load_extra_vars
from ansible_collections.chatbot.rollback.plugins.module_utils.playbook_inputs import (
    FREE_TEXT_TYPES,
    SpecError,
    validate,
)

display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False
    _requires_connection = False

    _VALID_ARGS = frozenset(("spec", "required", "playbook", "fact"))

    def _raw_extra_vars(self) -> dict:
        """The extra vars as given (-e, AWX survey answers, the wrapper's file), never templated."""
        manager = self._task.get_variable_manager()
        extra = getattr(manager, "extra_vars", None) if manager is not None else None
        if extra is None:
            extra = load_extra_vars(self._loader)
        return dict(extra)

    def _play_free_text(self, name: str, task_vars: dict):
        """Free text a project playbook sets itself (rehearse_rollback.yml's reason): its own text, templated once."""
        try:
            return self._templar.template(task_vars[name])
        except AnsibleError as exc:
            display.warning(f"playbook_inputs: {name} set by the playbook could not be read ({exc}); using ''")
            return None

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        spec, required = args.get("spec"), args.get("required") or []
        playbook, fact = str(args.get("playbook") or "this playbook"), str(args.get("fact") or "rollback_free_text")
        if not isinstance(required, list):
            return {**result, "failed": True, "msg": "playbook_inputs: required must be a list of variable names"}

        extra = self._raw_extra_vars()
        values = {name: extra[name] for name in (spec or {}) if name in extra}
        if fact in extra:
            values[fact] = extra[fact]
        # Required names may also be set by an importing playbook (rehearse_rollback.yml sets rollback_to).
        given = set(values) | {name for name in required if name in task_vars}
        try:
            free, problems = validate(spec, values, required=[n for n in required if n not in given],
                                      reserved=[fact])
        except SpecError as exc:
            return {**result, "failed": True, "msg": f"playbook_inputs: {exc}"}
        if problems:
            return {**result, "failed": True, "changed": False, "problems": wrap_var(problems),
                    "msg": wrap_var(f"inputs of {playbook} refused: " + "; ".join(problems))}

        published = {}
        for name, rule in spec.items():
            if rule["type"] not in FREE_TEXT_TYPES:
                continue
            if name in free:
                value = free[name]
            elif name in task_vars:
                value = self._play_free_text(name, task_vars)
            else:
                value = None
            if value is None:
                value = [] if rule["type"] == "text_list" else ""
            published[name] = value
        checked = sorted(values)
        return {**result, "changed": False, "checked": checked,
                "ansible_facts": {fact: wrap_var(published)},
                "msg": f"inputs of {playbook} checked: {', '.join(checked) or 'none given'}"}

#!/usr/bin/python
"""Documentation of the playbook_inputs action plugin (plugins/action/playbook_inputs.py); it has no module code."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: playbook_inputs
short_description: Check a playbook's extra vars against its contract, raw, and publish free text as inert data
description:
  - Reads the extra vars as given (C(-e), AWX survey answers, the rollbackctl wrapper's extra vars file) B(without
    templating them), so that nothing in them is evaluated, and checks every one named in O(spec) against its rule -
    type, form (version, id, choice, absolute path without C(..), bounded number), length, no control characters.
  - Template text (C({{), C({%), C({#)) is refused in every value that is not free text; ansible-core 2.19 trusts
    extra vars given on the command line as templates, so such a value would run code on the controller as soon
    as a task read it.
  - Free text (rules of type C(text) and C(text_list) - a reason, a person's name or role, a consensus list) may
    hold any printable text, template text included. It is published as the fact named O(fact) with every string
    marked unsafe, so that no later task, role or template ever evaluates it; playbooks read free text only from
    that fact (C(hostvars['localhost'].rollback_free_text.reason)), never from the raw variable.
  - Free text not passed as an extra var is taken from the playbook's own variables (a value the project sets),
    or published empty.
  - Fails, naming every refused variable, before any host is touched when the play runs first on localhost
    (playbooks/inputs.yml). The fact's name cannot be passed as an extra var.
  - This is an action plugin; it runs on the controller.
version_added: "0.1.0"
author: Chatbot platform rollback toolkit maintainers (@chatbot-platform)
extends_documentation_fragment:
  - chatbot.rollback.attributes
options:
  spec:
    description:
      - Variable name to rule. A rule has a C(type) (C(str), C(int), C(float), C(bool), C(path), C(list), C(text),
        C(text_list)) and optionally C(choices), C(pattern) (full match) with a C(hint), C(max_length), C(min),
        C(max), C(empty) (null, and an empty string, mean "not set"), C(lines) (free text may hold line breaks),
        C(elements) (the rule of a list's items), C(max_items), C(description).
      - Only variables passed as extra vars are checked; the others are the playbook's own.
    type: dict
    required: true
  required:
    description: Variables this playbook needs; missing ones are refused by name (unless the playbook sets them).
    type: list
    elements: str
    default: []
  playbook:
    description: Name of the playbook, for the messages.
    type: str
  fact:
    description: Name of the fact holding the free text.
    type: str
    default: rollback_free_text
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same way in check mode.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Check the inputs (raw) and publish the free text
  chatbot.rollback.playbook_inputs:
    playbook: rollback.yml
    required: [rollback_to]
    spec:
      rollback_to: {type: str, pattern: '^v[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}$', hint: vMAJOR.MINOR.PATCH}
      reason: {type: text, max_length: 2000, lines: true}
      decided_by: {type: text, max_length: 200}

- name: Use the reason as data (never templated)
  ansible.builtin.debug:
    msg: "{{ hostvars['localhost'].rollback_free_text.reason }}"
"""

RETURN = r"""
checked:
  description: The extra vars that were checked (those of O(spec) that were given).
  returned: success
  type: list
  elements: str
  sample: [reason, rollback_to]
problems:
  description: One message per refused variable, each starting with its name.
  returned: failure
  type: list
  elements: str
  sample: ["rollback_to is malformed: \"v1\" (expected vMAJOR.MINOR.PATCH, e.g. v0.9.0)"]
ansible_facts:
  description: The fact O(fact) - every free-text variable of O(spec) by name, given or empty, marked unsafe.
  returned: success
  type: dict
  sample: {"rollback_free_text": {"reason": "messaging 5xx {{ since 10:02 }}", "decided_by": "Dana", "consensus": []}}
"""

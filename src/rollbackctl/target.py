"""The identity of the platform an inventory points at: what the rollback lock is keyed by.

Two spellings of one inventory (`inventories/local` and `inventories/local/hosts.yml`, a symlink, a copy)
roll back the same platform, so they must take the same lock; two sandboxes on different ports are two
platforms. The identity is read the way ansible-playbook reads the inventory (Ansible's own inventory
and variable managers, templates rendered with this process's environment), from what names a platform's
hosts and services: per host of the `app` and `db` groups its address, port and connection, and the
platform variables that place it (deployment root, web URL, app and database ports).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError

#: The groups whose hosts make up a platform.
GROUPS = ("app", "db")
#: Host variables that tell one platform from another (rendered; absent ones are left out).
IDENTITY_VARS = ("ansible_host", "ansible_port", "ansible_connection", "chatbot_root", "chatbot_web_url",
                 "chatbot_app_port", "chatbot_db_host", "chatbot_db_port", "chatbot_db_name")


@dataclass(frozen=True)
class Platform:
    """A platform's identity: `key` (stable, file-name safe) and a readable `description`."""

    key: str
    description: str
    hosts: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...]


def _render(templar: Any, value: Any) -> str:
    try:
        return str(templar.template(value))
    except Exception:  # an unrenderable value still identifies the platform as written
        return str(value)


def identify(inventory: Path) -> Platform:
    """The platform `inventory` points at (UsageError when it has no app or db host)."""
    # Imported here: ansible is heavy, and only commands that lock a platform need it.
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import init_plugin_loader
    from ansible.template import Templar
    from ansible.utils.collection_loader import AnsibleCollectionConfig
    from ansible.vars.manager import VariableManager

    if AnsibleCollectionConfig.collection_finder is None:
        init_plugin_loader([])  # lookups and filters (env, realpath) as ansible-playbook has them
    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[str(inventory)])
    variables = VariableManager(loader=loader, inventory=manager)
    groups = manager.get_groups_dict()
    hosts = []
    for group in GROUPS:
        for name in sorted(groups.get(group, [])):
            host_vars = variables.get_vars(host=manager.get_host(name), include_hostvars=False)
            templar = Templar(loader=loader, variables=host_vars)
            ident = tuple((var, _render(templar, host_vars[var])) for var in IDENTITY_VARS if var in host_vars)
            hosts.append((group, name, ident))
    if not hosts:
        raise UsageError(f"inventory {inventory}: no host in the groups {' or '.join(GROUPS)}; "
                         "it does not describe a chatbot platform")
    digest = hashlib.sha256(json.dumps(hosts, sort_keys=True).encode("utf-8", "surrogateescape")).hexdigest()
    web = next((value for _g, _n, ident in hosts for var, value in ident if var == "chatbot_web_url"), "")
    names = ", ".join(f"{group}:{name}" for group, name, _ident in hosts)
    description = f"platform {names}" + (f" at {web}" if web else "")
    return Platform(key=f"platform-{digest[:16]}", description=description, hosts=tuple(hosts))

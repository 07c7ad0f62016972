"""End a playbook whose rollbackctl wrapper is gone, instead of letting it run on unobserved."""

from __future__ import annotations

DOCUMENTATION = r"""
name: wrapper_guard
type: aggregate
short_description: End the playbook when the rollbackctl run that started it is gone
description:
  - ansible-runner starts ansible-playbook in a session of its own that ignores SIGHUP. When the rollbackctl
    wrapper dies (SIGKILL, a lost session, the OOM killer), its playbook would run on unobserved, still changing
    the platform while the environment's lock is already stale, so that a resumed run could start the same
    phase beside it, and with nobody to record what it did.
  - With O(wrapper_pid) set (rollbackctl sets C(ROLLBACKCTL_WRAPPER_PID) to its own pid), a thread checks
    several times a second that the playbook's parent is still that process. When it is not, it kills the
    playbook, its workers and the modules they run with SIGKILL (the process group of each worker, which
    ansible runs in a session of its own, then the playbook's). The phase then stays recorded as running, and
    C(rollbackctl resume) runs it again.
  - Inert without the variable (plain ansible-playbook, AWX, molecule), and when the playbook is not the
    wrapper's own child.
options:
  wrapper_pid:
    description: Process id of the rollbackctl wrapper that runs the playbook; 0 disables the guard.
    type: int
    default: 0
    env:
      - name: ROLLBACKCTL_WRAPPER_PID
"""

import os
import signal
import threading
import time

from ansible.plugins.callback import CallbackBase

INTERVAL = 0.2


def _children(pid):
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _end(pid):
    """SIGKILL for the process group `pid` leads, or for `pid` alone."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _watch(wrapper_pid):
    while os.getppid() == wrapper_pid:
        time.sleep(INTERVAL)
    # The wrapper is gone. Each worker runs in a session of its own (ansible detaches them), its module in the
    # worker's group: end the workers' groups, then the playbook's own.
    for child in _children(os.getpid()):
        _end(child)
    _end(os.getpid())
    os.kill(os.getpid(), signal.SIGKILL)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "wrapper_guard"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.guard = None

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        wrapper_pid = int(self.get_option("wrapper_pid") or 0)
        if self.guard is None and wrapper_pid > 0 and os.getppid() == wrapper_pid:
            self.guard = threading.Thread(target=_watch, args=(wrapper_pid,), name="wrapper_guard", daemon=True)
            self.guard.start()

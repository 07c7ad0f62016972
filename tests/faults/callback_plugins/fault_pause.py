"""Test-only callback: pause ansible-playbook at one point of one rollback phase, so that a fault is injected there.

The fault-injection suite (tests/faults) puts this directory on ANSIBLE_CALLBACK_PLUGINS (ansible-runner keeps
it and appends its own) and arms it with FAULT_PAUSE, a JSON object:

  incident, phase, playbook  which run: ansible-runner's ident, <incident>-<phase>-<playbook stem>-<time>,
                             is the basename of AWX_ISOLATED_DATA_DIR (the wrapper names its runs so); in a
                             run of several phases (<incident>-<first phase>-batch-<time>, rollbackctl.batch),
                             the part of the run behind the boundary play "rollbackctl phase PHASE PLAYBOOK"
  event                      play_start (the first play), task_start, handler_start or stats
  task                       the task's name, for task_start and handler_start
  marker, release            files: the marker is written (pid, process group) when the pause begins;
                             the pause ends when the release file appears (or after `timeout` seconds)

It fires once (not again while the marker exists) and does nothing when FAULT_PAUSE is unset. It is not part of
the collection: nothing outside the tests loads it.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: fault_pause
type: aggregate
short_description: pause a rollback phase's playbook at one point (fault-injection tests only)
description:
  - Armed by the FAULT_PAUSE environment variable; inert without it.
"""


BOUNDARY = "rollbackctl phase "


def _spec() -> tuple[dict | None, bool]:
    """The pause this run is armed with, and whether the run takes several phases (a batch)."""
    raw = os.environ.get("FAULT_PAUSE")
    if not raw:
        return None, False
    spec = json.loads(raw)
    ident = os.path.basename(os.environ.get("AWX_ISOLATED_DATA_DIR", "").rstrip("/"))
    if os.path.exists(spec["marker"]):
        return None, False
    if ident.startswith(f"{spec['incident']}-{spec['phase']}-{spec['playbook'].removesuffix('.yml')}-"):
        return spec, False
    if ident.startswith(f"{spec['incident']}-") and "-batch-" in ident:
        return spec, True
    return None, False


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fault_pause"
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._armed, self._batch = _spec()
        self._plays = 0
        self._here = not self._batch  # in a batch: behind the boundary of the armed phase and playbook

    def _point(self, event: str, name: str = "") -> None:
        spec = self._armed
        if not spec or spec["event"] != event or not self._here:
            return
        wanted = spec.get("task")
        if wanted and name != wanted and not name.endswith(" : " + wanted):
            return
        self._armed = None
        if os.path.exists(spec["marker"]):
            return
        info = {"pid": os.getpid(), "pgid": os.getpgrp(), "event": event, "task": name, "at": time.time()}
        partial = spec["marker"] + ".partial"
        with open(partial, "w", encoding="utf-8") as handle:
            json.dump(info, handle)
        os.replace(partial, spec["marker"])
        deadline = time.monotonic() + float(spec.get("timeout", 900))
        while not os.path.exists(spec["release"]) and time.monotonic() < deadline:
            time.sleep(0.05)

    def v2_playbook_on_play_start(self, play):
        name = play.get_name()
        if self._batch and name.startswith(BOUNDARY):
            spec = self._armed
            if spec and self._here:  # the armed playbook's part ended: its "end (stats)" point is here
                self._point("stats")
            phase, _, playbook = name[len(BOUNDARY):].partition(" ")
            self._here = bool(spec) and (phase, playbook) == (spec["phase"], spec["playbook"])
            self._plays = 0
            return
        self._plays += 1
        if self._plays == 1:
            self._point("play_start", name)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._point("task_start", task.get_name())

    def v2_playbook_on_handler_task_start(self, task):
        self._point("handler_start", task.get_name())

    def v2_playbook_on_stats(self, stats):
        self._point("stats")

"""Test-only launcher of rollbackctl: the real CLI, with a pause at one phase boundary when FAULT_WRAPPER_PAUSE
asks for it (JSON: before = a phase name or "finish", marker, release, timeout).

The pause sits where the wrapper stands between two phases: the previous phase is recorded done, the next one is
not started (before "finish": every phase is done, the outcome not yet concluded). The marker file is written
(the wrapper's pid) when the pause begins; the pause ends when the release file appears. The wrapper runs several
phases in one ansible-playbook (rollbackctl.batch); armed, a batch ends before the paused phase, so that the
wrapper does stand there. Nothing else changes.
"""

from __future__ import annotations

import json
import os
import sys
import time

from rollbackctl import orchestrator
from rollbackctl.cli import main


def _pause(spec: dict, where: str) -> None:
    if os.path.exists(spec["marker"]):
        return
    partial = spec["marker"] + ".partial"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump({"pid": os.getpid(), "pgid": os.getpgrp(), "before": where, "at": time.time()}, handle)
    os.replace(partial, spec["marker"])
    deadline = time.monotonic() + float(spec.get("timeout", 900))
    while not os.path.exists(spec["release"]) and time.monotonic() < deadline:
        time.sleep(0.05)


def _arm(spec: dict) -> None:
    run_phase, finish = orchestrator.Rollback._run_phase, orchestrator.Rollback._finish
    run_batch, batch_from = orchestrator.Rollback._run_batch, orchestrator.Rollback._batch_from

    def paused_run_phase(self, phase, cancelled):
        if phase.name == spec["before"]:
            _pause(spec, phase.name)
        return run_phase(self, phase, cancelled)

    def paused_run_batch(self, together, cancelled):
        if together[0][0] == spec["before"]:
            _pause(spec, spec["before"])
        return run_batch(self, together, cancelled)

    def broken_batch_from(self, name):
        together = batch_from(self, name)
        names = [phase for phase, _reason in together]
        if spec["before"] in names[1:]:
            together = together[:names.index(spec["before"])]
            while len(together) > 1 and together[-1][1] is not None:
                together.pop()
        return together

    def paused_finish(self):
        if spec["before"] == "finish":
            _pause(spec, "finish")
        return finish(self)

    orchestrator.Rollback._run_phase = paused_run_phase
    orchestrator.Rollback._run_batch = paused_run_batch
    orchestrator.Rollback._batch_from = broken_batch_from
    orchestrator.Rollback._finish = paused_finish


if __name__ == "__main__":
    if os.environ.get("FAULT_WRAPPER_PAUSE"):
        _arm(json.loads(os.environ["FAULT_WRAPPER_PAUSE"]))
    sys.exit(main(sys.argv[1:]))

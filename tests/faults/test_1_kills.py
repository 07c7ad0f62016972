"""SIGKILL of the wrapper at every phase boundary and inside the windows where a change is written but not yet
applied, and of ansible-playbook as every phase begins and as every changing phase ends: one incident, resumed
after each kill, that must end rolled back."""

from __future__ import annotations

import pytest

from . import harness
from .faults import KILLS

pytestmark = [pytest.mark.sandbox, pytest.mark.faults]


@pytest.mark.parametrize("fault", KILLS, ids=[f.id for f in KILLS])
def test_kill(kills, fault):
    harness.exercise(kills, fault)

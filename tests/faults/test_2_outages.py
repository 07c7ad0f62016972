"""FerretDB, nginx and pm2 stopped at the worst moments, the backup disk full, kills in the middle of the restore:
one incident, resumed after each fault (once an operator restarted what stopped), that must end rolled back."""

from __future__ import annotations

import pytest

from . import harness
from .faults import OUTAGES

pytestmark = [pytest.mark.sandbox, pytest.mark.faults]


@pytest.mark.parametrize("fault", OUTAGES, ids=[f.id for f in OUTAGES])
def test_outage(outages, fault):
    harness.exercise(outages, fault)

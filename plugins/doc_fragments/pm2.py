"""Documentation of the options shared by the pm2 modules (see module_utils/pm2.py: pm2_argument_spec)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  name:
    description: The pm2 application name.
    type: str
    required: true
  pm2_home:
    description: PM2_HOME of the pm2 daemon that runs the application.
    type: path
    required: true
  pm2_binary:
    description: The pm2 executable; looked up in PATH when not an absolute path.
    type: str
    default: pm2
notes:
  - C(PM2_HOME) is set for every call; the caller's environment is never relied on. A pm2 daemon that does
    not run is not started just to be asked (no processes is the answer).
  - Only a whitelist of process fields is returned; pm2's per-process environment (which may hold secrets)
    never is.
"""

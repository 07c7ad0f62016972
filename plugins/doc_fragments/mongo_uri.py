"""Documentation of the options shared by the MongoDB modules (see module_utils/mongo_common.py)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  uri:
    description:
      - MongoDB connection string, with the database as its path, for example
        C(mongodb://chatbot:PASSWORD@127.0.0.1:27017/chatbot-platform).
      - The database of the path is the one the module works on (and the default C(authSource)).
      - It is a secret; it never appears in results or messages, which show the host and port only.
        The password is hidden from the process list of the MongoDB tools too (they read it from a
        temporary file readable by its owner only).
    type: str
    required: true
  server_selection_timeout_ms:
    description:
      - How long to wait for a reachable server, in milliseconds, before failing with a message that
        names the host and port.
    type: int
    default: 5000
requirements:
  - pymongo >= 4 on the managed host
"""

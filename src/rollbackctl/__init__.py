"""rollbackctl: the ansible-runner wrapper of the chatbot platform rollback toolkit."""

__version__ = "0.1.0"

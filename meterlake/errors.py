"""Errors the CLI reports cleanly: a message for people, a stable ``type`` for scripts, exit code 1 (or ``code``)."""


class MeterlakeError(Exception):
    """A failure the user can act on. ``details`` go into the ``--json`` error object."""

    type = "error"
    code = 1

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details


class UsageError(MeterlakeError):
    type = "usage"
    code = 2


class ServiceError(MeterlakeError):
    """A local-stack service failed to start or answer; details carry the service name and its log's tail."""

    type = "service"

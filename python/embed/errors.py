"""The one exception type for problems a user can fix, and the fixes several places give."""

__all__ = ["CONFIG", "VALIDATION", "FIX_CREDENTIALS", "FIX_NETWORK", "EmbedError", "missing_results_table", "refused"]

CONFIG = 2  # exit code: a usage or configuration problem
VALIDATION = 1  # exit code: the results failed validation
# What to do when Google Cloud finds no credentials or refuses them.
FIX_CREDENTIALS = (
    "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file"
)
# What to do when Google's endpoints cannot be reached at all.
FIX_NETWORK = "check the network connection, proxy settings (HTTPS_PROXY) and firewall"


class EmbedError(Exception):
    """A problem the user can act on; the message says what to do.

    ``exit_code`` is 2 for usage or configuration problems and 1 for failed
    validation. The CLI prints the message without a traceback.
    """

    def __init__(self, message: str, exit_code: int = CONFIG) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def missing_results_table(table: object) -> str:
    """What to say when results table ``table`` does not exist yet."""
    return f"results table {table} does not exist yet: run `python -m embed run`."


def refused(name: str, error: Exception) -> EmbedError:
    """The EmbedError for statement ``name``, which the engine refused for a reason retrying cannot fix."""
    return EmbedError(f"{name} failed: {error}")

"""The one exception type for problems a user can fix."""


class EmbedError(Exception):
    """A problem the user can act on; the message says what to do.

    ``exit_code`` is 2 for usage or configuration problems and 1 for failed
    validation. The CLI prints the message without a traceback.
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code

"""User-facing errors: the CLI prints them as one line and exits non-zero, without a traceback."""


class FerEdgeError(Exception):
    """A problem the user can fix (bad path, bad file, bad option)."""

    exit_code = 2

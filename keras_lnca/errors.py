"""Errors that a user can cause and that the CLI reports in one line."""


class UserError(ValueError):
    """Bad input: a missing file, an unreadable image, an invalid option."""


def first_line(error):
    """The first non-blank line of an exception's message (stripped), or its type's name:
    how a library error becomes part of a one-line `UserError`."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__

"""Errors that a user can cause and that the CLI reports in one line."""


class UserError(ValueError):
    """Bad input: a missing file, an unreadable image, an invalid option."""

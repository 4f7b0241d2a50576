"""The one exception type for bad user input.

Binaries report it as a single line naming the file, flag or field, and exit
non-zero without a traceback; everything else is a bug and keeps its traceback.
"""


class InputError(ValueError):
    """Bad input from a user (a file, a flag, a JSON field)."""

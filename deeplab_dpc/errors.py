"""The one exception type for bad user input.

Binaries report it as a single line naming the file, flag or field, and exit
non-zero without a traceback; everything else is a bug and keeps its traceback.
"""
import re


class InputError(ValueError):
    """Bad input from a user (a file, an argument, a JSON field).

    The library names its own parameters (`output_dir is required`), since a
    Python caller passed arguments, not flags. `param` lists the parameter names
    the message mentions, so that a binary can show them as the flags its user
    typed (`--output_dir is required`): see `as_flags`.
    """

    def __init__(self, message, param=()):
        super().__init__(message)
        self.params = (param,) if isinstance(param, str) else tuple(param)

    def as_flags(self, flag_names=None):
        """The message with each named parameter written as its flag (`--name`,
        or `--flag_names[name]` where the binary calls it otherwise)."""
        text = str(self)
        for param in self.params:
            flag = (flag_names or {}).get(param, param)
            # A whole word only: not inside a path or another name (runs/output_dir_2).
            text = re.sub(rf"(?<![\w/.-]){re.escape(param)}(?![\w/-])", f"--{flag}", text)
        return text

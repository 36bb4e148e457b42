"""The one exception type for bad user input: a one-line message naming the bad value and what is allowed."""


class InputError(ValueError):
    """Raised for invalid user input; the CLI prints it as a single line and exits with code 2."""

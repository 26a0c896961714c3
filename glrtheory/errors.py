"""The one exception family of glrtheory."""


class GLRError(ValueError):
    """Bad input to glrtheory: a bad spec, argument, shape, dtype or value, or work over a stated limit.

    The message names the problem in one line; the CLI prints it and exits with status 2.
    """

"""The one exception family of glrtheory."""


class GLRError(ValueError):
    """Bad input to glrtheory: a bad spec, argument, shape, dtype or value, or work over a stated limit.

    The message names the problem in one line; the CLI prints it and exits with status 2.
    """


class WorkLimitError(GLRError):
    """Work or memory over a stated limit (the message names the limit, and where known the largest n that
    fits). ``glrtheory.analysis.analyze`` reports such a quantity as skipped instead of failing."""

"""Placeholder: the verbs of this module are being written (see the open issues)."""


def register(sub) -> None:
    pass

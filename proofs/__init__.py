"""Executable proofs: one module per proposition.

Each module prints the statement, the derivation (sympy where it fits) and an exhaustive check on small cases,
and raises ``AssertionError`` when the check fails: by its ``main()``, or, without one, by ``derive()`` and
``check()``, which ``run`` calls after printing the module's docstring.
``python -m proofs`` runs them all; ``python -m proofs NAME ...`` runs the named ones.
"""
import importlib
import pkgutil


def names() -> list[str]:
    """The proof modules in this package, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def run(name: str) -> None:
    """Run proof ``name``: its ``main()``, else its docstring, ``derive()`` and ``check()``."""
    module = importlib.import_module(f"{__name__}.{name}")
    if hasattr(module, "main"):
        module.main()
        return
    print(module.__doc__)
    module.derive()
    module.check()

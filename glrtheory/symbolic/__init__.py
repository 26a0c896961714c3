"""Symbolic analysis with sympy: closed-form costs and asymptotics, and the LTI layer."""

#: Names of ``glrtheory.symbolic.costs`` available here; imported on first use (sympy is heavy).
_COSTS = ("N_SYM", "T_SYM", "Bounds", "CostForms", "cost_forms", "theta", "total_cost", "evaluate")


def __getattr__(name):
    if name in _COSTS:
        from . import costs

        return getattr(costs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

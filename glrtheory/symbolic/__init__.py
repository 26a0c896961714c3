"""Symbolic analysis with sympy: closed-form costs and asymptotics, and the LTI layer."""

#: Names of ``glrtheory.symbolic.costs`` available here; imported on first use (sympy is heavy).
_COSTS = ("N_SYM", "T_SYM", "Bounds", "CostForms", "cost_forms", "theta", "total_cost_bound", "forms_unavailable",
          "evaluate")
#: Names of the LTI layer (``lti*.py``) -> their module; imported on first use as well.
_LTI = {"LTISystem": "lti", "IllConditionedWarning": "lti_poles", "spectral_radius": "lti_stability",
        "is_stable": "lti_stability", "memory_horizon": "lti_stability", "stability_region": "lti_stability"}


def __getattr__(name):
    if name in _COSTS:
        from . import costs

        return getattr(costs, name)
    if name in _LTI:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LTI[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Symbolic analysis with sympy: closed-form costs and asymptotics, and the LTI layer."""

"""Exact analysis of a pattern at a given length n: the quantities of the definitions in ``docs/``.

* ``counts``   -- ``nnz``, ``decode_costs``, ``total_cost`` (from ``Support.counts()``, O(n));
* ``liveness`` -- ``live_sides``, ``live_profile``, ``cache_peak`` (from ``Support.last_use()``, O(n));
* ``depth``    -- the longest B-path (``Support.longest_paths()``);
* ``hops``     -- ``hop_diameter`` (strategies in ``hop_methods``, chosen with ``method=``),
  ``hop_profile``, ``full_receptive_field``;
* ``hankel``   -- generic Hankel ranks (max-flow; exact over F_p) and degrees of freedom;
* ``report``   -- ``analyze``, ``compare``, ``sweep``: the reports of ``glr analyze`` / ``glr compare``.

Structure questions (lag sets, intervals, longest paths, unreachable pairs) are answered by the support
classes themselves, with a generic answer from the index table.
"""
from .counts import ANALYZE_MAX_N, TABLE_MAX_ENTRIES, decode_costs, nnz, supports, total_cost
from .depth import depth
from .hankel import (DOF_MAX_N, EXACT_RANK_MAX_ENTRIES, EXACT_RANK_MAX_WORK, FLOW_RANK_MAX_WORK,
                     RANK_METHODS, RANKS_MAX_WORK, cut_bounds, degrees_of_freedom, exact_rank_max, hankel_profile,
                     hankel_profile_exact, hankel_rank_max)
from ._hop_impls import (HOPS_MAX_FFT_LEVELS, HOPS_MAX_WORK, LAG_DP_MAX_LAGS, LAG_FFT_TRY_LEVELS,
                         HopMethodError)
from .hop_methods import (HOP_METHODS, breadth_first, interval_propagation, lag_distances,
                          mirrored_propagation)
from .hops import full_receptive_field, hop_diameter, hop_profile
from .liveness import cache_peak, live_profile, live_sides
from .report import (COMPARE_MAX_PATTERNS, KEYS, RANK_KEYS, analyze, clear_caches, compare, compare_rank_budget,
                     rank_series, sweep)

__all__ = ["ANALYZE_MAX_N", "TABLE_MAX_ENTRIES", "EXACT_RANK_MAX_WORK", "EXACT_RANK_MAX_ENTRIES",
           "FLOW_RANK_MAX_WORK", "RANK_METHODS", "RANKS_MAX_WORK", "DOF_MAX_N", "cut_bounds", "exact_rank_max",
           "HOPS_MAX_WORK", "HOPS_MAX_FFT_LEVELS", "LAG_DP_MAX_LAGS", "LAG_FFT_TRY_LEVELS", "KEYS", "RANK_KEYS",
           "HOP_METHODS", "HopMethodError", "supports", "nnz", "total_cost", "decode_costs", "live_profile",
           "live_sides", "cache_peak", "depth", "hop_diameter", "hop_profile", "full_receptive_field", "lag_distances",
           "interval_propagation", "mirrored_propagation", "breadth_first", "hankel_profile",
           "hankel_rank_max", "hankel_profile_exact", "degrees_of_freedom", "analyze", "compare", "sweep",
           "compare_rank_budget", "rank_series", "COMPARE_MAX_PATTERNS", "clear_caches"]

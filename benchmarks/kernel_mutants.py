"""Mutants of a file's Triton kernels (its ``@triton.jit`` functions), which mutmut cannot mutate (it rewrites
functions into trampolines that Triton cannot compile), written as diffs that ``gpu_mutants.py`` applies.

One mutant changes one token of one line, as mutmut's operators do: an arithmetic or bitwise operator
(``+ -``, ``* /``, ``// /``, ``% /``, ``<< >>``, ``& |``, ``^ &``), an augmented assignment (``+= -=``), a
comparison (``< <=``, ``> >=``, ``== !=``), ``and``/``or``, a number (``k`` to ``k + 1``), ``True``/``False``, or
sets a ``mask=``/``other=`` argument of ``tl.load``/``tl.store`` to None (no mask, no fill). Each diff carries
as many unchanged lines around the change as make its lines unique in the file; every mutant is applied by
``gpu_mutants.apply`` here and must give exactly the mutated source.

    python benchmarks/kernel_mutants.py kernels/scan/triton_kernels.py --out .stage_mut/patches [--sample N --seed S]
        [--skip .stage_mut/earlier/index.txt]
"""
from __future__ import annotations

import argparse
import ast
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_mutants import apply  # noqa: E402

SWAP = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "/"), ast.Div: ("/", "*"),
        ast.FloorDiv: ("//", "/"), ast.Mod: ("%", "/"), ast.LShift: ("<<", ">>"), ast.RShift: (">>", "<<"),
        ast.BitAnd: ("&", "|"), ast.BitOr: ("|", "&"), ast.BitXor: ("^", "&"),
        ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"),
        ast.Eq: ("==", "!="), ast.NotEq: ("!=", "==")}
DROPPED = ("mask", "other")


def _is_jit(fn: ast.FunctionDef) -> bool:
    return any(ast.unparse(d).endswith("triton.jit") for d in fn.decorator_list)


def _between(line: str, start: int, end: int, token: str) -> int | None:
    """Column of the one ``token`` in ``line[start:end]`` (None when absent or ambiguous)."""
    cut = line[start:end]
    hits = [i for i in range(len(cut)) if cut.startswith(token, i)
            and not cut.startswith(token + token[-1], i) and not (i and cut[i - 1] == token[0])]
    return start + hits[0] if len(hits) == 1 else None


def _edits(node: ast.AST, lines: list[str]):
    """``(line index, column, old text, new text)`` of each one-token mutant of ``node``."""
    def on_one_line(a, b):
        return a.lineno == b.end_lineno == a.end_lineno == b.lineno
    if isinstance(node, (ast.BinOp, ast.AugAssign)):
        left, right = (node.left, node.right) if isinstance(node, ast.BinOp) else (node.target, node.value)
        old, new = SWAP.get(type(node.op), (None, None))
        if isinstance(node, ast.AugAssign) and old:
            old, new = old + "=", new + "="
        if old and on_one_line(left, right):
            col = _between(lines[left.lineno - 1], left.end_col_offset, right.col_offset, old)
            if col is not None:
                yield left.lineno - 1, col, old, new
    elif isinstance(node, ast.Compare) and len(node.ops) == 1 and on_one_line(node.left, node.comparators[0]):
        old, new = SWAP[type(node.ops[0])]
        col = _between(lines[node.lineno - 1], node.left.end_col_offset, node.comparators[0].col_offset, old)
        if col is not None:
            yield node.lineno - 1, col, old, new
    elif isinstance(node, ast.BoolOp) and len(node.values) == 2 and on_one_line(*node.values):
        old, new = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
        col = _between(lines[node.lineno - 1], node.values[0].end_col_offset, node.values[1].col_offset, old)
        if col is not None:
            yield node.lineno - 1, col, old, new
    elif isinstance(node, ast.Constant) and node.lineno == node.end_lineno:
        text = lines[node.lineno - 1][node.col_offset:node.end_col_offset]
        if isinstance(node.value, bool):
            yield node.lineno - 1, node.col_offset, text, str(not node.value)
        elif isinstance(node.value, (int, float)):
            yield node.lineno - 1, node.col_offset, text, repr(node.value + 1)
    elif isinstance(node, ast.Call) and ast.unparse(node.func) in ("tl.load", "tl.store"):
        for k in node.keywords:
            if k.arg in DROPPED and k.lineno == k.end_lineno:
                yield k.lineno - 1, k.col_offset, lines[k.lineno - 1][k.col_offset:k.end_col_offset], k.arg + "=None"


def _diff(lines: list[str], i: int, mutated: str) -> str:
    """A one-hunk diff replacing line i, widened by unchanged lines until its removed lines are unique."""
    source = "\n".join(lines)
    for width in range(0, 8):
        lo, hi = max(0, i - width), min(len(lines), i + width + 1)
        new = lines[lo:i] + [mutated] + lines[i + 1:hi]
        diff = "\n".join(["--- a", "+++ b", "@@"] + ["-" + ln for ln in lines[lo:hi]] + ["+" + ln for ln in new])
        try:
            if apply(diff, source) == "\n".join(lines[:lo] + new + lines[hi:]):
                return diff
        except ValueError:
            continue
    raise ValueError(f"line {i + 1}: no unique diff within 7 lines either side")


def mutants(source: str) -> list[tuple[str, str]]:
    """``[(name, diff)]``: every one-token mutant of the ``@triton.jit`` functions of ``source``; the name is
    ``function:line:column old->new``."""
    lines = source.split("\n")
    out = []
    for fn in ast.parse(source).body:
        if not (isinstance(fn, ast.FunctionDef) and _is_jit(fn)):
            continue
        for node in ast.walk(fn):
            if node in fn.decorator_list:
                continue
            for i, col, old, new in _edits(node, lines):
                line = lines[i]
                mutated = line[:col] + new + line[col + len(old):]
                ast.parse("\n".join(lines[:i] + [mutated] + lines[i + 1:]))          # still Python
                out.append((i, col, f"{fn.name}:{i + 1}:{col} {old}->{new}", _diff(lines, i, mutated)))
    return [(name, diff) for _, _, name, diff in sorted(out)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("file", type=Path)
    p.add_argument("--out", type=Path, required=True, help="folder for N.diff and index.txt ('N name')")
    p.add_argument("--sample", type=int, help="write this many mutants, drawn at random")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip", type=Path, help="an earlier run's index.txt: its mutants (by name) are left out first")
    args = p.parse_args(argv)
    found = mutants(args.file.read_text())
    every, left = len(found), ""
    if args.skip:
        done = {line.split(" ", 1)[1] for line in args.skip.read_text().splitlines() if line.strip()}
        found = [(name, diff) for name, diff in found if name not in done]
        left = f" ({len(found)} not in {args.skip})"
    chosen = sorted(random.Random(args.seed).sample(range(len(found)), args.sample)) if args.sample else \
        range(len(found))
    args.out.mkdir(parents=True, exist_ok=True)
    index = []
    for n, k in enumerate(chosen, 1):
        name, diff = found[k]
        (args.out / f"{n}.diff").write_text(diff + "\n")
        index.append(f"{n} {name}")
    (args.out / "index.txt").write_text("\n".join(index) + "\n")
    print(f"{every} mutants of {args.file}{left}; wrote {len(index)} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

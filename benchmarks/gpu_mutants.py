"""Decide mutation-testing survivors that only a GPU reaches (docs/mutation.md): apply each mutant alone to a copy
of the tree and run a pytest selection there, several mutants at once.

A mutant is one ``mutmut show`` diff (the mutated function's source, dedented), applied to ``--target`` by matching
its removed lines (stripped; the line of context before them where they occur more than once) and re-indenting the
added ones. ``killed`` when the selection fails, ``survived`` when it passes (a crash, ``error rc -11`` say, is
the selection failing too). The unmutated tree runs first: a selection that fails there decides nothing, and the
script stops (with ``--together`` it runs beside the mutants, whose rows then count only if it passes). Rows are
printed and the JSON rewritten as mutants finish; mutants not started within ``--budget`` seconds are ``not run``.
Also the Triton kernels' mutants (``kernel_mutants.py``), under ``TRITON_INTERPRET=1`` as CI runs them. ``--wrap``
runs pytest through a command, as ``compute-sanitizer --tool memcheck --error-exitcode 7`` (a mutant whose selection
passes but reads or writes out of bounds is then ``error rc 7``); the copy comes first on PYTHONPATH, the caller's
entries after it (for a plugin such as ``benchmarks/sanitize_plugin.py``).

    python benchmarks/gpu_mutants.py --patches DIR --target kernels/layers.py --jobs 8 --out results.json \\
        -- tests/test_layer_units.py -m gpu
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

#: What a copy of the tree needs to run the tests.
TREE = ("glrtheory", "kernels", "tests", "proofs", "configs", "notebooks", "docs", "README.md", "pyproject.toml")


def apply(diff: str, source: str) -> str:
    """``source`` with the one hunk of ``diff`` applied (module docstring)."""
    lines = source.split("\n")
    hunk = [ln for ln in diff.split("\n") if ln[:1] in " -+" and ln and not ln.startswith(("---", "+++"))]
    changed = [k for k, ln in enumerate(hunk) if ln[0] in "-+"]
    core = hunk[changed[0]:changed[-1] + 1]
    old = [ln[1:] for ln in core if ln[0] in " -"]
    new = [ln[1:] for ln in core if ln[0] in " +"]
    want = [ln.strip() for ln in old]
    hits = [i for i in range(1, len(lines) - len(old) + 1) if [ln.strip() for ln in lines[i:i + len(old)]] == want]
    if len(hits) > 1 and changed[0] > 0:
        hits = [i for i in hits if lines[i - 1].strip() == hunk[changed[0] - 1][1:].strip()]
    if len(hits) != 1:
        raise ValueError(f"the diff's lines match {len(hits)} places, not one")
    i = hits[0]
    shift = (len(lines[i]) - len(lines[i].lstrip())) - (len(old[0]) - len(old[0].lstrip()))
    lines[i:i + len(old)] = [" " * shift + ln if ln.strip() else ln for ln in new]
    return "\n".join(lines)


def run(tree: Path, name: str, target: str, diff: str | None, selection: list, timeout: int,
        deadline: float = float("inf"), wrap: tuple = ()) -> dict:
    """Copy the tree, apply ``diff`` (None: the code as it is), run the selection; the result row (``not run``
    when started after ``deadline``, a ``time.monotonic()``), its output's paths relative to the tree (its venv's
    too, which pytest names in full from the copy)."""
    if time.monotonic() > deadline:
        return {"mutant": name, "verdict": "not run", "seconds": 0.0, "tail": ""}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for part in TREE:
            src = tree / part
            if src.is_dir():
                shutil.copytree(src, root / part, symlinks=True)
            elif src.exists():
                shutil.copy2(src, root / part)
        if diff is not None:
            path = root / target
            path.write_text(apply(diff, path.read_text()))
        start = time.perf_counter()
        try:
            path = os.pathsep.join([str(root)] + [e for e in [os.environ.get("PYTHONPATH")] if e])
            p = subprocess.run([*wrap, sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                *selection], cwd=root, capture_output=True, text=True, timeout=timeout,
                               env={**os.environ, "PYTHONPATH": path})
            rc, tail = p.returncode, (p.stderr + p.stdout).replace(f"{tree.resolve()}/", "")[-600:]  # summary last
        except subprocess.TimeoutExpired:
            rc, tail = None, f"timeout {timeout} s"
    verdict = "survived" if rc == 0 else "timeout" if rc is None else "killed" if rc == 1 else f"error rc {rc}"
    return {"mutant": name, "verdict": verdict, "seconds": round(time.perf_counter() - start, 1), "tail": tail}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--patches", type=Path, required=True, help="folder of N.diff files and index.txt ('N name')")
    p.add_argument("--target", required=True, help="the mutated file, relative to the tree")
    p.add_argument("--jobs", type=int, default=8)
    p.add_argument("--timeout", type=int, default=300)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--budget", type=float, default=float("inf"), help="seconds in which mutants may start")
    p.add_argument("--together", action="store_true",
                   help="run the code as it is beside the mutants, not first (a selection too slow to run twice)")
    p.add_argument("--wrap", default="", help="a command that runs pytest (split as a shell would)")
    p.add_argument("selection", nargs="+", help="pytest arguments (after --)")
    args = p.parse_args(argv)
    deadline = time.monotonic() + args.budget
    tree, wrap = Path.cwd(), tuple(shlex.split(args.wrap))
    names = dict(line.split(" ", 1) for line in (args.patches / "index.txt").read_text().splitlines() if line)
    rows = []

    def done(row):
        rows.append(row)
        print(f"{row['verdict']:>9} {row['seconds']:6.1f} s  {row['mutant']}", flush=True)
        args.out.write_text(json.dumps({"command": " ".join(sys.argv), "target": args.target, "rows": rows},
                                       indent=1))

    clean = "none (the code as it is)"
    if not args.together:
        done(run(tree, clean, args.target, None, args.selection, args.timeout, wrap=wrap))
        if rows[0]["verdict"] != "survived":
            return 1
    with ThreadPoolExecutor(args.jobs) as pool:
        jobs = [pool.submit(run, tree, clean, args.target, None, args.selection, args.timeout, wrap=wrap)
                ] if args.together else []
        jobs += [pool.submit(run, tree, names[n], args.target, (args.patches / f"{n}.diff").read_text(),
                             args.selection, args.timeout, deadline, wrap) for n in sorted(names, key=int)]
        for j in as_completed(jobs):
            done(j.result())
    passes = next(row for row in rows if row["mutant"] == clean)["verdict"] == "survived"
    if not passes:
        print("the code as it is fails the selection: these rows decide nothing", flush=True)
    return 0 if passes else 1


if __name__ == "__main__":
    raise SystemExit(main())

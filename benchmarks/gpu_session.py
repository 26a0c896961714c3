"""Gather one ``gpu_session.sh`` run into one JSON: each part's own JSON, its exit status and seconds, the
pytest summary line, and the machine.

    python benchmarks/gpu_session.py OUT_DIR       (reads OUT_DIR/parts.txt and OUT_DIR/part_*.json)

The machine header is the first part's (each benchmark part records ``gpu_common.gpu_header()``).
``parts.txt`` has a line ``NAME EXIT_STATUS SECONDS`` per part (written by the shell script); the part JSONs are
folded into ``OUT_DIR/gpu_session.json`` and removed. Exit status 124 or 130 after a ``timeout`` means the part
was cut at its time cap: what it wrote before (every part saves after each row) is kept.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

#: The fields of a row the digest prints.
ROW_KEYS = ("op", "spec", "precision", "context", "ms", "ms_fwd", "ms_fwd_bwd", "ms_step", "peak_bytes",
            "readout_algorithm", "error", "skipped")
#: Exit statuses of a part that ``timeout -s INT`` cut (Python's KeyboardInterrupt exits 130; pytest's 2).
CUT = {124, 130, 137}


def pytest_summary(text: str) -> dict:
    """The counts of pytest's last summary line (``3 passed, 1 failed in 4.2s`` -> passed 3, failed 1), and
    the test ids that failed (``FAILED id`` lines)."""
    lines = [ln for ln in text.splitlines() if re.match(r"=+ .* in [\d.]+s.* =+$", ln)]
    found = re.findall(r"(\d+) (passed|failed|errors?|skipped|deselected)", lines[-1]) if lines else []
    counts = {k: int(n) for n, k in found}
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", text, re.M)
    return dict(summary=lines[-1].strip("= ") if lines else None, counts=counts, failed=failed)


def merge(out: Path, budget_s: float | None = None) -> dict:
    """Fold the parts in ``out`` into ``out/gpu_session.json`` (module docstring); returns the result."""
    result = dict(machine=None, budget_s=budget_s, parts={})
    listing = out / "parts.txt"
    for line in listing.read_text().splitlines() if listing.exists() else []:
        name, status, seconds = line.split()
        part = dict(exit_status=int(status), seconds=float(seconds), cut_at_time_cap=int(status) in CUT)
        path = out / f"part_{name}.json"
        if path.exists():
            try:
                part["result"] = json.loads(path.read_text())
                path.unlink()
            except json.JSONDecodeError as e:                   # keep the file for a reader
                part["result_error"] = f"{path.name}: {e}"
        text = out / f"{name}.txt"
        if name == "pytest" and text.exists():
            part["result"] = pytest_summary(text.read_text())
        result["parts"][name] = part
        if result["machine"] is None and isinstance(part.get("result"), dict):
            result["machine"] = part["result"].get("machine")     # every benchmark part records it
    listing.unlink(missing_ok=True)
    for leftover in out.glob("*.part"):                          # a save cut between write and rename
        leftover.unlink()
    (out / "gpu_session.json").write_text(json.dumps(result, indent=1, default=float))
    return result


def digest(result: dict) -> list[str]:
    """A few lines with the numbers that matter, for a reader of the run's output alone."""
    def rounded(d, keys):
        return {k: round(d[k], 3) if isinstance(d.get(k), float) else d.get(k) for k in keys if k in d}

    lines = []
    for name, part in result["parts"].items():
        lines.append(f"{name}: exit {part['exit_status']} after {part['seconds']:.0f} s"
                     + (" (cut at its time cap)" if part["cut_at_time_cap"] else ""))
        res = part.get("result") or {}
        for r in res.get("rows", []) if name in ("scan", "layer", "decode") else []:
            lines.append(f"  {rounded(r, ROW_KEYS)}")
        for key in ("verdicts", "summary", "checks", "skipped"):
            lines += [f"  {key}: {v}" for v in res.get(key, []) if isinstance(res.get(key), list)]
        if name == "pytest":
            lines.append(f"  {res.get('summary')}; failed: {res.get('failed')}")
    return lines


if __name__ == "__main__":
    budget = float(sys.argv[2]) if len(sys.argv) > 2 else None
    print("\n".join(digest(merge(Path(sys.argv[1]), budget))))

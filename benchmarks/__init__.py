"""Benchmarks: every number in the README, docs/ and the model cards comes from one of these
scripts (run them with `.venv/bin/python -m benchmarks.NAME` from the repository root)."""

from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def write_result(name: str, text: str) -> Path:
    """Print a result table and keep it in benchmarks/results/NAME."""
    print(text)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / name
    path.write_text(text)
    return path

"""Earlier commits of this repository, checked out beside it, for the benchmarks that compare today's
codec with an earlier one (rate.py, speech_gain.py, speed_ab.py): each side runs its own code in
its own process, the earlier one from a temporary git worktree."""

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def short_commit(rev: str) -> str:
    return subprocess.run(["git", "rev-parse", "--short", rev], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()


def head_label() -> str:
    """This checkout's commit, marked where the code or model under test is not the commit's (the
    model card and other text aside)."""
    head = short_commit("HEAD")
    if subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "streamcodec", "models", ":!*.md"], cwd=REPO).returncode:
        head += " + uncommitted changes"
    return head


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """`rev` checked out into a temporary folder, removed (and unregistered) on the way out."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=REPO, check=True,
                       capture_output=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, capture_output=True)


def run_in(checkout: Path, script: str, *args) -> str:
    """Run the Python `script` with the checkout's own streamcodec first on the path (an editable
    install would otherwise hand it today's); its standard output."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], cwd=checkout, env=env, check=True,
                          stdout=subprocess.PIPE, text=True).stdout

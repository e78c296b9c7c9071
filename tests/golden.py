"""Golden files: compare what the code makes with a committed copy, or rewrite the copy.

Run ``pytest --regenerate-golden`` after a deliberate change and review the diff.
"""

from __future__ import annotations

from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"


def check_golden(name: str, actual: str, *, regenerate: bool) -> None:
    path = GOLDEN / name
    if regenerate or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        if not regenerate:
            raise AssertionError(f"{path} did not exist; written now: review and commit it")
        return
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        import difflib

        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(True), actual.splitlines(True), f"golden/{name}", "actual", n=2
            )
        )
        raise AssertionError(
            f"{name} differs from the golden file "
            f"(pytest --regenerate-golden to accept):\n{diff[:6000]}"
        )

"""The test tree has no ``__init__.py`` files, so pytest imports each test module by its basename:
two test files with the same name in different folders break collection of the whole suite."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_module_basenames_are_unique() -> None:
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    clashes = sorted(name for name, n in names.items() if n > 1)
    assert not clashes, f"rename these test modules so each basename is unique: {clashes}"

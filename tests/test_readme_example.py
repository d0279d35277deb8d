"""The README's pytest-plugin example is a real test: it runs here, and the README shows it verbatim."""

from pathlib import Path

from examples.test_replication import test_isolated_replica_is_recovered  # noqa: F401  (collected here)

ROOT = Path(__file__).resolve().parent.parent


def test_readme_shows_the_example_verbatim() -> None:
    example = (ROOT / "examples" / "test_replication.py").read_text()
    body = example.split('"""', 2)[2].strip()
    assert body in (ROOT / "README.md").read_text(), "README's plugin example is out of date"

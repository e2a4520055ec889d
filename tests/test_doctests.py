"""Every docstring example in ``pipelines/``, ``connectors/`` and ``schemas/`` runs as a
doctest, so the examples stay true.

The modules are imported under their installed names (``newswatch.pipelines...``), each
once: ``pytest --doctest-modules pipelines`` would import them a second time as
``pipelines...`` (the folders are mapped onto ``newswatch.*`` by ``package-dir``), and
register spaCy components and Beam coders twice.
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil
from collections.abc import Iterator

import pytest

import newswatch.connectors
import newswatch.pipelines
import newswatch.schemas

PACKAGES = (newswatch.pipelines, newswatch.connectors, newswatch.schemas)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def module_names() -> Iterator[str]:
    for package in PACKAGES:
        yield package.__name__
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith(".__main__"):  # runs the command line when imported
                yield info.name


def examples_of(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name)
    return sorted((t for t in tests if t.examples), key=lambda t: t.name)


WITH_EXAMPLES = [name for name in sorted(module_names()) if examples_of(name)]


def test_the_modules_with_examples_are_found() -> None:
    # Guards the test below against finding nothing (and so passing) after a move.
    assert len(WITH_EXAMPLES) >= 5, WITH_EXAMPLES
    assert "newswatch.connectors.dataset.layout" in WITH_EXAMPLES


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples(name: str) -> None:
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in examples_of(name):
        runner.run(test, out=report.write)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, report.getvalue()
    if not result.attempted:
        pytest.skip(f"every example in {name} is marked +SKIP")

"""The layout's rules that code review alone would let slip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = sorted(
    f"newswatch.pipelines.core.{p.stem}"
    for p in (ROOT / "pipelines" / "core").glob("*.py")
    if p.stem != "__init__"
)


def beam_loaded_by(statement: str) -> bool:
    """Whether running ``statement`` in a fresh interpreter imports apache_beam."""
    probe = f"import sys\n{statement}\nprint('apache_beam' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return result.stdout.strip().splitlines()[-1] == "True"


def test_the_probe_sees_beam_when_it_is_imported() -> None:
    assert beam_loaded_by("import newswatch.pipelines.stages.dedupe")


@pytest.mark.parametrize("module", CORE)
def test_core_modules_do_not_import_beam(module: str) -> None:
    assert not beam_loaded_by(f"import {module}")


def test_loading_a_config_does_not_import_beam() -> None:
    assert not beam_loaded_by(
        "from newswatch.pipelines.control.config import load_config\nload_config(None)"
    )


def test_core_has_the_pure_modules() -> None:
    assert {"normalization", "minhash", "aliases", "rules", "alerting"} <= {
        name.rsplit(".", 1)[1] for name in CORE
    }


def test_the_dataset_layout_joins_object_store_paths_as_beam_does() -> None:
    from newswatch.connectors.dataset.layout import ARTICLES, OutputLayout

    layout = OutputLayout("s3://bucket/news", "r1")
    assert layout.state("runs", "r1.json") == "s3://bucket/news/_state/runs/r1.json"
    assert layout.staged_path(ARTICLES, "2026-11-30", "part-r1-00000.parquet") == (
        "s3://bucket/news/_staging/r1/articles/dt=2026-11-30/part-r1-00000.parquet"
    )
    assert layout.committed_files(ARTICLES, "parquet") == "s3://bucket/news/articles/dt=*/*.parquet"

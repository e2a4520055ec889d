"""SplitByType: one PCollection of several element types into one per type, with no
element lost to a type left out (it goes to the main output)."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from newswatch.connectors.split_by_type import SplitByType

MIXED = [1, "a", 2.5, b"raw", 3, "b", None]


def test_each_type_to_its_output_and_the_rest_to_main() -> None:
    with test_pipeline.TestPipeline() as p:
        split = p | beam.Create(MIXED) | SplitByType("other", ints=int, texts=(str, bytes))
        assert_that(split["ints"], equal_to([1, 3]), label="Ints")
        assert_that(split["texts"], equal_to(["a", b"raw", "b"]), label="Texts")
        assert_that(split["other"], equal_to([2.5, None]), label="Other")


@pytest.mark.parametrize(("main", "typed"), [("articles", {}), ("articles", {"articles": int})])
def test_a_split_needs_typed_outputs_apart_from_main(main: str, typed: dict[str, type]) -> None:
    with pytest.raises(ValueError):
        SplitByType(main, **typed)

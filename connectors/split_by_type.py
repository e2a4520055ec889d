"""One PCollection of several element types, split into one PCollection per type.

A multi-output ParDo (``.with_outputs(...)``) would do this in the step that makes the
elements, but Beam's DaskRunner hands every tagged output of a ParDo to every consumer:
rejections would reach the article writer and source reports the analysis. A filter per
type is right on every runner; where the runner fuses steps (the DirectRunner, Flink,
Dataflow) the filters run in the same stage as the step before them, so the split costs
no extra pass over the data.

    items = raw | beam.ParDo(_NormalizeFn(settings))   # Article | Rejection
    split = items | SplitByType("articles", rejected=Rejection)
    split["articles"], split["rejected"]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam

__all__ = ["SplitByType"]

Kinds = type | tuple[type, ...]


class _OfTypeFn(beam.DoFn):
    """Keeps the elements that are (``keep=True``) or are not of ``kinds``."""

    def __init__(self, kinds: tuple[type, ...], keep: bool) -> None:
        self._kinds = kinds
        self._keep = keep

    def process(self, element: Any) -> Iterator[Any]:
        if isinstance(element, self._kinds) == self._keep:
            yield element


class SplitByType(beam.PTransform):
    """``{main: ..., name: ...}``: each keyword output gets the elements of its type(s);
    ``main`` gets every other element, so an element of a type left out is not lost (it
    reaches the main output's consumer, which fails on it loudly)."""

    def __init__(self, main: str, **typed: Kinds) -> None:
        super().__init__()
        if not typed:
            raise ValueError("SplitByType needs at least one typed output")
        if main in typed:
            raise ValueError(f"{main!r} is both the main and a typed output")
        self._main = main
        self._typed = {
            name: kinds if isinstance(kinds, tuple) else (kinds,) for name, kinds in typed.items()
        }

    def expand(self, mixed: beam.PCollection) -> dict[str, beam.PCollection]:
        every_typed = tuple(kind for kinds in self._typed.values() for kind in kinds)
        outputs = {self._main: mixed | self._main >> beam.ParDo(_OfTypeFn(every_typed, False))}
        for name, kinds in self._typed.items():
            outputs[name] = mixed | name >> beam.ParDo(_OfTypeFn(kinds, True))
        return outputs

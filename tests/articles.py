"""Article payloads for tests: distinct filler stories and a few that a watched topic must
match; and ``Article`` records as the stages see them."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from newswatch.pipelines.core.normalization import article_id
from newswatch.schemas import Article

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

_WORDS = (
    "council budget harbour railway festival drought election vaccine bridge museum tariff "
    "orchestra glacier startup pension wildfire satellite parliament stadium refinery airline "
    "vineyard tunnel hospital library drone reservoir turbine fishery mayor court senate union "
    "exports inflation rainfall harvest ferry bakery airport theatre school clinic court novel"
).split()

ARMS_STORIES = [
    {
        "title": "North Korea shipped artillery shells to Russia, U.S. says",
        "text": (
            "North Korea has shipped more than a million artillery shells to Russia for its war in "
            "Ukraine, the White House said on Friday.\n\n"
            "National Security Council spokesman John Kirby said Pyongyang had sent the munitions "
            "by rail and sea to Moscow in exchange for Russian military technology.\n\n"
            "Kim Jong Un and Vladimir Putin met at the Vostochny Cosmodrome last year."
        ),
    },
    {
        "title": "Russia and North Korea sign mutual defence treaty",
        "text": (
            "Russia and North Korea signed a treaty on Wednesday pledging mutual defence if either "
            "is attacked, the Kremlin said.\n\n"
            "Vladimir Putin said in Pyongyang that Moscow would not rule out military-technical "
            "cooperation with North Korea under the new pact.\n\n"
            "Washington and Seoul condemned the agreement."
        ),
    },
]


def filler_story(i: int, seed: int = 7) -> dict[str, Any]:
    """A distinct, unremarkable story: no watched topic matches it."""
    rng = random.Random(seed * 100_003 + i)
    sentences = [
        " ".join(rng.choice(_WORDS) for _ in range(12)).capitalize() + "." for _ in range(6)
    ]
    return {
        "url": f"https://filler.example/{seed}/{i}",
        "title": f"Local {rng.choice(_WORDS)} report {i}",
        "text": " ".join(sentences[:3]) + "\n\n" + " ".join(sentences[3:]),
        "published": f"2024-05-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
        "source": "filler-wire",
    }


def arms_story(i: int) -> dict[str, Any]:
    story = ARMS_STORIES[i % len(ARMS_STORIES)]
    return {
        **story,
        "url": f"https://arms.example/story/{i}",
        "published": f"2024-06-{1 + i % 28:02d}T09:30:00+09:00",
        "source": "arms-wire",
        "authors": ["Staff"],
    }


def make_article(url: str, **fields: Any) -> Article:
    """An ``Article`` as normalization makes it from ``url`` (id and cluster from the URL),
    with ``fields`` set; by default from source "wire", titled by its URL, ingested at T0."""
    key = article_id(url)
    defaults: dict[str, Any] = {
        "source": "wire",
        "title": url,
        "text": "Text.",
        "published_at": None,
        "ingested_at": T0,
        "cluster_id": key,
    }
    return Article(article_id=key, url=url, **{**defaults, **fields})

"""Config files for tests, written as a user writes them: sources, alert sinks, sections.

>>> import yaml
>>> yaml.safe_load(config_yaml([rss_source("world", "http://127.0.0.1:8000/w.xml")], "/d"))
{'sources': [{'name': 'world', 'type': 'rss', 'url': 'http://127.0.0.1:8000/w.xml'}], 'output': '/d', 'alerts': [{'type': 'file'}]}
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

FILE_ALERTS: dict[str, Any] = {"type": "file"}

# A topics file with one rule, as the README documents it.
TOPICS_YAML = """\
topics:
  - id: dprk-russia-arms
    title: North Korea–Russia arms cooperation
    scope: sentence
    all:
      - any: ["entity:North Korea", "Pyongyang", "DPRK"]
      - any: ["entity:Russia", "Moscow", "Kremlin"]
      - any: ["arms", "weapons", "artillery shells", "munitions", "missiles", "ammunition"]
    none: ["football"]
    min_matches: 1
"""
GROUP = "newswatch-test"


def rss_source(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "rss", "url": url, **extra}


def kafka_source(
    bootstrap: str, topic: str, name: str = "wire", group_id: str = GROUP, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "type": "kafka",
        "bootstrap_servers": bootstrap,
        "topic": topic,
        "group_id": group_id,
        **extra,
    }


def kafka_alerts(bootstrap: str, topic: str) -> dict[str, Any]:
    return {"type": "kafka", "bootstrap_servers": bootstrap, "topic": topic}


def config_yaml(
    sources: Iterable[dict[str, Any]],
    out: Path | str,
    alerts: Sequence[dict[str, Any]] | None = (FILE_ALERTS,),
    **sections: Any,
) -> str:
    """The YAML of a config; ``alerts=None`` leaves the key out, ``sections`` are added as
    they are (``stream={"window": 2}``, ``run={...}``)."""
    data: dict[str, Any] = {"sources": list(sources), "output": str(out)}
    if alerts is not None:
        data["alerts"] = list(alerts)
    data.update(sections)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def write_config(
    path: Path,
    sources: Iterable[dict[str, Any]],
    out: Path | str,
    alerts: Sequence[dict[str, Any]] | None = (FILE_ALERTS,),
    **sections: Any,
) -> Path:
    path.write_text(config_yaml(sources, out, alerts, **sections), "utf-8")
    return path


def rss_config(path: Path, feeds: Iterable[tuple[str, str]], out: Path, **sections: Any) -> Path:
    """A config reading the feeds ``(name, url)``, alerts to the file sink."""
    return write_config(path, [rss_source(name, url) for name, url in feeds], out, **sections)


def kafka_config(
    path: Path,
    bootstrap: str,
    topic: str,
    out: Path,
    alerts_topic: str | None = None,
    group_id: str = GROUP,
    **extra: Any,
) -> Path:
    """A config reading one Kafka topic (source ``wire``; ``extra`` are source keys), alerts
    to the file sink and, with ``alerts_topic``, to that topic on the same broker."""
    alerts = [FILE_ALERTS]
    if alerts_topic:
        alerts.append(kafka_alerts(bootstrap, alerts_topic))
    return write_config(
        path, [kafka_source(bootstrap, topic, group_id=group_id, **extra)], out, alerts
    )

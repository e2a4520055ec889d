"""What a person reads: an alert, a spike or a digest as Markdown for chat and as plain
text for email.

Markdown goes to chat and push services (Slack, Teams, Matrix, ntfy, ...), which render it
or are given it converted by Apprise; email gets a plain subject line and body so that it
reads the same in every mail client.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from newswatch.pipelines.delivery.story import Story
from newswatch.schemas import Alert
from newswatch.schemas.alert import SPIKE

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>])")


@dataclass(frozen=True)
class Message:
    title: str  # chat services show it above the body
    markdown: str
    subject: str  # email
    text: str  # email body


def story_message(story: Story) -> Message:
    """The message of one alert: a story, or a spike."""
    alert = story.alert
    if alert.kind == SPIKE:
        return _spike_message(alert)
    topic = alert.topic_title or alert.topic
    facts = [
        f"Score {alert.score:.2f}",
        f"Source: {alert.source}" if alert.source else "",
        f"Language: {alert.language}" if alert.language else "",
        f"Entities: {', '.join(alert.entities)}" if alert.entities else "",
        _also_reported(story),
    ]
    facts = [f for f in facts if f]
    markdown = "\n".join(
        [
            f"**{_md(topic)}**: [{_md(alert.title)}]({_md_url(alert.url)})",
            "",
            *(f"> {_md(sentence)}" for sentence in alert.evidence),
            "",
            *(_md(f) for f in facts),
        ]
    )
    text = "\n".join(
        [alert.title, alert.url, "", *alert.evidence, "", *facts, "", f"Topic: {topic}"]
    )
    return Message(
        title=f"{topic}: {alert.title}",
        markdown=markdown,
        subject=_one_line(f"[newswatch] {topic}: {alert.title}"),
        text=text,
    )


def _spike_message(alert: Alert) -> Message:
    topic = alert.topic_title or alert.topic
    baseline = alert.baseline
    window = alert.window
    hours = (window.end - window.start).total_seconds() / 3600 if window else 0.0
    usual = (
        f"usually {baseline.mean:.1f} ± {baseline.stddev:.1f} per {hours:g} h "
        f"over the last {baseline.days} days"
        if baseline
        else ""
    )
    headline = f"{alert.count} stories on {topic} in {hours:g} h"
    latest = f"Latest: {alert.title} {alert.url}"
    markdown = "\n".join(
        [
            f"**Spike: {_md(headline)}** ({_md(usual)})",
            "",
            *(f"- {_md(line)}" for line in alert.evidence),
            "",
            f"Latest: [{_md(alert.title)}]({_md_url(alert.url)})",
        ]
    )
    text = "\n".join([f"{headline} ({usual})", "", *alert.evidence, "", latest])
    return Message(
        title=f"Spike: {headline}",
        markdown=markdown,
        subject=_one_line(f"[newswatch] Spike: {headline}"),
        text=text,
    )


def digest_message(
    name: str, start: datetime, end: datetime, stories: Sequence[Story], titles: dict[str, str]
) -> Message:
    """One period's stories, grouped by topic (``titles``: topic id to title), in order."""
    period = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M %Z}"
    heading = f"newswatch digest ({name}): {len(stories)} stories, {period}"
    by_topic: dict[str, list[Story]] = {}
    for story in stories:
        by_topic.setdefault(story.alert.topic, []).append(story)
    markdown = [f"**{_md(heading)}**"]
    text = [heading]
    for topic, items in by_topic.items():
        title = titles.get(topic) or topic
        markdown += ["", f"**{_md(title)}** ({len(items)})"]
        text += ["", f"{title} ({len(items)})"]
        for story in items:
            alert = story.alert
            reach = _reach(story)
            markdown.append(f"- [{_md(alert.title)}]({_md_url(alert.url)}) {_md(reach)}")
            text.append(f"- {alert.title} {reach}\n  {alert.url}")
    if not stories:
        markdown.append("\nNo new stories in this period.")
        text.append("\nNo new stories in this period.")
    return Message(
        title=heading,
        markdown="\n".join(markdown),
        subject=_one_line(f"[newswatch] {heading}"),
        text="\n".join(text),
    )


def _also_reported(story: Story) -> str:
    others = story.other_sources
    if story.copies <= 0 or others <= 0:
        return ""
    return f"Also reported by {others} source{'s' if others != 1 else ''}."


def _reach(story: Story) -> str:
    sources = len(set(story.sources) | {story.alert.source})
    copies = story.copies + 1
    where = ", ".join(filter(None, (story.alert.source, story.alert.language)))
    return f"({where}; {copies} copies, {sources} sources)" if copies > 1 else f"({where})"


def _md(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _md_url(url: str) -> str:
    # A bracket or space would end the link early.
    return url.replace(" ", "%20").replace(")", "%29").replace("(", "%28")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:250]

"""The short, readable account of a run printed at its end."""

from __future__ import annotations

from typing import Any

from newswatch.pipelines.run import RunOutcome


def feed_counts(report: dict[str, Any] | None) -> tuple[int, int]:
    """(feeds that answered, feeds that failed)."""
    feeds = (report or {}).get("feeds", [])
    failed = sum(1 for f in feeds if f["status"] == "failed")
    return len(feeds) - failed, failed


def language_counts(outcome: RunOutcome) -> dict[str, int]:
    """Articles read per detected language (the Normalize stage's ``language_*`` counters),
    most first."""
    prefix = "language_"
    counts = {
        name[len(prefix) :]: n
        for name, n in outcome.counters.items()
        if name.startswith(prefix) and n
    }
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def format_summary(outcome: RunOutcome) -> str:
    report = outcome.report or {}
    committed = report.get("committed", {})
    ok, failed = feed_counts(report)
    partitions = report.get("partitions", [])
    read = outcome.count("entries_read") + outcome.count("kafka_messages_read")
    sources = f"{ok} feeds read, {failed} failed"
    if partitions:
        sources += f"; {len(partitions)} Kafka partitions read"
    lines = [f"newswatch run {outcome.run_id}"]
    if outcome.passes:
        lines.append(f"  passes    {len(outcome.passes)}: {', '.join(outcome.passes)}")
    lines += [
        f"  sources   {sources}",
        f"  read      {read} items",
        f"  stored    {committed.get('articles', 0)} new articles, "
        f"{outcome.count('duplicates_dropped')} duplicates dropped, "
        f"{committed.get('rejected', 0)} rejected",
        f"  stories   {outcome.count('near_duplicates')} new articles are copies of a known story",
        f"  alerts    {committed.get('alerts', 0)} raised"
        + (f", {committed['alerts_sent']} sent to Kafka" if committed.get("alerts_sent") else ""),
    ]
    lines += _delivery_lines(outcome)
    if languages := language_counts(outcome):
        lines.append("  languages " + ", ".join(f"{code} {n}" for code, n in languages.items()))
    for feed in report.get("feeds", []):
        if feed.get("error"):
            lines.append(f"  ! {feed['source']}: {feed['status']}: {feed['error']}")
    lines.append(f"  output    {outcome.output}  (articles/, alerts/, rejected/)")
    return "\n".join(lines)


def _delivery_lines(outcome: RunOutcome) -> list[str]:
    """Per delivery sink what the drain at the end of the run did (errors already scrubbed)."""
    delivery = outcome.delivery
    lines = []
    for sink in delivery.sinks:
        line = f"  delivery  {sink.sink}: {sink.delivered} delivered"
        if sink.dead:
            line += f", {sink.dead} to the dead letters"
        if sink.held:
            line += ", receiver failing: the rest waits for the next run"
        lines.append(line)
    if delivery.spikes:
        lines.append(f"  spikes    {delivery.spikes} spike alerts raised")
    if delivery.error:
        lines.append(f"  ! delivery stopped: {delivery.error} (see `newswatch alerts status`)")
    return lines

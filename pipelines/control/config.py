"""The run configuration: parsed once from YAML into frozen, typed objects.

Every mistake is reported with the file, the key path (``sources[2].url``) and what is
wrong, before any work starts. Unknown keys are errors, never silently ignored.
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path
from typing import Any

from newswatch.pipelines.control.errors import ConfigError
from newswatch.pipelines.control.settings import (
    Config,
    HttpSettings,
    NearDuplicateSettings,
    NlpSettings,
    RunSettings,
    StreamSettings,
)
from newswatch.pipelines.control.sources_config import parse_alert_sinks, parse_sources
from newswatch.pipelines.control.yaml_reader import (
    KeyReader,
    load_yaml,
    load_yaml_file,
    local_path,
    whole,
)
from newswatch.pipelines.core.aliases import AliasTable, parse_alias_table
from newswatch.pipelines.core.normalization import NormalizeSettings
from newswatch.pipelines.core.rule_files import parse_topic_rules
from newswatch.pipelines.core.rules import TopicRule
from newswatch.pipelines.delivery import sink_config

DEFAULTS = "newswatch.pipelines"
DEFAULT_CONFIG = "defaults/config.yaml"
DEFAULT_TOPICS = "defaults/topics.yaml"
DEFAULT_ALIASES = "defaults/aliases.yaml"


def load_config(path: str | None) -> Config:
    """The config at ``path``, or the bundled default (sample feeds, offline) when None."""
    if path is None:
        text = files(DEFAULTS).joinpath(DEFAULT_CONFIG).read_text("utf-8")
        return parse_config(
            load_yaml(text, "<bundled default config>"), "<bundled default config>", None
        )
    try:
        text = Path(path).read_text("utf-8")
    except OSError as err:
        raise ConfigError(path, "", f"cannot read the config file: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "", "the config file is not UTF-8 text") from None
    return parse_config(load_yaml(text, path), path, Path(path).resolve().parent)


def parse_config(data: Any, file: str, base_dir: Path | None) -> Config:
    """A Config from parsed YAML; relative paths resolve against ``base_dir``."""
    r = KeyReader(file)
    top = r.mapping(
        data,
        "",
        {
            "sources",
            "topics",
            "aliases",
            "output",
            "alerts",
            "http",
            "nlp",
            "normalize",
            "near_duplicates",
            "stream",
            "run",
            "spikes",
        },
    )
    http = _http_settings(r, top.get("http", {}))
    sources = parse_sources(r, top.get("sources"), base_dir, http)
    topics_file = top.get("topics")
    if topics_file is None:
        topics = default_topic_rules()
    else:
        topics_path = local_path(r, topics_file, "topics", base_dir)
        topics = parse_topic_rules(load_yaml_file(r, topics_path, "topics"), topics_path)
    aliases = default_alias_table()
    if "aliases" in top:
        aliases_path = local_path(r, top["aliases"], "aliases", base_dir)
        aliases = aliases.merged_with(
            parse_alias_table(load_yaml_file(r, aliases_path, "aliases"), aliases_path)
        )
    output = top.get("output", "./newswatch-data")
    if not isinstance(output, str) or not output.strip():
        raise ConfigError(file, "output", "must be a path or a filesystem URL")
    return Config(
        file=file,
        sources=sources,
        topics=topics,
        aliases=aliases,
        output=resolve_output(output, base_dir),
        alerts=parse_alert_sinks(r, top.get("alerts", [{"type": "file"}])),
        http=http,
        nlp=_nlp_settings(r, top.get("nlp", {})),
        normalize=_normalize_settings(r, top.get("normalize", {})),
        near_duplicates=_near_duplicate_settings(r, top.get("near_duplicates", {})),
        stream=_stream_settings(r, top.get("stream", {})),
        run=_run_settings(r, top.get("run", {})),
        spikes=sink_config.spikes_section(top, file),
    )


def resolve_output(output: str, base_dir: Path | None) -> str:
    """Filesystem URLs (gs://, s3://) as given; local paths made absolute."""
    if "://" in output and not output.startswith("file://"):
        return output.rstrip("/")
    local = Path(output.removeprefix("file://")).expanduser()
    if not local.is_absolute():
        local = (base_dir or Path.cwd()) / local
    return str(local.resolve())


def default_topic_rules() -> tuple[TopicRule, ...]:
    text = files(DEFAULTS).joinpath(DEFAULT_TOPICS).read_text("utf-8")
    return parse_topic_rules(load_yaml(text, "<bundled topics>"), "<bundled topics>")


def default_alias_table() -> AliasTable:
    text = files(DEFAULTS).joinpath(DEFAULT_ALIASES).read_text("utf-8")
    return parse_alias_table(load_yaml(text, "<bundled aliases>"), "<bundled aliases>")


def _http_settings(r: KeyReader, raw: Any) -> HttpSettings:
    item = r.mapping(
        raw, "http", {"timeout", "max_bytes", "user_agent", "max_redirects", "allow_local_files"}
    )
    d = HttpSettings()
    return HttpSettings(
        timeout_s=r.number(item.get("timeout", d.timeout_s), "http.timeout", minimum=0.1),
        max_bytes=int(r.number(item.get("max_bytes", d.max_bytes), "http.max_bytes", minimum=1024)),
        user_agent=r.string(item.get("user_agent", d.user_agent), "http.user_agent"),
        max_redirects=int(
            r.number(item.get("max_redirects", d.max_redirects), "http.max_redirects", minimum=0)
        ),
        allow_local_files=r.boolean(
            item.get("allow_local_files", d.allow_local_files), "http.allow_local_files"
        ),
    )


def _nlp_settings(r: KeyReader, raw: Any) -> NlpSettings:
    item = r.mapping(raw, "nlp", {"model", "batch_size", "max_chars", "languages"})
    d = NlpSettings()
    return NlpSettings(
        model=r.string(item.get("model", d.model), "nlp.model"),
        batch_size=int(r.number(item.get("batch_size", d.batch_size), "nlp.batch_size", minimum=1)),
        max_chars=int(r.number(item.get("max_chars", d.max_chars), "nlp.max_chars", minimum=100)),
        languages=_languages(r, item.get("languages", list(d.languages))),
    )


def _languages(r: KeyReader, raw: Any) -> tuple[str, ...]:
    """ISO 639-1 codes; whether each can be analysed is checked at startup
    (``installed.check_languages``), where a missing package is named."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError(r.file, "nlp.languages", "must be a non-empty list of ISO 639-1 codes")
    codes = []
    for i, code in enumerate(raw):
        if not isinstance(code, str) or not re.fullmatch(r"[a-z]{2}", code.strip()):
            raise ConfigError(r.file, f"nlp.languages[{i}]", "must be an ISO 639-1 code like 'ru'")
        codes.append(code.strip())
    return tuple(dict.fromkeys(codes))


def _normalize_settings(r: KeyReader, raw: Any) -> NormalizeSettings:
    item = r.mapping(raw, "normalize", {"max_text_chars"})
    d = NormalizeSettings()
    return NormalizeSettings(
        max_text_chars=int(
            r.number(
                item.get("max_text_chars", d.max_text_chars),
                "normalize.max_text_chars",
                minimum=100,
            )
        )
    )


def _near_duplicate_settings(r: KeyReader, raw: Any) -> NearDuplicateSettings:
    path = "near_duplicates"
    item = r.mapping(
        raw,
        path,
        {"threshold", "horizon_days", "num_perm", "rows_per_band", "min_shingles", "max_bucket"},
    )
    d = NearDuplicateSettings()
    threshold = r.number(item.get("threshold", d.threshold), f"{path}.threshold", minimum=0.01)
    if threshold > 1:
        raise ConfigError(r.file, f"{path}.threshold", "must be a number from 0.01 to 1")
    num_perm = whole(r, item.get("num_perm", d.num_perm), f"{path}.num_perm", 16, 1024)
    return NearDuplicateSettings(
        threshold=threshold,
        horizon_days=whole(
            r, item.get("horizon_days", d.horizon_days), f"{path}.horizon_days", 0, 3660
        ),
        num_perm=num_perm,
        rows_per_band=whole(
            r, item.get("rows_per_band", d.rows_per_band), f"{path}.rows_per_band", 1, num_perm
        ),
        min_shingles=whole(
            r, item.get("min_shingles", d.min_shingles), f"{path}.min_shingles", 1, 10**6
        ),
        max_bucket=whole(r, item.get("max_bucket", d.max_bucket), f"{path}.max_bucket", 1, 10**6),
    )


def _stream_settings(r: KeyReader, raw: Any) -> StreamSettings:
    item = r.mapping(
        raw, "stream", {"window", "status_interval", "tick", "state_refresh", "drain_timeout"}
    )
    d = StreamSettings()
    window = r.number(item.get("window", d.window_s), "stream.window", minimum=1)
    tick = r.number(item.get("tick", d.tick_s), "stream.tick", minimum=0.05)
    if tick > window:
        raise ConfigError(
            r.file, "stream.tick", f"must not be longer than stream.window ({window:g})"
        )
    return StreamSettings(
        window_s=window,
        status_interval_s=r.number(
            item.get("status_interval", d.status_interval_s), "stream.status_interval", minimum=1
        ),
        tick_s=tick,
        state_refresh_s=r.number(
            item.get("state_refresh", d.state_refresh_s), "stream.state_refresh", minimum=60
        ),
        drain_timeout_s=r.number(
            item.get("drain_timeout", d.drain_timeout_s), "stream.drain_timeout", minimum=1
        ),
    )


def _run_settings(r: KeyReader, raw: Any) -> RunSettings:
    item = r.mapping(raw, "run", {"max_messages_per_pass", "max_feeds_per_pass"})
    d = RunSettings()
    return RunSettings(
        max_messages_per_pass=whole(
            r,
            item.get("max_messages_per_pass", d.max_messages_per_pass),
            "run.max_messages_per_pass",
            1,
            10**9,
        ),
        max_feeds_per_pass=whole(
            r,
            item.get("max_feeds_per_pass", d.max_feeds_per_pass),
            "run.max_feeds_per_pass",
            1,
            10**6,
        ),
    )

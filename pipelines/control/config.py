"""The run configuration: parsed once from YAML into frozen, typed objects.

Every mistake is reported with the file, the key path (``sources[2].url``) and what is
wrong, before any work starts. Unknown keys are errors, never silently ignored.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from newswatch.pipelines.control.errors import ConfigError
from newswatch.pipelines.control.settings import (
    AlertSink,
    Config,
    FileAlerts,
    HttpSettings,
    KafkaAlerts,
    KafkaSource,
    NearDuplicateSettings,
    NlpSettings,
    RssSource,
    RunSettings,
    Source,
    StreamSettings,
)
from newswatch.pipelines.control.yaml_reader import (
    KeyReader,
    load_yaml,
    load_yaml_file,
    local_path,
    whole,
)
from newswatch.pipelines.core.aliases import AliasTable, parse_alias_table
from newswatch.pipelines.core.normalization import NormalizeSettings
from newswatch.pipelines.core.rules import TopicRule, parse_topic_rules
from newswatch.pipelines.delivery import sink_config

DEFAULTS = "newswatch.pipelines"
DEFAULT_CONFIG = "defaults/config.yaml"
DEFAULT_TOPICS = "defaults/topics.yaml"
DEFAULT_ALIASES = "defaults/aliases.yaml"
PACKAGE_SCHEME = "package:"
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


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
    sources = _sources(r, top.get("sources"), base_dir, http)
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
        alerts=_alert_sinks(r, top.get("alerts", [{"type": "file"}])),
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


def _sources(
    r: KeyReader, raw: Any, base_dir: Path | None, http: HttpSettings
) -> tuple[Source, ...]:
    sources: list[Source] = []
    for path, kind, item in r.typed_items(raw, "sources", "list of sources", non_empty=True):
        if kind == "rss":
            sources.append(_rss_source(r, item, path, base_dir, http))
        elif kind == "kafka":
            sources.append(_kafka_source(r, item, path))
        else:
            raise ConfigError(r.file, f"{path}.type", "must be 'rss' or 'kafka'")
        if sum(1 for s in sources if s.name == sources[-1].name) > 1:
            raise ConfigError(r.file, f"{path}.name", f"duplicate source name {sources[-1].name!r}")
    return tuple(sources)


def _source_name(r: KeyReader, item: Mapping[str, Any], path: str) -> str:
    name = item.get("name")
    if not isinstance(name, str) or not _SOURCE_NAME.fullmatch(name):
        raise ConfigError(
            r.file, f"{path}.name", "must be a name of letters, digits, '.', '_' or '-' (max 64)"
        )
    return name


def _rss_source(
    r: KeyReader, raw: Any, path: str, base_dir: Path | None, http: HttpSettings
) -> RssSource:
    item = r.mapping(raw, path, {"name", "type", "url", "poll_interval"})
    url = item.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(r.file, f"{path}.url", "must be a URL or a path")
    url = url.strip()
    try:
        parts = urlsplit(url)
        _ = parts.port  # a bad port raises here rather than at the first fetch
    except ValueError as err:  # "http://[::1", "http://host:99999/"
        raise ConfigError(r.file, f"{path}.url", f"{url!r} is not a valid URL: {err}") from None
    scheme = parts.scheme.lower()
    if url.startswith(PACKAGE_SCHEME):
        pass
    elif scheme in ("http", "https"):
        if not parts.hostname:
            raise ConfigError(r.file, f"{path}.url", f"{url!r} has no host")
    elif scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):
        if not http.allow_local_files:
            raise ConfigError(
                r.file, f"{path}.url", "local files are disabled (http.allow_local_files)"
            )
        # A file:// URL is percent-encoded ("my%20feed.xml"); a plain path is taken as written.
        local = Path(unquote(url.removeprefix("file://")) if scheme == "file" else url).expanduser()
        if not local.is_absolute():
            local = (base_dir or Path.cwd()) / local
        url = local.resolve().as_uri()
    else:
        raise ConfigError(
            r.file,
            f"{path}.url",
            f"unsupported scheme {scheme!r} (use http, https, file or a local path)",
        )
    return RssSource(
        name=_source_name(r, item, path),
        url=url,
        poll_interval_s=r.number(
            item.get("poll_interval", 300), f"{path}.poll_interval", minimum=1
        ),
    )


_SECURITY_KEYS = {
    "security_protocol",
    "sasl_mechanism",
    "sasl_plain_username",
    "sasl_plain_password_env",
    "ssl_cafile",
}


def _security(r: KeyReader, item: Mapping[str, Any], path: str) -> dict[str, str]:
    security = {}
    for key in sorted(_SECURITY_KEYS & set(item)):
        value = item[key]
        if not isinstance(value, str) or not value:
            raise ConfigError(r.file, f"{path}.{key}", "must be a non-empty string")
        security[key] = value
    if "sasl_plain_password" in item:
        raise ConfigError(
            r.file,
            f"{path}.sasl_plain_password",
            "passwords never go in the config; name an environment variable with sasl_plain_password_env",
        )
    return security


def _bootstrap(r: KeyReader, value: Any, path: str) -> tuple[str, ...]:
    servers = value.split(",") if isinstance(value, str) else value
    if not isinstance(servers, list | tuple) or not servers:
        raise ConfigError(r.file, path, "must be host:port, or a list of them")
    out = []
    for server in servers:
        if not isinstance(server, str) or not re.match(r"^[\w.\-\[\]:]+:\d{1,5}$", server.strip()):
            raise ConfigError(r.file, path, f"{server!r} is not host:port")
        out.append(server.strip())
    return tuple(out)


def _kafka_source(r: KeyReader, raw: Any, path: str) -> KafkaSource:
    item = r.mapping(
        raw,
        path,
        {
            "name",
            "type",
            "bootstrap_servers",
            "topic",
            "group_id",
            "max_message_bytes",
            "read_timeout",
        }
        | _SECURITY_KEYS
        | {"sasl_plain_password"},
    )
    return KafkaSource(
        name=_source_name(r, item, path),
        bootstrap_servers=_bootstrap(r, item.get("bootstrap_servers"), f"{path}.bootstrap_servers"),
        topic=r.string(item.get("topic"), f"{path}.topic"),
        group_id=r.string(item.get("group_id", "newswatch"), f"{path}.group_id"),
        max_message_bytes=int(
            r.number(
                item.get("max_message_bytes", 1_000_000), f"{path}.max_message_bytes", minimum=1
            )
        ),
        read_timeout_s=r.number(item.get("read_timeout", 60), f"{path}.read_timeout", minimum=1),
        security=_security(r, item, path),
    )


def _alert_sinks(r: KeyReader, raw: Any) -> tuple[AlertSink, ...]:
    sinks: list[AlertSink] = []
    delivery: list[tuple[Any, str]] = []  # parsed together: their names must be unique
    for path, kind, item in r.typed_items(raw, "alerts", "list of alert sinks"):
        if kind in sink_config.DELIVERY_TYPES:
            delivery.append((item, path))
        elif kind == "file":
            r.mapping(item, path, {"type"})
            sinks.append(FileAlerts())
        elif kind == "kafka":
            fields = r.mapping(
                item,
                path,
                {"type", "bootstrap_servers", "topic"} | _SECURITY_KEYS | {"sasl_plain_password"},
            )
            sinks.append(
                KafkaAlerts(
                    bootstrap_servers=_bootstrap(
                        r, fields.get("bootstrap_servers"), f"{path}.bootstrap_servers"
                    ),
                    topic=r.string(fields.get("topic", "newswatch.alerts"), f"{path}.topic"),
                    security=_security(r, fields, path),
                )
            )
        else:
            raise ConfigError(r.file, f"{path}.type", sink_config.UNKNOWN_TYPE)
    return (*sinks, *sink_config.parse_delivery_sinks(delivery, file=r.file))


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
    (``multilingual.check_languages``), where a missing package is named."""
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

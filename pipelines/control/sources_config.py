"""Where news comes from and where alerts go: the ``sources`` and ``alerts`` sections of the
config, parsed into typed objects (``settings.py``); every mistake names its key path."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from newswatch.pipelines.control.errors import ConfigError
from newswatch.pipelines.control.settings import (
    AlertSink,
    FileAlerts,
    HttpSettings,
    KafkaAlerts,
    KafkaSource,
    RssSource,
    Source,
)
from newswatch.pipelines.control.yaml_reader import KeyReader
from newswatch.pipelines.delivery import sink_config

__all__ = ["parse_alert_sinks", "parse_sources"]

PACKAGE_SCHEME = "package:"
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def parse_sources(
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


def parse_alert_sinks(r: KeyReader, raw: Any) -> tuple[AlertSink, ...]:
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

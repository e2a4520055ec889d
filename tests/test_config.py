"""config.py: the run configuration, parsed once; every mistake names file, key path and problem."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from configs import TOPICS_YAML

from newswatch.pipelines.control.config import load_config, parse_config
from newswatch.pipelines.control.errors import ConfigError
from newswatch.pipelines.control.settings import (
    FileAlerts,
    HttpSettings,
    KafkaAlerts,
    KafkaSource,
    NlpSettings,
    RssSource,
)
from newswatch.pipelines.core.normalization import NormalizeSettings

CONFIG_YAML = """\
sources:
  - name: bbc-world
    type: rss
    url: https://example.org/rss.xml
topics: my-topics.yaml
output: ./newswatch-data
alerts:
  - type: file
"""


RSS = {"name": "bbc-world", "type": "rss", "url": "https://example.org/rss.xml"}
KAFKA = {"name": "wire", "type": "kafka", "bootstrap_servers": "localhost:9092", "topic": "news"}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def config_with(**top: Any) -> dict[str, Any]:
    """A minimal valid config (no topics file: the bundled rules) with top-level keys changed."""
    data: dict[str, Any] = {"sources": [copy.deepcopy(RSS)]}
    for key, value in top.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return data


def with_source(**changes: Any) -> dict[str, Any]:
    source = {**RSS, **changes}
    return config_with(sources=[{k: v for k, v in source.items() if v is not ...}])


def with_kafka(**changes: Any) -> dict[str, Any]:
    source = {**KAFKA, **changes}
    return config_with(sources=[{k: v for k, v in source.items() if v is not ...}])


# --- accepted configs -------------------------------------------------------------------------


def test_the_documented_config_shape_is_accepted(tmp_path: Path) -> None:
    write(tmp_path / "my-topics.yaml", TOPICS_YAML)
    config_file = write(tmp_path / "config.yaml", CONFIG_YAML)
    config = load_config(str(config_file))
    assert config.file == str(config_file)
    assert config.sources == (RssSource("bbc-world", "https://example.org/rss.xml", 300.0),)
    assert config.rss_sources == config.sources
    assert config.kafka_sources == ()
    assert [rule.id for rule in config.topics] == ["dprk-russia-arms"]
    assert config.topics[0].title == "North Korea\u2013Russia arms cooperation"
    assert config.output == str((tmp_path / "newswatch-data").resolve())
    assert config.alerts == (FileAlerts(),)
    assert config.http == HttpSettings()
    assert config.nlp == NlpSettings()
    assert config.normalize == NormalizeSettings()
    entry = config.aliases.lookup("DPRK")  # the bundled alias table
    assert entry is not None and entry.canonical == "North Korea"


def test_relative_paths_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "conf"
    write(folder / "rules" / "topics.yaml", TOPICS_YAML)
    write(
        folder / "rules" / "aliases.yaml",
        "entities:\n  - canonical: Rosoboronexport\n    aliases: [ROE]\n",
    )
    write(
        folder / "config.yaml",
        "sources:\n"
        "  - {name: local, type: rss, url: feeds/world.xml}\n"
        "  - {name: dotted, type: rss, url: ./feeds/../feeds/asia.xml}\n"
        "topics: rules/topics.yaml\n"
        "aliases: rules/aliases.yaml\n"
        "output: ../data\n",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config("../conf/config.yaml")
    assert config.file == "../conf/config.yaml"
    assert [s.url for s in config.rss_sources] == [
        (folder / "feeds" / "world.xml").resolve().as_uri(),
        (folder / "feeds" / "asia.xml").resolve().as_uri(),
    ]
    assert [rule.id for rule in config.topics] == ["dprk-russia-arms"]
    assert config.output == str((tmp_path / "data").resolve())
    # the user's aliases extend the bundled table
    for surface, canonical in [("ROE", "Rosoboronexport"), ("DPRK", "North Korea")]:
        entry = config.aliases.lookup(surface)
        assert entry is not None and entry.canonical == canonical


def test_without_a_base_folder_paths_resolve_against_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = parse_config(with_source(url="feeds/world.xml"), "<inline>", None)
    assert config.sources[0].url == (tmp_path / "feeds" / "world.xml").resolve().as_uri()
    assert config.output == str((tmp_path / "newswatch-data").resolve())


@pytest.mark.parametrize(
    ("url", "relative_path"),
    [
        ("{base}/feeds/world.xml", "feeds/world.xml"),
        ("file://{base}/feeds/world.xml", "feeds/world.xml"),
        # a file:// URL is percent-encoded; a plain path is taken as written
        ("file://{base}/feeds/my%20feed.xml", "feeds/my feed.xml"),
        ("{base}/feeds/my%20feed.xml", "feeds/my%20feed.xml"),
        ("{base}/feeds/my feed.xml", "feeds/my feed.xml"),
        ("  {base}/feeds/world.xml  ", "feeds/world.xml"),
    ],
)
def test_local_sources_become_file_urls(tmp_path: Path, url: str, relative_path: str) -> None:
    config = parse_config(with_source(url=url.format(base=tmp_path)), "cfg.yaml", tmp_path)
    assert config.sources[0].url == (tmp_path / relative_path).resolve().as_uri()


def test_home_folder_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    config = parse_config(with_source(url="~/feeds/world.xml"), "cfg.yaml", Path("/nowhere"))
    assert config.sources[0].url == (tmp_path / "feeds" / "world.xml").resolve().as_uri()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "package:newswatch.pipelines/defaults/samples/world-wire.xml",
            "package:newswatch.pipelines/defaults/samples/world-wire.xml",
        ),
        ("HTTPS://Example.org/rss.xml", "HTTPS://Example.org/rss.xml"),
        ("http://[::1]:8080/rss", "http://[::1]:8080/rss"),
    ],
)
def test_remote_and_package_urls_are_kept(tmp_path: Path, url: str, expected: str) -> None:
    assert parse_config(with_source(url=url), "cfg.yaml", tmp_path).sources[0].url == expected


def test_the_bundled_default_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(None)
    assert config.file == "<bundled default config>"
    assert config.sources == (
        RssSource(
            "sample-world-wire", "package:newswatch.pipelines/defaults/samples/world-wire.xml"
        ),
        RssSource(
            "sample-asia-desk", "package:newswatch.pipelines/defaults/samples/asia-desk.atom.xml"
        ),
    )
    assert "dprk-russia-arms" in [rule.id for rule in config.topics]
    entry = config.aliases.lookup("Pyongyang")
    assert entry is not None and entry.canonical == "North Korea"
    assert config.output == str((tmp_path / "newswatch-data").resolve())
    assert config.alerts == (FileAlerts(),)


def test_every_optional_section(tmp_path: Path) -> None:
    data = {
        "sources": [
            {**RSS, "poll_interval": 60},
            {
                **KAFKA,
                "bootstrap_servers": ["broker-1:9092", " [::1]:9093 "],
                "group_id": "newswatch-dev",
                "max_message_bytes": 2048,
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "PLAIN",
                "sasl_plain_username": "reader",
                "sasl_plain_password_env": "KAFKA_PASSWORD",
            },
        ],
        "output": "gs://bucket/newswatch/",
        "alerts": [{"type": "file"}, {"type": "kafka", "bootstrap_servers": "a:9092,b:9093"}],
        "http": {
            "timeout": 5,
            "max_bytes": 4096,
            "user_agent": " bot/1 ",
            "max_redirects": 0,
            "allow_local_files": False,
        },
        "nlp": {"model": "en_core_web_sm", "batch_size": 8, "max_chars": 5000},
        "normalize": {"max_text_chars": 1000},
    }
    config = parse_config(data, "cfg.yaml", tmp_path)
    assert config.sources == (
        RssSource("bbc-world", "https://example.org/rss.xml", 60.0),
        KafkaSource(
            name="wire",
            bootstrap_servers=("broker-1:9092", "[::1]:9093"),
            topic="news",
            group_id="newswatch-dev",
            max_message_bytes=2048,
            security={
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "PLAIN",
                "sasl_plain_username": "reader",
                "sasl_plain_password_env": "KAFKA_PASSWORD",
            },
        ),
    )
    assert config.kafka_sources == config.sources[1:]
    assert config.output == "gs://bucket/newswatch"
    assert config.alerts == (FileAlerts(), KafkaAlerts(("a:9092", "b:9093"), "newswatch.alerts"))
    assert config.http == HttpSettings(5.0, 4096, "bot/1", 0, False)
    assert config.nlp == NlpSettings("en_core_web_sm", 8, 5000)
    assert config.normalize == NormalizeSettings(1000)


def test_empty_sections_take_their_defaults(tmp_path: Path) -> None:
    config = parse_config(
        config_with(http=None, nlp=None, normalize=None, alerts=[]), "cfg.yaml", tmp_path
    )
    assert (config.http, config.nlp, config.normalize, config.alerts) == (
        HttpSettings(),
        NlpSettings(),
        NormalizeSettings(),
        (),
    )


# --- errors: file, key path and problem -------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        # the document itself
        (None, "", "must be a mapping"),
        (["sources"], "", "must be a mapping"),
        (config_with(source=[RSS]), "source", "unknown key"),
        # sources
        (config_with(sources=...), "sources", "non-empty list of sources"),
        (
            config_with(sources="https://example.org/rss.xml"),
            "sources",
            "non-empty list of sources",
        ),
        (config_with(sources={"name": "x"}), "sources", "non-empty list of sources"),
        (config_with(sources=[]), "sources", "non-empty list of sources"),
        (
            config_with(sources=["https://example.org/rss.xml"]),
            "sources[0].type",
            "'rss' or 'kafka'",
        ),
        (
            config_with(sources=[RSS, {**RSS, "name": "b", "type": "atom"}]),
            "sources[1].type",
            "'rss' or 'kafka'",
        ),
        (with_source(type=...), "sources[0].type", "'rss' or 'kafka'"),
        (with_source(interval=5), "sources[0].interval", "unknown key"),
        (with_kafka(url="x"), "sources[0].url", "unknown key"),
        (
            config_with(sources=[RSS, {**RSS, "url": "https://example.org/b.xml"}]),
            "sources[1].name",
            "duplicate source name 'bbc-world'",
        ),
        (
            config_with(sources=[KAFKA, {**RSS, "name": "wire"}]),
            "sources[1].name",
            "duplicate source name 'wire'",
        ),
        (with_source(name=...), "sources[0].name", "letters, digits"),
        (with_source(name="bbc world"), "sources[0].name", "letters, digits"),
        (with_source(name="bbc\n"), "sources[0].name", "letters, digits"),
        (with_source(name="x" * 65), "sources[0].name", "letters, digits"),
        (with_source(name=7), "sources[0].name", "letters, digits"),
        # rss urls
        (
            config_with(sources=[RSS, {**RSS, "name": "b", "url": "ftp://example.org/rss.xml"}]),
            "sources[1].url",
            "unsupported scheme 'ftp'",
        ),
        (with_source(url="gopher://example.org/"), "sources[0].url", "unsupported scheme 'gopher'"),
        (with_source(url="http:///rss.xml"), "sources[0].url", "has no host"),
        (with_source(url="https://"), "sources[0].url", "has no host"),
        (with_source(url="http://[::1/rss"), "sources[0].url", "not a valid URL"),
        (with_source(url="https://example.org:99999/rss"), "sources[0].url", "not a valid URL"),
        (with_source(url="https://example.org:rss/"), "sources[0].url", "not a valid URL"),
        (with_source(url=...), "sources[0].url", "a URL or a path"),
        (with_source(url="  "), "sources[0].url", "a URL or a path"),
        (with_source(url=["https://example.org/rss.xml"]), "sources[0].url", "a URL or a path"),
        (
            {**with_source(url="feeds/world.xml"), "http": {"allow_local_files": False}},
            "sources[0].url",
            "local files are disabled",
        ),
        # poll interval
        (with_source(poll_interval=0), "sources[0].poll_interval", "number >= 1"),
        (with_source(poll_interval=-5), "sources[0].poll_interval", "number >= 1"),
        (with_source(poll_interval="5m"), "sources[0].poll_interval", "number >= 1"),
        (with_source(poll_interval=True), "sources[0].poll_interval", "number >= 1"),
        (with_source(poll_interval=None), "sources[0].poll_interval", "number >= 1"),
        (with_source(poll_interval=float("nan")), "sources[0].poll_interval", "number >= 1"),
        (with_source(poll_interval=float("inf")), "sources[0].poll_interval", "number >= 1"),
        # kafka sources
        (with_kafka(topic=...), "sources[0].topic", "non-empty string"),
        (with_kafka(topic=" "), "sources[0].topic", "non-empty string"),
        (with_kafka(bootstrap_servers=...), "sources[0].bootstrap_servers", "host:port"),
        (
            with_kafka(bootstrap_servers="localhost"),
            "sources[0].bootstrap_servers",
            "'localhost' is not host:port",
        ),
        (
            with_kafka(bootstrap_servers="a:9092,"),
            "sources[0].bootstrap_servers",
            "'' is not host:port",
        ),
        (
            with_kafka(bootstrap_servers=["a:9092", 9092]),
            "sources[0].bootstrap_servers",
            "9092 is not host:port",
        ),
        (
            with_kafka(bootstrap_servers="kafka:port"),
            "sources[0].bootstrap_servers",
            "is not host:port",
        ),
        (with_kafka(bootstrap_servers=[]), "sources[0].bootstrap_servers", "host:port"),
        (with_kafka(bootstrap_servers={"a": 9092}), "sources[0].bootstrap_servers", "host:port"),
        (with_kafka(group_id=""), "sources[0].group_id", "non-empty string"),
        (with_kafka(max_message_bytes=0), "sources[0].max_message_bytes", "number >= 1"),
        (
            with_kafka(sasl_plain_password="hunter2"),
            "sources[0].sasl_plain_password",
            "passwords never go in the config",
        ),
        (with_kafka(ssl_cafile=""), "sources[0].ssl_cafile", "non-empty string"),
        (with_kafka(security_protocol=1), "sources[0].security_protocol", "non-empty string"),
        # alerts
        (config_with(alerts={"type": "file"}), "alerts", "list of alert sinks"),
        (config_with(alerts=None), "alerts", "list of alert sinks"),
        (
            config_with(alerts=[{"type": "file"}, {"type": "email"}]),
            "alerts[1].type",
            "file, kafka, notify",
        ),
        (config_with(alerts=["file"]), "alerts[0].type", "file, kafka, notify"),
        (config_with(alerts=[{"type": "file", "path": "x"}]), "alerts[0].path", "unknown key"),
        (
            config_with(alerts=[{"type": "file"}, {"type": "kafka"}]),
            "alerts[1].bootstrap_servers",
            "host:port",
        ),
        (
            config_with(alerts=[{"type": "kafka", "bootstrap_servers": "a:1", "topic": ""}]),
            "alerts[0].topic",
            "non-empty string",
        ),
        (
            config_with(
                alerts=[{"type": "kafka", "bootstrap_servers": "a:1", "sasl_plain_password": "x"}]
            ),
            "alerts[0].sasl_plain_password",
            "passwords never go in the config",
        ),
        # http, nlp, normalize
        (config_with(http="fast"), "http", "must be a mapping"),
        (config_with(http={"timeout": -1}), "http.timeout", "number >= 0.1"),
        (config_with(http={"timeout": 0}), "http.timeout", "number >= 0.1"),
        (config_with(http={"timeout": "20s"}), "http.timeout", "number >= 0.1"),
        (config_with(http={"timeout": float("nan")}), "http.timeout", "number >= 0.1"),
        (config_with(http={"max_bytes": 100}), "http.max_bytes", "number >= 1024"),
        (config_with(http={"max_bytes": float("inf")}), "http.max_bytes", "number >= 1024"),
        (config_with(http={"max_redirects": -1}), "http.max_redirects", "number >= 0"),
        (config_with(http={"user_agent": ""}), "http.user_agent", "non-empty string"),
        (config_with(http={"allow_local_files": "yes"}), "http.allow_local_files", "true or false"),
        (config_with(http={"retries": 3}), "http.retries", "unknown key"),
        (config_with(nlp={"batch_size": 0}), "nlp.batch_size", "number >= 1"),
        (config_with(nlp={"model": None}), "nlp.model", "non-empty string"),
        (config_with(nlp={"max_chars": 99}), "nlp.max_chars", "number >= 100"),
        (
            config_with(normalize={"max_text_chars": 10}),
            "normalize.max_text_chars",
            "number >= 100",
        ),
        (config_with(normalize={"max_chars": 1000}), "normalize.max_chars", "unknown key"),
        # output, topics, aliases
        (config_with(output=""), "output", "a path or a filesystem URL"),
        (config_with(output=5), "output", "a path or a filesystem URL"),
        (config_with(topics=5), "topics", "must be a file path"),
        (config_with(topics=" "), "topics", "must be a file path"),
        (config_with(aliases=["a.yaml"]), "aliases", "must be a file path"),
    ],
)
def test_parse_config_errors(tmp_path: Path, data: Any, path: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "cfg.yaml", tmp_path)
    err = info.value
    assert (err.file, err.path) == ("cfg.yaml", path)
    assert message in err.message
    where = f"cfg.yaml: {path}" if path else "cfg.yaml"
    assert str(err) == f"{where}: {err.message}"


def test_unreadable_topics_file(tmp_path: Path) -> None:
    config_file = write(tmp_path / "config.yaml", CONFIG_YAML)  # my-topics.yaml does not exist
    with pytest.raises(ConfigError) as info:
        load_config(str(config_file))
    err = info.value
    assert (err.file, err.path) == (str(config_file), "topics")
    assert err.message == f"cannot read {tmp_path / 'my-topics.yaml'}: No such file or directory"
    assert str(err).startswith(f"{config_file}: topics: cannot read ")


def test_topics_path_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "my-topics.yaml").mkdir()
    config_file = write(tmp_path / "config.yaml", CONFIG_YAML)
    with pytest.raises(ConfigError) as info:
        load_config(str(config_file))
    assert (info.value.path, info.value.message) == (
        "topics",
        f"cannot read {tmp_path / 'my-topics.yaml'}: Is a directory",
    )


def test_errors_inside_the_topics_file_name_that_file(tmp_path: Path) -> None:
    topics_file = write(
        tmp_path / "my-topics.yaml", TOPICS_YAML.replace("scope: sentence", "scope: article")
    )
    config_file = write(tmp_path / "config.yaml", CONFIG_YAML)
    with pytest.raises(ConfigError) as info:
        load_config(str(config_file))
    assert (info.value.file, info.value.path) == (str(topics_file), "topics[0].scope")
    assert (
        str(info.value)
        == f"{topics_file}: topics[0].scope: must be one of sentence, paragraph, document"
    )


def test_errors_inside_the_aliases_file_name_that_file(tmp_path: Path) -> None:
    aliases_file = write(
        tmp_path / "aliases.yaml", "entities:\n  - canonical: A\n  - canonical: ''\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(config_with(aliases="aliases.yaml"), "cfg.yaml", tmp_path)
    assert (info.value.file, info.value.path) == (str(aliases_file), "entities[1].canonical")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "sources:\n  - name: a\n    type: rss\n    url: [unclosed\noutput: x\n",
            "not valid YAML: line 5, column 7: expected ',' or ']', but got ':'",
        ),
        (
            "sources:\n- a\n b: 1\n",
            "not valid YAML: line 3, column 3: mapping values are not allowed here",
        ),
        (
            "\tsources: []\n",
            "not valid YAML: line 1, column 1: found character '\\t' that cannot start any token",
        ),
        ("", "must be a mapping"),
        ("- just\n- a list\n", "must be a mapping"),
    ],
)
def test_bad_config_documents(tmp_path: Path, text: str, message: str) -> None:
    config_file = write(tmp_path / "config.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_config(str(config_file))
    assert (info.value.file, info.value.path, info.value.message) == (str(config_file), "", message)
    assert str(info.value) == f"{config_file}: {message}"


def test_invalid_yaml_in_the_topics_file_names_that_file_and_line(tmp_path: Path) -> None:
    topics_file = write(tmp_path / "my-topics.yaml", "topics:\n  - id: x\n    all: [{any: [a]}\n")
    config_file = write(tmp_path / "config.yaml", CONFIG_YAML)
    with pytest.raises(ConfigError) as info:
        load_config(str(config_file))
    assert info.value.file == str(topics_file)
    assert info.value.message.startswith("not valid YAML: line 4, column 1: ")


def test_config_file_that_is_not_utf8(tmp_path: Path) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_bytes("sources: []\noutput: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_config(str(config_file))
    assert str(info.value) == f"{config_file}: the config file is not UTF-8 text"


def test_topics_file_that_is_not_utf8(tmp_path: Path) -> None:
    topics_file = tmp_path / "my-topics.yaml"
    topics_file.write_bytes(TOPICS_YAML.encode("utf-16"))
    config_file = write(tmp_path / "config.yaml", CONFIG_YAML)
    with pytest.raises(ConfigError) as info:
        load_config(str(config_file))
    assert str(info.value) == f"{config_file}: topics: {topics_file} is not UTF-8 text"


@pytest.mark.parametrize("name", ["missing.yaml", "."])
def test_unreadable_config_file(tmp_path: Path, name: str) -> None:
    path = str(tmp_path / name)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (info.value.file, info.value.path) == (path, "")
    assert info.value.message.startswith("cannot read the config file: ")

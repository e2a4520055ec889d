"""``newswatch explain``: why each watched topic matched a text, or why not.

    newswatch explain [--config FILE] [--topics FILE] [--aliases FILE] [--out DIR]
                      [--format text|json] (URL | ARTICLE_ID | -)

The text is a stored article (looked up by its URL or id in the dataset under ``--out``)
or text on stdin (``-``: the first line is the title); ``pipelines/quality/explanation.py``
builds the report from the same outcome the matcher decides on.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from newswatch.pipelines.cli.exits import EXIT_CONFIG, EXIT_OK
from newswatch.pipelines.control.errors import ConfigError
from newswatch.pipelines.control.settings import Config
from newswatch.pipelines.quality.explanation import explain_rule, format_reports

__all__ = ["add_common_options", "add_parser", "load_analysis_config", "main"]


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The options ``explain`` and ``eval`` share: which rules and aliases, which output."""
    parser.add_argument("--config", help="YAML config file (default: the bundled one)")
    parser.add_argument("--topics", help="a topics file to use instead of the config's")
    parser.add_argument("--aliases", help="an alias table to add over the config's")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def load_analysis_config(args: argparse.Namespace) -> Config:
    """The config, with ``--topics`` replacing its rules and ``--aliases`` added to its table."""
    import dataclasses

    import yaml

    from newswatch.pipelines.control.config import load_config
    from newswatch.pipelines.core.aliases import parse_alias_table
    from newswatch.pipelines.core.rule_files import parse_topic_rules

    config = load_config(args.config)
    for path, key in ((args.topics, "topics"), (args.aliases, "aliases")):
        if path is None:
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                data = yaml.safe_load(handle)
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(path, "", f"cannot read the {key} file: {err}") from None
        except yaml.YAMLError as err:
            raise ConfigError(path, "", f"not valid YAML: {err}") from None
        if key == "topics":
            config = dataclasses.replace(config, topics=parse_topic_rules(data, path))
        else:
            aliases = config.aliases.merged_with(parse_alias_table(data, path))
            config = dataclasses.replace(config, aliases=aliases)
    return config


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "explain",
        help="show why each watched topic matched a text, or why not",
        description="Analyse a stored article (by URL or article id) or text on stdin ('-', "
        "first line the title) and show, per topic rule, its patterns, the terms found in "
        "each sentence and why the topic matched or not.",
    )
    add_common_options(parser)
    parser.add_argument("--out", help="output folder of `newswatch run` (default: the config's)")
    parser.add_argument("article", metavar="URL|ARTICLE_ID|-")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from newswatch.pipelines.core.installed import ModelNotInstalled
    from newswatch.pipelines.core.languages import ENGLISH, LanguageDetector
    from newswatch.pipelines.core.multilingual import RoutedAnalyser
    from newswatch.pipelines.core.nlp import document_text

    try:
        config = load_analysis_config(args)
        title, text = _input_text(args, config)
        # The text is analysed as the run would: by its language's pipeline, and only that
        # one is loaded.
        language = LanguageDetector().language(f"{title}\n{text}", None)
        languages = [ENGLISH] + [c for c in config.nlp.languages if c == language != ENGLISH]
        routed = RoutedAnalyser.load(config.nlp.model, config.aliases, config.topics, languages)
    except (ConfigError, ModelNotInstalled, LookupError) as err:
        print(f"newswatch: {err}", file=sys.stderr)
        return EXIT_CONFIG
    analyser = routed.analyser_for(language)
    _, analysis = next(iter(analyser.analyse([document_text(title, text, config.nlp.max_chars)])))
    print(format_reports([explain_rule(analysis, rule) for rule in config.topics], args.format))
    return EXIT_OK


def _input_text(args: argparse.Namespace, config: Config) -> tuple[str, str]:
    if args.article == "-":
        title, _, body = sys.stdin.read().strip().partition("\n")
        return title.strip(), body.strip()
    from newswatch.pipelines.control.config import resolve_output

    root = resolve_output(args.out, None) if args.out else config.output
    from newswatch.connectors.dataset.read import stored_article

    row = stored_article(root, args.article)
    return row["title"] or "", row["text"] or ""

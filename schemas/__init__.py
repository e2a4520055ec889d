"""newswatch's data contract: article columns, alert messages, raw input and rejections."""

from newswatch.schemas.alert import Alert, alert_json_schema
from newswatch.schemas.article import (
    ARTICLE_SCHEMA,
    Article,
    Entity,
    TopicMatch,
    articles_from_table,
    articles_to_table,
)
from newswatch.schemas.raw import RawArticle
from newswatch.schemas.rejection import Rejection

__all__ = [
    "ARTICLE_SCHEMA",
    "Alert",
    "Article",
    "Entity",
    "RawArticle",
    "Rejection",
    "TopicMatch",
    "alert_json_schema",
    "articles_from_table",
    "articles_to_table",
]

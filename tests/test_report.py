"""``newswatch report``: the page checked in a real headless Chromium, offline, and its parts.

The dataset is written with the project's own writers in the real layout: 20 days of one
topic with a burst of stories on one day (a spike), a story carried by three sources, a
story whose title, URL and entities are hostile HTML, a second topic, alerts, rejections
and three run reports with a failing feed. Chromium (Debian's ``chromium``; ``.ci/run``
installs it) loads the page from a file with every request sent to a recording proxy on
127.0.0.1, which must see none.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from newswatch.connectors import filesystem
from newswatch.connectors.dataset.layout import ALERTS, ARTICLES, REJECTED, OutputLayout
from newswatch.connectors.dataset.write import encode_json_lines, encode_parquet
from newswatch.connectors.rss.read import FeedReport
from newswatch.pipelines.cli import main
from newswatch.pipelines.commit.manifest import CommitResult
from newswatch.pipelines.commit.run_report import write_run_report
from newswatch.pipelines.core.alerting import candidate_alerts
from newswatch.pipelines.core.rules import TopicRule
from newswatch.pipelines.explore.report_data import parse_since, spike_days
from newswatch.pipelines.explore.report_html import safe_href
from newswatch.schemas import Article, Entity, Rejection, TopicMatch

TOPIC, OTHER = "dprk-russia-arms", "china-taiwan-military"
TOPIC_TITLE = "North Korea–Russia arms cooperation"
FIRST_DAY, SPIKE_DAY, LAST_DAY = date(2024, 5, 1), date(2024, 5, 15), date(2024, 5, 20)
TOP_TITLE = "North Korea shipped shells to Russia by rail, three agencies report"
HOSTILE_TITLE = "<script>document.title='owned'</script><img src=x onerror=alert(1)> & co"
HOSTILE_ENTITY = "<svg onload=alert(1)>"
TAIWAN_TITLE = "China stages drills around Taiwan"
ENTITIES = (Entity("Pyongyang", "GPE", "North Korea"), Entity("Moscow", "GPE", "Russia"))
RUN_IDS = ("20240518T060000Z-aaaaaa", "20240519T060000Z-bbbbbb", "20240520T060000Z-cccccc")


def article(n: int, day: date, topic: str, **changes: object) -> Article:
    published = datetime(day.year, day.month, day.day, 8, n % 60, tzinfo=UTC)
    base = Article(
        article_id=f"{n:032x}",
        source="wire",
        url=f"https://wire.example/{n}",
        title=f"Routine story {n} on {topic}",
        text="North Korea sent shells to Russia.",
        published_at=published,
        ingested_at=published + timedelta(minutes=5),
        entities=ENTITIES,
        topics=(TopicMatch(topic, 0.8, (f"Evidence sentence of story {n}.",)),),
        cluster_id=f"{n:032x}",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def stored_articles() -> list[Article]:
    days = [FIRST_DAY + timedelta(d) for d in range((LAST_DAY - FIRST_DAY).days + 1)]
    rows = [article(i, day, TOPIC) for i, day in enumerate(days)]
    rows += [article(100 + i, SPIKE_DAY, TOPIC) for i in range(5)]  # the burst: 6 stories
    top = article(200, SPIKE_DAY, TOPIC, title=TOP_TITLE, url="https://wire.example/top")
    rows += [top] + [
        article(
            201 + i,
            SPIKE_DAY,
            TOPIC,
            title=TOP_TITLE,
            source=source,
            cluster_id=top.cluster_id,
            is_duplicate=True,
        )
        for i, source in enumerate(("agency-b", "agency-c", "agency-c"))
    ]
    rows.append(
        article(
            300,
            LAST_DAY,
            TOPIC,
            topics=(TopicMatch(TOPIC, 0.95, ("<b>Evidence</b> & more",)),),
            title=HOSTILE_TITLE,
            url="javascript:alert(1)",
            entities=(Entity("x", "ORG", HOSTILE_ENTITY),),
        )
    )
    rows.append(article(400, LAST_DAY, OTHER, title=TAIWAN_TITLE, source="asia-desk"))
    return rows


def write_dataset(root: Path) -> None:
    """The dataset as committed runs leave it: files in place, run reports under _state."""
    rows = stored_articles()
    layout = OutputLayout(str(root), RUN_IDS[-1])

    def place(kind: str, day: str, data: bytes, suffix: str) -> None:
        path = layout.final_path(kind, day, layout.file_name(kind, 0, suffix))
        filesystem.write_file(path, data)

    for day in sorted({r.partition_date for r in rows}):
        place(
            ARTICLES, day, encode_parquet([r for r in rows if r.partition_date == day]), "parquet"
        )
    rules = [
        TopicRule(TOPIC, TOPIC_TITLE, "sentence", ()),
        TopicRule(OTHER, "Chinese military pressure on Taiwan", "sentence", ()),
    ]
    alerts = [a for r in rows for a in candidate_alerts(r, rules, r.ingested_at)]
    place(ALERTS, "2024-05-20", encode_json_lines(alerts), "jsonl")
    when = datetime(2024, 5, 20, 6, tzinfo=UTC)
    rejected = [
        Rejection("odd", "missing_url_and_id", "no link", when, {"entry_index": i})
        for i in range(3)
    ]
    place(REJECTED, "2024-05-20", encode_json_lines(rejected), "jsonl")
    for run_id in RUN_IDS:
        feeds = [
            FeedReport("wire", "https://wire.example/rss", "ok", when, 200, entries=9),
            FeedReport(
                "broken", "https://broken.example/rss", "failed", when, 500, error="HTTP 500"
            ),
        ]
        write_run_report(
            OutputLayout(str(root), run_id), CommitResult(run_id, 9, 1, 3, 2), feeds, []
        )


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    write_dataset(folder / "data")
    html = folder / "report.html"
    assert (
        main(["report", "--out", str(folder / "data"), "--html", str(html), "--since", "30d"]) == 0
    )
    return html


# --- a real browser, with no network ----------------------------------------------------------


@dataclass
class RecordingProxy:
    """A TCP listener standing in for the network: records every connection made to it."""

    connections: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._socket.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._socket.accept()
            except TimeoutError:
                continue
            with client:  # what was asked for, then the connection is dropped
                client.settimeout(1)
                try:
                    self.connections.append(client.recv(512))
                except OSError:
                    self.connections.append(b"")

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()


def chromium(page: Path, profile: Path, *action: str, proxy: RecordingProxy | None = None) -> str:
    """Headless Chromium on the file, offline.

    Without ``proxy``: every request goes to a closed port and no host name resolves. With
    one: requests go to the recording proxy (names unresolved by Chromium itself, so they
    reach it), which answers none of them.
    """
    if proxy is None:
        network = [
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ]
    else:
        network = [f"--proxy-server={proxy.address}"]
    command = [
        "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
        "--proxy-bypass-list=<-loopback>", *network, "--window-size=1280,2000",
        *action, page.as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def requests_for_the_page(page: Path, connections: list[bytes]) -> list[bytes]:
    """The proxied requests to a host the page names. A page without script can only ask
    for URLs written in it; Chromium's own calls home (time, updates) name other hosts."""
    hosts = set(re.findall(r"//([\w.-]+)", page.read_text("utf-8")))
    return [c for c in connections if any(h.encode() in c.split(b"\r\n")[0] for h in hosts)]


class Dom(HTMLParser):
    """Elements (tag, attributes) and visible text of a serialized DOM."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._open: list[str] = []
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def having(self, tag: str, css: str = "") -> list[dict[str, str | None]]:
        return [
            a
            for t, a in self.elements
            if t == tag and (not css or css in (a.get("class") or "").split())
        ]


@pytest.fixture(scope="module")
def browser(
    page: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Dom, Path, RecordingProxy]]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    shot = profile.parent / "report.png"
    dom = Dom(chromium(page, profile, "--dump-dom"))
    chromium(page, profile, f"--screenshot={shot}")
    with RecordingProxy() as proxy:
        chromium(page, profile, "--dump-dom", proxy=proxy)
    yield dom, shot, proxy


@pytest.mark.slow  # a real headless Chromium
def test_the_page_asks_no_host_for_anything(
    page: Path, browser: tuple[Dom, Path, RecordingProxy]
) -> None:
    _, _, proxy = browser
    assert requests_for_the_page(page, proxy.connections) == []
    html = page.read_text("utf-8")
    assert "default-src 'none'" in html
    # Nothing that loads: no such element, no src-like attribute in a tag, no CSS fetch.
    assert not re.search(r"(?i)<(script|link|iframe|img|object|embed|video|audio)\b", html)
    assert not re.search(r"(?i)<[^>]*\s(src|srcset|poster|background)=", html)
    assert not re.search(r"(?i)url\(|@import", html)


@pytest.mark.slow  # a real headless Chromium
def test_the_proxy_sees_a_page_that_loads_from_another_host(tmp_path: Path) -> None:
    leaky = tmp_path / "leaky.html"
    leaky.write_text('<html><body><img src="http://images.example/x.png"></body></html>')
    with RecordingProxy() as proxy:
        chromium(leaky, tmp_path / "profile", "--dump-dom", proxy=proxy)
    requests = requests_for_the_page(leaky, proxy.connections)
    assert requests  # a browser may retry a request the proxy dropped
    assert all(r.startswith(b"GET http://images.example/x.png ") for r in requests)


@pytest.mark.slow  # a real headless Chromium
def test_the_charts_are_drawn(browser: tuple[Dom, Path, RecordingProxy]) -> None:
    dom, _, _ = browser
    volumes = dom.having("svg", "volume")
    assert len(volumes) == 2  # one per topic
    assert len(dom.having("rect", "stories")) == 20 + 1  # a column a day with stories
    assert len(dom.having("rect", "spike")) == 1 and len(dom.having("path", "spike-mark")) == 1
    assert len(dom.having("rect", "bar")) >= 3  # entities beside each topic


@pytest.mark.slow  # a real headless Chromium
def test_top_stories_are_listed_and_linked(browser: tuple[Dom, Path, RecordingProxy]) -> None:
    dom, _, _ = browser
    text = "".join(dom.text)
    for title in (TOP_TITLE, TAIWAN_TITLE, TOPIC_TITLE, "Routine story 0 on dprk-russia-arms"):
        assert title in text
    assert {"href": "https://wire.example/top", "rel": "noopener noreferrer"} in dom.having("a")
    assert f"spikes: {SPIKE_DAY.isoformat()}" in text
    assert "HTTP 500" in text and "missing_url_and_id" in text and RUN_IDS[0] in text


@pytest.mark.slow  # a real headless Chromium
def test_text_from_articles_stays_text(browser: tuple[Dom, Path, RecordingProxy]) -> None:
    dom, _, _ = browser
    text = "".join(dom.text)
    assert HOSTILE_TITLE in text and HOSTILE_ENTITY in text and "<b>Evidence</b> & more" in text
    assert not dom.having("script") and not dom.having("img") and not dom.having("b")
    assert all(not name.startswith("on") for _, attrs in dom.elements for name in attrs)
    assert all(not (a.get("href") or "").startswith("javascript:") for a in dom.having("a"))
    document_title = next(t for t in dom.text if t.strip())
    assert document_title.startswith("newswatch report, ")


@pytest.mark.slow  # a real headless Chromium
def test_the_screenshot_shows_the_page(browser: tuple[Dom, Path, RecordingProxy]) -> None:
    _, shot, _ = browser
    with Image.open(shot) as image:
        rgb = image.convert("RGB")
        assert rgb.size == (1280, 2000)
        assert ImageStat.Stat(rgb.convert("L")).stddev[0] > 20  # not one flat colour
        stories_blue = sum(
            count for count, colour in rgb.getcolors(1 << 20) or [] if colour == (31, 78, 140)
        )
    assert stories_blue > 200  # the story columns are painted


# --- the parts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "spikes"),
    [
        ([1, 1, 1, 1, 1, 1, 1, 6], [7]),
        ([1, 1, 1, 1, 1, 1, 1, 2], []),  # above the baseline but under 3 stories
        ([0, 0, 0, 3], [3]),  # from nothing to 3
        ([3], []),  # no day before it
        ([5, 1, 9, 2, 7, 3, 8, 9], []),  # noisy: 9 is within 3 sigma
        ([2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3], [10]),  # flat baseline: any rise is a spike
        ([9, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5], [10]),  # the 9 is outside the 7-day baseline
        ([], []),
    ],
)
def test_spike_days(counts: list[int], spikes: list[int]) -> None:
    assert spike_days(counts) == spikes


def test_since_takes_days_or_a_date() -> None:
    assert parse_since("30d") == 30
    assert parse_since("2024-06-01") == date(2024, 6, 1)
    for bad in ("0d", "30", "yesterday", "-3d"):
        with pytest.raises(ValueError, match="--since"):
            parse_since(bad)


@pytest.mark.parametrize(
    ("url", "href"),
    [
        ("https://a.example/x?y=1", "https://a.example/x?y=1"),
        ("HTTP://a.example/", "HTTP://a.example/"),
        ("javascript:alert(1)", None),
        (" javascript:alert(1)", None),
        ("data:text/html,<script>", None),
        ("urn:uuid:6f1c2a4e", None),
        ("", None),
    ],
)
def test_only_web_urls_become_links(url: str, href: str | None) -> None:
    assert safe_href(url) == href


def test_an_empty_dataset_gives_a_page(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    html = tmp_path / "r.html"
    assert main(["report", "--out", str(tmp_path / "data"), "--html", str(html)]) == 0
    assert "No article matched a watched topic" in html.read_text("utf-8")


def test_bad_options_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--out", str(tmp_path / "missing")]) == 2
    assert main(["report", "--out", str(tmp_path), "--since", "soon"]) == 2
    assert capsys.readouterr().err.count("\n") == 2

"""The documentation holds together: the README fits on a screen, and every relative link of
README.md, CONTRIBUTING.md, CHANGELOG.md and docs/ reaches a file that exists, and every
``#anchor`` a heading of the file it points into (as GitHub names headings). External https
links are allowed as they are; nothing is fetched. docs/deployment.md names every environment
variable the product reads."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_BYTES = 8 * 1024
DOCUMENTS = sorted(
    [
        ROOT / "README.md",
        ROOT / "CONTRIBUTING.md",
        *[path for path in [ROOT / "CHANGELOG.md"] if path.exists()],
        *(ROOT / "docs").rglob("*.md"),
    ]
)

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target) and ![alt](target), a title after the target allowed; link texts may hold brackets.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s)]+)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:[^>]*\s)?(?:id|name)=\"([^\"]+)\"", re.I)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)
LINE_ANCHOR = re.compile(r"^L\d+(-L\d+)?$")  # GitHub's anchors of lines in a source file


@dataclass(frozen=True)
class Link:
    source: Path
    line: int
    target: str


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, numbered from 1."""
    lines, fence = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)[0] * len(opening.group(1))
            continue
        if fence is not None:
            if line.strip().startswith(fence) and set(line.strip()) == {fence[0]}:
                fence = None
            continue
        lines.append((number, line))
    return lines


def links_of(path: Path) -> list[Link]:
    found = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        line = CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)  # inline code is not a link
        targets = [m.group(1) for m in INLINE_LINK.finditer(line)]
        definition = REFERENCE_DEFINITION.match(line)
        if definition:
            targets.append(definition.group(1))
        found += [Link(path, number, target.strip("<>")) for target in targets]
    return found


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text as shown, lower-case, punctuation removed
    (hyphens and underscores kept), each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML shows nothing of its tags
    text = text.strip().lower()
    return "".join("-" if ch == " " else ch for ch in text if ch.isalnum() or ch in "-_ ")


def anchors_of(path: Path) -> set[str]:
    """Every anchor of a Markdown file: its headings' (the second of one name gets ``-1``, the
    third ``-2``, as on GitHub) and those of explicit ``<a id="...">`` tags."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for _number, line in prose_lines(path.read_text(encoding="utf-8")):
        anchors.update(HTML_ANCHOR.findall(line))
        heading = HEADING.match(line)
        if heading is None:
            continue
        slug = github_slug(heading.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def link_problem(link: Link) -> str | None:
    """Why ``link`` does not resolve, or None when it does."""
    target = link.target
    if SCHEME.match(target):
        return None if target.lower().startswith("https://") else "only https links may leave the repository"
    path_part, _, anchor = target.partition("#")
    path_part = path_part.split("?", 1)[0]
    destination = (link.source.parent / unquote(path_part)).resolve() if path_part else link.source
    if not destination.exists():
        return f"no such file: {destination.relative_to(ROOT) if destination.is_relative_to(ROOT) else destination}"
    if not destination.is_relative_to(ROOT):
        return "points outside the repository"
    if not anchor:
        return None
    if destination.suffix.lower() != ".md":
        return None if LINE_ANCHOR.match(anchor) else f"#{anchor} points into a file without headings"
    if unquote(anchor) not in anchors_of(destination):
        return f"no heading of {destination.relative_to(ROOT)} is #{anchor}"
    return None


def test_the_readme_fits_on_a_screen():
    size = len((ROOT / "README.md").read_bytes())
    assert size < README_MAX_BYTES, f"README.md is {size} bytes; the rest belongs in docs/"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(document):
    problems = [
        f"{link.source.relative_to(ROOT)}:{link.line}: ({link.target}) {problem}"
        for link in links_of(document)
        if (problem := link_problem(link)) is not None
    ]
    assert not problems, "\n".join(problems)


# Every variable the product reads from the environment is in docs/deployment.md; the one
# ``manage.py serve`` sets for gunicorn itself is nobody's to set.
SETTINGS_SOURCES = ("config/settings.py", "config/gunicorn.py", "coaching/management/commands/serve.py")
ENVIRONMENT_READ = re.compile(r"""(?:environ(?:\.get)?\(\s*|environ\[|_env_int\(|env_bool\()["']([A-Z][A-Z0-9_]+)""")
SET_BY_SERVE = {"RLBP_METRICS_DIR_EMPTIED"}


def test_the_deployment_page_names_every_environment_variable():
    read = {name for source in SETTINGS_SOURCES for name in ENVIRONMENT_READ.findall((ROOT / source).read_text())}
    assert {"DJANGO_SECRET_KEY", "JOBS_PARTS", "FEED_SETTLE_SECONDS", "QUEUE_WORKERS"} <= read
    page = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    missing = sorted(name for name in read - SET_BY_SERVE if f"`{name}`" not in page)
    assert not missing, f"docs/deployment.md does not name {missing}"


def test_the_readme_links_every_document():
    linked = {
        (ROOT / link.target.partition("#")[0]).resolve()
        for link in links_of(ROOT / "README.md")
        if not SCHEME.match(link.target) and link.target.partition("#")[0]
    }
    missing = [str(path.relative_to(ROOT)) for path in DOCUMENTS if path.name != "README.md" and path not in linked]
    assert not missing, f"documents the README does not link: {missing}"


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Two commands", "two-commands"),
        ("Sending events: `POST /api/v1/events/`", "sending-events-post-apiv1events"),
        ("For operators: `/healthz`, `/metrics`, `/api/docs/`", "for-operators-healthz-metrics-apidocs"),
        ("`pain_report`", "pain_report"),
        ("Keeping a copy in step: `changed_since`", "keeping-a-copy-in-step-changed_since"),
        ("How urgent: five tiers", "how-urgent-five-tiers"),
        ("Rate limits and the shared cache", "rate-limits-and-the-shared-cache"),
        ("The [rules](rules.md) app", "the-rules-app"),
    ],
)
def test_headings_are_named_as_github_names_them(heading, slug):
    assert github_slug(heading) == slug


def test_a_broken_link_or_anchor_is_found(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n\n## Two words\n\n## Two words\n", encoding="utf-8")
    page = tmp_path / "README.md"
    page.write_text(
        "# Read me\n\n"
        "[ok](docs/guide.md#two-words) [second of the name](docs/guide.md#two-words-1) [here](#read-me)\n"
        "[gone](docs/missing.md) [no heading](docs/guide.md#three-words) [plain http](http://example.org)\n"
        "`[in code](docs/nowhere.md)` [out](https://example.org)\n"
        "```\n[in a block](docs/nowhere.md)\n```\n",
        encoding="utf-8",
    )
    problems = {link.target: link_problem(link) for link in links_of(page)}
    assert problems == {
        "docs/guide.md#two-words": None,
        "docs/guide.md#two-words-1": None,
        "#read-me": None,
        "docs/missing.md": "no such file: docs/missing.md",
        "docs/guide.md#three-words": "no heading of docs/guide.md is #three-words",
        "http://example.org": "only https links may leave the repository",
        "https://example.org": None,
    }

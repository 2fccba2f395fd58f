"""Checks of the built HTML site: run by `make test` right after the book is built."""

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml

ROOT = Path(__file__).resolve().parents[2]


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts, self.images, self.styles = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.scripts.append(a["src"])
        elif tag == "img" and a.get("src"):
            self.images.append(a["src"])
        elif tag == "link" and a.get("rel") == "stylesheet" and a.get("href"):
            self.styles.append(a["href"])


def _pages(site):
    return sorted(site.rglob("*.html"))


def _refs(page):
    parser = _Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def _toc_entries():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    entries = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            entries.append(chapter["file"])
            entries += [s["file"] for s in chapter.get("sections", [])]
    return entries


def test_every_toc_entry_produced_a_page(site):
    for entry in _toc_entries():
        assert (site / f"{entry}.html").exists(), f"_toc.yml entry {entry} has no page in {site}"


def test_no_page_loads_a_script_or_stylesheet_from_another_host(site):
    for page in _pages(site):
        refs = _refs(page)
        for src in refs.scripts + refs.styles:
            assert not urlparse(src).netloc and not src.startswith("//"), (
                f"{page.relative_to(site)} loads {src} from another host"
            )


def test_every_image_exists(site):
    n = 0
    for page in _pages(site):
        for src in _refs(page).images:
            if src.startswith("data:"):
                continue
            assert not urlparse(src).netloc, f"{page.relative_to(site)} shows an image from another host: {src}"
            target = (page.parent / unquote(src.split("#")[0].split("?")[0])).resolve()
            assert target.exists(), f"{page.relative_to(site)} references a missing image {src}"
            n += 1
    assert n > 0, "no page of the site shows an image: the notebooks' figures are missing"


def test_math_is_typeset_offline(site):
    assert (site / "_static" / "mathjax" / "tex-chtml.js").exists(), "MathJax was not copied into the site"
    page = (site / "book" / "foundations" / "01_why_multimodal.html").read_text(encoding="utf-8")
    assert "_static/mathjax/tex-chtml.js" in page
    assert re.search(r"\\\[|\\\(|\$\$", page), "no math found on the chapter 1 page"


def test_search_index_is_built(site):
    index = (site / "searchindex.js").read_text(encoding="utf-8")
    assert "multimodal" in index.lower()
    assert (site / "search.html").exists()


def test_launch_and_download_buttons(site):
    page = (site / "book" / "foundations" / "01_why_multimodal.html").read_text(encoding="utf-8")
    assert "mybinder.org" in page, "Binder launch button missing"
    assert "colab.research.google.com" in page, "Colab launch button missing"
    assert "01_why_multimodal.ipynb" in page, "download button for the .ipynb missing"


def test_exercises_and_citations_render(site):
    page = (site / "book" / "foundations" / "01_why_multimodal.html").read_text(encoding="utf-8")
    assert "exercise" in page and "solution" in page
    refs = (site / "book" / "appendix" / "references.html").read_text(encoding="utf-8")
    assert "tensor fusion network for multimodal sentiment analysis" in refs.lower()

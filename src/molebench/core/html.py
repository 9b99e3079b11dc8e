"""The one page shell of every HTML page the suite writes (the site and the text-to-image pages copied into it):
plain HTML with inline CSS, no scripts and no external URLs, every piece of text escaped, one navigation bar."""

from __future__ import annotations

import html
import math
from urllib.parse import quote

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 80em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; } td.key { text-align: left; }
tr.average td { border-top: 2px solid #888; font-style: italic; }
td.paper { color: #666; background: #fafafa; } tr.invalid td { background: #fff3f3; }
tr.holds td { background: #eefaee; } tr.fails td { background: #fdeaea; } tr.undecided td { background: #f6f6f6; }
tr.untestable td { background: #eef2fb; color: #555; }
span.holds { background: #eefaee; } span.fails { background: #fdeaea; } span.undecided { background: #f6f6f6; }
span.untestable { background: #eef2fb; }
pre { white-space: pre-wrap; font-size: 0.85em; }
.note { background: #fffbe6; border-left: 4px solid #e0c000; padding: 0.5em 1em; }
nav a { margin-right: 1em; }
"""
# The site's top-level pages, shown on every page; `root` is the relative path from a page to the site's root.
NAVIGATION = (("index.html", "index"), ("claims.html", "claims"), ("lora_gain.html", "LoRA gain"),
              ("provenance.html", "provenance"), ("reliability.html", "reliability"))


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def fmt(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def link(href: str, text: str) -> str:
    return f'<a href="{esc(quote(href))}">{esc(text)}</a>'


def page(title: str, body: str, root: str = "") -> str:
    nav = "".join(link(root + href, text) for href, text in NAVIGATION)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{CSS}</style></head>\n<body><nav>{nav}</nav>\n<h1>{esc(title)}</h1>\n{body}\n</body></html>\n")

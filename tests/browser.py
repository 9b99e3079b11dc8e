"""Load site pages in headless Chromium and report every link and image on them (the site's browser check).

A checker page, opened with file access allowed, reads each page with XMLHttpRequest, parses it, requests each link
(a missing file throws) and loads each image into itself; at its load event it notes which images decoded. Chromium
prints the checker's DOM after that event, and the report is read from it.
"""

import html
import json
import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MISSING = "chromium is not on PATH: `make setup` installs it (Debian: apt-get install chromium)"

CHECKER = """<!DOCTYPE html><html><body><pre id="report">pending</pre><div id="images" hidden></div><script>
const site = new URL(%(site)s), report = [], images = [];
function read(url) {  // synchronous: the check is done by the time the page's load event fires
  const request = new XMLHttpRequest();
  try { request.open("GET", url, false); request.send(); return request.responseText; } catch (e) { return null; }
}
for (const page of %(pages)s) {
  const url = new URL(page, site), text = read(url);
  if (text === null) { report.push({page, kind: "page", target: page, ok: false}); continue; }
  const doc = new DOMParser().parseFromString(text, "text/html");
  report.push({page, kind: "page", target: page, ok: true, title: doc.title, tables: doc.querySelectorAll("table").length});
  for (const a of doc.querySelectorAll("a[href]")) {
    const target = a.getAttribute("href");
    report.push({page, kind: "link", target, ok: read(new URL(target, url)) !== null});
  }
  for (const source of doc.querySelectorAll("img[src]")) {  // loaded as images of this page, so load waits for them
    const img = document.createElement("img");
    img.src = new URL(source.getAttribute("src"), url);
    document.getElementById("images").appendChild(img);
    images.push([{page, kind: "image", target: source.getAttribute("src")}, img]);
  }
}
window.addEventListener("load", () => {
  for (const [row, img] of images) report.push({...row, ok: img.complete && img.naturalWidth > 0});
  document.getElementById("report").textContent = JSON.stringify(report);
});
</script></body></html>"""


def check_pages(site: Path, pages: list[str], workdir: Path) -> list[dict]:
    """One row per page, link and image: {page, kind, target, ok}; pages also get their title and table count."""
    checker = workdir / "check.html"
    checker.write_text(CHECKER % {"site": json.dumps(site.resolve().as_uri() + "/"), "pages": json.dumps(pages)})
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                           "--virtual-time-budget=30000", "--dump-dom", checker.as_uri()],
                          capture_output=True, text=True, timeout=300, check=True)
    start = done.stdout.index('<pre id="report">') + len('<pre id="report">')
    text = done.stdout[start:done.stdout.index("</pre>", start)]
    report = json.loads(html.unescape(text))
    assert isinstance(report, list), f"the checker page failed in Chromium: {report}"
    return report

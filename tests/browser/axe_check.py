"""What the browser tests share: Debian's Chromium and the accessibility check.

axe-core (tests/interop/axe, from npm) runs against WCAG 2.0-2.2 A and AA; a serious or
critical violation fails the calling script.
"""

import json
import os

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
AXE = os.path.join(ROOT, "tests", "interop", "axe", "node_modules", "axe-core", "axe.min.js")
CHROMIUM = os.environ.get("CS_CHROMIUM", "/usr/bin/chromium")
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def axe_check(page, name, fail):
    """Runs axe-core on `page`; calls `fail` with the serious and critical violations
    (rule, impact, the elements) and returns how many violations there were in all."""
    # Evaluated over the DevTools protocol, which the page's CSP does not govern (an
    # inserted <script> would be refused).
    with open(AXE, encoding="utf-8") as f:
        page.evaluate(f.read())
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})", TAGS
    )
    bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    if bad:
        fail(f"axe on {name}: " + json.dumps(
            [(v["id"], v["impact"], [n["target"] for n in v["nodes"]]) for v in bad]))
    return len(result["violations"])

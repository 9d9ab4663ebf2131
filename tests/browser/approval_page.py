#!/usr/bin/env python3
"""Opens the page a held MCP call's URL elicitation links to, in headless Chromium.

Run by tests/tests/mcp_input_required.rs against a real server:

    approval_page.py URL NAME EXPECTED_TEXT [--shots DIR]

It loads URL, checks the answer is 200 HTML with a CSP that allows no script, that the
page runs none and says EXPECTED_TEXT, runs axe-core (no serious or critical violation)
at 1280 px in light and 390 px in dark, and with --shots saves DIR/NAME.png and
DIR/NAME-390.png. Prints {"ok": true, ...}; exits non-zero with a message on a failure.
"""

import argparse
import json
import os
import sys

from playwright.sync_api import sync_playwright

from axe_check import CHROMIUM, axe_check


def fail(message):
    print(f"approval_page.py: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("name")
    parser.add_argument("expected")
    parser.add_argument("--shots")
    args = parser.parse_args()
    minor = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for width, scheme, suffix in ((1280, "light", ""), (390, "dark", "-390")):
            context = browser.new_context(viewport={"width": width, "height": 800},
                                          color_scheme=scheme)
            page = context.new_page()
            response = page.goto(args.url)
            if response is None or response.status != 200:
                fail(f"{args.url} answered {response and response.status}")
            headers = response.headers
            if not headers.get("content-type", "").startswith("text/html"):
                fail(f"content-type {headers.get('content-type')}")
            csp = headers.get("content-security-policy", "")
            if "default-src 'none'" not in csp or "script-src" in csp:
                fail(f"the page's CSP lets something run: {csp!r}")
            if headers.get("referrer-policy") != "no-referrer":
                fail("the link would leak in the Referer header")
            if page.evaluate("document.scripts.length") != 0:
                fail("the page carries a script")
            text = page.inner_text("main")
            if args.expected not in text:
                fail(f"{args.expected!r} is not on the page: {text!r}")
            if page.evaluate("document.documentElement.scrollWidth > window.innerWidth"):
                fail(f"the page scrolls sideways at {width} px")
            minor[f"{args.name}{suffix}"] = axe_check(page, f"{args.name}{suffix}", fail)
            if args.shots:
                os.makedirs(args.shots, exist_ok=True)
                page.screenshot(path=os.path.join(args.shots, f"{args.name}{suffix}.png"),
                                full_page=True)
            context.close()
        browser.close()
    print(json.dumps({"ok": True, "axe_minor_violations": minor}))


if __name__ == "__main__":
    main()

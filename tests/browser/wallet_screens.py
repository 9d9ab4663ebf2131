"""The wallet app's screens in headless Chromium at a phone's 390 px, light and dark:
axe-core on each (no serious or critical violation), no horizontal scrolling, and no
Content-Security-Policy violation under the app's own policy. The built front end
(wallet-app/ui/dist) is served with that CSP; each screen is reached through the
front end's stand-in backend (`?mock=<scenario>`, src/dev-mock.ts), which only runs
outside the app.

Invoked by tests/tests/wallet_screens.rs: argv[1] the dist folder, argv[2] the CSP,
and `--shots DIR` to save screenshots. Prints one JSON object with what it saw.
"""

import functools
import http.server
import json
import os
import sys
import threading

from playwright.sync_api import sync_playwright

from axe_check import CHROMIUM, axe_check


# (scenario, what must be on the screen)
SCREENS = [
    ("unlock", "#passphrase"),
    ("unlock-first-run", "#passphrase-confirm"),
    ("enroll", "#enroll-uri"),
    ("enroll-preview", "#enroll-confirm"),
    ("inbox", "#inbox li[data-request-id]"),
    ("inbox-empty", "#inbox-empty"),
    ("request", "#approve"),
    ("request-unverified", "#request-error"),
    ("approved", "#decision-result"),
    ("history", "#history"),
    ("settings", "#remove-device"),
]


def fail(message):
    print(f"wallet_screens.py: {message}", file=sys.stderr)
    sys.exit(1)


def serve(dist, csp):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def end_headers(self):
            self.send_header("Content-Security-Policy", csp)
            super().end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=dist)
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def main():
    dist, csp = sys.argv[1], sys.argv[2]
    shots = sys.argv[sys.argv.index("--shots") + 1] if "--shots" in sys.argv else None
    base = serve(dist, csp)
    seen = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for scheme in ("light", "dark"):
            context = browser.new_context(
                viewport={"width": 390, "height": 844}, color_scheme=scheme
            )
            page = context.new_page()
            violations = []
            page.on("console", lambda m: violations.append(m.text)
                    if "Content Security Policy" in m.text or "Refused to" in m.text else None)
            for scenario, marker in SCREENS:
                page.goto(f"{base}/?mock={scenario}")
                try:
                    page.wait_for_selector(marker, timeout=10_000)
                except Exception:
                    fail(f"{scenario} ({scheme}) never showed {marker}: {page.inner_text('body')[:500]}")
                page.wait_for_timeout(200)
                name = f"{scenario}-{scheme}"
                minor = axe_check(page, name, fail)
                overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                if overflow > 0:
                    fail(f"{name} scrolls sideways at 390 px by {overflow} px")
                if scenario == "request-unverified" and page.query_selector("#approve"):
                    fail("an unverified request has an approve control")
                seen[name] = {"axe_minor": minor}
                if shots:
                    page.screenshot(path=os.path.join(shots, f"chromium-{name}.png"), full_page=True)
            if violations:
                fail(f"CSP violations ({scheme}): {violations}")
            context.close()
        browser.close()
    print(json.dumps({"ok": True, "screens": seen}))


if __name__ == "__main__":
    main()

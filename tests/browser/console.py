#!/usr/bin/env python3
"""Drives the server console in headless Chromium (Playwright, Debian's chromium).

Run by tests/tests/console_browser.rs against a real server it seeded:

    console.py BASE SIGN_IN_LINK AGENT_ID AGENT_SECRET [--shots DIR]

It signs in with the single-use link, registers a passkey in Chromium's virtual
authenticator, signs out and back in with it, runs axe-core on every page (no serious or
critical violation), checks that an injected inline script does not run (CSP), watches a
CIBA step-up appear live in the overview's queue, suspends the agent `procurement` with a
reason, offboards `bob` after reading the preview, verifies the chain, and with --shots
saves every page at 1280 px (light) and 390 px (dark) as DIR/NAME.png and NAME-390.png.
Exits non-zero with a message on the first failure.
"""

import argparse
import base64
import json
import os
import sys
import urllib.request

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from axe_check import CHROMIUM, axe_check


PAGES = [
    ("overview", "/console/"),
    ("agents", "/console/agents"),
    ("agent", "/console/agents/procurement"),
    ("register", "/console/agents/new"),
    ("humans", "/console/humans"),
    ("human", "/console/humans/bob"),
    ("offboard", "/console/humans/bob/offboard"),
    ("credentials", "/console/credentials"),
    ("approvers", "/console/approvers?agent=watcher&action=purchase_order&arguments=%7B%22vendor%22%3A%22Acme%22%2C%22amount%22%3A1200%2C%22currency%22%3A%22USD%22%7D"),
    ("policies", "/console/policies"),
    ("passkeys", "/console/passkeys"),
    ("trace", "/console/trace?verify=1"),
    ("trace-filtered", "/console/trace?agent=procurement&outcome=step_up&from=2020-01-01&to=2099-12-31"),
    ("who-approved", "/console/trace/approvals?agent=procurement"),
    # ("trace-event", the newest decision's detail) is added once the server is seeded.
    ("integrations", "/console/integrations"),
]

BROKEN_POLICY = """@id("small-orders")
permit (principal, action == Action::"purchase_order", resource)
when { context.totals.amount < };
"""

GOOD_POLICY = """@id("small-orders")
@reason("orders under $400 pass without approval")
permit (principal, action == Action::"purchase_order", resource)
when { context.totals.amount < 400 };

@id("large-orders")
@step_up
@reason("orders of $400 or more need the owner's approval")
permit (principal, action == Action::"purchase_order", resource)
when { context.totals.amount >= 400 };
"""


def shoot(page, path):
    """A full-page screenshot for docs/. Chromium sometimes answers "Unable to capture
    screenshot" while the machine is busy (seen once in a full suite, never alone): the
    capture is tried again, twice at most; any other error, or a third refusal, fails."""
    for attempt in range(3):
        try:
            page.screenshot(path=path, full_page=True)
            return
        except PlaywrightError as e:
            if "Unable to capture screenshot" not in str(e) or attempt == 2:
                raise
            page.wait_for_timeout(500)


def fail(message):
    print(f"console.py: {message}", file=sys.stderr)
    sys.exit(1)


def step_up(base, agent, secret):
    body = urllib.parse.urlencode({
        "scope": "openid",
        "login_hint": "alice",
        "binding_message": "LIVE1",
        "authorization_details": json.dumps([{"type": "purchase_order", "vendor": "Initech",
                                               "amount": 4200, "currency": "USD"}]),
    }).encode()
    request = urllib.request.Request(f"{base}/bc-authorize", data=body, method="POST")
    token = base64.b64encode(f"{agent}:{secret}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request) as resp:
        return json.load(resp)["auth_req_id"]


def passkey_round_trip(context, page, base):
    """Registers a passkey in Chromium's virtual authenticator (CTAP 2.1 for credProtect,
    internal, with user verification), signs out, and signs back in with it: the console is the relying party."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "ctap2Version": "ctap2_1", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True}})["authenticatorId"]
    page.goto(f"{base}/console/passkeys")
    axe_check(page, "passkeys", fail)
    page.get_by_label("Name this passkey").fill("browser test laptop")
    page.get_by_role("button", name="Register a passkey").click()
    try:
        page.wait_for_url(f"{base}/console/passkeys?registered=1")
    except Exception:
        fail(f"registering a passkey: {page.locator('#passkey-status').inner_text()!r}")
    if "browser test laptop" not in page.locator("main table").inner_text():
        fail(f"the registered passkey is not listed: {page.inner_text('main')[:800]}")
    stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    if len(stored) != 1 or not stored[0]["isResidentCredential"]:
        fail(f"the authenticator holds no discoverable passkey: {stored}")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/console/sign-in")
    page.get_by_role("button", name="Sign in with a passkey").click()
    try:
        page.wait_for_url(f"{base}/console/")
    except Exception:
        fail(f"signing in with the passkey: {page.locator('#passkey-status').inner_text()!r}")
    if "Signed in as admin" not in page.inner_text("header"):
        fail(f"the passkey sign-in did not open an admin session: {page.inner_text('header')}")
    if "times in Europe/Paris" not in page.inner_text("header"):
        fail(f"the console does not show the browser's time zone: {page.inner_text('header')}")
    page.goto(f"{base}/console/passkeys")
    if "+01:00" not in page.locator("main table").inner_text():
        fail(f"times are not in the browser's zone: {page.locator('main table').inner_text()}")
    signed = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    if signed[0]["signCount"] < 1:
        fail(f"the sign-in did not use the passkey: {signed}")
    page.goto(f"{base}/console/")


def main():
    import urllib.parse  # noqa: F401 (used by step_up)

    args = argparse.ArgumentParser()
    args.add_argument("base")
    args.add_argument("link")
    args.add_argument("agent")
    args.add_argument("secret")
    args.add_argument("--shots")
    a = args.parse_args()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        # An admin in Paris: pages show times in the browser's zone once it has said.
        context = browser.new_context(viewport={"width": 1280, "height": 800},
                                      timezone_id="Europe/Paris")
        page = context.new_page()
        page.set_default_timeout(15000)

        page.goto(a.link)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        if page.url != f"{a.base}/console/":
            fail(f"signing in landed on {page.url}: {page.inner_text('body')[:500]}")
        if page.get_by_role("heading", name="Overview").count() != 1:
            fail("signing in did not land on the overview")

        # CSP: a script inserted into the page by an attacker's markup does not run.
        page.evaluate(
            "() => { const s = document.createElement('script');"
            " s.textContent = 'window.__injected = 1'; document.body.appendChild(s); }"
        )
        if page.evaluate("() => window.__injected") is not None:
            fail("an injected inline script ran: the CSP does not hold")

        passkey_round_trip(context, page, a.base)

        # A step-up made now appears in the queue without a reload (server-sent events).
        step_up(a.base, a.agent, a.secret)
        page.get_by_role("cell", name="purchase_order: Initech, 4200 USD").wait_for(timeout=20000)

        # The detail of the newest decision in the trail (its number depends on the seed).
        page.goto(a.base + "/console/trace?kind=decision.made")
        event = page.locator("a[href^='/console/trace/'][aria-label^='Event ']").first.get_attribute("href")
        if not event:
            fail("the trace lists no decision to open")
        PAGES.append(("trace-event", event))

        violations = {}
        for name, path in PAGES:
            page.goto(a.base + path)
            violations[name] = axe_check(page, name, fail)
        # Registering an agent shows its secret once.
        page.goto(f"{a.base}/console/agents/new")
        page.get_by_label("Client id").fill("registered-in-console")
        page.get_by_label("Owner (a human's subject)").fill("alice")
        page.get_by_label("Client authentication").select_option("client_secret_basic")
        page.get_by_role("button", name="Register agent").click()
        page.get_by_text("shown only this once").wait_for()
        if len(page.get_by_label("Client secret").input_value()) < 32:
            fail("no client secret shown after registering")

        # A wallet invitation with its QR code.
        page.goto(f"{a.base}/console/humans/alice")
        page.get_by_role("button", name="Invite a wallet (QR code)").click()
        page.get_by_role("img", name="QR code of the enrollment link for alice").wait_for()
        if not page.get_by_label("Enrollment link (for the wallet app, or to paste)").input_value().startswith("countersign://enroll"):
            fail("the invitation shows no enrollment link")
        axe_check(page, "invitation", fail)

        # A credential's detail, decoded.
        page.goto(f"{a.base}/console/credentials?agent=procurement")
        page.locator("main table a").first.click()
        if "purchase_order" not in page.inner_text("main"):
            fail("the credential's detail does not show what was approved")

        # A policy with an error shows where; fixed, it dry-runs and is activated.
        page.goto(f"{a.base}/console/policies")
        editor = page.get_by_label("Cedar policy document")
        editor.fill(BROKEN_POLICY)
        page.get_by_role("button", name="Validate").click()
        problems = page.locator("#problems").inner_text()
        if "Line 3, column" not in problems:
            fail(f"no line and column for the broken policy: {problems!r}")
        page.get_by_label("Cedar policy document").fill(GOOD_POLICY)
        page.get_by_role("button", name="Dry-run against the last 7 days").click()
        if "replayed" not in page.get_by_role("status").first.inner_text():
            fail("the dry-run reported nothing")
        page.get_by_label("Description of this version").fill("browser test")
        page.get_by_role("button", name="Save and activate").click()
        page.get_by_text("saved and active").wait_for()
        # The saved version's page shows what it changed, line by line.
        page.locator("main table a[href^='/console/policies/']").first.click()
        page.get_by_role("heading", name="Policy version").wait_for()
        if page.locator("pre.diff .added").count() < 1:
            fail("the new version's page shows no added lines")
        axe_check(page, "policy-version", fail)
        PAGES.append(("policy-version", page.url.removeprefix(a.base)))

        # The kill switch, with its reason and confirmation.
        page.goto(f"{a.base}/console/agents/procurement")
        page.get_by_label("Reason (recorded in the trail)").fill("browser test: key leaked")
        page.get_by_label("I understand this revokes its credentials now").check()
        page.get_by_role("button", name="Suspend agent").click()
        page.get_by_text("suspended", exact=True).first.wait_for()

        # Offboarding after the preview.
        page.goto(f"{a.base}/console/humans/bob")
        page.get_by_role("link", name="Offboard…").click()
        if "revoke" not in page.inner_text("main"):
            fail("the offboarding preview says nothing about revocations")
        page.get_by_label("Reason (recorded in the trail)").fill("browser test: left the company")
        page.get_by_label("I have read what this ends").check()
        page.get_by_role("button", name="Offboard now").click()
        page.get_by_text("offboarded", exact=True).first.wait_for()
        # Reactivation is offered, and says what it does not restore.
        if page.get_by_role("button", name="Reactivate").count() != 1:
            fail("an offboarded human's page offers no reactivation")

        # The chain verifies, after all of that.
        page.goto(f"{a.base}/console/trace")
        page.get_by_role("button", name="Verify the chain").click()
        status = page.get_by_role("status").inner_text()
        if "intact" not in status:
            fail(f"chain verification: {status}")

        # The trail about the suspended agent, exported as JSON lines.
        page.get_by_label("Export events about agent").fill("procurement")
        with page.expect_download() as download:
            page.get_by_role("button", name="Export JSON lines").click()
        lines = open(download.value.path(), encoding="utf-8").read().splitlines()
        kinds = [json.loads(line)["kind"] for line in lines]
        if "agent.suspended" not in kinds:
            fail(f"the export about procurement lacks its suspension: {kinds}")
        # Every page as it stands after all of that.
        if a.shots:
            os.makedirs(a.shots, exist_ok=True)
            for name, path in PAGES:
                page.goto(a.base + path)
                shoot(page, os.path.join(a.shots, f"{name}.png"))
            phone = browser.new_context(viewport={"width": 390, "height": 844},
                                        color_scheme="dark", storage_state=context.storage_state())
            small = phone.new_page()
            for name, path in PAGES:
                small.goto(a.base + path)
                width = small.evaluate("() => document.documentElement.scrollWidth")
                if width > 390:
                    wide = small.evaluate(
                        "() => [...document.querySelectorAll('body *')]"
                        ".filter(e => e.getBoundingClientRect().right > 391)"
                        ".slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' +"
                        " Math.round(e.getBoundingClientRect().right))")
                    fail(f"{name} is {width} px wide at a 390 px screen: {wide}")
                shoot(small, os.path.join(a.shots, f"{name}-390.png"))
            phone.close()

        browser.close()
    print(json.dumps({"ok": True, "axe_minor_violations": violations}))


if __name__ == "__main__":
    main()

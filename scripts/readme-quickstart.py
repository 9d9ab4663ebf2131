#!/usr/bin/env python3
"""Runs README.md's Quickstart exactly as written, so the README cannot rot.

The ```sh blocks under "## Quickstart" are taken from the README itself. The first
(starting the server) runs in the background; the others run, in order, in one bash
session on a pseudo-terminal, as a person at a terminal would type them (the headless
wallet asks for confirmation only on a terminal; this answers "y" when it asks).

Two things differ from a newcomer's machine, both by environment rather than by editing
the commands: the server's data (database, keys, wallet state) lives in a temporary
directory, and it listens on a free port instead of 8080 (so a server a developer
already runs there does not break the suite); the port is the only text substituted.

Then the output is checked for what the README promises at each step.
"""

import os
import pty
import re
import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_ADDR = "127.0.0.1:8080"


def quickstart_blocks(readme):
    section = readme.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    # Indented under list items: strip the common indentation.
    out = []
    for block in blocks:
        lines = block.splitlines()
        indent = min(len(l) - len(l.lstrip()) for l in lines if l.strip())
        out.append("\n".join(l[indent:] for l in lines) + "\n")
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(base, server, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server exited with {server.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{base}/.well-known/openid-configuration", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"the server was not ready at {base} within {timeout} s")


def run_on_terminal(script, env, answers, timeout):
    """Runs bash on `script` with a pseudo-terminal as its terminal; answers prompts."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        ["bash", "-c", script], stdin=slave, stdout=slave, stderr=slave,
        env=env, cwd=ROOT, start_new_session=True,
    )
    os.close(slave)
    output, answered = b"", 0
    deadline = time.time() + timeout
    while True:
        if time.time() > deadline:
            proc.kill()
            sys.exit("the quickstart did not finish in time; output so far:\n" + output.decode(errors="replace"))
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal's other side is closed
                chunk = b""
            if not chunk:
                break
            output += chunk
            sys.stdout.write(chunk.decode(errors="replace"))
            sys.stdout.flush()
            if answered < len(answers) and output.count(answers[answered][0]) > answered:
                os.write(master, answers[answered][1])
                answered += 1
        elif proc.poll() is not None:
            break
    proc.wait()
    os.close(master)
    return output.decode(errors="replace").replace("\r\n", "\n")


def main():
    with open(os.path.join(ROOT, "README.md")) as f:
        blocks = quickstart_blocks(f.read())
    if len(blocks) < 4:
        sys.exit(f"expected the quickstart's steps as ```sh blocks, found {len(blocks)}")
    port = free_port()
    addr = f"127.0.0.1:{port}"
    base = f"http://{addr}"
    data = tempfile.mkdtemp(prefix="cs-quickstart-")
    env = dict(os.environ)
    env.update({
        "COUNTERSIGN_LISTEN": addr,
        "COUNTERSIGN_DATABASE_URL": f"sqlite://{data}/countersign.db?mode=rwc",
        "COUNTERSIGN_KEYS_DIR": f"{data}/keys",
        "COUNTERSIGN_WALLET_STATE": f"{data}/wallet.json",
        "TERM": "dumb",
    })
    serve, steps = blocks[0], [b.replace(DEFAULT_ADDR, addr) for b in blocks[1:]]
    if DEFAULT_ADDR in serve or "serve" not in serve:
        sys.exit("the quickstart's first block must start the server")
    log = open(os.path.join(data, "server.log"), "w")
    server = subprocess.Popen(["bash", "-c", serve], env=env, cwd=ROOT, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ready(base, server, timeout=900)
        script = "shopt -s expand_aliases\n" + "".join(steps)
        out = run_on_terminal(script, env, answers=[(b"[y/N]", b"y\n")], timeout=600)
    except SystemExit:
        log.flush()
        with open(os.path.join(data, "server.log")) as f:
            print("--- server log ---\n" + f.read()[-4000:])
        raise
    finally:
        try:
            os.killpg(server.pid, 15)
        except ProcessLookupError:
            pass
        server.wait()
    checks = [
        ("step 3: the first poll is authorization_pending", '"authorization_pending"' in out),
        ("step 4: the wallet shows the verified order, binding message and hash, then asks",
         re.search(r'^details\s+\[\{"type":"purchase_order","vendor":"Acme","amount":1200,'
                   r'"currency":"USD"\}\]\n^message\s+W4SCT\n(?:.*\n)*?^transaction\s+\S+\n'
                   r'^Approve this request\? \[y/N\]', out, re.M) is not None),
        ("step 5: the $1,000 call verifies", re.search(r'"valid":\s*true', out) is not None),
        ("step 5: the $1,500 call is refused as outside the approval",
         re.search(r'"reason":\s*"argument_outside_approval"', out) is not None),
        ("step 6: after revocation the credential is refused as revoked",
         re.search(r'"reason":\s*"revoked"', out) is not None),
    ]
    failed = [name for name, ok in checks if not ok]
    for name, ok in checks:
        print(("ok   " if ok else "FAIL ") + name)
    if failed:
        with open(os.path.join(data, "server.log")) as f:
            print("--- server log ---\n" + f.read()[-4000:])
        sys.exit(f"{len(failed)} quickstart check(s) failed")
    print("README quickstart: every step worked as written")


if __name__ == "__main__":
    main()

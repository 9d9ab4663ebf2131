"""Runs the SCIM compliance checker scim2-tester (an independent implementation, from
PyPI) against a Countersign /scim/v2 endpoint: discovery, CRUD, attribute selection
and PATCH add/replace/remove on every attribute the server publishes.

Usage: check.py BASE_URL TOKEN. Prints one line per check; exits 1 if any check ends
in ERROR or CRITICAL (DEVIATION and SKIPPED are reported, not failures).
"""

import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server


def main() -> int:
    base, token = sys.argv[1], sys.argv[2]
    http = Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    client = SyncSCIMClient(http)
    results = check_server(client, raise_exceptions=False)
    failed = 0
    for r in results:
        bad = r.status in (Status.ERROR, Status.CRITICAL)
        failed += bad
        reason = (r.reason or "").replace("\n", " | ")
        print(f"{r.status.name:10} {r.resource_type or '-':6} {r.title}: {reason}")
    print(f"{len(results)} checks, {failed} failed")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())

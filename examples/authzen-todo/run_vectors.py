#!/usr/bin/env python3
"""Runs the AuthZEN interop Todo decision vectors against a running Countersign.

Usage: run_vectors.py ISSUER CLIENT_ID CLIENT_SECRET [VECTORS_JSON]

ISSUER is the server's base URL; CLIENT_ID and CLIENT_SECRET authenticate the
enforcement point (a client registered with client_secret_basic). VECTORS_JSON defaults
to the interop's 1.0 vectors beside this script (decisions-authorization-api-1_0-02.json,
MIT, Copyright (c) 2024 Aserto: LICENSE-decisions).

The endpoints come from the PDP metadata (/.well-known/authzen-configuration). Every
"evaluation" vector is sent alone to the access evaluation endpoint, then all of them as
one batch (execute_all) to the evaluations endpoint; every "evaluations" vector is sent
as it is. Only decisions are compared (the API lets a PDP add context to each). Each
request carries an X-Request-ID the answer must echo. Prints a JSON report; exits 1 when
any vector fails. Standard library only.
"""

import base64
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid


def post(url, auth, body):
    request_id = str(uuid.uuid4())
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": auth,
            "X-Request-ID": request_id,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            echoed = response.headers.get("X-Request-ID")
            return response.status, json.load(response), echoed == request_id
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace"), e.headers.get("X-Request-ID") == request_id


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    issuer, client_id, secret = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
    here = os.path.dirname(os.path.abspath(__file__))
    vectors_file = sys.argv[4] if len(sys.argv) > 4 else os.path.join(here, "decisions-authorization-api-1_0-02.json")
    with open(vectors_file, encoding="utf-8") as f:
        vectors = json.load(f)
    pair = f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(secret, safe='')}"
    auth = "Basic " + base64.b64encode(pair.encode()).decode()

    with urllib.request.urlopen(issuer + "/.well-known/authzen-configuration", timeout=30) as r:
        metadata = json.load(r)
    if metadata.get("policy_decision_point") != issuer:
        sys.exit(f"the metadata names {metadata.get('policy_decision_point')!r}, not {issuer!r}")
    single_url = metadata["access_evaluation_endpoint"]
    batch_url = metadata["access_evaluations_endpoint"]

    failures = []
    report = {"single": [0, 0], "single_as_batch": [0, 0], "batch": [0, 0]}

    def check(kind, index, request, status, body, echoed, expected):
        report[kind][1] += 1
        if status != 200 or not echoed:
            failures.append({"kind": kind, "index": index, "status": status, "body": body,
                             "request_id_echoed": echoed, "request": request})
            return
        if kind == "batch" or kind == "single_as_batch":
            got = [item.get("decision") for item in body.get("evaluations", [])]
        else:
            got = body.get("decision")
        if got == expected:
            report[kind][0] += 1
        else:
            failures.append({"kind": kind, "index": index, "expected": expected, "got": got,
                             "request": request, "answer": body})

    for i, vector in enumerate(vectors.get("evaluation", [])):
        status, body, echoed = post(single_url, auth, vector["request"])
        check("single", i, vector["request"], status, body, echoed, vector["expected"])

    everything = {"evaluations": [v["request"] for v in vectors.get("evaluation", [])]}
    if everything["evaluations"]:
        status, body, echoed = post(batch_url, auth, everything)
        expected = [v["expected"] for v in vectors["evaluation"]]
        check("single_as_batch", 0, "all evaluation vectors", status, body, echoed, expected)

    for i, vector in enumerate(vectors.get("evaluations", [])):
        status, body, echoed = post(batch_url, auth, vector["request"])
        expected = [item["decision"] for item in vector["expected"]]
        check("batch", i, vector["request"], status, body, echoed, expected)

    summary = {kind: {"passed": passed, "total": total} for kind, (passed, total) in report.items()}
    print(json.dumps({"summary": summary, "failures": failures}, indent=2))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

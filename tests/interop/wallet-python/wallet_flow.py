"""Drives wallet-core through its generated Python bindings (uniffi) against a running
Countersign server: enroll with an invitation, list and show the pending requests,
approve one and deny the other, and check the errors a wallet UI relies on.

Invoked by tests/tests/wallet_python.rs with the bindings on PYTHONPATH and:
  argv[1] state file, argv[2] invitation URI, argv[3] request to approve,
  argv[4] request to deny.
Prints one JSON object with what it saw.
"""

import json
import sys

import countersign_wallet_core as cw

state, uri, approve_id, deny_id = sys.argv[1:5]
wallet = cw.WalletHandle.software(state)
assert wallet.enrollment() is None

info = wallet.enroll(
    uri,
    cw.EnrollmentRequest(platform="desktop", name="python wallet", push_channel="none", push_token=None),
)
assert wallet.enrollment().device_id == info.device_id

pending = sorted(item.id for item in wallet.pending_requests())
assert pending == sorted([approve_id, deny_id]), pending

# A request that was not shown cannot be decided.
try:
    wallet.approve(approve_id)
    raise AssertionError("approving an unshown request must fail")
except cw.FfiError.Invalid as e:
    unshown = str(e)

view = wallet.show(approve_id)
approved = wallet.approve(approve_id)
wallet.show(deny_id)
denied = wallet.deny(deny_id, "not an order I placed")

# Unknown requests are refused by the server with its reason.
try:
    wallet.show("no-such-request")
    raise AssertionError("an unknown request must be refused")
except cw.FfiError.Refused as e:
    unknown_status = e.status

print(json.dumps({
    "subject": info.subject,
    "device_id": info.device_id,
    "agent_id": view.agent_id,
    "agent_owner": view.agent_owner,
    "action": view.action,
    "authorization_details": json.loads(view.authorization_details_json),
    "binding_message": view.binding_message,
    "transaction_hash": view.transaction_hash,
    "approved": approved,
    "denied": denied,
    "unshown": unshown,
    "unknown_status": unknown_status,
    "pending_after": [item.id for item in wallet.pending_requests()],
}))

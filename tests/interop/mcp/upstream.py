"""An MCP server behind the Countersign gateway in the test suite, written with the
official Python SDK (`mcp`): a small shop whose large orders need proof of a human's
approval.

The tool verifies that proof on its own, with PyJWT (another ecosystem's JOSE): the
credential is a VC-JWT signed by the issuer's key; the gateway's DPoP proof (RFC 9449)
is signed by the key the credential is bound to, for this URL and this credential; the
arguments the call carries are exactly the ones the human approved; and the issuer counts
the use (`POST /credentials/{id}/uses`), so a replayed credential is spent.

Every call the tools execute is appended to MCP_UPSTREAM_LOG as a JSON line.

Usage: python upstream.py PORT   (Streamable HTTP at http://127.0.0.1:PORT/mcp)
       python upstream.py stdio
"""

import base64
import hashlib
import json
import os
import sys
import urllib.request

import jwt
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings

ISSUER = os.environ.get("COUNTERSIGN_ISSUER", "")
LOG = os.environ.get("MCP_UPSTREAM_LOG")
# Orders from this amount up need an approval the tool can verify.
APPROVAL_FROM = 1000
SELF_URL = ""

mcp = MCPServer("countersign-test-shop", version="1.0.0")


def log_call(tool, arguments, headers):
    if not LOG:
        return
    entry = {"tool": tool, "arguments": arguments}
    if headers is not None:
        entry["authorization"] = headers.get("authorization")
        entry["dpop"] = headers.get("dpop")
    with open(LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def thumbprint(jwk):
    members = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    return b64url(hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest())


def issuer_keys():
    with urllib.request.urlopen(ISSUER + "/jwks.json", timeout=5) as r:
        return {k["kid"]: k for k in json.load(r)["keys"]}


def verified_approval(headers, arguments):
    """The credential's claims, once every check passed; raises ToolError otherwise."""
    authorization = headers.get("authorization") or ""
    proof = headers.get("dpop")
    if not authorization.startswith("DPoP ") or not proof:
        raise ToolError("refused: this order needs an approval (Authorization: DPoP and a DPoP proof)")
    token = authorization[len("DPoP "):]
    header = jwt.get_unverified_header(token)
    if header.get("typ") != "vc+jwt":
        raise ToolError("refused: the credential is not a vc+jwt")
    key = issuer_keys().get(header.get("kid"))
    if key is None:
        raise ToolError("refused: the credential's key is not the issuer's")
    try:
        claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["ES256"], issuer=ISSUER,
                            options={"verify_aud": False})
    except jwt.PyJWTError as e:
        raise ToolError(f"refused: the credential does not verify: {e}")
    proof_header = jwt.get_unverified_header(proof)
    if proof_header.get("typ") != "dpop+jwt" or "jwk" not in proof_header:
        raise ToolError("refused: not a DPoP proof")
    try:
        proof_claims = jwt.decode(proof, jwt.PyJWK(proof_header["jwk"]).key, algorithms=["ES256"],
                                  options={"verify_aud": False})
    except jwt.PyJWTError as e:
        raise ToolError(f"refused: the DPoP proof does not verify: {e}")
    if thumbprint(proof_header["jwk"]) != (claims.get("cnf") or {}).get("jkt"):
        raise ToolError("refused: the proof is not by the key the credential is bound to")
    if proof_claims.get("htm") != "POST" or proof_claims.get("htu") != SELF_URL:
        raise ToolError("refused: the proof is for another request")
    if proof_claims.get("ath") != b64url(hashlib.sha256(token.encode()).digest()):
        raise ToolError("refused: the proof is for another credential")
    details = (claims.get("credentialSubject") or {}).get("authorization_details") or []
    approved = details[0].get("arguments") if details else None
    if approved != arguments:
        raise ToolError(f"refused: the human approved {json.dumps(approved, sort_keys=True)}, "
                        f"not {json.dumps(arguments, sort_keys=True)}")
    # Count the use at the issuer: a credential approved once is spent once.
    credential_id = claims.get("jti")
    request = urllib.request.Request(
        f"{ISSUER}/credentials/{credential_id}/uses",
        data=json.dumps({"htm": "POST", "htu": SELF_URL}).encode(),
        headers={"Authorization": authorization, "DPoP": proof, "Content-Type": "application/json"},
        method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5):
            pass
    except urllib.error.HTTPError as e:
        raise ToolError(f"refused: the issuer did not count the use ({e.code}): {e.read().decode()[:200]}")
    return claims


@mcp.tool()
async def get_catalog(ctx: Context) -> dict:
    """The shop's catalogue."""
    log_call("get_catalog", {}, ctx.headers)
    return {"items": [{"sku": "A-1", "name": "Chair", "price": 120}, {"sku": "B-2", "name": "Desk", "price": 1200}]}


@mcp.tool()
async def place_order(vendor: str, amount: float, currency: str, ctx: Context) -> dict:
    """Place an order with a vendor."""
    arguments = {"vendor": vendor, "amount": amount, "currency": currency}
    headers = ctx.headers
    if amount >= APPROVAL_FROM and headers is not None:
        verified_approval(headers, arguments)
    log_call("place_order", arguments, headers)
    return {"order": f"ord-{vendor.lower()}-{amount:g}", "vendor": vendor, "amount": amount, "currency": currency}


@mcp.tool()
async def read_customer(customer_id: str, ctx: Context) -> dict:
    """A customer's record (confidential)."""
    log_call("read_customer", {"customer_id": customer_id}, ctx.headers)
    return {"customer_id": customer_id, "name": "Erika Mustermann", "iban": "DE02120300000000202051"}


@mcp.tool()
async def send_email(to: str, body: str, ctx: Context) -> dict:
    """Send an email outside the company."""
    log_call("send_email", {"to": to, "body": body}, ctx.headers)
    return {"sent": True, "to": to}


@mcp.tool()
async def drop_database(ctx: Context) -> dict:
    """Delete every table."""
    log_call("drop_database", {}, ctx.headers)
    return {"dropped": True}


if __name__ == "__main__":
    if sys.argv[1:] == ["stdio"]:
        mcp.run()
    else:
        import uvicorn

        port = int(sys.argv[1])
        SELF_URL = f"http://127.0.0.1:{port}/mcp"
        app = mcp.streamable_http_app(
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")

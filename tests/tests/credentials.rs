#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! The credential an approval earns, over a real listener on both databases: its W3C VC
//! Data Model 2.0 shape (pinned by a snapshot), its Token Status List entry, revocation
//! visible at the next status list fetch, and the issuer's did:web document.

use std::io::Read as _;

use countersign_jose::{JwkSet, SigningKeyPair, UnverifiedJws, b64url_decode};
use countersign_tests::{Db, TestServer, both_backends};
use reqwest::StatusCode;
use serde_json::Value;

both_backends!(credential_shape_and_status_list_revocation);

/// Fetches a status list and returns whether entry `idx` is set, checking the token.
async fn revoked_bit(s: &TestServer, uri: &str, idx: u64, jwks: &JwkSet) -> bool {
    let resp = s.http.get(uri).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/statuslist+jwt");
    assert_eq!(resp.headers()["cache-control"], "public, max-age=10");
    let token = resp.text().await.unwrap();
    let jws = UnverifiedJws::parse(&token).unwrap();
    assert_eq!(jws.header.typ.as_deref(), Some("statuslist+jwt"));
    let claims: Value = jws.verify_with_set(jwks).unwrap();
    assert_eq!(claims["sub"], uri);
    assert_eq!(claims["ttl"], 10);
    assert_eq!(claims["status_list"]["bits"], 1);
    let packed = b64url_decode(claims["status_list"]["lst"].as_str().unwrap()).unwrap();
    let mut bytes = Vec::new();
    flate2::read::ZlibDecoder::new(&packed[..])
        .read_to_end(&mut bytes)
        .unwrap();
    assert_eq!(bytes.len(), (1 << 17) / 8, "2^17 entries per list");
    bytes[(idx / 8) as usize] >> (idx % 8) & 1 == 1
}

async fn credential_shape_and_status_list_revocation(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    let agent = s.agent("procurement", "alice", "private_key_jwt").await;
    let details = r#"[{"type":"purchase_order","vendor":"Acme","amount":1200,"currency":"USD"}]"#;
    let dpop = SigningKeyPair::generate();
    let params = [
        ("binding_message", "W4SCT"),
        ("authorization_details", details),
    ];
    let tokens = s
        .approved_tokens(&agent, "alice", &params, Some(&dpop))
        .await;
    let credential = tokens["access_token"].as_str().unwrap();
    assert_eq!(tokens["expires_in"], 900);
    assert_eq!(tokens["authorization_details"][0]["amount"], 1200);

    let jwks = s.jwks().await;
    let jws = UnverifiedJws::parse(credential).unwrap();
    assert_eq!(jws.header.typ.as_deref(), Some("vc+jwt"));
    assert!(
        jwks.keys.iter().any(|k| k.kid == jws.header.kid),
        "kid is in the JWKS"
    );
    let vc: Value = jws.verify_with_set(&jwks).unwrap();

    // Registered claims agree with the credential.
    let iat = vc["iat"].as_i64().unwrap();
    assert_eq!(vc["exp"].as_i64().unwrap() - iat, 900);
    assert_eq!(vc["nbf"], iat);
    assert_eq!(vc["validFrom"], countersign_server::clock::rfc3339(iat));
    assert_eq!(
        vc["validUntil"],
        countersign_server::clock::rfc3339(iat + 900)
    );
    assert_eq!(vc["issuer"], s.issuer());
    assert_eq!(vc["cnf"]["jkt"], vc["credentialSubject"]["key_thumbprint"]);
    let uri = vc["status"]["status_list"]["uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let idx = vc["status"]["status_list"]["idx"].as_u64().unwrap();
    assert!(uri.starts_with(&s.issuer()));

    // The JSON shape, with the values that change from run to run redacted. Maps are
    // sorted: key order is not part of the format, and serde_json's order differs with
    // the features a build unifies (passkey-types turns on `preserve_order`).
    let mut settings = insta::Settings::clone_current();
    settings.set_sort_maps(true);
    let _sorted = settings.bind_to_scope();
    insta::assert_json_snapshot!("credential", vc, {
        ".id" => "[credential id]",
        ".jti" => "[jti]",
        ".iss" => "[issuer]",
        ".issuer" => "[issuer]",
        ".iat" => "[time]", ".nbf" => "[time]", ".exp" => "[time]",
        ".validFrom" => "[rfc3339]", ".validUntil" => "[rfc3339]",
        ".cnf.jkt" => "[jkt]",
        ".credentialSubject.id" => "[agent id]",
        ".credentialSubject.key_thumbprint" => "[jkt]",
        ".evidence[0].approvedAt" => "[rfc3339]",
        ".status.status_list.idx" => "[index]",
        ".status.status_list.uri" => "[status list uri]",
    });

    // Not revoked, then revoked by the holder through RFC 7009: visible at the next fetch.
    assert!(!revoked_bit(&s, &s.url(&uri[s.issuer().len()..]), idx, &jwks).await);
    let (status, _) = s.post_as(&agent, "/revoke", &[("token", credential)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked_bit(&s, &s.url(&uri[s.issuer().len()..]), idx, &jwks).await);
    assert_eq!(
        s.http
            .get(s.url("/status-lists/999"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.http
            .get(s.url("/status-lists/x"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    // did:web: the issuer's DID document lists the signing key under the credential's kid.
    let did: Value = s.get_json("/.well-known/did.json").await;
    let kid = jws.header.kid.unwrap();
    let method = did["verificationMethod"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"].as_str().unwrap().ends_with(&format!("#{kid}")))
        .expect("kid in did.json");
    assert_eq!(method["publicKeyJwk"]["kid"], kid.as_str());
    assert!(
        did["id"]
            .as_str()
            .unwrap()
            .starts_with("did:web:127.0.0.1%3A")
    );
    s.stop().await;
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Enrollment and device administration, on both databases: invitations through the
//! admin API work once and expire; completing enrollment needs a proof by the enrolled
//! key; devices are listed and removed, and a removed device is refused; wallet calls
//! without a valid device proof get 401 with a DPoP challenge.

use std::sync::Arc;

use countersign_jose::SigningKeyPair;
use countersign_tests::wallets::{TestWallet, assert_refused, desktop};
use countersign_tests::{Db, TestServer, both_backends};
use countersign_wallet_core::WalletError;
use countersign_wallet_core::software::MemoryStorage;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(invitations_devices_and_removal);

async fn enroll(uri: &str) -> Result<TestWallet, WalletError> {
    let wallet = TestWallet::over(Arc::new(MemoryStorage::default()), None);
    let uri = uri.to_owned();
    wallet.run(move |w| w.enroll(&uri, &desktop())).await?;
    Ok(wallet)
}

async fn invitations_devices_and_removal(db: Db) {
    let s = TestServer::start(db).await;
    s.human("alice").await;
    s.human("carol").await;
    s.deactivate_only("carol").await;
    let admin = s.admin_api().await;

    let (status, invitation) = admin
        .call(Method::POST, "/admin/v1/humans/alice/invitations", None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invitation}");
    let uri = invitation["uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("countersign://enroll?server="), "{uri}");
    assert_eq!(
        admin
            .call(Method::POST, "/admin/v1/humans/nobody/invitations", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin
            .call(Method::POST, "/admin/v1/humans/carol/invitations", None)
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let wallet = enroll(&uri).await.unwrap();
    assert_refused(enroll(&uri).await.map(|_| ()), 403, "already used");
    let stale = s.invitation("alice").await;
    let unknown = uri.replace("invitation=", "invitation=x");
    assert_refused(enroll(&unknown).await.map(|_| ()), 403, "unknown");

    // Completing enrollment needs a proof signed by the device key being enrolled.
    let fresh = s.invitation("alice").await;
    let invitation = fresh.rsplit_once("invitation=").unwrap().1.to_owned();
    let begun: Value = s
        .http
        .post(s.url("/wallet/v1/enrollments"))
        .json(&json!({ "invitation": invitation }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(begun["rp_id"], "localhost");
    assert_eq!(
        begun["webauthn"]["authenticatorSelection"]["userVerification"],
        "required"
    );
    let device = SigningKeyPair::generate();
    let body = json!({
        "invitation": invitation, "device_key": device.public_jwk(), "platform": "desktop",
        "push_channel": "none", "passkey": {},
    });
    let resp = s
        .http
        .post(s.url("/wallet/v1/enrollments/complete"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "DPoP algs=\"ES256\"");
    let stranger = SigningKeyPair::generate();
    let proof = s.dpop_proof(&stranger, &s.url("/wallet/v1/enrollments/complete"), "p1");
    let resp = s
        .http
        .post(s.url("/wallet/v1/enrollments/complete"))
        .header("DPoP", proof)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let mut bad_platform = body.clone();
    bad_platform["platform"] = json!("palm");
    let proof = s.dpop_proof(&device, &s.url("/wallet/v1/enrollments/complete"), "p2");
    let resp = s
        .http
        .post(s.url("/wallet/v1/enrollments/complete"))
        .header("DPoP", proof)
        .json(&bad_platform)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Devices are listed and can be removed; a removed device is refused.
    let (status, devices) = admin
        .call(Method::GET, "/admin/v1/devices?subject=alice", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(devices.as_array().unwrap().len(), 1, "{devices}");
    assert_eq!(devices[0]["platform"], "desktop");
    let id = devices[0]["id"].as_str().unwrap().to_owned();
    assert!(wallet.run(|w| w.pending()).await.is_ok());
    let (status, removed) = admin
        .call(
            Method::POST,
            &format!("/admin/v1/devices/{id}/remove"),
            Some(json!({"reason": "phone lost"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(removed["disabled_reason"], "phone lost");
    assert_refused(wallet.run(|w| w.pending()).await, 401, "removed");
    assert_eq!(
        admin
            .call(
                Method::POST,
                "/admin/v1/devices/nope/remove",
                Some(json!({"reason": "x"}))
            )
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // No proof, no access.
    let resp = s
        .http
        .get(s.url("/wallet/v1/requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");

    // Last, as it moves the server's clock past the wallets' own.
    s.clock.advance_ms(901_000);
    assert_refused(enroll(&stale).await.map(|_| ()), 403, "expired");
    s.stop().await;
}

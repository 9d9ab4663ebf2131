#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! Device invitations from the command line: the enrolment URI and its QR codes.

mod common;

use common::{add_alice, countersign, json};
use serde_json::Value;

#[test]
fn device_invitations_print_a_uri_and_write_qr_codes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    add_alice(d);
    let png = d.join("invite.png");
    let invitation = json(
        d,
        &[
            "device",
            "invite",
            "--subject",
            "alice",
            "--qr",
            png.to_str().unwrap(),
            "--json",
        ],
    );
    let uri = invitation["uri"].as_str().unwrap();
    assert!(
        uri.starts_with("countersign://enroll?server=http%3A%2F%2F127.0.0.1%3A8080&invitation="),
        "{uri}"
    );
    let image = std::fs::read(&png).unwrap();
    assert_eq!(&image[..8], b"\x89PNG\r\n\x1a\n");
    let svg = d.join("invite.svg");
    json(
        d,
        &[
            "device",
            "invite",
            "--subject",
            "alice",
            "--qr",
            svg.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    assert_eq!(
        json(d, &["device", "list", "--json"]),
        serde_json::json!([])
    );
    let events = json(d, &["audit", "list", "--json"]);
    assert_eq!(events[0]["kind"], "device.invited");

    let unknown = countersign(d)
        .args(["device", "invite", "--subject", "nobody"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no human \"nobody\""));
    let missing = countersign(d)
        .args(["device", "remove", "nope", "--reason", "x"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no device"));
    let push = countersign(d)
        .args(["push", "test", "--device", "nope", "--json"])
        .output()
        .unwrap();
    assert!(!push.status.success());
    let answer: Value = serde_json::from_slice(&push.stdout).unwrap();
    assert_eq!(
        (answer["sent"].clone(), answer["reason"].clone()),
        (Value::Bool(false), Value::from("rejected"))
    );
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly by design

//! The wallet app's screens (its built front end, wallet-app/ui/dist) in headless
//! Chromium at 390 px, light and dark, under the app's own Content-Security-Policy:
//! axe-core on every screen, no sideways scrolling, no CSP violation
//! (tests/browser/wallet_screens.py). scripts/test.sh builds the front end first; the
//! screenshots go to docs/wallet-app/ when `CS_WALLET_SHOTS` is set.

use std::process::Command;

#[test]
fn every_wallet_screen_passes_axe_at_phone_width_in_light_and_dark() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let dist = format!("{root}/wallet-app/ui/dist");
    assert!(
        std::path::Path::new(&format!("{dist}/index.html")).exists(),
        "{dist} is not built: scripts/test.sh runs `npm run build` in wallet-app/ui"
    );
    // The CSP the app ships with, read from its Tauri configuration.
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/wallet-app/src-tauri/tauri.conf.json")).unwrap(),
    )
    .unwrap();
    let csp = config["app"]["security"]["csp"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'self'") && !csp.contains("unsafe-inline"));
    let mut cmd = Command::new(countersign_tests::tools::python());
    cmd.arg(format!("{root}/tests/browser/wallet_screens.py"))
        .arg(&dist)
        .arg(&csp);
    if std::env::var_os("CS_WALLET_SHOTS").is_some() {
        let shots = format!("{root}/docs/wallet-app");
        std::fs::create_dir_all(&shots).unwrap();
        cmd.args(["--shots", &shots]);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {} (scripts/test.sh installs Playwright): {e}",
            countersign_tests::tools::python()
        )
    });
    assert!(
        out.status.success(),
        "the screens failed in Chromium:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["screens"].as_object().unwrap().len(), 22, "{seen}");
}

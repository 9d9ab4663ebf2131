//! Running the Node scripts in `tests/interop/` (independent implementations: panva's
//! openid-client and jose) and reading the JSON they print.

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;

/// Runs `node SCRIPT` in `tests/interop/DIR` with `env`, and parses its stdout as JSON.
/// Fails the test, with the script's output, when it cannot run or exits non-zero.
pub async fn run_json(dir: &str, script: &str, env: &[(&str, String)]) -> Value {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("interop")
        .join(dir);
    assert!(
        dir.join("node_modules").exists(),
        "run `npm ci` in {} first (.ci/run does)",
        dir.display()
    );
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(script)
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
        .await
        .expect("node finished in time")
        .expect("node runs");
    assert!(
        out.status.success(),
        "{script} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

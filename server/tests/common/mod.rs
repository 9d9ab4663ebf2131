//! What the `countersign` binary's test files share: running it as a script would.

use std::process::Command;

use serde_json::Value;

/// The binary of this build, in `dir`, with no database URL from the environment.
pub fn countersign(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_countersign"));
    cmd.current_dir(dir)
        .env_remove("COUNTERSIGN_DATABASE_URL")
        .env("RUST_LOG", "warn");
    cmd
}

/// Runs `args`, expects success and JSON on stdout.
pub fn json(dir: &std::path::Path, args: &[&str]) -> Value {
    let out = countersign(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?} did not print JSON: {e}"))
}

/// Adds alice (alice@example.com) with `human add --json`; what it printed.
pub fn add_alice(dir: &std::path::Path) -> Value {
    json(
        dir,
        &[
            "human",
            "add",
            "--subject",
            "alice",
            "--email",
            "alice@example.com",
            "--name",
            "Alice",
            "--json",
        ],
    )
}

//! Where the suite's external tools are: scripts/test.sh installs them and names them in
//! the environment; a developer's machine that ran it once has them in the same places.

/// The Python of the test virtualenv (Playwright, scim2-tester, jeepney):
/// `CS_SCIM_PYTHON`, else the virtualenv scripts/test.sh keeps under `~/.cache`.
pub fn python() -> String {
    std::env::var("CS_SCIM_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/countersign-venv/bin/python",
            std::env::var("HOME").unwrap_or_default()
        )
    })
}

/// The `countersign` binary of this build: cargo builds it beside the test binaries
/// (`target/<profile>/`) whenever the server package's tests are built, as
/// `cargo test --workspace` (scripts/test.sh) does.
pub fn countersign_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test binary>
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("the test binary is under target/<profile>/deps");
    let binary = profile_dir.join("countersign");
    assert!(
        binary.exists(),
        "{} is missing: build it first (cargo build --bin countersign), or run the \
         workspace's tests (cargo test --workspace)",
        binary.display()
    );
    binary
}

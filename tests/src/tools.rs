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

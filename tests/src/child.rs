//! A Countersign server in a child process, for tests that kill it with SIGKILL and start
//! it again on the same configuration file, database and keys.
//!
//! The test binary re-executes itself with [`CHILD_ENV`] naming the configuration file and
//! `--exact child_server`; the binary's `child_server` test calls [`serve_if_child`], which
//! is a no-op in a normal run and otherwise runs the server until it is killed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use countersign_server::clock::SystemClock;
use countersign_server::config::Config;

pub const CHILD_ENV: &str = "COUNTERSIGN_CHILD_CONFIG";

/// In the child process, runs a server from the configuration file [`CHILD_ENV`] names
/// until the process is killed, logging warnings and errors to stderr; otherwise returns.
pub fn serve_if_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let config = Config::load(Some(Path::new(&path)), Vec::new()).expect("configuration");
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let _running = countersign_server::server::start(config, Arc::new(SystemClock))
                .await
                .expect("server starts");
            std::future::pending::<()>().await;
        });
}

/// The server process of the moment, one at a time; killed when dropped, so a failing
/// test leaves none behind. Each process's stderr goes to a file of its own in `logs`.
pub struct ChildServer {
    config: PathBuf,
    logs: PathBuf,
    base: String,
    child: Option<Child>,
    generation: usize,
}

impl ChildServer {
    /// A server for `config` (which listens at `base`), not started yet.
    pub fn new(config: PathBuf, logs: PathBuf, base: String) -> Self {
        Self {
            config,
            logs,
            base,
            child: None,
            generation: 0,
        }
    }

    fn log_file(&self, generation: usize) -> PathBuf {
        self.logs.join(format!("server-{generation}.log"))
    }

    /// How many processes were started.
    pub fn generations(&self) -> usize {
        self.generation
    }

    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "one server at a time");
        self.generation += 1;
        let log = std::fs::File::create(self.log_file(self.generation)).expect("log file");
        let child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "child_server",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, &self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn the server");
        self.child = Some(child);
    }

    /// SIGKILL, and waits until the process is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
        }
    }

    /// Polls `/readyz` until the server answers. The bound (about 30 s) only keeps a
    /// server that cannot start from hanging the test; one that exits fails it at once,
    /// with its log.
    pub async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        for _ in 0..600 {
            if let Ok(r) = http.get(format!("{}/readyz", self.base)).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().expect("child status"))
            {
                panic!(
                    "the server exited ({status}):\n{}",
                    std::fs::read_to_string(self.log_file(self.generation)).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not become ready");
    }

    /// The warnings and errors every process logged, but for the developer-mode banner,
    /// each prefixed with its process's number.
    pub fn logged(&self) -> Vec<String> {
        (1..=self.generation)
            .flat_map(|generation| {
                std::fs::read_to_string(self.log_file(generation))
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| {
                        (l.contains("ERROR") || l.contains("WARN")) && !l.contains("DEVELOPER MODE")
                    })
                    .map(|l| format!("server {generation}: {l}"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A free loopback port below the ephemeral range, for a server restarted on the same
/// port: while it is down, no outgoing connection of its clients can take the port (or
/// connect to itself on it) before the restart binds it again. Falls back to an ephemeral
/// port where that range starts too low to leave room.
pub fn stable_port() -> u16 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(32768);
    if ephemeral_low > 11_000 {
        for _ in 0..100 {
            let random = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish();
            let port = 10_000 + random % (ephemeral_low - 10_000);
            let port = u16::try_from(port).expect("a port");
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

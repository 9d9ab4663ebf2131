//! `cargo xtask gateway-bench`: allowed MCP tool calls through the gateway against the
//! same calls straight to the upstream, with the same client and the same number of
//! concurrent clients, so the gateway's added latency and its throughput ratio are read
//! off one run. The upstream is an rmcp server in this process with one `echo` tool; the
//! gateway is the release `countersign` binary on SQLite with its trace durable (every
//! call's decision and fate written before the agent gets the result).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientConfig, ContentBlock,
    Implementation, JsonObject, ListToolsResult, PaginatedRequestParams, ProtocolVersion,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RequestContext};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};

use crate::bench::{
    ServerProcess, binary, machine, replace_between, run_date, run_ok, wait_ready, workspace_root,
};

const START: &str = "<!-- bench:gateway:start -->";
const END: &str = "<!-- bench:gateway:end -->";
const PINNED_START: &str = "<!-- bench:gateway-pinned:start -->";
const PINNED_END: &str = "<!-- bench:gateway-pinned:end -->";
/// With `--pin`: the gateway's server on one CPU, this process (the clients and the
/// upstream) on the other.
const SERVER_CPU: &str = "1";
const CLIENT_CPU: &str = "0";

#[derive(clap::Args)]
pub struct GatewayBenchArgs {
    /// Concurrent MCP clients (one session each).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seconds each path is driven (after a warm-up).
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// The gateway's port.
    #[arg(long, default_value_t = 18095)]
    port: u16,
    /// Use the release binary as it is.
    #[arg(long)]
    skip_build: bool,
    /// Print the table without rewriting docs/benchmarks.md.
    #[arg(long)]
    print_only: bool,
    /// Give the gateway's server a CPU of its own and this process (the clients and the
    /// upstream) the other, as when the gateway runs on its own machine: the ratio then
    /// measures what the gateway adds rather than three programs sharing two cores.
    /// Needs `taskset` (util-linux) and two CPUs.
    #[arg(long)]
    pin: bool,
    /// Clients speak MCP 2026-07-28 (`server/discover`, no session, each request
    /// self-contained) instead of 2025-11-25 sessions (`initialize`), on both paths.
    #[arg(long)]
    stateless: bool,
}

/// The upstream: one tool that returns its arguments.
#[derive(Clone)]
struct Echo;

impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("bench-echo", "1"))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut schema = JsonObject::new();
        schema.insert("type".into(), "object".into());
        Ok(ListToolsResult::with_all_items(vec![Tool::new(
            "echo",
            "Returns its arguments",
            Arc::new(schema),
        )]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let text = serde_json::Value::Object(request.arguments.unwrap_or_default()).to_string();
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}

async fn serve_upstream() -> anyhow::Result<String> {
    let service = StreamableHttpService::new(
        || Ok(Echo),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

/// What one path did.
struct PathReport {
    calls: usize,
    errors: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// `clients` sessions calling `tool` on `url` for `seconds` (after 2 s of warm-up).
async fn drive(
    url: &str,
    token: Option<&str>,
    tool: &str,
    clients: usize,
    seconds: u64,
    stateless: bool,
) -> anyhow::Result<PathReport> {
    let mut sessions = Vec::new();
    for _ in 0..clients {
        let mut config = StreamableHttpClientTransportConfig::with_uri(url);
        if let Some(token) = token {
            config = config.auth_header(token);
        }
        let transport = StreamableHttpClientTransport::from_config(config);
        let lifecycle = if stateless {
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            }
        } else {
            ClientLifecycleMode::Initialize
        };
        sessions.push(Arc::new(
            ClientConfig::default()
                .serve_with_lifecycle(transport, lifecycle)
                .await
                .context("an MCP client")?,
        ));
    }
    let warm_up = Instant::now() + Duration::from_secs(2);
    let end = warm_up + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for session in &sessions {
        let session = Arc::clone(session);
        let tool = tool.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            let mut arguments = JsonObject::new();
            arguments.insert("sku".into(), "A-1".into());
            arguments.insert("quantity".into(), 2.into());
            loop {
                let start = Instant::now();
                if start >= end {
                    break;
                }
                let params =
                    CallToolRequestParams::new(tool.clone()).with_arguments(arguments.clone());
                let ok =
                    matches!(session.call_tool(params).await, Ok(r) if r.is_error != Some(true));
                if start >= warm_up {
                    if ok {
                        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await?;
        latencies.extend(l);
        errors += e;
    }
    for session in sessions {
        if let Ok(session) = Arc::try_unwrap(session) {
            let _ = session.cancel().await;
        }
    }
    latencies.sort_by(f64::total_cmp);
    Ok(PathReport {
        calls: latencies.len(),
        errors,
        per_second: latencies.len() as f64 / seconds as f64,
        p50_ms: quantile(&latencies, 0.50),
        p99_ms: quantile(&latencies, 0.99),
    })
}

fn write_config(dir: &Path, port: u16, upstream: &str) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join("countersign.toml");
    let db = dir.join("cs.db");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:{port}\"\n\
             database_url = \"sqlite://{}?mode=rwc\"\n\
             keys_dir = \"{}\"\n\
             [rate_limits]\nper_client_per_sec = 0\n\
             [gateway]\nenabled = true\n\
             [gateway.upstreams.bench]\nurl = \"{upstream}\"\n\
             [gateway.tools.\"bench.echo\"]\ntype = \"echo\"\n",
            db.display(),
            dir.join("keys").display()
        ),
    )?;
    Ok(path)
}

/// A running gateway in front of `upstream`, with an agent allowed to call `echo`.
struct Gateway {
    _server: ServerProcess,
    base: String,
    token: String,
    dir: std::path::PathBuf,
}

async fn start_gateway(port: u16, upstream: &str, pin: bool) -> anyhow::Result<Gateway> {
    let dir =
        std::env::temp_dir().join(format!("countersign-gateway-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = write_config(&dir, port, upstream)?;
    let bin = binary();
    let cli = |extra: &[&str]| {
        let mut c = Command::new(&bin);
        c.current_dir(&dir)
            .arg("--config")
            .arg(&config)
            .args(extra)
            .env("RUST_LOG", "warn");
        c
    };
    run_ok(&mut cli(&[
        "human",
        "add",
        "--subject",
        "alice",
        "--email",
        "alice@example.com",
        "--name",
        "Alice",
    ]))?;
    let agent: serde_json::Value = serde_json::from_str(&run_ok(&mut cli(&[
        "agent",
        "add",
        "--client-id",
        "bench",
        "--owner",
        "alice",
        "--auth",
        "client_secret_basic",
        "--bearer-only",
        "--json",
    ]))?)?;
    let secret = agent["client_secret"]
        .as_str()
        .context("no client_secret")?
        .to_owned();
    let policy = dir.join("allow-echo.cedar");
    std::fs::write(
        &policy,
        "@id(\"echo\")\npermit (principal, action == Action::\"echo\", resource);\n",
    )?;
    run_ok(&mut cli(&[
        "policy",
        "add",
        policy.to_str().context("path")?,
        "--activate",
    ]))?;
    let log = std::fs::File::create(dir.join("server.log"))?;
    let mut serve = if pin {
        // taskset execs the server: the child's pid is the server's.
        let mut c = Command::new("taskset");
        c.args(["-c", SERVER_CPU]).arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    let child = serve
        .current_dir(&dir)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let server = ServerProcess(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await?;
    let token: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/token"))
        .basic_auth("bench", Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", &format!("{base}/mcp")),
        ])
        .send()
        .await?
        .json()
        .await?;
    let token = token["access_token"]
        .as_str()
        .context("no access_token")?
        .to_owned();
    Ok(Gateway {
        _server: server,
        base,
        token,
        dir,
    })
}

pub async fn run(args: GatewayBenchArgs) -> anyhow::Result<()> {
    countersign_gateway::init_tls();
    if !args.skip_build {
        run_ok(
            Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .current_dir(workspace_root())
                .args(["build", "--release", "--bin", "countersign"]),
        )?;
    }
    let upstream = serve_upstream().await?;
    let gateway = start_gateway(args.port, &upstream, args.pin).await?;
    if args.pin {
        // Every thread of this process, the runtime's workers included; threads started
        // later inherit it.
        run_ok(Command::new("taskset").args([
            "-a",
            "-p",
            "-c",
            CLIENT_CPU,
            &std::process::id().to_string(),
        ]))
        .context("pin the clients and the upstream (taskset)")?;
    }
    eprintln!(
        "gateway-bench: {} clients, {} s per path: directly to the upstream",
        args.clients, args.seconds
    );
    let direct = drive(
        &upstream,
        None,
        "echo",
        args.clients,
        args.seconds,
        args.stateless,
    )
    .await?;
    eprintln!("gateway-bench: through the gateway");
    let through = drive(
        &format!("{}/mcp", gateway.base),
        Some(&gateway.token),
        "bench.echo",
        args.clients,
        args.seconds,
        args.stateless,
    )
    .await?;
    if through.errors > 0 || direct.errors > 0 {
        bail!(
            "calls failed: {} through the gateway, {} direct (see {})",
            through.errors,
            direct.errors,
            gateway.dir.join("server.log").display()
        );
    }
    let table = render(&args, &direct, &through);
    println!("{table}");
    if !args.print_only {
        let path = workspace_root().join("docs/benchmarks.md");
        let existing = std::fs::read_to_string(&path).unwrap_or_default();
        let (start, end) = if args.pin {
            (PINNED_START, PINNED_END)
        } else {
            (START, END)
        };
        std::fs::write(
            &path,
            replace_between(&existing, start, end, &format!("{start}\n{table}{end}")),
        )?;
    }
    let _ = std::fs::remove_dir_all(&gateway.dir);
    Ok(())
}

fn render(args: &GatewayBenchArgs, direct: &PathReport, gateway: &PathReport) -> String {
    let pin_flag = if args.pin { " --pin" } else { "" };
    let stateless_flag = if args.stateless { " --stateless" } else { "" };
    let placement = if args.pin {
        format!(
            " The gateway's server ran on CPU {SERVER_CPU}, the clients and the upstream on \
             CPU {CLIENT_CPU}, for both paths."
        )
    } else {
        String::new()
    };
    let mut out = format!(
        "Measured {} on {}.\n\nCommand: `cargo xtask gateway-bench --clients {} --seconds {}{pin_flag}{stateless_flag}`.{placement}\n\n\
         | path | calls/s | p50 ms | p99 ms | calls |\n|---|---:|---:|---:|---:|\n",
        run_date(),
        machine(),
        args.clients,
        args.seconds,
    );
    for (name, r) in [
        ("directly to the upstream", direct),
        ("through the gateway (decided, traced)", gateway),
    ] {
        out.push_str(&format!(
            "| {name} | {:.0} | {:.2} | {:.2} | {} |\n",
            r.per_second, r.p50_ms, r.p99_ms, r.calls
        ));
    }
    out.push_str(&format!(
        "\nAdded by the gateway: p50 {:+.2} ms, p99 {:+.2} ms; throughput {:.0} % of direct.\n",
        gateway.p50_ms - direct.p50_ms,
        gateway.p99_ms - direct.p99_ms,
        100.0 * gateway.per_second / direct.per_second
    ));
    out
}

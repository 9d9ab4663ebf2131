//! The in-process benches of `cargo xtask bench`: each criterion suite runs with
//! `--output-format bencher`, whose lines (`test NAME ... bench: N ns/iter (+/- M)`) are
//! rendered into docs/benchmarks.md between the criterion markers.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

pub const START: &str = "<!-- bench:criterion:start -->";
pub const END: &str = "<!-- bench:criterion:end -->";

/// Suites: what they measure and the `cargo` arguments that run them.
const SUITES: &[(&str, &[&str])] = &[
    (
        "policy decision, 100 policies (server)",
        &["bench", "-p", "countersign-server", "--bench", "decisions"],
    ),
    (
        "verification, p256 backend (verifier)",
        &["bench", "-p", "countersign-verifier", "--bench", "verify"],
    ),
    (
        "verification, ring backend (verifier)",
        &[
            "bench",
            "-p",
            "countersign-verifier",
            "--bench",
            "verify",
            "--features",
            "ring",
        ],
    ),
];

#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub name: String,
    pub ns_per_iter: f64,
    pub spread_ns: f64,
}

pub struct SuiteResult {
    pub suite: &'static str,
    pub command: String,
    pub measurements: Vec<Measurement>,
}

/// Runs every suite (criterion's own progress goes to the terminal).
pub fn run(root: &Path) -> anyhow::Result<Vec<SuiteResult>> {
    let mut results = Vec::new();
    for (suite, args) in SUITES {
        let command = format!("cargo {}", args.join(" "));
        eprintln!("==> {command}");
        let out = Command::new(env!("CARGO"))
            .current_dir(root)
            .args(*args)
            .args(["--", "--output-format", "bencher"])
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running {command}"))?;
        if !out.status.success() {
            bail!("{command} failed");
        }
        let measurements = parse(&String::from_utf8_lossy(&out.stdout));
        if measurements.is_empty() {
            bail!("{command} printed no benchmark results");
        }
        results.push(SuiteResult {
            suite,
            command,
            measurements,
        });
    }
    Ok(results)
}

fn number(text: &str) -> Option<f64> {
    text.trim().replace(',', "").parse().ok()
}

/// The `bencher` lines of criterion's output.
pub fn parse(stdout: &str) -> Vec<Measurement> {
    stdout
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("test ")?.split_once(" ... bench:")?;
            let (ns, rest) = rest.split_once("ns/iter")?;
            let spread = rest
                .split_once("(+/-")
                .and_then(|(_, s)| s.split_once(')'))
                .and_then(|(s, _)| number(s))
                .unwrap_or(0.0);
            Some(Measurement {
                name: name.trim().to_owned(),
                ns_per_iter: number(ns)?,
                spread_ns: spread,
            })
        })
        .collect()
}

fn duration(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.1} µs", ns / 1_000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

pub fn render(date: &str, machine: &str, results: &[SuiteResult]) -> String {
    let mut out = format!(
        "{START}\nMeasured {date} on {machine}.\n\nCommands: {}, each with `-- --output-format bencher` \
         (run by `cargo xtask bench`)\n\n\
         | suite | benchmark | time per iteration | ± | per second, one core |\n|---|---|---:|---:|---:|\n",
        results
            .iter()
            .map(|r| format!("`{}`", r.command))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for r in results {
        for m in &r.measurements {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {:.0} |\n",
                r.suite,
                m.name,
                duration(m.ns_per_iter),
                duration(m.spread_ns),
                1e9 / m.ns_per_iter.max(1.0)
            ));
        }
    }
    out.push_str(END);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bencher_lines_and_ignores_the_rest() {
        let out = "Gnuplot not found\n\
                   test policy_decision/100_policies_20_actions ... bench:        8,012 ns/iter (+/- 153)\n\
                   test verify/ring/one ECDSA P-256 verification ... bench:       69,120 ns/iter (+/- 2,004)\n\
                   test result: ok\n";
        assert_eq!(
            parse(out),
            [
                Measurement {
                    name: "policy_decision/100_policies_20_actions".into(),
                    ns_per_iter: 8012.0,
                    spread_ns: 153.0
                },
                Measurement {
                    name: "verify/ring/one ECDSA P-256 verification".into(),
                    ns_per_iter: 69120.0,
                    spread_ns: 2004.0
                },
            ]
        );
    }

    #[test]
    fn renders_times_in_readable_units() {
        assert_eq!(duration(812.0), "812 ns");
        assert_eq!(duration(8012.0), "8.0 µs");
        assert_eq!(duration(2_500_000.0), "2.50 ms");
    }
}

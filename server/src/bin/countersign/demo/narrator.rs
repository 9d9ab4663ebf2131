//! The demo's timeline. Every event is printed once: as a line a person reads (seconds
//! since the start, a mark, what happened; coloured on a terminal unless `NO_COLOR` is
//! set) or, with `--json`, as one JSON object per line carrying the same facts, so
//! scripts and the test read exactly what the person sees.

use std::io::{IsTerminal as _, Write as _};
use std::time::Instant;

use serde_json::{Map, Value, json};

/// How an event reads: it decides the mark and the colour, nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Something was set up or happened as the product intends.
    Done,
    /// Countersign (or the verifier) stopped something: the point of the demo.
    Stopped,
    /// Waiting on, or shown to, a human.
    Human,
    /// The demo did not go as it must; it exits 1.
    Failed,
}

impl Tone {
    fn mark(self) -> &'static str {
        match self {
            Tone::Done => "✓",
            Tone::Stopped => "✗",
            Tone::Human => "…",
            Tone::Failed => "!",
        }
    }

    /// ANSI SGR colour.
    fn colour(self) -> &'static str {
        match self {
            Tone::Done => "32",
            Tone::Stopped => "33",
            Tone::Human => "36",
            Tone::Failed => "1;31",
        }
    }
}

#[derive(Clone)]
pub struct Narrator {
    json: bool,
    colour: bool,
    started: Instant,
}

impl Narrator {
    pub fn new(json: bool) -> Self {
        let colour = !json
            && std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Self {
            json,
            colour,
            started: Instant::now(),
        }
    }

    pub fn elapsed_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    fn paint(&self, sgr: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{sgr}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// A heading for the next part of the story (`{"event":"part"}` in JSON).
    pub fn part(&self, title: &str) {
        if self.json {
            self.emit(json!({"event": "part", "title": title}));
        } else {
            println!("\n{}", self.paint("1", title));
        }
    }

    /// Event `name` with its facts (`fields`, a JSON object) and the sentence a person
    /// reads; `details` are indented lines under it (text output only: JSON has the facts).
    pub fn event(&self, name: &str, tone: Tone, text: &str, fields: Value, details: &[String]) {
        if self.json {
            let mut object = Map::new();
            object.insert("event".into(), name.into());
            object.insert("elapsed_ms".into(), json!(round2(self.elapsed_ms())));
            if let Value::Object(more) = fields {
                object.extend(more);
            }
            self.emit(Value::Object(object));
            return;
        }
        let at = format!("{:>6.2}s", self.elapsed_ms() / 1000.0);
        println!(
            "{}  {} {text}",
            self.paint("2", &at),
            self.paint(tone.colour(), tone.mark())
        );
        for line in details {
            println!("           {}", self.paint("2", line));
        }
    }

    fn emit(&self, value: Value) {
        let mut out = std::io::stdout().lock();
        // A closed pipe (`| head`) is not worth a panic; the demo still runs to its end.
        let _ = writeln!(out, "{value}");
    }
}

/// Milliseconds with two decimals, for events' `*_ms` fields.
pub fn round2(ms: f64) -> f64 {
    (ms * 100.0).round() / 100.0
}

/// Milliseconds since `since`, rounded for events.
pub fn ms_since(since: Instant) -> f64 {
    round2(since.elapsed().as_secs_f64() * 1000.0)
}

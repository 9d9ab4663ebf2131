//! Where configuration comes from: built-in defaults, then a TOML file, then
//! `COUNTERSIGN_*` environment variables, merged as one TOML tree before it is typed and
//! validated.

use std::path::Path;

use super::{Config, ConfigError};

/// `COUNTERSIGN_*` variables that configure the other Countersign programs, not the
/// server: someone who exported the headless wallet's state file in their shell must
/// still be able to start the server from it.
const OTHER_PROGRAMS: &[&str] = &["COUNTERSIGN_WALLET_STATE"];

impl Config {
    /// Defaults, then `file`, then `COUNTERSIGN_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut tree = toml::Table::try_from(Config::default())
            .map_err(|e| ConfigError::Parse(e.to_string()))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let overlay: toml::Table = text
                .parse()
                .map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
            merge(&mut tree, overlay);
        }
        for (name, value) in env {
            let Some(key) = name.strip_prefix("COUNTERSIGN_") else {
                continue;
            };
            if OTHER_PROGRAMS.contains(&name.as_str()) {
                continue;
            }
            let path: Vec<String> = key.split("__").map(str::to_ascii_lowercase).collect();
            set_path(&mut tree, &path, parse_env_value(&value));
        }
        let config: Config = toml::Value::Table(tree)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }
}

fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [head, rest @ ..] => {
            let entry = table
                .entry(head.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

/// Environment values are typed the way TOML would read them when they parse as a TOML
/// scalar or array (`8`, `true`, `["a"]`), and are strings otherwise.
fn parse_env_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

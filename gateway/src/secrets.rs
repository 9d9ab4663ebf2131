//! The gateway's secret store: upstream API keys and the like, injected into calls and
//! never shown to agents. From a TOML file of `NAME = "value"` (read at start; refused if
//! other users may read it) and environment variables `COUNTERSIGN_SECRET_<NAME>`.

use std::collections::BTreeMap;
use std::path::Path;

/// Prefix of the environment variables holding secrets.
pub const ENV_PREFIX: &str = "COUNTERSIGN_SECRET_";

/// A secret value; `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} can be read by other users (mode {mode:o}); chmod 600 it")]
    TooOpen { path: String, mode: u32 },
    #[error("{path}: {reason}")]
    Parse { path: String, reason: String },
}

/// Every secret the gateway knows, by name.
#[derive(Debug, Clone, Default)]
pub struct Secrets(BTreeMap<String, Secret>);

impl Secrets {
    /// Reads `file` (if any), then the environment; the file wins.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SecretsError> {
        let mut secrets: BTreeMap<String, Secret> = env
            .into_iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(ENV_PREFIX)
                    .map(|name| (name.to_ascii_lowercase(), Secret(v)))
            })
            .collect();
        if let Some(path) = file {
            secrets.extend(read_file(path)?);
        }
        Ok(Self(secrets))
    }

    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.0.get(&name.to_ascii_lowercase())
    }
}

fn read_file(path: &Path) -> Result<BTreeMap<String, Secret>, SecretsError> {
    let shown = path.display().to_string();
    let read = |e: std::io::Error| SecretsError::Read {
        path: shown.clone(),
        reason: e.to_string(),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(read)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretsError::TooOpen { path: shown, mode });
        }
    }
    let text = std::fs::read_to_string(path).map_err(read)?;
    let table: BTreeMap<String, String> =
        toml::from_str(&text).map_err(|e| SecretsError::Parse {
            path: shown.clone(),
            reason: format!("expected NAME = \"value\" lines: {}", e.message()),
        })?;
    Ok(table
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), Secret(v)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_wins_over_the_environment_and_names_ignore_case() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.toml");
        std::fs::write(&path, "shop_key = \"from-file\"\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let env = [
            (
                "COUNTERSIGN_SECRET_SHOP_KEY".to_owned(),
                "from-env".to_owned(),
            ),
            ("COUNTERSIGN_SECRET_CRM_KEY".to_owned(), "crm".to_owned()),
            ("UNRELATED".to_owned(), "x".to_owned()),
        ];
        let secrets = Secrets::load(Some(&path), env).unwrap();
        assert_eq!(secrets.get("shop_key").unwrap().expose(), "from-file");
        assert_eq!(secrets.get("CRM_KEY").unwrap().expose(), "crm");
        assert!(secrets.get("unrelated").is_none());
        assert_eq!(format!("{:?}", secrets.get("crm_key").unwrap()), "***");
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.toml");
        std::fs::write(&path, "k = \"v\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Secrets::load(Some(&path), []),
            Err(SecretsError::TooOpen { mode: 0o644, .. })
        ));
    }
}

//! On Linux desktops, registers the app as the handler of `countersign://` links, so an
//! invitation link clicked in a browser or a mail opens it (with the link as its argument).
//! Two files, as the freedesktop.org specifications define them:
//!
//! - a desktop entry, `$XDG_DATA_HOME/applications/app.countersign.wallet.desktop`
//!   (Desktop Entry Specification), whose `Exec` is this program and whose `MimeType`
//!   names `x-scheme-handler/countersign`;
//! - the default for that type in `$XDG_CONFIG_HOME/mimeapps.list` (Association between
//!   MIME types and applications), unless the owner chose another handler there.
//!
//! Each start rewrites them only if they changed (a moved program updates its `Exec`).

use std::path::{Path, PathBuf};

/// The desktop entry's file name (its id, the app's identifier).
pub const DESKTOP_ID: &str = "app.countersign.wallet.desktop";
/// The MIME type a `countersign://` link has.
pub const SCHEME_TYPE: &str = "x-scheme-handler/countersign";

/// Where the two files go: the XDG base directories (or their defaults under `$HOME`).
#[derive(Debug, Clone)]
pub struct Locations {
    pub data_home: PathBuf,
    pub config_home: PathBuf,
}

impl Locations {
    /// From the environment, per the XDG Base Directory Specification (a relative path
    /// in a variable is ignored); `None` without a home.
    pub fn from_env() -> Option<Self> {
        let home = std::env::var_os("HOME").map(PathBuf::from)?;
        let dir = |var: &str, default: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .unwrap_or_else(|| home.join(default))
        };
        Some(Self {
            data_home: dir("XDG_DATA_HOME", ".local/share"),
            config_home: dir("XDG_CONFIG_HOME", ".config"),
        })
    }
}

/// What registering did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// This program handles `countersign://` links.
    Default,
    /// The entry is there, but the owner's `mimeapps.list` names another handler.
    OtherDefault(String),
}

/// Writes (or refreshes) the desktop entry for `program` and makes it the default handler
/// of `countersign://` links unless another is chosen.
pub fn register(program: &Path, at: &Locations) -> std::io::Result<Registered> {
    let applications = at.data_home.join("applications");
    std::fs::create_dir_all(&applications)?;
    write_if_changed(&applications.join(DESKTOP_ID), &desktop_entry(program))?;
    std::fs::create_dir_all(&at.config_home)?;
    let list_path = at.config_home.join("mimeapps.list");
    let list = match std::fs::read_to_string(&list_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    match with_default(&list) {
        Ok(updated) => {
            write_if_changed(&list_path, &updated)?;
            Ok(Registered::Default)
        }
        Err(other) => Ok(Registered::OtherDefault(other)),
    }
}

/// The desktop entry that opens `program` with the link.
pub fn desktop_entry(program: &Path) -> String {
    format!(
        "[Desktop Entry]\n\
         Type=Application\n\
         Name=Countersign\n\
         Comment=Approve or deny what your agents ask for\n\
         Exec={} %u\n\
         Terminal=false\n\
         Categories=Utility;Security;\n\
         MimeType={SCHEME_TYPE};\n",
        exec_argument(&program.to_string_lossy())
    )
}

/// `program` as one argument of an `Exec` key: quoted, with the characters the
/// specification reserves inside quotes escaped, then `%` doubled (field codes) and
/// backslashes doubled again (the string value's own escaping).
fn exec_argument(program: &str) -> String {
    let mut quoted = String::from("\"");
    for c in program.chars() {
        if matches!(c, '"' | '`' | '$' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted.replace('%', "%%").replace('\\', "\\\\")
}

/// `list` (a `mimeapps.list`) with this app as the default for [`SCHEME_TYPE`] in its
/// `[Default Applications]` group, everything else kept; `Err(handler)` when that group
/// already names another handler.
fn with_default(list: &str) -> Result<String, String> {
    const GROUP: &str = "[Default Applications]";
    let entry = format!("{SCHEME_TYPE}={DESKTOP_ID}");
    let mut out: Vec<String> = Vec::new();
    let mut in_group = false;
    let mut group_seen = false;
    let mut done = false;
    for line in list.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            if in_group && !done {
                // At the end of the group's entries, before the blank lines between groups.
                let mut at = out.len();
                while at > 0 && out[at - 1].trim().is_empty() {
                    at -= 1;
                }
                out.insert(at, entry.clone());
                done = true;
            }
            in_group = trimmed == GROUP;
            group_seen |= in_group;
        } else if in_group
            && !done
            && let Some((key, value)) = trimmed.split_once('=')
            && key.trim() == SCHEME_TYPE
        {
            let first = value.split(';').next().unwrap_or_default().trim();
            if first == DESKTOP_ID {
                done = true;
            } else if !first.is_empty() {
                return Err(first.to_owned());
            } else {
                out.push(entry.clone());
                done = true;
                continue;
            }
        }
        out.push(line.to_owned());
    }
    if !done {
        if !group_seen {
            if out.last().is_some_and(|l| !l.trim().is_empty()) {
                out.push(String::new());
            }
            out.push(GROUP.to_owned());
        }
        out.push(entry);
    }
    let mut text = out.join("\n");
    text.push('\n');
    Ok(text)
}

fn write_if_changed(path: &Path, content: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    std::fs::write(path, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_quotes_and_escapes_the_program() {
        assert_eq!(
            exec_argument("/opt/countersign/app"),
            "\"/opt/countersign/app\""
        );
        // Spaces stay inside the quotes; `$` and `"` are escaped (then the backslash
        // itself, for the string value); `%` is doubled.
        assert_eq!(
            exec_argument("/home/a b/$x\"100%"),
            "\"/home/a b/\\\\$x\\\\\"100%%\""
        );
        assert!(desktop_entry(Path::new("/usr/bin/cs")).contains("Exec=\"/usr/bin/cs\" %u\n"));
    }

    #[test]
    fn the_default_is_added_beside_what_the_owner_chose() {
        assert_eq!(
            with_default("").unwrap(),
            "[Default Applications]\nx-scheme-handler/countersign=app.countersign.wallet.desktop\n"
        );
        let theirs = "[Added Associations]\ntext/plain=vim.desktop;\n\n[Default Applications]\ntext/html=firefox.desktop\n\n[Removed Associations]\nimage/png=gimp.desktop\n";
        let ours = with_default(theirs).unwrap();
        assert_eq!(
            ours,
            "[Added Associations]\ntext/plain=vim.desktop;\n\n[Default Applications]\ntext/html=firefox.desktop\nx-scheme-handler/countersign=app.countersign.wallet.desktop\n\n[Removed Associations]\nimage/png=gimp.desktop\n"
        );
        // Idempotent.
        assert_eq!(with_default(&ours).unwrap(), ours);
        // No default group yet: one is appended.
        assert!(
            with_default("[Added Associations]\ntext/plain=vim.desktop;\n")
                .unwrap()
                .ends_with("\n\n[Default Applications]\nx-scheme-handler/countersign=app.countersign.wallet.desktop\n")
        );
    }

    #[test]
    fn another_chosen_handler_is_left_alone() {
        let list = "[Default Applications]\nx-scheme-handler/countersign=other.desktop;\n";
        assert_eq!(with_default(list), Err("other.desktop".to_owned()));
    }

    #[test]
    fn register_writes_both_files_once() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let at = Locations {
            data_home: dir.path().join("data"),
            config_home: dir.path().join("config"),
        };
        let program = Path::new("/opt/countersign/countersign-wallet-app");
        assert_eq!(register(program, &at).ok(), Some(Registered::Default));
        let entry = std::fs::read_to_string(at.data_home.join("applications").join(DESKTOP_ID))
            .unwrap_or_default();
        assert!(
            entry.contains("MimeType=x-scheme-handler/countersign;"),
            "{entry}"
        );
        let list =
            std::fs::read_to_string(at.config_home.join("mimeapps.list")).unwrap_or_default();
        assert!(list.contains("x-scheme-handler/countersign=app.countersign.wallet.desktop"));
        assert_eq!(register(program, &at).ok(), Some(Registered::Default));
        assert_eq!(
            std::fs::read_to_string(at.config_home.join("mimeapps.list")).unwrap_or_default(),
            list
        );
    }
}

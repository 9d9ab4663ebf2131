//! Generates wallet-core's foreign-language bindings with uniffi in library mode (the
//! interface is read from the compiled `cdylib`), and checks that the committed Kotlin
//! and Swift bindings under `wallet-core/bindings/` match the code.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use camino::{Utf8Path, Utf8PathBuf};
use uniffi_bindgen::EmptyCrateConfigSupplier;
use uniffi_bindgen::bindings::{
    KotlinBindingGenerator, PythonBindingGenerator, SwiftBindingGenerator,
};
use uniffi_bindgen::library_mode::generate_bindings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Kotlin,
    Swift,
    Python,
}

impl Language {
    /// The committed languages and their folders under `wallet-core/bindings/`.
    pub const COMMITTED: [(Language, &'static str); 2] =
        [(Language::Kotlin, "kotlin"), (Language::Swift, "swift")];
}

/// File name of the wallet-core shared library on this platform.
pub fn library_file_name() -> &'static str {
    if cfg!(target_os = "macos") {
        "libcountersign_wallet_core.dylib"
    } else if cfg!(target_os = "windows") {
        "countersign_wallet_core.dll"
    } else {
        "libcountersign_wallet_core.so"
    }
}

/// The shared library cargo built next to the running executable (`target/<profile>/`;
/// test executables live one level deeper, in `deps/`).
pub fn built_library() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the running executable")?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let library = dir.join(library_file_name());
    if !library.exists() {
        bail!(
            "{} not found; build it with `cargo build -p countersign-wallet-core`",
            library.display()
        );
    }
    Ok(library)
}

/// `wallet-core/bindings/` in this checkout.
pub fn committed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wallet-core/bindings")
}

fn utf8(path: &Path) -> anyhow::Result<Utf8PathBuf> {
    Utf8PathBuf::from_path_buf(path.to_path_buf())
        .map_err(|p| anyhow::anyhow!("{} is not UTF-8", p.display()))
}

/// Writes the bindings for `language` from `library` into `out`.
pub fn generate(library: &Path, language: Language, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let (library, out) = (utf8(library)?, utf8(out)?);
    let (library, out): (&Utf8Path, &Utf8Path) = (&library, &out);
    let supplier = EmptyCrateConfigSupplier;
    let crate_name = Some("countersign_wallet_core".to_owned());
    let generated = match language {
        Language::Kotlin => generate_bindings(
            library,
            crate_name,
            &KotlinBindingGenerator,
            &supplier,
            None,
            out,
            false,
        )
        .map(|c| c.len()),
        Language::Swift => generate_bindings(
            library,
            crate_name,
            &SwiftBindingGenerator,
            &supplier,
            None,
            out,
            false,
        )
        .map(|c| c.len()),
        Language::Python => generate_bindings(
            library,
            crate_name,
            &PythonBindingGenerator,
            &supplier,
            None,
            out,
            false,
        )
        .map(|c| c.len()),
    }
    .with_context(|| format!("generating {language:?} bindings"))?;
    if generated == 0 {
        bail!("{library} holds no uniffi component");
    }
    Ok(())
}

fn files(dir: &Path) -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir)?.to_path_buf();
                out.push((relative, std::fs::read(&path)?));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Regenerates the committed languages into a scratch directory and lists every file
/// that differs from, is missing from, or is extra in `wallet-core/bindings/`.
pub fn drift(library: &Path) -> anyhow::Result<Vec<String>> {
    let scratch = std::env::temp_dir().join(format!("countersign-bindings-{}", std::process::id()));
    let mut drifted = Vec::new();
    for (language, folder) in Language::COMMITTED {
        let fresh = scratch.join(folder);
        let _ = std::fs::remove_dir_all(&fresh);
        generate(library, language, &fresh)?;
        let committed = committed_dir().join(folder);
        let (want, have) = (files(&fresh)?, files(&committed).unwrap_or_default());
        for (path, bytes) in &want {
            match have.iter().find(|(p, _)| p == path) {
                Some((_, b)) if b == bytes => {}
                Some(_) => drifted.push(format!("{folder}/{} differs", path.display())),
                None => drifted.push(format!("{folder}/{} is missing", path.display())),
            }
        }
        for (path, _) in &have {
            if !want.iter().any(|(p, _)| p == path) {
                drifted.push(format!(
                    "{folder}/{} is not generated any more",
                    path.display()
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(drifted)
}

/// Rewrites the committed Kotlin and Swift bindings.
pub fn write_committed(library: &Path) -> anyhow::Result<()> {
    for (language, folder) in Language::COMMITTED {
        let dir = committed_dir().join(folder);
        let _ = std::fs::remove_dir_all(&dir);
        generate(library, language, &dir)?;
    }
    Ok(())
}

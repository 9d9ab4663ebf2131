//! `cargo build -p countersign-wallet-core && cargo run -p countersign-bindgen` rewrites
//! `wallet-core/bindings/` (Kotlin, Swift); `--check` only reports drift (exit 1);
//! `--python DIR` writes Python bindings to DIR.

use std::path::PathBuf;

use anyhow::bail;
use countersign_bindgen::{Language, built_library, drift, generate, write_committed};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let library = built_library()?;
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => {
            write_committed(&library)?;
            println!("wrote wallet-core/bindings/ from {}", library.display());
        }
        ["--check"] => {
            let drifted = drift(&library)?;
            if !drifted.is_empty() {
                bail!("bindings drifted:\n{}", drifted.join("\n"));
            }
            println!("wallet-core/bindings/ matches the code");
        }
        ["--python", dir] => generate(&library, Language::Python, &PathBuf::from(dir))?,
        _ => bail!("usage: countersign-bindgen [--check | --python DIR]"),
    }
    Ok(())
}

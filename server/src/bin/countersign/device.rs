//! `countersign device invite|list|remove`: enrollment invitations (printed, as JSON, or
//! as a QR code image) and the devices enrolled with them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use clap::Subcommand;
use countersign_server::approvals::enrollment;
use countersign_server::clock::SystemClock;
use countersign_server::config::Config;
use countersign_server::server;

use crate::{JsonFlag, print};

#[derive(Subcommand)]
pub enum DeviceCommand {
    /// Create a one-time enrollment invitation for a human's wallet.
    Invite {
        /// The human (subject) the wallet will belong to.
        #[arg(long)]
        subject: String,
        /// Also write the invitation as a QR code: PNG, or SVG when FILE ends in .svg.
        #[arg(long, value_name = "FILE")]
        qr: Option<PathBuf>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// List enrolled devices, newest first.
    List {
        /// Only this human's devices.
        #[arg(long)]
        subject: Option<String>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Remove (disable) a device: its proofs and approvals are refused from now on.
    Remove {
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Why (recorded with the removal).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        out: JsonFlag,
    },
}

/// Writes `text` as a QR code to `path` (SVG for `.svg`, else PNG).
fn write_qr(text: &str, path: &Path) -> anyhow::Result<()> {
    let code = qrcode::QrCode::new(text.as_bytes()).context("encoding the QR code")?;
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"))
    {
        let svg = code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(256, 256)
            .build();
        return std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()));
    }
    // Eight pixels per module and the standard four-module quiet zone, black on white.
    let (modules, scale, quiet) = (code.width(), 8, 4);
    let colors = code.to_colors();
    let side = (modules + 2 * quiet) * scale;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (mx, my) = (i % modules + quiet, i / modules + quiet);
            for y in my * scale..(my + 1) * scale {
                pixels[y * side + mx * scale..y * side + (mx + 1) * scale].fill(0);
            }
        }
    }
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let size = u32::try_from(side).context("QR code size")?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), size, size);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().context("writing the PNG header")?;
    writer
        .write_image_data(&pixels)
        .context("writing the PNG")?;
    Ok(())
}

pub async fn device_command(config: Config, cmd: &DeviceCommand) -> anyhow::Result<()> {
    let state = server::open_state(config, Arc::new(SystemClock)).await?;
    match cmd {
        DeviceCommand::Invite { subject, qr, out } => {
            let invitation = enrollment::invite(&state.approvals, subject, "cli").await?;
            if let Some(path) = qr {
                write_qr(&invitation.uri, path)?;
            }
            print(out.json, &invitation, || {
                let mut text = format!(
                    "enrollment invitation for {} (single use, expires {}):\n{}",
                    invitation.subject,
                    countersign_server::clock::rfc3339(invitation.expires_at),
                    invitation.uri
                );
                if let Some(path) = qr {
                    text.push_str(&format!("\nQR code written to {}", path.display()));
                }
                text
            })
        }
        DeviceCommand::List { subject, out } => {
            let devices = enrollment::list_devices(&state.approvals, subject.as_deref()).await?;
            print(out.json, &devices, || {
                devices
                    .iter()
                    .map(|d| {
                        format!(
                            "{}\t{}\t{}\t{}\t{}",
                            d.id,
                            d.subject,
                            d.platform,
                            d.push_channel,
                            match &d.disabled_reason {
                                Some(r) => format!("removed ({r})"),
                                None => "active".to_owned(),
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        DeviceCommand::Remove { id, reason, out } => {
            let device = enrollment::remove_device(&state.approvals, id, reason, "cli").await?;
            print(out.json, &device, || {
                format!("device {} removed", device.id)
            })
        }
    }
}

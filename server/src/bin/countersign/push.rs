//! `countersign push test --device ID`: sends a test alert to one device through its
//! channel now, to check push credentials and the device's token.

use std::sync::Arc;

use clap::Subcommand;
use countersign_server::clock::SystemClock;
use countersign_server::config::Config;
use countersign_server::server;

use crate::{JsonFlag, print};

#[derive(Subcommand)]
pub enum PushCommand {
    /// Send a test notification to a device.
    Test {
        /// The device id (see `countersign device list`).
        #[arg(long, allow_hyphen_values = true)]
        device: String,
        #[command(flatten)]
        out: JsonFlag,
    },
}

pub async fn push_command(config: Config, cmd: &PushCommand) -> anyhow::Result<()> {
    let state = server::open_state(config, Arc::new(SystemClock)).await?;
    match cmd {
        PushCommand::Test { device, out } => {
            let result =
                countersign_server::push::worker::send_test(&state.push_worker(), device).await;
            let value = match &result {
                Ok(()) => serde_json::json!({ "device": device, "sent": true }),
                Err(e) => {
                    serde_json::json!({ "device": device, "sent": false, "reason": e.reason(), "message": e.to_string() })
                }
            };
            print(out.json, &value, || match &result {
                Ok(()) => format!("test notification sent to device {device}"),
                Err(e) => format!("not sent: {e}"),
            })?;
            if result.is_err() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

//! What offboarding a human does with the agents they own.

use serde::{Deserialize, Serialize};

/// The fate of an offboarded human's agents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentFate {
    /// Suspended until an admin reassigns and resumes them.
    #[default]
    Suspend,
    /// Handed to the human's manager when they have an active one (audited); suspended
    /// otherwise.
    ReassignToManager,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OffboardingConfig {
    pub agents: AgentFate,
}

//! The outcome of a policy decision, as `POST /v1/decisions`, AuthZEN evaluations, the
//! decision trace and the stored authentication request spell it.

use serde::{Deserialize, Serialize};

/// What a policy decided about an action: the three outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allow,
    StepUp,
    Deny,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::StepUp => "step_up",
            Self::Deny => "deny",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allow" => Some(Self::Allow),
            "step_up" => Some(Self::StepUp),
            "deny" => Some(Self::Deny),
            _ => None,
        }
    }

    /// The stricter of two outcomes.
    pub fn stricter(self, other: Self) -> Self {
        match (self, other) {
            (Self::Deny, _) | (_, Self::Deny) => Self::Deny,
            (Self::StepUp, _) | (_, Self::StepUp) => Self::StepUp,
            _ => Self::Allow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_reads_back_as_itself_in_text_and_json() {
        for outcome in [Outcome::Allow, Outcome::StepUp, Outcome::Deny] {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
            let json = serde_json::to_string(&outcome).unwrap();
            assert_eq!(json, format!("\"{}\"", outcome.as_str()));
        }
        for other in ["", "Allow", "step-up", "permit", "deny "] {
            assert_eq!(Outcome::parse(other), None, "{other:?}");
        }
        assert_eq!(Outcome::Allow.stricter(Outcome::StepUp), Outcome::StepUp);
        assert_eq!(Outcome::Deny.stricter(Outcome::Allow), Outcome::Deny);
    }
}

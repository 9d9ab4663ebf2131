//! The annotations a policy carries beside its Cedar text: whether it needs a human
//! (`@step_up`), who approves (`@approver`, `@four_eyes`), how long and how often the
//! credential serves (`@validity`, `@max_uses`), and what the trace says (`@reason`).

use cedar_policy::{Effect, Policy};

use super::document::{PolicyMeta, Problem, problem_at};
use super::{ApproverRoute, UseLimit};

/// Parses an ISO 8601 duration of days, hours, minutes and seconds (`P1D`, `PT15M`,
/// `PT1H30M`); returns seconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let rest = text.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total: u64 = 0;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, u64)]| -> Option<()> {
        let mut number = String::new();
        let mut allowed = units.iter();
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            // Units must come in order, each at most once.
            let factor = allowed.by_ref().find(|(u, _)| *u == c)?.1;
            let n: u64 = number.parse().ok()?;
            total = total.checked_add(n.checked_mul(factor)?)?;
            number.clear();
            any = true;
        }
        number.is_empty().then_some(())
    };
    take(days, &[('D', 86_400)])?;
    if let Some(t) = time {
        if t.is_empty() {
            return None;
        }
        take(t, &[('H', 3600), ('M', 60), ('S', 1)])?;
    }
    (any && total > 0).then_some(total)
}

/// What a policy's annotations say (`@step_up`, `@approver`, `@four_eyes`, `@validity`,
/// `@max_uses`, `@reason`), each checked; problems are added to `problems`.
pub(super) fn meta_of(
    source: &str,
    p: &Policy,
    at: Option<usize>,
    id: &str,
    max_validity_secs: u64,
    problems: &mut Vec<Problem>,
) -> PolicyMeta {
    let mut fail = |m: String| problems.push(problem_at(source, at, Some(id), m));
    let forbid = p.effect() == Effect::Forbid;
    let step_up = p.annotation("step_up").is_some();
    let four_eyes = p.annotation("four_eyes").is_some();
    let approver = p.annotation("approver").and_then(|a| match ApproverRoute::parse(a) {
        Some(route) => Some(route),
        None => {
            fail(format!(
                "@approver({a:?}) must be \"user\", \"owner\", \"manager\", \"group:NAME\" or \"role:NAME\""
            ));
            None
        }
    });
    let validity_secs = p.annotation("validity").and_then(|v| match parse_duration(v) {
        Some(secs) if secs <= max_validity_secs => Some(secs),
        Some(_) => {
            fail(format!(
                "@validity({v:?}) is longer than policy.max_validity_secs ({max_validity_secs} s)"
            ));
            None
        }
        None => {
            fail(format!(
                "@validity({v:?}) must be an ISO 8601 duration such as \"PT15M\" or \"P1D\""
            ));
            None
        }
    });
    let max_uses = p
        .annotation("max_uses")
        .and_then(|v| match UseLimit::parse(v) {
            Some(limit) => Some(limit),
            None => {
                fail(format!(
                    "@max_uses({v:?}) must be \"unlimited\" or a whole number from 1 to {}",
                    UseLimit::MAX_TIMES
                ));
                None
            }
        });
    if forbid {
        for annotation in ["step_up", "approver", "four_eyes", "validity", "max_uses"] {
            if p.annotation(annotation).is_some() {
                fail(format!("@{annotation} has no meaning on a forbid policy"));
            }
        }
    } else if !step_up && (p.annotation("approver").is_some() || four_eyes) {
        fail("@approver and @four_eyes need @step_up".into());
    }
    let verb = match (forbid, step_up) {
        (true, _) => "forbids",
        (false, true) => "requires approval for",
        (false, false) => "permits",
    };
    PolicyMeta {
        id: id.to_owned(),
        forbid,
        step_up,
        approver,
        four_eyes,
        validity_secs,
        max_uses,
        reason: p
            .annotation("reason")
            .map_or_else(|| format!("policy {id} {verb} this action"), str::to_owned),
    }
}

/// Whether `id` is a usable `@id`: 1-128 of letters, digits and `._-:`.
pub(super) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("PT15M"), Some(900));
        assert_eq!(parse_duration("PT1H30M"), Some(5400));
        assert_eq!(parse_duration("P1DT1S"), Some(86_401));
        assert_eq!(parse_duration("P2D"), Some(172_800));
        for bad in [
            "", "P", "PT", "15M", "PT15", "PTM", "PT15M1H", "P1H", "PT0S", "PT-1M",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }
}

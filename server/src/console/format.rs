//! Formatting for people, kept out of the templates (and tested here).

/// `ms` as an ISO 8601 UTC time to the second (`2026-12-06T18:47:53Z`), for `<time
/// datetime>` and as a fallback text.
pub fn utc(ms: i64) -> String {
    crate::credentials::vc::rfc3339(ms.div_euclid(1000))
}

/// How long before `now_ms` `then_ms` was, in the largest whole unit: `just now`,
/// `42 s ago`, `5 min ago`, `3 h ago`, `2 d ago`; a time in the future is `in 5 min`.
pub fn age(then_ms: i64, now_ms: i64) -> String {
    let delta = now_ms.saturating_sub(then_ms);
    let (future, secs) = if delta < 0 {
        (true, delta.saturating_neg() / 1000)
    } else {
        (false, delta / 1000)
    };
    let amount = match secs {
        0 if !future => return "just now".into(),
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// A length of time for people: `850 ms`, `42 s`, `3 min 10 s`, `2 h 5 min`.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    let secs = ms / 1000;
    match secs {
        0 => format!("{ms} ms"),
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// The `authorization_details` of a request as one line a person reads:
/// `purchase_order: Acme, 1200 USD` (each entry's notable fields; `authenticate` when
/// there are none).
pub fn action_summary(details: Option<&str>) -> String {
    let Some(entries) = details
        .and_then(|d| serde_json::from_str::<Vec<serde_json::Value>>(d).ok())
        .filter(|e| !e.is_empty())
    else {
        return "authenticate".into();
    };
    entries
        .iter()
        .map(|entry| {
            let kind = entry.get("type").and_then(|t| t.as_str()).unwrap_or("?");
            let text = |k: &str| {
                entry
                    .get(k)
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            };
            let mut facts = Vec::new();
            if let Some(vendor) = text("vendor") {
                facts.push(vendor);
            }
            match (text("amount"), text("currency")) {
                (Some(a), Some(c)) => facts.push(format!("{a} {c}")),
                (Some(a), None) => facts.push(a),
                _ => {}
            }
            for k in ["quantity", "target", "environment"] {
                if let Some(v) = text(k) {
                    facts.push(format!("{k} {v}"));
                }
            }
            if facts.is_empty() {
                kind.to_owned()
            } else {
                format!("{kind}: {}", facts.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_use_the_largest_whole_unit() {
        let now = 10_000_000;
        assert_eq!(age(now, now), "just now");
        assert_eq!(age(now - 42_000, now), "42 s ago");
        assert_eq!(age(now - 5 * 60_000 - 1, now), "5 min ago");
        assert_eq!(age(now - 3 * 3_600_000, now), "3 h ago");
        assert_eq!(age(now - 2 * 86_400_000, now), "2 d ago");
        assert_eq!(age(now + 5 * 60_000, now), "in 5 min");
        assert!(age(i64::MIN, i64::MAX).ends_with(" d ago"));
    }

    #[test]
    fn durations_read_in_two_units_at_most() {
        assert_eq!(duration(-5), "0 ms");
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(42_999), "42 s");
        assert_eq!(duration(190_000), "3 min 10 s");
        assert_eq!(duration(7_500_000), "2 h 5 min");
    }

    #[test]
    fn utc_times_and_summaries_read_as_people_expect() {
        assert_eq!(utc(1_796_582_873_000), "2026-12-06T18:47:53Z");
        assert_eq!(action_summary(None), "authenticate");
        assert_eq!(
            action_summary(Some(
                r#"[{"type":"purchase_order","vendor":"Acme","amount":1200,"currency":"USD"}]"#
            )),
            "purchase_order: Acme, 1200 USD"
        );
        assert_eq!(
            action_summary(Some(
                r#"[{"type":"delete_environment","target":"prod"},{"type":"x"}]"#
            )),
            "delete_environment: target prod; x"
        );
    }
}

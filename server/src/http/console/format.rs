//! Formatting for people, kept out of the templates (and tested here).

use jiff::tz::TimeZone;

/// The cookie the console's script sets to the browser's IANA time zone.
pub const TIME_ZONE_COOKIE: &str = "countersign_tz";

tokio::task_local! {
    /// The signed-in admin's time zone while a console request is answered (see
    /// [`with_time_zone`]), for [`local`].
    static ADMIN_TIME_ZONE: TimeZone;
}

/// The time zone a browser named in its cookie, if it is one the server knows.
pub fn time_zone_of(headers: &axum::http::HeaderMap) -> Option<(String, TimeZone)> {
    let name = crate::http::cookie(headers, TIME_ZONE_COOKIE)?;
    let plausible = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+'));
    if !plausible {
        return None;
    }
    TimeZone::get(name).ok().map(|tz| (name.to_owned(), tz))
}

/// Runs `answer` with times shown in `tz` (UTC without one).
pub async fn with_time_zone<F: std::future::Future>(tz: Option<TimeZone>, answer: F) -> F::Output {
    match tz {
        Some(tz) => ADMIN_TIME_ZONE.scope(tz, answer).await,
        None => answer.await,
    }
}

/// `ms` for people in the signed-in admin's time zone with its offset
/// (`2026-12-06 19:47:53+01:00`), or in UTC (`2026-12-06 18:47:53+00:00`) until the
/// browser has said which zone it is in. Also a valid `<time datetime>` value.
pub fn local(ms: i64) -> String {
    let Ok(at) = jiff::Timestamp::from_millisecond(ms) else {
        return utc(ms);
    };
    let shown = |tz: &TimeZone| {
        let offset = tz.to_offset(at).seconds();
        let (sign, minutes) = if offset < 0 {
            ('-', -offset / 60)
        } else {
            ('+', offset / 60)
        };
        format!(
            "{}{sign}{:02}:{:02}",
            tz.to_datetime(at).strftime("%Y-%m-%d %H:%M:%S"),
            minutes / 60,
            minutes % 60
        )
    };
    ADMIN_TIME_ZONE
        .try_with(shown)
        .unwrap_or_else(|_| shown(&TimeZone::UTC))
}

/// `ms` as an ISO 8601 UTC time to the second (`2026-12-06T18:47:53Z`), for `<time
/// datetime>` and as a fallback text.
pub fn utc(ms: i64) -> String {
    crate::clock::rfc3339(ms.div_euclid(1000))
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
        assert_eq!(local(1_796_582_873_000), "2026-12-06 18:47:53+00:00");
        let in_zone = |name: &str| {
            let tz = TimeZone::get(name).unwrap();
            ADMIN_TIME_ZONE.sync_scope(tz, || local(1_796_582_873_000))
        };
        assert_eq!(in_zone("Asia/Tokyo"), "2026-12-07 03:47:53+09:00");
        // A negative offset with half an hour in it.
        assert_eq!(in_zone("America/St_Johns"), "2026-12-06 15:17:53-03:30");
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

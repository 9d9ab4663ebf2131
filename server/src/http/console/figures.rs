//! The overview's figures, made from the store's aggregates: the decisions-per-minute chart
//! (geometry for a server-rendered SVG, so the template only copies numbers) and the
//! anomaly rule. Pure and tested here.

use crate::store::console_stats::{AgentActivity, MinuteCount};

/// Minutes the chart shows.
pub const MINUTES: usize = 60;
/// The chart's drawing area, in SVG user units.
const WIDTH: i64 = 600;
const HEIGHT: i64 = 120;
const BAR_STEP: i64 = WIDTH / MINUTES as i64;

/// The outcomes the chart stacks, bottom to top: (stored outcome, CSS class, label).
const OUTCOMES: [(&str, &str, &str); 3] = [
    ("allow", "bar-allow", "allowed"),
    ("step_up", "bar-step-up", "stepped up"),
    ("deny", "bar-deny", "denied"),
];

/// One minute's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Minute {
    /// `HH:MM` (UTC) the minute starts at.
    pub label: String,
    pub allow: i64,
    pub step_up: i64,
    pub deny: i64,
}

impl Minute {
    pub fn total(&self) -> i64 {
        self.allow + self.step_up + self.deny
    }

    fn of(&self, outcome: &str) -> i64 {
        match outcome {
            "allow" => self.allow,
            "step_up" => self.step_up,
            "deny" => self.deny,
            _ => 0,
        }
    }
}

/// One rectangle of the chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    pub x: i64,
    pub y: i64,
    pub width: i64,
    pub height: i64,
    pub class: &'static str,
    /// The SVG `<title>`: what a pointer or a screen reader gets for this bar.
    pub title: String,
}

/// The chart: bars, the minutes that had decisions (for the text table), the totals and
/// the largest minute (the scale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionChart {
    pub bars: Vec<Bar>,
    pub busy: Vec<Minute>,
    pub allow: i64,
    pub step_up: i64,
    pub deny: i64,
    pub peak: i64,
    pub width: i64,
    pub height: i64,
}

impl DecisionChart {
    pub fn total(&self) -> i64 {
        self.allow + self.step_up + self.deny
    }

    /// One sentence for the SVG's accessible name.
    pub fn summary(&self) -> String {
        format!(
            "Decisions per minute over the last hour: {} allowed, {} stepped up, {} denied; \
             at most {} in one minute",
            self.allow, self.step_up, self.deny, self.peak
        )
    }
}

/// The chart of `counts` (minutes since `start_ms`, as the store returns them) over the
/// [`MINUTES`] minutes from `start_ms`. Outcomes other than the three are not drawn.
pub fn decision_chart(counts: &[MinuteCount], start_ms: i64) -> DecisionChart {
    let mut minutes: Vec<Minute> = (0..MINUTES as i64)
        .map(|m| Minute {
            label: hh_mm(start_ms + m * 60_000),
            ..Minute::default()
        })
        .collect();
    for c in counts {
        let Some(minute) = usize::try_from(c.minute)
            .ok()
            .and_then(|m| minutes.get_mut(m))
        else {
            continue;
        };
        match c.outcome.as_str() {
            "allow" => minute.allow += c.count,
            "step_up" => minute.step_up += c.count,
            "deny" => minute.deny += c.count,
            _ => {}
        }
    }
    let peak = minutes.iter().map(Minute::total).max().unwrap_or(0);
    let mut bars = Vec::new();
    for (i, minute) in minutes.iter().enumerate() {
        let mut below = 0;
        for (outcome, class, label) in OUTCOMES {
            let n = minute.of(outcome);
            if n == 0 || peak == 0 {
                continue;
            }
            // Heights in proportion to the peak minute; at least 1 unit so a single
            // decision in a busy hour still shows.
            let top = (below + n) * HEIGHT / peak;
            let bottom = below * HEIGHT / peak;
            let height = (top - bottom).max(1);
            bars.push(Bar {
                x: i as i64 * BAR_STEP + 1,
                y: HEIGHT - bottom - height,
                width: BAR_STEP - 2,
                height,
                class,
                title: format!("{} UTC: {n} {label}", minute.label),
            });
            below += n;
        }
    }
    DecisionChart {
        bars,
        allow: minutes.iter().map(|m| m.allow).sum(),
        step_up: minutes.iter().map(|m| m.step_up).sum(),
        deny: minutes.iter().map(|m| m.deny).sum(),
        busy: minutes.into_iter().filter(|m| m.total() > 0).collect(),
        peak,
        width: WIDTH,
        height: HEIGHT,
    }
}

/// `HH:MM` of `ms` (UTC).
fn hh_mm(ms: i64) -> String {
    super::format::utc(ms).get(11..16).unwrap_or("").to_owned()
}

/// The fewest denials and step-ups in the last hour that can be an anomaly: below this,
/// a quiet agent's first few step-ups would all be flagged.
pub const MIN_RECENT: i64 = 5;
/// How many times its hourly baseline an agent's last hour must be to be flagged.
const FACTOR: f64 = 3.0;

/// Why `activity` is an anomaly, if it is: its denials and step-ups in the last hour are
/// at least [`MIN_RECENT`] and more than [`FACTOR`] times its hourly average over the
/// `baseline_hours` before (an average under one an hour counts as one).
pub fn anomaly(activity: &AgentActivity, baseline_hours: f64) -> Option<String> {
    // A baseline shorter than a minute says nothing an hour could be compared with.
    let hours = baseline_hours.max(1.0 / 60.0);
    let per_hour = activity.baseline as f64 / hours;
    if activity.recent < MIN_RECENT || (activity.recent as f64) <= FACTOR * per_hour.max(1.0) {
        return None;
    }
    Some(format!(
        "{} denials and step-ups in the last hour, against {per_hour:.1} an hour over the \
         {hours:.1} h before",
        activity.recent
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(minute: i64, outcome: &str, count: i64) -> MinuteCount {
        MinuteCount {
            minute,
            outcome: outcome.into(),
            count,
        }
    }

    #[test]
    fn bars_stack_in_proportion_to_the_busiest_minute() {
        // 2026-12-06T18:00:00Z
        let start = 1_796_580_000_000;
        let chart = decision_chart(
            &[
                count(0, "allow", 2),
                count(0, "deny", 2),
                count(59, "step_up", 1),
                count(60, "allow", 9), // outside the chart
                count(3, "other", 7),  // not an outcome the chart draws
            ],
            start,
        );
        assert_eq!((chart.allow, chart.step_up, chart.deny), (2, 1, 2));
        assert_eq!(chart.peak, 4);
        assert_eq!(chart.bars.len(), 3);
        let allow = &chart.bars[0];
        assert_eq!((allow.x, allow.y, allow.height), (1, 60, 60));
        assert_eq!(allow.class, "bar-allow");
        assert_eq!(allow.title, "18:00 UTC: 2 allowed");
        let deny = &chart.bars[1];
        assert_eq!((deny.y, deny.height), (0, 60), "stacked on top");
        let step_up = &chart.bars[2];
        assert_eq!((step_up.x, step_up.height), (591, 30));
        assert_eq!(step_up.title, "18:59 UTC: 1 stepped up");
        assert_eq!(
            chart
                .busy
                .iter()
                .map(|m| m.label.as_str())
                .collect::<Vec<_>>(),
            ["18:00", "18:59"]
        );
        assert!(
            chart
                .summary()
                .contains("2 allowed, 1 stepped up, 2 denied")
        );
    }

    #[test]
    fn an_empty_hour_draws_nothing() {
        let chart = decision_chart(&[], 0);
        assert!(chart.bars.is_empty() && chart.busy.is_empty());
        assert_eq!(chart.total(), 0);
    }

    #[test]
    fn anomalies_are_far_above_the_agents_own_baseline() {
        let activity = |recent, baseline| AgentActivity {
            agent: "a".into(),
            recent,
            baseline,
        };
        assert_eq!(anomaly(&activity(4, 0), 23.0), None, "too few to tell");
        assert!(
            anomaly(&activity(5, 0), 23.0).is_some(),
            "a quiet agent wakes up"
        );
        // 46 over 23 h is 2 an hour: 6 is not more than three times that, 7 is.
        assert_eq!(anomaly(&activity(6, 46), 23.0), None);
        assert_eq!(
            anomaly(&activity(7, 46), 23.0).as_deref(),
            Some(
                "7 denials and step-ups in the last hour, against 2.0 an hour over the 23.0 h before"
            )
        );
        // A sampled baseline covering half an hour: 10 in it is 20 an hour.
        assert_eq!(anomaly(&activity(60, 10), 0.5), None);
        assert!(anomaly(&activity(61, 10), 0.5).is_some());
    }
}

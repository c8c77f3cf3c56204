//! The weekly health report, from the audit trail alone: pull requests opened by finding code,
//! merged, refused and closed; merges verified and rolled back; MTTD (first seen → pull
//! request opened) and MTTR (first seen → verified healthy), against the week before; and the
//! problems that keep coming back. A finding is first seen when the cluster first showed it
//! (the earliest Event or condition, recorded with the pull request), else when its pull
//! request opened. Pure.

use std::collections::BTreeMap;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::audit::{Chain, Event, Record};

/// Weeks of history a problem must recur in to be listed.
const RECURRENCE_WEEKS: i64 = 4;

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Weekly {
    /// Start of the week (RFC 3339).
    pub from: String,
    /// End of the week.
    pub to: String,
    /// This week's numbers.
    pub week: Numbers,
    /// The week before's, for the trend.
    pub before: Numbers,
    /// Pull requests opened this week by finding code, most first.
    pub by_code: Vec<Count>,
    /// Problems (finding code and object) with two or more pull requests in four weeks.
    pub recurring: Vec<Recurring>,
    /// What the cluster shows now, by finding code, when a cluster was read.
    pub open_now: Vec<Count>,
}

/// One week's numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Numbers {
    /// Pull requests opened.
    pub opened: usize,
    /// Merged changes applied (or handed to Argo CD or Flux).
    pub merged: usize,
    /// Merged changes refused (approvals or policy).
    pub refused: usize,
    /// Pull requests closed without merging (their finding cleared).
    pub closed: usize,
    /// Changes verified healthy.
    pub verified: usize,
    /// Changes rolled back.
    pub rolled_back: usize,
    /// First seen → pull request opened.
    pub mttd: Stat,
    /// First seen → verified healthy.
    pub mttr: Stat,
}

/// A duration's samples, summarised.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stat {
    /// How many.
    pub samples: usize,
    /// Their mean, seconds.
    pub mean_seconds: Option<i64>,
    /// Their median (the lower middle of an even count), seconds.
    pub median_seconds: Option<i64>,
    /// Mean and median for people (`12m / 9m`), or `–`.
    pub shown: String,
}

impl Stat {
    fn of(mut seconds: Vec<i64>) -> Stat {
        if seconds.is_empty() {
            return Stat {
                shown: "–".into(),
                ..Stat::default()
            };
        }
        seconds.sort_unstable();
        let mean = seconds.iter().sum::<i64>() / seconds.len() as i64;
        let median = seconds[(seconds.len() - 1) / 2];
        let human = |s: i64| crate::detect::human(SignedDuration::from_secs(s));
        Stat {
            samples: seconds.len(),
            mean_seconds: Some(mean),
            median_seconds: Some(median),
            shown: format!(
                "{} median, {} mean ({})",
                human(median),
                human(mean),
                seconds.len()
            ),
        }
    }
}

/// A finding code and how many pull requests it opened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Count {
    /// The code.
    pub code: String,
    /// Pull requests.
    pub count: usize,
}

/// A problem that came back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recurring {
    /// The finding code.
    pub code: String,
    /// The object.
    pub object: String,
    /// Pull requests opened for it in four weeks.
    pub count: usize,
}

/// What one chain says: when its pull request opened, for which code and object, when the
/// finding was first seen, and its records' events with their times.
struct Opened {
    at: Timestamp,
    first_seen: Timestamp,
    code: String,
    object: String,
}

fn time(record: &Record) -> Option<Timestamp> {
    record.time.parse().ok()
}

/// The record of a chain's pull request opening: its first `proposed` record that is not an
/// update (records from before `opened` was written count as openings).
pub(crate) fn opening(chain: &Chain) -> Option<&Record> {
    chain
        .records
        .iter()
        .find(|r| r.event == Event::Proposed && r.detail["opened"] != false)
}

fn opened(chain: &Chain) -> Option<Opened> {
    let record = opening(chain)?;
    let at = time(record)?;
    let first_seen = record.detail["firstSeen"]
        .as_str()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .map_or(at, |t| t.min(at));
    let code = match record.detail["finding"].as_str() {
        Some(code) => code.to_owned(),
        // Records written before the code was recorded: the branch names it.
        None => record.detail["branch"]
            .as_str()
            .and_then(|b| b.split('/').nth(1))
            .unwrap_or("unknown")
            .to_owned(),
    };
    Some(Opened {
        at,
        first_seen,
        code,
        object: record.objects.first().cloned().unwrap_or_default(),
    })
}

fn numbers(chains: &[Chain], from: Timestamp, to: Timestamp) -> Numbers {
    let within = |t: Timestamp| t >= from && t < to;
    let has = |chain: &Chain, events: &[Event]| {
        chain
            .records
            .iter()
            .any(|r| events.contains(&r.event) && time(r).is_some_and(within))
    };
    let mut week = Numbers::default();
    let (mut detect, mut repair) = (Vec::new(), Vec::new());
    for chain in chains {
        let opened = opened(chain);
        if let Some(opened) = opened.as_ref().filter(|o| within(o.at)) {
            week.opened += 1;
            detect.push(opened.at.duration_since(opened.first_seen).as_secs());
        }
        week.merged += usize::from(has(chain, &[Event::Applied, Event::HandedOff]));
        week.refused += usize::from(has(chain, &[Event::Refused]));
        week.closed += usize::from(has(chain, &[Event::Closed]));
        week.rolled_back += usize::from(has(chain, &[Event::RolledBack]));
        let verified = chain
            .records
            .iter()
            .find(|r| r.event == Event::Verified)
            .and_then(time);
        if let Some(verified) = verified.filter(|t| within(*t)) {
            week.verified += 1;
            if let Some(opened) = &opened {
                repair.push(verified.duration_since(opened.first_seen).as_secs());
            }
        }
    }
    week.mttd = Stat::of(detect);
    week.mttr = Stat::of(repair);
    week
}

/// The report of the week ending at `to`, from the chains of the audit trail.
pub fn weekly(chains: &[Chain], to: Timestamp) -> Weekly {
    let week = SignedDuration::from_hours(7 * 24);
    let from = to - week;
    let mut by_code: BTreeMap<String, usize> = BTreeMap::new();
    let mut again: BTreeMap<(String, String), usize> = BTreeMap::new();
    let since = to - week * RECURRENCE_WEEKS as i32;
    for opened in chains.iter().filter_map(opened) {
        if opened.at >= from && opened.at < to {
            *by_code.entry(opened.code.clone()).or_default() += 1;
        }
        if opened.at >= since && opened.at < to {
            *again.entry((opened.code, opened.object)).or_default() += 1;
        }
    }
    let mut by_code: Vec<Count> = by_code
        .into_iter()
        .map(|(code, count)| Count { code, count })
        .collect();
    by_code.sort_by(|a, b| b.count.cmp(&a.count).then(a.code.cmp(&b.code)));
    let mut recurring: Vec<Recurring> = again
        .into_iter()
        .filter(|(_, count)| *count >= 2)
        .map(|((code, object), count)| Recurring {
            code,
            object,
            count,
        })
        .collect();
    recurring.sort_by(|a, b| b.count.cmp(&a.count).then(a.object.cmp(&b.object)));
    recurring.truncate(10);
    Weekly {
        from: from.to_string(),
        to: to.to_string(),
        week: numbers(chains, from, to),
        before: numbers(chains, from - week, from),
        by_code,
        recurring,
        open_now: vec![],
    }
}

/// The findings of `snapshot` now, counted by code, most first.
pub fn open_now(
    snapshot: &crate::model::Snapshot,
    options: &crate::detect::DetectOptions,
) -> Vec<Count> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for finding in crate::detect::detect(snapshot, options) {
        *counts.entry(finding.code.to_string()).or_default() += 1;
    }
    let mut counts: Vec<Count> = counts
        .into_iter()
        .map(|(code, count)| Count { code, count })
        .collect();
    counts.sort_by(|a, b| b.count.cmp(&a.count).then(a.code.cmp(&b.code)));
    counts
}

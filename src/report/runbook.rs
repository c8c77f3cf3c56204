//! The runbook as this cluster wrote it: per finding code, from the whole audit trail, how
//! many pull requests it opened, the causes its logs showed, the remedies taken and whether
//! they held (verified healthy) or were rolled back, and the objects it hit most. It sits
//! beside `docs/runbook.md`, whose sections say what each code means. Pure.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::audit::{Chain, Event};

/// One finding code's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section {
    /// The code.
    pub code: String,
    /// Pull requests opened.
    pub opened: usize,
    /// Causes read from logs, most first, with their counts.
    pub causes: Vec<(String, usize)>,
    /// Remedies (catalog actions) proposed, with how often each held and was rolled back.
    pub remedies: Vec<ActionRecord>,
    /// The objects it hit most, with their counts.
    pub objects: Vec<(String, usize)>,
}

/// One remedy's record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionRecord {
    /// The action.
    pub action: String,
    /// Times proposed.
    pub proposed: usize,
    /// Times verified healthy after its merge.
    pub held: usize,
    /// Times rolled back.
    pub rolled_back: usize,
}

/// The sections, one per code seen, most pull requests first.
pub fn runbook(chains: &[Chain]) -> Vec<Section> {
    #[derive(Default)]
    struct Tally {
        opened: usize,
        causes: BTreeMap<String, usize>,
        remedies: BTreeMap<String, (usize, usize, usize)>,
        objects: BTreeMap<String, usize>,
    }
    let mut codes: BTreeMap<String, Tally> = BTreeMap::new();
    for chain in chains {
        let Some(opened) = super::weekly::opening(chain) else {
            continue;
        };
        let Some(code) = opened.detail["finding"].as_str() else {
            continue;
        };
        let tally = codes.entry(code.to_owned()).or_default();
        tally.opened += 1;
        if let Some(cause) = opened.detail["cause"].as_str() {
            *tally.causes.entry(cause.to_owned()).or_default() += 1;
        }
        if let Some(object) = opened.objects.first() {
            *tally.objects.entry(object.clone()).or_default() += 1;
        }
        let action = opened.detail["action"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned();
        let has = |event: Event| chain.records.iter().any(|r| r.event == event);
        let slot = tally.remedies.entry(action).or_default();
        slot.0 += 1;
        slot.1 += usize::from(has(Event::Verified));
        slot.2 += usize::from(has(Event::RolledBack));
    }
    let most = |map: BTreeMap<String, usize>, keep: usize| {
        let mut all: Vec<(String, usize)> = map.into_iter().collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(keep);
        all
    };
    let mut sections: Vec<Section> = codes
        .into_iter()
        .map(|(code, tally)| Section {
            code,
            opened: tally.opened,
            causes: most(tally.causes, 10),
            remedies: tally
                .remedies
                .into_iter()
                .map(|(action, (proposed, held, rolled_back))| ActionRecord {
                    action,
                    proposed,
                    held,
                    rolled_back,
                })
                .collect(),
            objects: most(tally.objects, 5),
        })
        .collect();
    sections.sort_by(|a, b| b.opened.cmp(&a.opened).then(a.code.cmp(&b.code)));
    sections
}

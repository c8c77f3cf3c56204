//! Crash drills, built only with the `failpoints` feature (the tests turn it on; a release
//! build has no such hook): `REMEDIATOR_FAILPOINTS` (comma-separated names) makes the process die
//! at the named points, as a killed pod or runner would, so tests can show that the next run resumes
//! from the audit record. Nothing happens when the variable is not set. The points: after each
//! audit record is written (`after-<event>`: `after-policy`, `after-applied`, `after-verified`,
//! `after-rolled-back`, ...), after a commit status is set (`after-status`), after the dry-run
//! before an apply (`after-dry-run`), after each apply stage (`after-stage-definitions`,
//! `-classes`, `-objects`, `-admission`), after the health wait (`after-health-wait`), after
//! the revert commit is made, pushed and applied (`after-revert-commit`, `after-revert-pushed`,
//! `after-revert-applied`), and after a cluster of a wave verifies (`after-cluster-verified`).

/// Ends the process at once (no destructors, no flushing beyond what was already synced) when
/// `name` is one of `REMEDIATOR_FAILPOINTS`.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    let Ok(names) = std::env::var("REMEDIATOR_FAILPOINTS") else {
        return;
    };
    if names.split(',').any(|n| n.trim() == name) {
        eprintln!("failpoint {name}: exiting");
        std::process::exit(86);
    }
}

/// Without the `failpoints` feature: nothing, whatever the environment says.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

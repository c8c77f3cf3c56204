//! Check runs: what `check` and `reconcile` report on a commit (a conclusion that follows the
//! verdict, the summary in Markdown, and annotations at the file and line of each finding), the
//! commit status they fall back to when the token may not write checks, and how the gate reads
//! a commit's check runs and statuses alike. Pure.

use serde::Serialize;

use super::{CommitStatus, StatusState};

/// GitHub takes at most this many annotations in one request.
pub const ANNOTATIONS_PER_REQUEST: usize = 50;

/// GitHub keeps this many characters of a check run's summary.
pub const SUMMARY_LIMIT: usize = 65_535;

/// How a check run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Conclusion {
    /// Fine.
    Success,
    /// Nothing to judge (the change could not be worked out in full, or nothing changed).
    Neutral,
    /// Fine once people act: more approvals than the default.
    ActionRequired,
    /// Refused.
    Failure,
}

impl Conclusion {
    /// GitHub's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Conclusion::Success => "success",
            Conclusion::Neutral => "neutral",
            Conclusion::ActionRequired => "action_required",
            Conclusion::Failure => "failure",
        }
    }
}

/// How bad an annotation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// For information.
    Notice,
    /// Look at it.
    Warning,
    /// Refused or breaking.
    Failure,
}

/// A finding at a file and line of the commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Annotation {
    /// The file, relative to the repository.
    pub path: String,
    /// The 1-based line.
    pub line: usize,
    /// How bad.
    #[serde(rename = "annotation_level")]
    pub level: Level,
    /// One line.
    pub title: String,
    /// What is wrong.
    pub message: String,
}

impl Annotation {
    /// As the API takes it.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "path": self.path,
            "start_line": self.line.max(1),
            "end_line": self.line.max(1),
            "annotation_level": self.level,
            "title": self.title,
            "message": self.message,
        })
    }
}

/// A check run to report on a commit.
#[derive(Debug, Clone)]
pub struct CheckRun {
    /// `remediator/check`, `remediator/reconcile`.
    pub name: String,
    /// The commit.
    pub head_sha: String,
    /// `None` while in progress.
    pub conclusion: Option<Conclusion>,
    /// One line.
    pub title: String,
    /// Markdown; cut to what GitHub keeps.
    pub summary: String,
    /// Every annotation; sent [`ANNOTATIONS_PER_REQUEST`] at a time.
    pub annotations: Vec<Annotation>,
}

impl CheckRun {
    /// The summary as GitHub keeps it: cut at a character boundary, saying so.
    pub fn summary_text(&self) -> String {
        if self.summary.len() <= SUMMARY_LIMIT {
            return self.summary.clone();
        }
        let note = "\n\n*The summary is cut here: GitHub keeps 65,535 characters.*\n";
        let mut cut = SUMMARY_LIMIT - note.len();
        while !self.summary.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}{note}", &self.summary[..cut])
    }

    /// The commit status that stands for it when checks cannot be written.
    pub fn status(&self) -> CommitStatus {
        let state = match self.conclusion {
            None | Some(Conclusion::ActionRequired) => StatusState::Pending,
            Some(Conclusion::Success | Conclusion::Neutral) => StatusState::Success,
            Some(Conclusion::Failure) => StatusState::Failure,
        };
        CommitStatus {
            state,
            context: self.name.clone(),
            description: self.title.clone(),
        }
    }
}

/// How a check or status was reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportedAs {
    /// As the check run with this id, in this many requests.
    CheckRun {
        /// Its id.
        id: u64,
        /// The requests that wrote it: one per batch of annotations, at least one.
        requests: usize,
    },
    /// As a commit status: the token may not write checks. `first` the first time this client
    /// fell back, for the caller to say so once.
    Status {
        /// Whether this is the first fallback.
        first: bool,
    },
}

/// Where a check's result came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// A check run.
    CheckRun,
    /// A commit status.
    Status,
}

/// What a check says of a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Success, neutral or skipped.
    Passed,
    /// Failure, error, cancelled, timed out, action required or stale.
    Failed,
    /// Not finished.
    Pending,
}

/// One check of a commit: the latest check run or status of that name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// The check run's name or the status's context.
    pub name: String,
    /// Which.
    pub kind: CheckKind,
    /// What it says.
    pub verdict: Verdict,
    /// GitHub's own word (`failure`, `in_progress`, `success`…).
    pub detail: String,
}

/// The verdict of a check run's `status` and `conclusion`.
pub fn run_verdict(status: &str, conclusion: Option<&str>) -> Verdict {
    match (status, conclusion) {
        ("completed", Some("success" | "neutral" | "skipped")) => Verdict::Passed,
        ("completed", _) => Verdict::Failed,
        _ => Verdict::Pending,
    }
}

/// The verdict of a commit status's `state`.
pub fn status_verdict(state: &str) -> Verdict {
    match state {
        "success" => Verdict::Passed,
        "pending" => Verdict::Pending,
        _ => Verdict::Failed,
    }
}

/// Why the checks `required` do not all pass on a commit: every check run and status of each
/// name counts alike (a failing status is not hidden by a passing check run); a name that
/// nothing reported is missing.
pub fn unmet(required: &[String], results: &[CheckResult]) -> Vec<String> {
    let mut reasons = Vec::new();
    for name in required {
        let found: Vec<&CheckResult> = results.iter().filter(|r| &r.name == name).collect();
        if found.is_empty() {
            reasons.push(format!(
                "the required check `{name}` has not reported on the merged head"
            ));
            continue;
        }
        for result in found {
            let what = match result.kind {
                CheckKind::CheckRun => "check run",
                CheckKind::Status => "commit status",
            };
            match result.verdict {
                Verdict::Passed => {}
                Verdict::Failed => reasons.push(format!(
                    "the required {what} `{name}` is failing ({})",
                    result.detail
                )),
                Verdict::Pending => reasons.push(format!(
                    "the required {what} `{name}` has not finished ({})",
                    result.detail
                )),
            }
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, source: CheckKind, verdict: Verdict, detail: &str) -> CheckResult {
        CheckResult {
            name: name.into(),
            kind: source,
            verdict,
            detail: detail.into(),
        }
    }

    #[test]
    fn check_runs_and_statuses_count_alike_and_a_missing_check_is_unmet() {
        let required = vec!["ci/test".to_owned(), "remediator/check".to_owned()];
        let passing = [
            result("ci/test", CheckKind::Status, Verdict::Passed, "success"),
            result(
                "remediator/check",
                CheckKind::CheckRun,
                Verdict::Passed,
                "success",
            ),
        ];
        assert!(unmet(&required, &passing).is_empty());
        let failing = [
            result("ci/test", CheckKind::Status, Verdict::Passed, "success"),
            result(
                "remediator/check",
                CheckKind::CheckRun,
                Verdict::Failed,
                "failure",
            ),
        ];
        assert_eq!(
            unmet(&required, &failing),
            ["the required check run `remediator/check` is failing (failure)"]
        );
        let both = [
            result("ci/test", CheckKind::CheckRun, Verdict::Passed, "success"),
            result("ci/test", CheckKind::Status, Verdict::Failed, "error"),
        ];
        let reasons = unmet(&required, &both);
        assert_eq!(
            reasons,
            [
                "the required commit status `ci/test` is failing (error)",
                "the required check `remediator/check` has not reported on the merged head",
            ]
        );
        let pending = [result(
            "ci/test",
            CheckKind::Status,
            Verdict::Pending,
            "pending",
        )];
        assert!(unmet(&required[..1], &pending)[0].contains("has not finished"));
    }

    #[test]
    fn verdicts_follow_github_s_words() {
        assert_eq!(run_verdict("completed", Some("success")), Verdict::Passed);
        assert_eq!(run_verdict("completed", Some("skipped")), Verdict::Passed);
        assert_eq!(
            run_verdict("completed", Some("action_required")),
            Verdict::Failed
        );
        assert_eq!(run_verdict("completed", Some("timed_out")), Verdict::Failed);
        assert_eq!(run_verdict("in_progress", None), Verdict::Pending);
        assert_eq!(status_verdict("error"), Verdict::Failed);
        assert_eq!(status_verdict("pending"), Verdict::Pending);
    }

    #[test]
    fn the_fallback_status_follows_the_conclusion_and_the_summary_is_cut_on_a_boundary() {
        let mut run = CheckRun {
            name: "remediator/check".into(),
            head_sha: "abc".into(),
            conclusion: Some(Conclusion::Failure),
            title: "denied".into(),
            summary: "é".repeat(40_000),
            annotations: vec![],
        };
        assert_eq!(run.status().state, StatusState::Failure);
        run.conclusion = Some(Conclusion::ActionRequired);
        assert_eq!(run.status().state, StatusState::Pending);
        run.conclusion = Some(Conclusion::Neutral);
        assert_eq!(run.status().state, StatusState::Success);
        let text = run.summary_text();
        assert!(text.len() <= SUMMARY_LIMIT, "{}", text.len());
        assert!(text.ends_with("65,535 characters.*\n"));
    }
}

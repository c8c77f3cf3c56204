//! The programs some tests run: kustomize (or kubectl's), kubectl and helm. A test that needs
//! one that is not here fails, naming it and how to install it, unless `REMEDIATOR_SKIP_TOOLS=1`
//! is set; then it is skipped with a line on standard error that the test harness does not hide,
//! counting the skips of this test binary. CI never sets it.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A program a test needs.
#[derive(Clone, Copy, Debug)]
pub enum Tool {
    /// kustomize, or kubectl's built-in one.
    Kustomize,
    /// kubectl.
    Kubectl,
}

static SKIPPED: AtomicUsize = AtomicUsize::new(0);

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

/// Whether `tool` is here. Without it: a failure saying how to install it, or, with
/// `REMEDIATOR_SKIP_TOOLS=1`, `false` after a line saying the test is skipped.
pub fn require(tool: Tool, test: &str) -> bool {
    let (found, how) = match tool {
        Tool::Kustomize => (
            remediator::render::Kustomize::find().is_ok(),
            "kustomize (https://kubectl.docs.kubernetes.io/installation/kustomize/) or kubectl (https://kubernetes.io/docs/tasks/tools/)",
        ),
        Tool::Kubectl => (
            on_path("kubectl"),
            "kubectl (https://kubernetes.io/docs/tasks/tools/)",
        ),
    };
    if found {
        return true;
    }
    skip_or_fail(test, how)
}

/// Fails for want of `how`, or skips with `REMEDIATOR_SKIP_TOOLS=1`.
pub fn skip_or_fail(test: &str, how: &str) -> bool {
    if std::env::var("REMEDIATOR_SKIP_TOOLS").as_deref() != Ok("1") {
        panic!(
            "{test} needs {how} on PATH: install it, or set REMEDIATOR_SKIP_TOOLS=1 to skip the tests that need it"
        );
    }
    let count = SKIPPED.fetch_add(1, Ordering::SeqCst) + 1;
    // Written to the process's standard error directly: the harness captures only `eprintln!`.
    let _ = writeln!(
        std::io::stderr(),
        "skipped (REMEDIATOR_SKIP_TOOLS=1): {test} needs {how}; {count} skipped in this test binary so far"
    );
    false
}

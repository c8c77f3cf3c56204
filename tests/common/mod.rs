//! Helpers shared by the integration tests: the corpus of real-world manifests
//! (`tests/fixtures/corpus`), temporary copies of repositories, and the examples.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub mod faults;
pub mod tools;
pub mod world;

/// `tests/fixtures/corpus`: real-world manifests, kept in the project.
pub fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus");
    assert!(
        dir.is_dir(),
        "{} is missing from this checkout",
        dir.display()
    );
    dir
}

/// The projects of the corpus, each indexed as its own repository.
pub fn corpus_projects() -> Vec<PathBuf> {
    let mut projects: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    projects.sort();
    assert_eq!(projects.len(), 3, "the corpus holds three projects");
    projects
}

/// `remediator check --repo WORK --base BASE EXTRA...`, outside any GitHub Actions event.
pub fn check(work: &Path, base: &str, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_remediator"))
        .args(["check", "--repo", work.to_str().unwrap(), "--base", base])
        .args(extra)
        .env_remove("GITHUB_EVENT_PATH")
        .env_remove("GITHUB_REF")
        .output()
        .unwrap()
}

/// Successful writes (server-side applies, not dry-runs) to the objects whose path ends with
/// `path_end` in `cluster`.
pub fn writes_to(cluster: &testkit::TestCluster, path_end: &str) -> usize {
    cluster
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with(path_end))
        .filter(|r| !r.query.contains("dryRun") && r.status.is_some_and(|s| s < 300))
        .count()
}

/// The embedded example repository.
pub fn example_repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/repo")
}

/// Copies `from` into a new temporary directory, line endings converted to CRLF when `crlf`.
pub fn copy_tree(from: &Path, crlf: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_into(from, dir.path(), crlf);
    dir
}

fn copy_into(from: &Path, to: &Path, crlf: bool) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_into(&entry.path(), &target, crlf);
        } else {
            let text = std::fs::read(entry.path()).unwrap();
            let text = match (crlf, String::from_utf8(text.clone())) {
                (true, Ok(t)) => t.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes(),
                _ => text,
            };
            std::fs::write(target, text).unwrap();
        }
    }
}

/// Every `.yaml`/`.yml` file under `dir`, sorted.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Clients to run against: the test API server, and the real cluster of
/// `REMEDIATOR_E2E_KUBECONFIG` when it is set.
pub async fn clients(cluster: &testkit::TestCluster) -> Vec<(String, kube::Client)> {
    let mut out = vec![("test API server".to_string(), cluster.client())];
    match std::env::var("REMEDIATOR_E2E_KUBECONFIG") {
        Ok(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("kubeconfig");
            let options = kube::config::KubeConfigOptions::default();
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .expect("kubeconfig");
            out.push((
                format!("cluster of {path}"),
                kube::Client::try_from(config).unwrap(),
            ));
        }
        Err(_) => eprintln!(
            "note: REMEDIATOR_E2E_KUBECONFIG is not set; these tests run against the test API server only"
        ),
    }
    out
}

/// A work clone and its bare `origin` (pushed to over `file://`), both on branch `main`.
pub struct GitRemote {
    /// Holds both.
    pub dir: tempfile::TempDir,
    /// The bare repository.
    pub bare: PathBuf,
    /// The work clone.
    pub work: PathBuf,
}

fn init(path: &Path, bare: bool) -> git2::Repository {
    let mut options = git2::RepositoryInitOptions::new();
    options.bare(bare).initial_head("main");
    git2::Repository::init_opts(path, &options).unwrap()
}

/// The example's remediator.yaml with dev reaching the cluster of `dev` (a kubeconfig whose
/// context is `testkit`) and prod that of `prod`.
pub fn example_config_on(text: &str, dev: &Path, prod: &Path) -> String {
    let on =
        |kubeconfig: &Path| format!("context: testkit\n    kubeconfig: {}", kubeconfig.display());
    text.replace("context: kind-shop-dev", &on(dev))
        .replace("context: gke-shop-prod", &on(prod))
}

/// Makes a work clone holding a copy of `from` (when given) and `files`, commits it and pushes
/// `main` to a new bare `origin`.
pub fn git_remote(from: Option<&Path>, files: &[(&str, &str)]) -> GitRemote {
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("origin.git");
    let work = dir.path().join("work");
    init(&bare, true);
    let repo = init(&work, false);
    if let Some(from) = from {
        copy_into(from, &work, false);
    }
    write_files(&work, files);
    commit_all(&work, "Initial manifests");
    repo.remote("origin", &format!("file://{}", bare.display()))
        .unwrap();
    push(&work, "refs/heads/main:refs/heads/main");
    GitRemote { dir, bare, work }
}

/// Writes files (path relative to `root`, text).
pub fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
}

/// Commits everything in the work tree on the current branch.
pub fn commit_all(work: &Path, message: &str) -> git2::Oid {
    commit_all_as(work, message, "dev", "dev@example.com")
}

/// Commits everything in the work tree on the current branch as `name <email>`.
pub fn commit_all_as(work: &Path, message: &str, name: &str, email: &str) -> git2::Oid {
    let repo = git2::Repository::open(work).unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    // Files removed from the work tree leave the commit too.
    index.update_all(["*"], None).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now(name, email).unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .unwrap()
}

/// Pushes a refspec of the work clone to `origin`.
pub fn push(work: &Path, refspec: &str) {
    let repo = git2::Repository::open(work).unwrap();
    let mut remote = repo.find_remote("origin").unwrap();
    remote.push(&[refspec], None).unwrap();
}

/// The commit a branch of a repository points at.
pub fn branch_head(repo: &Path, branch: &str) -> Option<git2::Oid> {
    let repo = git2::Repository::open(repo).ok()?;
    repo.find_reference(&format!("refs/heads/{branch}"))
        .ok()?
        .target()
}

/// The faults a pull request meets on its way to the fake GitHub: a 502 on its creation (which
/// did not happen), the primary rate limit on the lookup, the secondary one on its labels.
pub fn publishing_faults(faults: &testkit::faults::Faults) {
    use testkit::{Fault, FaultKind};
    faults.add(Fault::new(
        "POST",
        "/repos/acme/config/pulls",
        FaultKind::Status(502),
    ));
    faults.add(Fault::new(
        "GET",
        "/repos/acme/config/pulls",
        FaultKind::RateLimit { reset_in: 1 },
    ));
    faults.add(Fault::new(
        "PUT",
        "*/labels",
        FaultKind::SecondaryRateLimit { retry_after: 1 },
    ));
}

/// A pod `name` in `default` on `node`, labelled `app: name`, owned by a `kind` named `agent`
/// when `owner` is given.
pub fn pod_on(node: &str, name: &str, owner: Option<&str>) -> serde_json::Value {
    let mut pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}});
    if let Some(kind) = owner {
        pod["metadata"]["ownerReferences"] = serde_json::json!([{"apiVersion": "apps/v1", "kind": kind,
            "name": "agent", "uid": "00000000-0000-0000-0000-000000000001", "controller": true}]);
    }
    pod
}

/// Policies that answer "low, nothing needed" whatever the change: what a pull request that
/// rewrites the policies to approve itself would write.
pub const PERMISSIVE_POLICY: &str = "package remediator

decision := {\"risk\": \"low\", \"denials\": [], \"approvals\": {\"count\": 0, \"teams\": []}, \"escalated\": false, \"reasons\": []}
";

/// A real helm binary (v3): `REMEDIATOR_HELM`, else `helm` on `PATH`, else the one
/// `../shared/tools/get-helm.sh` fetches; without any, a failure saying how to install one.
pub fn helm() -> PathBuf {
    if let Some(helm) = std::env::var_os("REMEDIATOR_HELM") {
        return helm.into();
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("helm"))
            .find(|p| p.is_file())
    });
    if let Some(helm) = on_path {
        return helm;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/get-helm.sh");
    assert!(
        script.is_file(),
        "these tests need a real helm (v3): install it (https://helm.sh/docs/intro/install/) or set REMEDIATOR_HELM to its path"
    );
    let out = std::process::Command::new("bash")
        .arg(&script)
        .output()
        .unwrap();
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success() && !path.is_empty(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    path.into()
}

/// `PATH` with the test's helm (see [`helm`]) first, as `helm` in `dir/bin`.
pub fn path_with_helm(dir: &Path) -> std::ffi::OsString {
    let bin = dir.join("bin");
    if !bin.join("helm").exists() {
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(helm(), bin.join("helm")).unwrap();
    }
    std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap()
}

//! Helpers shared by the integration tests: the shared corpus (when present), temporary copies of
//! repositories, and the examples.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `../shared/corpus`, or `None` with a note when this checkout has no shared folder beside it.
pub fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!(
            "note: {} is absent; the corpus checks are skipped",
            dir.display()
        );
        None
    }
}

/// The projects of the corpus, each indexed as its own repository.
pub fn corpus_projects() -> Vec<PathBuf> {
    let Some(corpus) = corpus() else {
        return vec![];
    };
    let mut projects: Vec<PathBuf> = std::fs::read_dir(corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    projects.sort();
    projects
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

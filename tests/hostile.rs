//! `remediator check` on hostile pull requests, as an attacker would write them, with a real
//! `helm` on `PATH`, a planted `GITHUB_TOKEN` and kubeconfig in its environment, and a planted
//! secret file on the host. Each attack asserts that neither secret reaches stdout or stderr,
//! that a local HTTP listener every remote URL points at receives no request, that nothing is
//! written outside the check's temporary folder, and that what the pull request does is reported
//! as what it is.
//!
//! helm comes from `REMEDIATOR_HELM`, else `helm` on `PATH`, else `../shared/tools/get-helm.sh`;
//! without any of them the tests fail, saying how to install it.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

const TOKEN: &str = "ghp_PLANTEDTOKENabcdefghijklmnopqrstuvwx0123";
const FILE_MARKER: &str = "PLANTED-FILE-MARKER-7f3a";

/// A local HTTP listener that counts the connections it gets and answers 404.
struct Listener {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Listener {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                counted.fetch_add(1, Ordering::SeqCst);
                let mut buffer = [0u8; 4096];
                drop(stream.set_read_timeout(Some(std::time::Duration::from_millis(500))));
                drop(stream.read(&mut buffer));
                drop(stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                ));
            }
        });
        Listener { port, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A repository with a base commit, a planted secret file beside it, a temporary folder and a
/// home of its own for the check, and the listener.
struct Attack {
    dir: tempfile::TempDir,
    base: git2::Oid,
    listener: Listener,
    /// The work tree's status before the last check.
    status: std::cell::RefCell<Vec<String>>,
}

/// A plain manifest, so that the base commit applies something.
const CONFIG_MAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: shop}\n";

const BASE_CONFIG: &str =
    "environments:\n  - name: prod\n    paths: [\"**\"]\n    riskTolerance: medium\n";

const CHART: &[(&str, &str)] = &[
    (
        "charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    ),
    ("charts/web/values.yaml", "replicas: 1\n"),
    (
        "charts/web/templates/values.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name | trunc 50 | trimSuffix \"-\" }}-values\ndata:\n  values: {{ toYaml .Values | quote }}\n",
    ),
];

impl Attack {
    /// The base commit holds `files` and the config (`remediator.yaml`).
    fn new(config: &str, files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["work", "tmp", "home", "bin", "host"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        std::fs::write(
            dir.path().join("host/secret.yaml"),
            format!("leak: {FILE_MARKER}\n"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("host/kubeconfig"),
            format!("apiVersion: v1\nkind: Config\nusers: [{{name: x, user: {{token: {FILE_MARKER}}}}}]\n"),
        )
        .unwrap();
        // A kustomization outside the repository, holding the marker.
        std::fs::create_dir_all(dir.path().join("host/outside")).unwrap();
        std::fs::write(
            dir.path().join("host/outside/kustomization.yaml"),
            "resources: [cm.yaml]\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("host/outside/cm.yaml"),
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: stolen}}\ndata: {{x: {FILE_MARKER}}}\n"),
        )
        .unwrap();
        let work = dir.path().join("work");
        git2::Repository::init(&work).unwrap();
        common::write_files(&work, &[("remediator.yaml", config)]);
        common::write_files(&work, files);
        let base = commit(&work, "base");
        Attack {
            dir,
            base,
            listener: Listener::start(),
            status: Default::default(),
        }
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    fn work(&self) -> PathBuf {
        self.path("work")
    }

    /// Commits `files` on top of the base: the pull request's head.
    fn head(&self, files: &[(&str, &str)]) -> git2::Oid {
        common::write_files(&self.work(), files);
        commit(&self.work(), "the pull request")
    }

    /// `remediator check` of the base against HEAD, with the planted token and kubeconfig, the
    /// test's helm on PATH, and its own temporary folder and home.
    fn check(&self, extra: &[&str]) -> Output {
        let path = common::path_with_helm(self.dir.path());
        *self.status.borrow_mut() = status(&self.work());
        Command::new(env!("CARGO_BIN_EXE_remediator"))
            .args(["check", "--repo"])
            .arg(self.work())
            .args(["--base", &self.base.to_string(), "--head", "HEAD"])
            .args(extra)
            .env_remove("GITHUB_EVENT_PATH")
            .env_remove("GITHUB_REF")
            .env("GITHUB_TOKEN", TOKEN)
            .env("KUBECONFIG", self.path("host/kubeconfig"))
            .env("TMPDIR", self.path("tmp"))
            .env("HOME", self.path("home"))
            .env("PATH", path)
            .output()
            .unwrap()
    }

    /// What every attack must hold: no secret in the output, no request to the listener,
    /// nothing left in (or written beside) the temporary folder, the work tree untouched.
    fn assert_contained(&self, output: &Output) {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!text.contains(TOKEN), "the token leaked:\n{text}");
        assert!(
            !text.contains(FILE_MARKER),
            "the secret file leaked:\n{text}"
        );
        assert!(!text.contains("panicked"), "{text}");
        assert_eq!(
            self.listener.hits(),
            0,
            "a remote source was fetched:\n{text}"
        );
        let left: Vec<_> = std::fs::read_dir(self.path("tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            left.is_empty(),
            "written into the temporary folder and left: {left:?}"
        );
        let mut top: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        top.sort();
        assert_eq!(
            top,
            ["bin", "home", "host", "tmp", "work"],
            "written outside"
        );
        assert_eq!(
            status(&self.work()),
            *self.status.borrow(),
            "the work tree changed"
        );
    }
}

/// Every path of the work tree that differs from HEAD, ignored and untracked ones included.
fn status(work: &Path) -> Vec<String> {
    let repo = git2::Repository::open(work).unwrap();
    let mut options = git2::StatusOptions::new();
    options.include_ignored(true).include_untracked(true);
    let statuses = repo.statuses(Some(&mut options)).unwrap();
    statuses
        .iter()
        .map(|e| {
            format!(
                "{:?} {}",
                e.status(),
                String::from_utf8_lossy(e.path_bytes())
            )
        })
        .collect()
}

/// Commits everything in `work`, ignore files or not (`git add --force`).
fn commit(work: &Path, message: &str) -> git2::Oid {
    let repo = git2::Repository::open(work).unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::FORCE, None)
        .unwrap();
    index.update_all(["*"], None).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("mallory", "mallory@example.com").unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .unwrap()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The report's entry for `name` (`Kind/namespace/name`).
fn object<'r>(report: &'r Value, name: &str) -> &'r Value {
    report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == name)
        .unwrap_or_else(|| panic!("{name} is not reported: {report}"))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn flux_release(name: &str, release_name: &str) -> String {
    format!(
        "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {name}
  namespace: shop
spec:
  interval: 5m
  releaseName: \"{release_name}\"
  chart:
    spec:
      chart: ./charts/web
      sourceRef: {{kind: GitRepository, name: flux-system, namespace: flux-system}}
  values:
    replicas: 2
"
    )
}

fn argo_app(name: &str, helm: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: \"{name}\"
  namespace: argocd
spec:
  project: default
  destination: {{server: https://kubernetes.default.svc, namespace: shop}}
  source:
    repoURL: https://git.example.com/platform.git
    path: charts/web
    helm: {helm}
"
    )
}

#[test]
fn a_release_name_that_reads_as_a_flag_is_refused_and_reads_nothing() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_release_name_that_reads_as_a_flag_is_refused_and_reads_nothing",
    ) {
        return;
    }
    let environ = "--set-file=leak=/proc/self/environ";
    let attack = Attack::new(
        BASE_CONFIG,
        &[CHART, &[("apps/web.yaml", &flux_release("web", "web"))]].concat(),
    );
    let file = format!(
        "--set-file=leak={}",
        attack.path("host/secret.yaml").display()
    );
    attack.head(&[
        ("apps/web.yaml", &flux_release("web", environ)),
        ("apps/api.yaml", &flux_release("api", &file)),
    ]);
    let output = attack.check(&["--output", "json"]);
    attack.assert_contained(&output);
    let report = json(&output);
    let reasons = report.to_string();
    assert!(
        reasons.contains("apps/web.yaml: spec.releaseName: `--set-file=leak=/proc/self/environ` is refused: a Helm release name"),
        "{reasons}"
    );
    assert!(
        reasons.contains("apps/api.yaml: spec.releaseName: `--set-file=leak="),
        "{reasons}"
    );
    assert_eq!(report["assessment"]["risk"], "high", "{reasons}");
}

#[test]
fn an_argo_cd_application_named_like_a_flag_is_refused() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "an_argo_cd_application_named_like_a_flag_is_refused",
    ) {
        return;
    }
    let attack = Attack::new(
        BASE_CONFIG,
        &[CHART, &[("apps/app.yaml", &argo_app("web", "{}"))]].concat(),
    );
    let name = format!(
        "--set-file=leak={}",
        attack.path("host/secret.yaml").display()
    );
    attack.head(&[("apps/app.yaml", &argo_app(&name, "{}"))]);
    let output = attack.check(&["--output", "json"]);
    attack.assert_contained(&output);
    let report = json(&output).to_string();
    assert!(
        report.contains("apps/app.yaml: metadata.name: `--set-file=leak=")
            && report.contains("is refused: a Helm release name"),
        "{report}"
    );
}

#[test]
fn values_files_outside_the_tree_are_never_read() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "values_files_outside_the_tree_are_never_read",
    ) {
        return;
    }
    let attack = Attack::new(
        BASE_CONFIG,
        &[CHART, &[("apps/app.yaml", &argo_app("web", "{}"))]].concat(),
    );
    let absolute = attack.path("host/secret.yaml");
    let climbing = format!("../../../../../../../../..{}", absolute.display());
    for (raw, said) in [
        (absolute.display().to_string(), "cannot read"),
        (climbing, "is refused: it leaves the repository"),
    ] {
        attack.head(&[(
            "apps/app.yaml",
            &argo_app("web", &format!("{{valueFiles: [\"{raw}\"]}}")),
        )]);
        let output = attack.check(&["--output", "json"]);
        attack.assert_contained(&output);
        let report = json(&output).to_string();
        assert!(report.contains(said), "{raw}: {report}");
        assert!(
            report.contains("spec.source.helm.valueFiles[0]") || said == "cannot read",
            "{report}"
        );
    }
}

#[test]
fn a_kustomization_that_climbs_out_of_the_repository_is_refused() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_kustomization_that_climbs_out_of_the_repository_is_refused",
    ) {
        return;
    }
    let attack = Attack::new(
        BASE_CONFIG,
        &[
            ("apps/kustomization.yaml", "resources: [cm.yaml]\n"),
            ("apps/cm.yaml", CONFIG_MAP),
        ],
    );
    let outside = attack.path("host/outside");
    let climbing = format!("../../../../../../../../..{}", outside.display());
    let patch = attack.path("host/secret.yaml");
    for (kustomization, said) in [
        (
            format!("resources: [cm.yaml, \"{climbing}\"]\n"),
            "resources[1]",
        ),
        (
            format!("resources: [cm.yaml, \"{}\"]\n", outside.display()),
            "resources[1]",
        ),
        (
            format!(
                "resources: [cm.yaml]\nconfigMapGenerator: [{{name: x, files: [\"leak={}\"]}}]\n",
                patch.display()
            ),
            "configMapGenerator[0].files[0]",
        ),
    ] {
        attack.head(&[("apps/kustomization.yaml", &kustomization)]);
        let output = attack.check(&[]);
        attack.assert_contained(&output);
        let all = text(&output);
        assert!(
            all.contains(&format!("apps/kustomization.yaml: {said}: `"))
                && all.contains("is refused"),
            "{kustomization}: {all}"
        );
        assert!(!all.contains("stolen"), "{all}");
    }
}

#[test]
fn remote_sources_are_not_fetched_while_a_change_is_judged() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "remote_sources_are_not_fetched_while_a_change_is_judged",
    ) {
        return;
    }
    let attack = Attack::new(
        BASE_CONFIG,
        &[
            ("apps/kustomization.yaml", "resources: [cm.yaml]\n"),
            ("apps/cm.yaml", CONFIG_MAP),
        ],
    );
    let url = |path: &str| attack.listener.url(path);
    let oci = format!("oci://127.0.0.1:{}/charts", attack.listener.port);
    attack.head(&[
        (
            "apps/kustomization.yaml",
            &format!(
                "resources: [cm.yaml, \"{}\", \"{}\"]\nhelmCharts: [{{name: web, repo: \"{}\", releaseName: web}}]\n",
                url("x.yaml"),
                url("org/repo.git//deploy?ref=main"),
                url("charts")
            ),
        ),
        (
            "flux/repository.yaml",
            &format!(
                "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {{name: evil, namespace: flux-system}}\nspec: {{url: \"{}\"}}\n",
                url("")
            ),
        ),
        (
            "flux/release.yaml",
            "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: evil, namespace: shop}\nspec:\n  chart:\n    spec: {chart: web, sourceRef: {kind: HelmRepository, name: evil, namespace: flux-system}}\n",
        ),
        (
            "argo/http.yaml",
            &format!(
                "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {{name: http, namespace: argocd}}\nspec:\n  destination: {{namespace: shop}}\n  source: {{repoURL: \"{}\", chart: web, targetRevision: 1.0.0}}\n",
                url("")
            ),
        ),
        (
            "argo/oci.yaml",
            &format!(
                "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {{name: oci, namespace: argocd}}\nspec:\n  destination: {{namespace: shop}}\n  source: {{repoURL: \"{oci}\", chart: web, targetRevision: 1.0.0}}\n"
            ),
        ),
    ]);
    let output = attack.check(&["--output", "json"]);
    attack.assert_contained(&output);
    let report = json(&output);
    let all = report.to_string();
    assert_eq!(report["assessment"]["risk"], "high", "{all}");
    assert!(
        all.contains("which `render.allowRemote` in the trusted configuration does not allow"),
        "{all}"
    );
    for release in [
        "HelmRelease/shop/evil",
        "Application/argocd/http",
        "Application/argocd/oci",
    ] {
        let object = object(&report, release);
        let why = object["unrendered"].as_str().unwrap_or_default();
        assert!(why.contains("render.allowRemote"), "{release}: {why}");
    }
}

#[test]
fn a_remote_source_on_the_trusted_allow_list_is_fetched() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_remote_source_on_the_trusted_allow_list_is_fetched",
    ) {
        return;
    }
    let config = format!("{BASE_CONFIG}render:\n  allowRemote: [\"127.0.0.1\"]\n");
    let attack = Attack::new(
        &config,
        &[
            ("apps/kustomization.yaml", "resources: [cm.yaml]\n"),
            ("apps/cm.yaml", CONFIG_MAP),
        ],
    );
    attack.head(&[(
        "apps/kustomization.yaml",
        &format!(
            "resources: [cm.yaml, \"{}\"]\n",
            attack.listener.url("x.yaml")
        ),
    )]);
    let output = attack.check(&["--output", "json"]);
    assert!(attack.listener.hits() > 0, "{}", text(&output));
    let report = json(&output).to_string();
    assert!(report.contains("could not be fetched"), "{report}");
}

#[test]
fn a_pull_request_cannot_widen_the_allow_list_it_is_judged_by() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_pull_request_cannot_widen_the_allow_list_it_is_judged_by",
    ) {
        return;
    }
    let attack = Attack::new(
        BASE_CONFIG,
        &[
            ("apps/kustomization.yaml", "resources: [cm.yaml]\n"),
            ("apps/cm.yaml", CONFIG_MAP),
        ],
    );
    attack.head(&[
        (
            "remediator.yaml",
            &format!("{BASE_CONFIG}render:\n  allowRemote: [\"127.0.0.1\"]\n"),
        ),
        (
            "apps/kustomization.yaml",
            &format!(
                "resources: [cm.yaml, \"{}\"]\n",
                attack.listener.url("x.yaml")
            ),
        ),
    ]);
    let output = attack.check(&["--output", "json"]);
    attack.assert_contained(&output);
    assert_eq!(json(&output)["assessment"]["risk"], "critical");
}

#[test]
fn a_tree_entry_named_dot_dot_is_refused_before_anything_is_written() {
    let attack = Attack::new(
        BASE_CONFIG,
        &[(
            "apps/a.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
        )],
    );
    let repo = git2::Repository::open(attack.work()).unwrap();
    let blob = repo
        .blob(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: escaped}\n")
        .unwrap();
    // A raw tree object: libgit2's tree builder refuses such a name, a crafted push does not.
    let raw = |entries: &[(&str, &[u8], git2::Oid)]| {
        let mut bytes = Vec::new();
        for (mode, name, id) in entries {
            bytes.extend_from_slice(mode.as_bytes());
            bytes.push(b' ');
            bytes.extend_from_slice(name);
            bytes.push(0);
            bytes.extend_from_slice(id.as_bytes());
        }
        repo.odb()
            .unwrap()
            .write(git2::ObjectType::Tree, &bytes)
            .unwrap()
    };
    let inner = raw(&[("100644", b"escaped.yaml", blob)]);
    let base_tree = repo.find_commit(attack.base).unwrap().tree().unwrap();
    let mut entries: Vec<(String, Vec<u8>, git2::Oid)> = base_tree
        .iter()
        .map(|e| {
            (
                format!("{:o}", e.filemode()),
                e.name_bytes().to_vec(),
                e.id(),
            )
        })
        .collect();
    entries.push(("40000".into(), b"..".to_vec(), inner));
    entries.sort_by(|a, b| a.1.cmp(&b.1));
    let borrowed: Vec<(&str, &[u8], git2::Oid)> = entries
        .iter()
        .map(|(m, n, i)| (m.as_str(), n.as_slice(), *i))
        .collect();
    let tree = repo.find_tree(raw(&borrowed)).unwrap();
    let sig = git2::Signature::now("mallory", "mallory@example.com").unwrap();
    let parent = repo.find_commit(attack.base).unwrap();
    repo.commit(Some("HEAD"), &sig, &sig, "escape", &tree, &[&parent])
        .unwrap();
    let output = attack.check(&[]);
    attack.assert_contained(&output);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(3), "{all}");
    assert!(
        all.contains("a tree entry named \"..\" is refused"),
        "{all}"
    );
    assert!(!attack.path("escaped.yaml").exists());
}

const PRIVILEGED: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: NAME, namespace: shop}
spec:
  selector: {matchLabels: {app: NAME}}
  template:
    metadata: {labels: {app: NAME}}
    spec:
      hostPID: true
      containers:
        - name: root
          image: busybox
          securityContext: {privileged: true}
";

#[test]
fn ignore_files_and_dotfiles_hide_nothing() {
    let attack = Attack::new(BASE_CONFIG, &[("apps/a.yaml", CONFIG_MAP)]);
    attack.head(&[
        (".gitignore", "apps/evil.yaml\n"),
        ("apps/.ignore", "evil.yaml\n"),
        ("apps/evil.yaml", &PRIVILEGED.replace("NAME", "evil")),
        ("apps/.hidden.yaml", &PRIVILEGED.replace("NAME", "hidden")),
        (".config/deploy.yaml", &PRIVILEGED.replace("NAME", "dotdir")),
    ]);
    let output = attack.check(&["--output", "json"]);
    attack.assert_contained(&output);
    let report = json(&output);
    let all = report.to_string();
    for name in ["evil", "hidden", "dotdir"] {
        let object = object(&report, &format!("Deployment/shop/{name}"));
        assert_eq!(object["change"], "added", "{all}");
        assert_eq!(object["assessment"]["risk"], "high", "{all}");
        let reasons = object["assessment"]["reasons"].to_string();
        assert!(reasons.contains("privileged container"), "{reasons}");
        assert!(reasons.contains("hostPID"), "{reasons}");
    }
}

#[test]
fn secret_values_are_masked_wherever_they_are_substituted() {
    let secret = "s3cr3t-SUBSTITUTED-value";
    let encoded = "czNjcjN0LVNVQlNUSVRVVEVELXZhbHVl";
    let last_applied = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"data\":{{\"token\":\"{encoded}\"}},\"metadata\":{{\"name\":\"vars\"}}}}"
    );
    let attack = Attack::new(
        BASE_CONFIG,
        &[
            (
                "clusters/prod/apps.yaml",
                "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: apps, namespace: flux-system}\nspec:\n  path: ./apps\n  prune: true\n  sourceRef: {kind: GitRepository, name: flux-system}\n  postBuild:\n    substituteFrom: [{kind: Secret, name: vars}]\n",
            ),
            (
                "clusters/prod/vars.yaml",
                &format!(
                    "apiVersion: v1\nkind: Secret\nmetadata: {{name: vars, namespace: flux-system}}\ndata: {{token: {encoded}}}\n"
                ),
            ),
            (
                "apps/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: shop}\ndata: {mode: plain}\n",
            ),
        ],
    );
    attack.head(&[
        (
            "apps/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: shop}\ndata: {mode: plain, token: \"${token}\"}\n",
        ),
        (
            "clusters/prod/vars.yaml",
            &format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: vars\n  namespace: flux-system\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: '{last_applied}'\ndata: {{token: {encoded}}}\n"
            ),
        ),
    ]);
    for format in ["json", "markdown"] {
        let output = attack.check(&["--output", format]);
        attack.assert_contained(&output);
        let all = text(&output);
        assert!(all.contains("ConfigMap/shop/app"), "{all}");
        assert!(!all.contains(secret), "a substituted value leaked:\n{all}");
        assert!(!all.contains(encoded), "a Secret value leaked:\n{all}");
    }
}

#[test]
fn hostile_shapes_end_in_a_report_or_an_error_naming_the_file() {
    let bomb = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    let deep = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: deep, namespace: shop}}\ndata: {{x: y}}\nextra: {}1{}\n",
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    let large = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: large, namespace: shop}}\ndata:\n  blob: \"{}\"\n",
        "x".repeat(50 << 20)
    );
    let attack = Attack::new(BASE_CONFIG, &[("apps/a.yaml", CONFIG_MAP)]);
    // A 50 MB manifest is read and reported like any other.
    common::write_files(&attack.work(), &[("apps/large.yaml", &large)]);
    commit(&attack.work(), "a large manifest");
    let output = attack.check(&["--output", "json"]);
    attack.assert_contained(&output);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(
        object(&json(&output), "ConfigMap/shop/large")["change"],
        "added"
    );
    // An alias bomb, deep nesting, and a name and contents that are not UTF-8: an error naming
    // each file and what is wrong, never a crash, a hang or a partial report.
    common::write_files(
        &attack.work(),
        &[("apps/bomb.yaml", bomb), ("apps/deep.yaml", &deep)],
    );
    std::fs::write(
        attack.work().join(std::ffi::OsStr::from_bytes(b"apps/\xff\xfe.yaml")),
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bytes, namespace: shop}\ndata: {x: \"\xff\xfe\"}\n",
    )
    .unwrap();
    commit(&attack.work(), "hostile shapes");
    let output = attack.check(&["--output", "json"]);
    attack.assert_contained(&output);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(3), "{all}");
    for said in [
        "apps/bomb.yaml:",
        "alias replay limit exceeded",
        "apps/deep.yaml:",
        "recursion limit exceeded",
        ".yaml:4: not UTF-8 text",
    ] {
        assert!(all.contains(said), "{said}: {all}");
    }
}

#[test]
fn a_manifest_that_is_a_symlink_is_weighed_never_called_unused() {
    let attack = Attack::new(BASE_CONFIG, &[("apps/a.yaml", CONFIG_MAP)]);
    common::write_files(
        &attack.work(),
        &[("apps/evil.txt", &PRIVILEGED.replace("NAME", "evil"))],
    );
    std::os::unix::fs::symlink("evil.txt", attack.work().join("apps/evil.yaml")).unwrap();
    commit(&attack.work(), "a link");
    let output = attack.check(&["--output", "json"]);
    attack.assert_contained(&output);
    let report = json(&output);
    let all = report.to_string();
    assert!(
        report["unused"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f != "apps/evil.yaml"),
        "{all}"
    );
    let link = report["not_rendered"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["build"] == "apps/evil.yaml")
        .unwrap_or_else(|| panic!("{all}"));
    assert!(
        link["reason"].as_str().unwrap().contains("symbolic link"),
        "{all}"
    );
    assert_eq!(report["assessment"]["risk"], "high", "{all}");
}

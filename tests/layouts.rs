//! `propose` on the layouts real teams use, each proven by rendering: the edit lands in the layer
//! that belongs to the failing environment, rendering that environment shows the new value on the
//! right container, and every other environment renders byte for byte as before. kustomize
//! builds are rendered by kustomize (or kubectl); Helm charts by a real helm (`REMEDIATOR_HELM`,
//! `helm` on `PATH`, or `../shared/tools/get-helm.sh`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

/// A layout in a temporary Git repository, committed.
struct Layout {
    dir: tempfile::TempDir,
}

impl Layout {
    fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        common::write_files(dir.path(), files);
        common::commit_all(dir.path(), "The layout");
        Layout { dir }
    }

    /// The layout with the files of a fixture folder under `tests/fixtures`, and `files`.
    fn from_fixture(name: &str, files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        copy(&from, dir.path());
        common::write_files(dir.path(), files);
        common::commit_all(dir.path(), "The layout");
        Layout { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `propose --env ENV --forge local` on a snapshot of `objects`: the branch it wrote, and
    /// the files that branch changes with their text before and after.
    fn propose(&self, env: &str, objects: &[Value]) -> Vec<(PathBuf, String, String)> {
        let snapshot = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
        let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
        std::fs::write(snapshot.path(), list.to_string()).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_remediator"))
            .args(["propose", "--repo"])
            .arg(self.root())
            .arg("--snapshot")
            .arg(snapshot.path())
            .args(["--env", env, "--forge", "local", "--output", "json"])
            .output()
            .unwrap();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{printed}");
        let repo = git2::Repository::open(self.root()).unwrap();
        let branches: Vec<String> = repo
            .branches(Some(git2::BranchType::Local))
            .unwrap()
            .map(|b| b.unwrap().0.name().unwrap().unwrap().to_owned())
            .filter(|n| n.starts_with("remediator/"))
            .collect();
        assert_eq!(branches.len(), 1, "one proposal: {printed}");
        let head = repo.head().unwrap().peel_to_commit().unwrap();
        let branch = repo
            .find_branch(&branches[0], git2::BranchType::Local)
            .unwrap()
            .get()
            .peel_to_commit()
            .unwrap();
        let diff = repo
            .diff_tree_to_tree(
                Some(&head.tree().unwrap()),
                Some(&branch.tree().unwrap()),
                None,
            )
            .unwrap();
        let text_at = |commit: &git2::Commit, path: &Path| {
            commit
                .tree()
                .unwrap()
                .get_path(path)
                .ok()
                .map(|e| {
                    let blob = repo.find_blob(e.id()).unwrap();
                    String::from_utf8(blob.content().to_vec()).unwrap()
                })
                .unwrap_or_default()
        };
        let changed: Vec<(PathBuf, String, String)> = diff
            .deltas()
            .map(|d| d.new_file().path().unwrap().to_owned())
            .map(|path| {
                let (old, new) = (text_at(&head, &path), text_at(&branch, &path));
                (path, old, new)
            })
            .collect();
        // The branch's files into the work tree, for rendering.
        for (path, _, new) in &changed {
            std::fs::write(self.root().join(path), new).unwrap();
        }
        changed
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `kustomize build` of `dir` (kubectl's when kustomize is not on PATH).
fn kustomize(root: &Path, dir: &str) -> String {
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
    };
    let mut command = if on_path("kustomize") {
        let mut c = Command::new("kustomize");
        c.arg("build");
        c
    } else if on_path("kubectl") {
        let mut c = Command::new("kubectl");
        c.arg("kustomize");
        c
    } else {
        panic!("these tests render with kustomize: install kustomize or kubectl");
    };
    let out = command.arg(root.join(dir)).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `helm template NAME CHART -f FILE...` in `root`.
fn helm_template(root: &Path, name: &str, chart: &Path, values: &[&str]) -> String {
    let mut command = Command::new(common::helm());
    command
        .current_dir(root)
        .args(["template", name])
        .arg(chart);
    for file in values {
        command.args(["-f", file]);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The documents of a render.
fn documents(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// A Deployment whose container `container` was OOM-killed, with its ReplicaSet and Pod, and
/// a day of memory samples peaking at `peak_mib` (none when `None`).
fn oom_killed(
    namespace: &str,
    name: &str,
    container: &str,
    marks: Value,
    peak_mib: Option<f64>,
) -> Vec<Value> {
    let mut out = vec![
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "uid": "uid-deploy",
                "labels": marks["labels"], "annotations": marks["annotations"]},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": container, "image": "app:1"}]}}},
            "status": {"replicas": 1}}),
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": format!("{name}-5d8f"), "namespace": namespace, "uid": "uid-rs",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                    "uid": "uid-deploy", "controller": true}]},
            "spec": {"selector": {"matchLabels": {"app": name}}}}),
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("{name}-5d8f-abc"), "namespace": namespace,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": format!("{name}-5d8f"), "uid": "uid-rs", "controller": true}]},
            "spec": {"nodeName": "n1", "containers": [{"name": container, "image": "app:1"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": container,
                "image": "app:1", "imageID": "", "ready": false, "restartCount": 9, "started": false,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137,
                    "startedAt": "2026-12-06T10:00:00Z", "finishedAt": "2026-12-06T10:05:00Z"}}}]}}),
    ];
    if let Some(peak) = peak_mib {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let memory: Vec<Value> = (0..144)
            .map(|i| {
                let mib = peak - f64::from(i % 5) * 10.0;
                json!([now - 86_400.0 + f64::from(i) * 600.0, mib * 1_048_576.0])
            })
            .collect();
        out.push(json!({"apiVersion": "remediator.dev/v1alpha1", "kind": "UsageHistory",
            "containers": [{"namespace": namespace, "workload": {"kind": "Deployment", "name": name},
                "container": container, "memory": memory}]}));
    }
    out
}

/// An OOM kill of container `container` of `web-prod-web`, which Argo CD's `web-prod`
/// Application tracks.
fn web_prod_oom(container: &str, peak_mib: Option<f64>) -> Vec<Value> {
    let marks = json!({"annotations": {
        "argocd.argoproj.io/tracking-id": "web-prod:apps/Deployment:web-prod/web-prod-web"}});
    oom_killed("web-prod", "web-prod-web", container, marks, peak_mib)
}

/// The files a proposal changes.
fn files_of(changed: &[(PathBuf, String, String)]) -> Vec<&Path> {
    changed.iter().map(|(p, _, _)| p.as_path()).collect()
}

fn environments(pairs: &[(&str, &str)]) -> String {
    let mut out = String::from("environments:\n");
    for (name, paths) in pairs {
        out.push_str(&format!("  - name: {name}\n    paths: {paths}\n"));
    }
    out
}

#[test]
fn flux_helm_release_with_values_in_the_base_and_per_environment_patches() {
    let config = environments(&[
        ("staging", "[\"clusters/staging/**\", \"apps/staging/**\"]"),
        (
            "production",
            "[\"clusters/production/**\", \"apps/production/**\"]",
        ),
    ]);
    let layout = Layout::from_fixture(
        "flux2-kustomize-helm-example",
        &[("remediator.yaml", &config)],
    );
    let production = kustomize(layout.root(), "apps/production");
    let marks = json!({"labels": {"helm.toolkit.fluxcd.io/name": "podinfo",
        "helm.toolkit.fluxcd.io/namespace": "podinfo"}});
    // podinfo sets no memory limit: the OOM kill gets a first one, from a 320Mi peak.
    let changed = layout.propose(
        "staging",
        &oom_killed("podinfo", "podinfo", "podinfo", marks, Some(320.0)),
    );
    let files = files_of(&changed);
    assert_eq!(files, [Path::new("apps/staging/podinfo-values.yaml")]);
    let (_, old, new) = &changed[0];
    let added: Vec<&str> = new.lines().skip(old.lines().count()).collect();
    assert_eq!(
        added,
        [
            "    resources:",
            "      requests:",
            "        memory: 368Mi",
            "      limits:",
            "        memory: 368Mi"
        ],
        "appended to the overlay's own patch, below its last line:\n{new}"
    );
    let staging = documents(&kustomize(layout.root(), "apps/staging"));
    let release = staging.iter().find(|d| d["kind"] == "HelmRelease").unwrap();
    assert_eq!(
        release["spec"]["values"]["resources"],
        json!({"requests": {"memory": "368Mi"}, "limits": {"memory": "368Mi"}})
    );
    assert_eq!(
        release["spec"]["values"]["redis"]["enabled"], true,
        "the base's values still reach staging"
    );
    assert_eq!(kustomize(layout.root(), "apps/production"), production);
}

const CHART: &str = "apiVersion: v2\nname: web\nversion: 1.0.0\n";

const CHART_VALUES: &str = "# Defaults of the web chart.
replicaCount: 1
resources: {}
sidecar:
  resources:
    limits: {memory: 64Mi}
";

const DEPLOYMENT_TEMPLATE: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: web:1
          resources:
{{ toYaml .Values.resources | indent 12 }}
        - name: sidecar
          image: sidecar:1
          resources:
{{ toYaml .Values.sidecar.resources | indent 12 }}
";

fn argo_app(env: &str, value_files: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web-{env}
  namespace: argocd
spec:
  project: default
  destination: {{server: https://kubernetes.default.svc, namespace: web-{env}}}
  source:
    repoURL: https://git.example.com/platform.git
    path: charts/web
    helm:
      valueFiles: {value_files}
"
    )
}

/// The web chart in the repository, with Argo CD Applications for prod (the chart's values,
/// then `values-prod.yaml` holding `prod_values`) and dev (the chart's values only).
fn web_chart(prod_values: &str) -> Layout {
    let config = environments(&[
        ("prod", "[\"argo/prod.yaml\"]"),
        ("dev", "[\"argo/dev.yaml\"]"),
    ]);
    Layout::new(&[
        ("remediator.yaml", &config),
        ("charts/web/Chart.yaml", CHART),
        ("charts/web/values.yaml", CHART_VALUES),
        ("charts/web/values-prod.yaml", prod_values),
        ("charts/web/templates/deployment.yaml", DEPLOYMENT_TEMPLATE),
        (
            "argo/prod.yaml",
            &argo_app("prod", "[values.yaml, values-prod.yaml]"),
        ),
        ("argo/dev.yaml", &argo_app("dev", "[values.yaml]")),
    ])
}

#[test]
fn argo_cd_helm_app_with_values_files_per_environment() {
    let layout = web_chart("replicaCount: 3 # prod runs three\n");
    let render = |name: &str, files: &[&str]| {
        helm_template(layout.root(), name, Path::new("charts/web"), files)
    };
    let dev = render("web-dev", &["charts/web/values.yaml"]);
    let changed = layout.propose("prod", &web_prod_oom("web", Some(200.0)));
    let files = files_of(&changed);
    assert_eq!(
        files,
        [Path::new("charts/web/values-prod.yaml")],
        "prod's own values file, never the chart's shared defaults"
    );
    assert_eq!(
        changed[0].2,
        "replicaCount: 3 # prod runs three\nresources:\n  requests:\n    memory: 230Mi\n  limits:\n    memory: 230Mi\n"
    );
    let prod = documents(&render(
        "web-prod",
        &["charts/web/values.yaml", "charts/web/values-prod.yaml"],
    ));
    let containers = &prod[0]["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["name"], "web");
    assert_eq!(
        containers[0]["resources"],
        json!({"limits": {"memory": "230Mi"}, "requests": {"memory": "230Mi"}})
    );
    assert_eq!(
        containers[1]["resources"],
        json!({"limits": {"memory": "64Mi"}}),
        "the other container is left as it was"
    );
    assert_eq!(render("web-dev", &["charts/web/values.yaml"]), dev);
}

const UI: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: ui
spec:
  selector:
    matchLabels: {app: ui}
  template:
    metadata:
      labels: {app: ui}
    spec:
      containers:
        - name: ui
          image: ui:1
          resources:
            requests: {memory: 256Mi}
            limits: {memory: 256Mi}
";

#[test]
fn kustomize_with_name_prefix_and_a_namespace_transform() {
    let config = environments(&[
        ("prod", "[\"clusters/prod/**\"]"),
        ("dev", "[\"clusters/dev/**\"]"),
    ]);
    let layout = Layout::new(&[
        ("remediator.yaml", &config),
        (
            "base/ui/kustomization.yaml",
            "resources:\n  - deployment.yaml\n",
        ),
        ("base/ui/deployment.yaml", UI),
        (
            "clusters/prod/kustomization.yaml",
            "namePrefix: prod-\nnamespace: shop\nresources:\n  - ../../base/ui\n",
        ),
        (
            "clusters/dev/kustomization.yaml",
            "namePrefix: dev-\nnamespace: shop-dev\nresources:\n  - ../../base/ui\n",
        ),
    ]);
    let dev = kustomize(layout.root(), "clusters/dev");
    let changed = layout.propose(
        "prod",
        &oom_killed("shop", "prod-ui", "ui", json!({}), None),
    );
    let mut files = files_of(&changed);
    files.sort();
    assert_eq!(
        files,
        [
            Path::new("clusters/prod/deployment-ui-patch.yaml"),
            Path::new("clusters/prod/kustomization.yaml")
        ]
    );
    let kustomization = &changed
        .iter()
        .find(|(p, _, _)| p.ends_with("kustomization.yaml"))
        .unwrap()
        .2;
    assert!(
        kustomization.ends_with(
            "resources:\n  - ../../base/ui\npatches:\n  - path: deployment-ui-patch.yaml\n"
        ),
        "the new entry in the file's own list indentation:\n{kustomization}"
    );
    let prod = documents(&kustomize(layout.root(), "clusters/prod"));
    assert_eq!(prod[0]["metadata"]["name"], "prod-ui");
    assert_eq!(
        prod[0]["spec"]["template"]["spec"]["containers"][0]["resources"],
        json!({"requests": {"memory": "384Mi"}, "limits": {"memory": "384Mi"}})
    );
    assert_eq!(kustomize(layout.root(), "clusters/dev"), dev);
}

#[test]
fn a_chart_that_hard_codes_its_limit_is_refused_naming_the_template() {
    let config = environments(&[("prod", "[\"argo/prod.yaml\"]")]);
    let hard_coded = DEPLOYMENT_TEMPLATE.replace(
        "{{ toYaml .Values.resources | indent 12 }}\n        - name: sidecar",
        "            limits: {memory: 128Mi}\n        - name: sidecar",
    );
    let hard_coded = hard_coded.replace(
        "{{ toYaml .Values.sidecar.resources | indent 12 }}\n",
        "            limits: {memory: 64Mi}\n",
    );
    assert!(!hard_coded.contains(".Values.resources"), "{hard_coded}");
    let layout = Layout::new(&[
        ("remediator.yaml", &config),
        ("charts/web/Chart.yaml", CHART),
        ("charts/web/values.yaml", "replicaCount: 1\n"),
        ("charts/web/templates/apps/deployment.yaml", &hard_coded),
        ("argo/prod.yaml", &argo_app("prod", "[values.yaml]")),
    ]);
    let snapshot = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
    let objects = web_prod_oom("web", None);
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    std::fs::write(snapshot.path(), list.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_remediator"))
        .args(["propose", "--repo"])
        .arg(layout.root())
        .arg("--snapshot")
        .arg(snapshot.path())
        .args(["--env", "prod", "--forge", "none"])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("0 proposals")
            && printed.contains(
                "writes its resources in `charts/web/templates/apps/deployment.yaml` without reading `.Values.resources`"
            ),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_chart_with_two_containers_changes_only_the_failing_one() {
    let layout = web_chart("replicaCount: 3\n");
    let render = |name: &str, files: &[&str]| {
        helm_template(layout.root(), name, Path::new("charts/web"), files)
    };
    let prod_files = ["charts/web/values.yaml", "charts/web/values-prod.yaml"];
    let before = documents(&render("web-prod", &prod_files));
    let dev = render("web-dev", &["charts/web/values.yaml"]);
    // The sidecar is OOM-killed: its limit is the chart's `sidecar.resources`.
    let changed = layout.propose("prod", &web_prod_oom("sidecar", None));
    assert_eq!(
        changed[0].2,
        "replicaCount: 3\nsidecar:\n  resources:\n    limits:\n      memory: 96Mi\n"
    );
    let after = documents(&render("web-prod", &prod_files));
    let containers = |docs: &[Value]| docs[0]["spec"]["template"]["spec"]["containers"].clone();
    assert_eq!(
        containers(&after)[1]["resources"],
        json!({"limits": {"memory": "96Mi"}})
    );
    assert_eq!(
        containers(&after)[0],
        containers(&before)[0],
        "the web container is untouched"
    );
    assert_eq!(render("web-dev", &["charts/web/values.yaml"]), dev);
}

#[test]
fn argo_cd_multi_source_app_with_values_from_the_repository() {
    let app = |env: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web-{env}
  namespace: argocd
spec:
  project: default
  destination: {{server: https://kubernetes.default.svc, namespace: web-{env}}}
  sources:
    - repoURL: https://charts.example.com
      chart: web
      targetRevision: 1.0.0
      helm:
        valueFiles:
          - $values/envs/common.yaml
          - $values/envs/{env}/values.yaml
    - repoURL: https://git.example.com/platform.git
      targetRevision: main
      ref: values
"
        )
    };
    let config = environments(&[
        ("prod", "[\"argo/prod.yaml\"]"),
        ("dev", "[\"argo/dev.yaml\"]"),
    ]);
    let layout = Layout::new(&[
        ("remediator.yaml", &config),
        ("envs/common.yaml", "replicaCount: 2\n"),
        ("envs/prod/values.yaml", "replicaCount: 3\n"),
        ("envs/dev/values.yaml", "replicaCount: 1\n"),
        ("argo/prod.yaml", &app("prod")),
        ("argo/dev.yaml", &app("dev")),
    ]);
    // The chart comes from a Helm repository: rendered here from a copy outside the repository.
    let chart = tempfile::tempdir().unwrap();
    common::write_files(
        chart.path(),
        &[
            ("web/Chart.yaml", CHART),
            ("web/values.yaml", CHART_VALUES),
            ("web/templates/deployment.yaml", DEPLOYMENT_TEMPLATE),
        ],
    );
    let chart_dir = chart.path().join("web");
    let render = |env: &str| {
        let own = format!("envs/{env}/values.yaml");
        let files = ["envs/common.yaml", own.as_str()];
        helm_template(layout.root(), &format!("web-{env}"), &chart_dir, &files)
    };
    let dev = render("dev");
    let changed = layout.propose("prod", &web_prod_oom("web", Some(200.0)));
    let files = files_of(&changed);
    assert_eq!(
        files,
        [Path::new("envs/prod/values.yaml")],
        "prod's own values file, not the common one"
    );
    let prod = documents(&render("prod"));
    assert_eq!(
        prod[0]["spec"]["template"]["spec"]["containers"][0]["resources"],
        json!({"limits": {"memory": "230Mi"}, "requests": {"memory": "230Mi"}})
    );
    assert_eq!(render("dev"), dev);
}

#[test]
fn an_application_set_over_directories_places_and_remedies_each_directory() {
    let appset = "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: apps
  namespace: argocd
spec:
  generators:
    - git:
        repoURL: https://git.example.com/platform.git
        revision: HEAD
        directories:
          - path: apps/*
  template:
    metadata:
      name: '{{path.basename}}'
    spec:
      project: default
      source:
        repoURL: https://git.example.com/platform.git
        targetRevision: HEAD
        path: '{{path}}'
      destination:
        server: https://kubernetes.default.svc
        namespace: '{{path.basename}}'
";
    let deployment = |name: &str| UI.replacen("name: ui\n", &format!("name: {name}\n"), 1);
    let config = environments(&[("prod", "[\"argo/**\"]")]);
    let layout = Layout::new(&[
        ("remediator.yaml", &config),
        ("argo/apps.yaml", appset),
        ("apps/shop/api.yaml", &deployment("api")),
        ("apps/blog/api.yaml", &deployment("api")),
    ]);
    // Each directory's namespace-less Deployment runs in the namespace its Application gives it,
    // and belongs to the environment of the ApplicationSet that makes it.
    let changed = layout.propose("prod", &oom_killed("shop", "api", "ui", json!({}), None));
    let files = files_of(&changed);
    assert_eq!(files, [Path::new("apps/shop/api.yaml")]);
    let new = documents(&changed[0].2);
    assert_eq!(
        new[0]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
        "384Mi"
    );
    let blog = std::fs::read_to_string(layout.root().join("apps/blog/api.yaml")).unwrap();
    assert_eq!(blog, deployment("api"), "the other directory is left alone");
}

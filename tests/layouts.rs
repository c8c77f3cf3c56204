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
    /// A folder outside the repository, for what the tests render from or into.
    aside: tempfile::TempDir,
}

impl Layout {
    fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        common::write_files(dir.path(), files);
        common::commit_all(dir.path(), "The layout");
        let aside = tempfile::tempdir().unwrap();
        Layout { dir, aside }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn aside(&self) -> &Path {
        self.aside.path()
    }

    /// `propose --env ENV --forge FORGE` on a snapshot of `objects`, with the test's helm on
    /// `PATH`: whether it succeeded, and what it printed.
    fn run(&self, env: &str, objects: &[Value], forge: &str) -> (bool, String) {
        let snapshot = self.aside().join("snapshot.json");
        let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
        std::fs::write(&snapshot, list.to_string()).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_remediator"))
            .args(["propose", "--repo"])
            .arg(self.root())
            .arg("--snapshot")
            .arg(&snapshot)
            .args(["--env", env, "--forge", forge])
            .env("PATH", common::path_with_helm(self.aside()))
            .output()
            .unwrap();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), printed)
    }

    /// `propose --env ENV --forge local` on a snapshot of `objects`: the branch it wrote, and
    /// the files that branch changes with their text before and after.
    fn propose(&self, env: &str, objects: &[Value]) -> Vec<(PathBuf, String, String)> {
        let (ok, printed) = self.run(env, objects, "local");
        assert!(ok, "{printed}");
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

/// `helm template --skip-tests NAME CHART -f FILE...` in `root`.
fn helm_template(root: &Path, name: &str, chart: &Path, values: &[&str]) -> String {
    let mut command = Command::new(common::helm());
    command
        .current_dir(root)
        // Test pods carry random names: left out, as they are no part of a release.
        .args(["template", "--skip-tests", name])
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

/// What fails in a case.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Case {
    /// OOM-killed under the 256Mi memory limit the layout sets.
    OomWithLimit,
    /// OOM-killed with no memory limit anywhere, with a day of usage peaking at 320Mi.
    OomWithoutLimit,
    /// An hour of memory use near the 256Mi limit.
    UnderProvisioned,
    /// The image cannot be pulled after the failing environment's tag went from 1 to 2.
    ImageAfterBump,
}

const CASES: [Case; 4] = [
    Case::OomWithLimit,
    Case::OomWithoutLimit,
    Case::UnderProvisioned,
    Case::ImageAfterBump,
];

impl Case {
    /// The memory limit the layout sets for the failing container.
    fn limit(self) -> Option<&'static str> {
        (self != Case::OomWithoutLimit).then_some("256Mi")
    }
}

/// The failing workload as the cluster runs it.
struct Live {
    namespace: &'static str,
    /// The Deployment's name, which is also its name in the failing environment's render.
    name: &'static str,
    container: &'static str,
    /// The image without its tag.
    image: &'static str,
    /// The memory limit the layout sets, in MiB, when a case has one.
    limit_mib: u32,
    /// The image tag before the bump, and after it.
    tags: [&'static str; 2],
    /// Labels and annotations its applier puts on it.
    marks: Value,
}

/// A layout's files for a memory limit (or none): paths and texts.
type Files = Box<dyn Fn(Option<&str>) -> Vec<(String, String)>>;

/// An environment of a layout, rendered.
type Render = Box<dyn Fn(&Layout, &str) -> String>;

/// A layout: its files (with the failing container's memory limit, or none), the files a
/// commit bumping the failing environment's tag from 1 to 2 writes, its environments, and how
/// an environment renders.
struct Shape {
    files: Files,
    bump: Files,
    failing: &'static str,
    others: Vec<&'static str>,
    render: Render,
    live: Live,
}

impl Shape {
    /// The layout committed for `case`, with the bump committed after it when the case has one.
    fn layout(&self, case: Case) -> Layout {
        let files = (self.files)(case.limit());
        let layout = Layout::new(&pairs(&files));
        if case == Case::ImageAfterBump {
            common::write_files(layout.root(), &pairs(&(self.bump)(case.limit())));
            common::commit_all(layout.root(), "Bump the tag to 2");
        }
        layout
    }

    /// The snapshot of `case`.
    fn snapshot(&self, case: Case) -> Vec<Value> {
        let live = &self.live;
        let tag = live.tags[usize::from(case == Case::ImageAfterBump)];
        let image = format!("{}:{tag}", live.image);
        let resources = match case.limit() {
            Some(_) => json!({"requests": {"memory": "128Mi"},
                "limits": {"memory": format!("{}Mi", live.limit_mib)}}),
            None => json!({}),
        };
        let state = match case {
            Case::OomWithLimit | Case::OomWithoutLimit => json!({
                "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "restartCount": 9,
                "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137,
                    "startedAt": "2026-12-06T10:00:00Z", "finishedAt": "2026-12-06T10:05:00Z"}}}),
            Case::UnderProvisioned => json!({"state": {"running": {}}, "restartCount": 0}),
            Case::ImageAfterBump => json!({"restartCount": 0, "state": {"waiting": {
                "reason": "ImagePullBackOff",
                "message": format!("Back-off pulling image \"{image}\"")}}}),
        };
        let mut status = json!({"name": live.container, "image": image, "imageID": "",
            "ready": false, "started": false});
        for (key, value) in state.as_object().unwrap() {
            status[key] = value.clone();
        }
        let container = json!({"name": live.container, "image": image, "resources": resources});
        let (namespace, name) = (live.namespace, live.name);
        let mut out = vec![
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": namespace, "uid": "uid-deploy",
                    "labels": live.marks["labels"], "annotations": live.marks["annotations"]},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                        "spec": {"containers": [container]}}},
                "status": {"replicas": 1}}),
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": format!("{name}-5d8f"), "namespace": namespace,
                    "uid": "uid-rs", "ownerReferences": [{"apiVersion": "apps/v1",
                        "kind": "Deployment", "name": name, "uid": "uid-deploy",
                        "controller": true}]},
                "spec": {"selector": {"matchLabels": {"app": name}}}}),
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("{name}-5d8f-abc"), "namespace": namespace,
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "name": format!("{name}-5d8f"), "uid": "uid-rs", "controller": true}]},
                "spec": {"nodeName": "n1", "containers": [container]},
                "status": {"phase": "Running", "containerStatuses": [status]}}),
        ];
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let samples: Vec<Value> = match case {
            // A day, every ten minutes, peaking at 320Mi.
            Case::OomWithoutLimit => (0..144)
                .map(|i| {
                    let mib = 320.0 - f64::from(i % 5) * 10.0;
                    json!([now - 86_400.0 + f64::from(i) * 600.0, mib * 1_048_576.0])
                })
                .collect(),
            // The last hour, every minute, 16Mi below the limit (240Mi of 256Mi).
            Case::UnderProvisioned => (0..60)
                .map(|i| {
                    let mib = f64::from(live.limit_mib) - 16.0;
                    json!([now - 3_600.0 + f64::from(i) * 60.0, mib * 1_048_576.0])
                })
                .collect(),
            _ => vec![],
        };
        if !samples.is_empty() {
            out.push(
                json!({"apiVersion": "remediator.dev/v1alpha1", "kind": "UsageHistory",
                "containers": [{"namespace": namespace,
                    "workload": {"kind": "Deployment", "name": name},
                    "container": live.container, "memory": samples}]}),
            );
        }
        out
    }

    /// `propose` for `case` in the failing environment: the lines it changes, as
    /// `file: -old` and `file: +new`. Asserts that the failing environment's render shows the
    /// new value on the failing container, and that every other environment renders byte for
    /// byte as before.
    fn check(&self, case: Case) -> Vec<String> {
        let layout = self.layout(case);
        let before: Vec<String> = self
            .others
            .iter()
            .map(|env| (self.render)(&layout, env))
            .collect();
        let changed = layout.propose(self.failing, &self.snapshot(case));
        let rendered = documents(&(self.render)(&layout, self.failing));
        let live = &self.live;
        let workload = rendered
            .iter()
            .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == live.name)
            .unwrap_or_else(|| panic!("{case:?}: no Deployment {} in {rendered:?}", live.name));
        let containers = workload["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        let container = containers
            .iter()
            .find(|c| c["name"] == live.container)
            .unwrap();
        let memory = |kind: &str| container["resources"][kind]["memory"].clone();
        // Raised by half after an OOM kill; right-sized to the p95 plus 30 %.
        let raised = format!("{}Mi", live.limit_mib * 3 / 2);
        let sized = format!("{}Mi", (f64::from(live.limit_mib - 16) * 1.3).ceil());
        match case {
            Case::OomWithLimit => assert_eq!(memory("limits"), raised, "{container}"),
            Case::OomWithoutLimit => {
                assert_eq!(memory("limits"), "368Mi", "{container}");
                assert_eq!(memory("requests"), "368Mi", "{container}");
            }
            Case::UnderProvisioned => assert_eq!(memory("limits"), sized, "{container}"),
            Case::ImageAfterBump => {
                assert_eq!(
                    container["image"],
                    format!("{}:{}", live.image, live.tags[0])
                )
            }
        }
        for (env, before) in self.others.iter().zip(&before) {
            assert_eq!(
                &(self.render)(&layout, env),
                before,
                "{case:?}: environment {env} renders as before"
            );
        }
        diff_lines(&changed)
    }

    /// What `propose` prints for `case` when it makes no proposal.
    fn refusal(&self, case: Case) -> String {
        let layout = self.layout(case);
        let (ok, printed) = layout.run(self.failing, &self.snapshot(case), "none");
        assert!(ok && printed.contains("0 proposals"), "{case:?}: {printed}");
        printed
    }
}

fn pairs(files: &[(String, String)]) -> Vec<(&str, &str)> {
    files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect()
}

/// The changed lines of each file with their line numbers: `file:N: -old` (N in the old text),
/// then `file:N: +new` (N in the new text).
fn diff_lines(changed: &[(PathBuf, String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (path, old, new) in changed {
        for change in similar::TextDiff::from_lines(old, new).iter_all_changes() {
            let (sign, at) = match change.tag() {
                similar::ChangeTag::Delete => ('-', change.old_index()),
                similar::ChangeTag::Insert => ('+', change.new_index()),
                similar::ChangeTag::Equal => continue,
            };
            out.push(format!(
                "{}:{}: {sign}{}",
                path.display(),
                at.map_or(0, |i| i + 1),
                change.value().trim_end_matches('\n')
            ));
        }
    }
    out
}

/// `lines` of one hunk of `file` from line `at`, as [`diff_lines`] gives them: removed lines
/// counted in the old text, added ones in the new, both from `at`.
fn in_file(file: &str, at: usize, lines: &[&str]) -> Vec<String> {
    let (mut old, mut new) = (at, at);
    lines
        .iter()
        .map(|l| {
            let line = if l.starts_with('-') {
                &mut old
            } else {
                &mut new
            };
            *line += 1;
            format!("{file}:{}: {l}", *line - 1)
        })
        .collect()
}

/// Asserts the four cases of a layout whose edits go to `file` from line `at` (the image's tag
/// at line `tag_at`), where the values' `resources` key is written at `indent` below the new
/// lines `head` (`sidecar:`), and the image's `tag:` at `tag_indent`.
fn assert_values_cases(
    shape: &Shape,
    (file, at, tag_at): (&str, usize, usize),
    head: &[&str],
    indent: &str,
    tag_indent: &str,
) {
    let expected = |rest: &[&str]| {
        let mut lines: Vec<String> = head.iter().map(|l| format!("+{l}")).collect();
        lines.extend(rest.iter().map(|l| format!("+{indent}{l}")));
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        in_file(file, at, &lines)
    };
    assert_eq!(
        shape.check(Case::OomWithLimit),
        expected(&["resources:", "  limits:", "    memory: 384Mi"])
    );
    assert_eq!(
        shape.check(Case::OomWithoutLimit),
        expected(&[
            "resources:",
            "  requests:",
            "    memory: 368Mi",
            "  limits:",
            "    memory: 368Mi"
        ])
    );
    assert_eq!(
        shape.check(Case::UnderProvisioned),
        expected(&["resources:", "  limits:", "    memory: 312Mi"])
    );
    // Tags as the layouts write them: a whole number quoted (`"1"`), the rest plain (`0.1`,
    // `6.14.0`).
    let [before, after] = shape.live.tags.map(|t| match t.parse::<u32>() {
        Ok(_) => format!("\"{t}\""),
        Err(_) => t.to_owned(),
    });
    let (old, new) = (
        format!("-{tag_indent}tag: {after}"),
        format!("+{tag_indent}tag: {before}"),
    );
    assert_eq!(
        shape.check(Case::ImageAfterBump),
        in_file(file, tag_at, &[&old, &new])
    );
}

fn owned(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
        .collect()
}

const CHART: &str = "apiVersion: v2\nname: web\nversion: 1.0.0\n";

/// The web chart's `values.yaml`: `web` (or `sidecar`, when `sidecar`) with the memory limit
/// `limit`, or none.
fn chart_values(limit: Option<&str>, sidecar: bool) -> String {
    let resources = |indent: &str| match limit {
        Some(limit) => format!("\n{indent}  limits:\n{indent}    memory: {limit}"),
        None => " {}".to_owned(),
    };
    let (web, side) = if sidecar {
        (" {}".to_owned(), resources("  "))
    } else {
        (resources(""), "\n    limits: {memory: 64Mi}".to_owned())
    };
    format!(
        "# Defaults of the web chart.
replicaCount: 1
image:
  tag: \"1\"
resources:{web}
sidecar:
  image:
    tag: \"1\"
  resources:{side}
"
    )
}

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
          image: \"web:{{ .Values.image.tag }}\"
          resources:
{{ toYaml .Values.resources | indent 12 }}
        - name: sidecar
          image: \"sidecar:{{ .Values.sidecar.image.tag }}\"
          resources:
{{ toYaml .Values.sidecar.resources | indent 12 }}
";

/// The tracking annotation Argo CD 3 puts on `web-<env>-web`.
fn argo_marks(env: &str) -> Value {
    json!({"annotations": {"argocd.argoproj.io/tracking-id":
        format!("web-{env}:apps/Deployment:web-{env}/web-{env}-web")}})
}

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
/// then `values-prod.yaml`) and dev (the chart's values only); `sidecar` fails, else `web`.
fn web_chart(sidecar: bool) -> Shape {
    let files = move |limit: Option<&str>| {
        let config = environments(&[
            ("prod", "[\"argo/prod.yaml\"]"),
            ("dev", "[\"argo/dev.yaml\"]"),
        ]);
        owned(&[
            ("remediator.yaml", &config),
            ("charts/web/Chart.yaml", CHART),
            ("charts/web/values.yaml", &chart_values(limit, sidecar)),
            (
                "charts/web/values-prod.yaml",
                "replicaCount: 3 # prod runs three\n",
            ),
            ("charts/web/templates/deployment.yaml", DEPLOYMENT_TEMPLATE),
            (
                "argo/prod.yaml",
                &argo_app("prod", "[values.yaml, values-prod.yaml]"),
            ),
            ("argo/dev.yaml", &argo_app("dev", "[values.yaml]")),
        ])
    };
    let bump = move |_: Option<&str>| {
        let tag = if sidecar {
            "sidecar:\n  image:\n    tag: \"2\"\n"
        } else {
            "image:\n  tag: \"2\"\n"
        };
        owned(&[(
            "charts/web/values-prod.yaml",
            &format!("replicaCount: 3 # prod runs three\n{tag}"),
        )])
    };
    let render = |layout: &Layout, env: &str| {
        let mut files = vec!["charts/web/values.yaml"];
        if env == "prod" {
            files.push("charts/web/values-prod.yaml");
        }
        helm_template(
            layout.root(),
            &format!("web-{env}"),
            Path::new("charts/web"),
            &files,
        )
    };
    Shape {
        files: Box::new(files),
        bump: Box::new(bump),
        failing: "prod",
        others: vec!["dev"],
        render: Box::new(render),
        live: Live {
            namespace: "web-prod",
            name: "web-prod-web",
            container: if sidecar { "sidecar" } else { "web" },
            image: if sidecar { "sidecar" } else { "web" },
            limit_mib: 256,
            tags: ["1", "2"],
            marks: argo_marks("prod"),
        },
    }
}

/// Flux's web release per environment: `apps/<env>` takes the base and patches the release's
/// values in `web-values.yaml` with its replicas and `extra` lines.
fn web_patch(replicas: u8, extra: &str) -> String {
    format!(
        "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: web
  namespace: web
spec:
  values:
    replicaCount: {replicas}
{extra}"
    )
}

/// The Flux layout of the web chart (its defaults limited to `chart_limit`, or not), the
/// production and staging overlays with their values patches, and the files of `base`.
fn flux_web(chart_limit: Option<&str>, base: &[(&str, &str)]) -> Vec<(String, String)> {
    let config = environments(&[
        ("production", "[\"apps/production/**\"]"),
        ("staging", "[\"apps/staging/**\"]"),
    ]);
    let overlay = "resources:\n  - ../base/web\npatches:\n  - path: web-values.yaml\n";
    let mut files = owned(&[
        ("remediator.yaml", &config),
        ("charts/web/Chart.yaml", CHART),
        ("charts/web/values.yaml", &chart_values(chart_limit, false)),
        ("charts/web/templates/deployment.yaml", DEPLOYMENT_TEMPLATE),
        ("apps/production/kustomization.yaml", overlay),
        ("apps/production/web-values.yaml", &web_patch(3, "")),
        ("apps/staging/kustomization.yaml", overlay),
        ("apps/staging/web-values.yaml", &web_patch(1, "")),
    ]);
    files.extend(owned(base));
    files
}

/// Production's tag bumped to 2 in its own patch.
fn flux_web_bump(_: Option<&str>) -> Vec<(String, String)> {
    owned(&[(
        "apps/production/web-values.yaml",
        &web_patch(3, "    image:\n      tag: \"2\"\n"),
    )])
}

#[test]
fn flux_helm_release_with_values_in_the_base_and_per_environment_patches() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "flux_helm_release_with_values_in_the_base_and_per_environment_patches",
    ) {
        return;
    }
    let release = |limit: Option<&str>| {
        let resources = limit
            .map(|l| format!("    resources:\n      limits:\n        memory: {l}\n"))
            .unwrap_or_default();
        format!(
            "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: web
  namespace: web
spec:
  interval: 10m
  chart:
    spec:
      chart: ./charts/web
      sourceRef:
        kind: GitRepository
        name: flux-system
        namespace: flux-system
  values:
    replicaCount: 2
    image:
      tag: \"1\"
{resources}"
        )
    };
    let files = move |limit: Option<&str>| {
        flux_web(
            None,
            &[
                (
                    "apps/base/web/kustomization.yaml",
                    "resources:\n  - release.yaml\n",
                ),
                ("apps/base/web/release.yaml", &release(limit)),
            ],
        )
    };
    // As helm-controller renders: the chart with the HelmRelease's values as kustomize builds it.
    let render = |layout: &Layout, env: &str| {
        let built = documents(&kustomize(layout.root(), &format!("apps/{env}")));
        let release = built.iter().find(|d| d["kind"] == "HelmRelease").unwrap();
        let values = layout.aside().join(format!("{env}-values.json"));
        std::fs::write(&values, release["spec"]["values"].to_string()).unwrap();
        let values = values.to_str().unwrap();
        helm_template(layout.root(), "web", Path::new("charts/web"), &[values])
    };
    let shape = Shape {
        files: Box::new(files),
        bump: Box::new(flux_web_bump),
        failing: "production",
        others: vec!["staging"],
        render: Box::new(render),
        live: Live {
            namespace: "web",
            name: "web-web",
            container: "web",
            image: "web",
            limit_mib: 256,
            tags: ["1", "2"],
            marks: json!({"labels": {"helm.toolkit.fluxcd.io/name": "web",
                "helm.toolkit.fluxcd.io/namespace": "web"}}),
        },
    };
    // The base sets the limit; production's own patch gets the new one.
    assert_values_cases(
        &shape,
        ("apps/production/web-values.yaml", 9, 10),
        &[],
        "    ",
        "      ",
    );
}

#[test]
fn argo_cd_helm_app_with_values_files_per_environment() {
    // Prod's own values file, never the chart's defaults that dev reads too.
    assert_values_cases(
        &web_chart(false),
        ("charts/web/values-prod.yaml", 2, 3),
        &[],
        "",
        "  ",
    );
}

#[test]
fn a_chart_with_two_containers_changes_only_the_failing_one() {
    let shape = web_chart(true);
    // The sidecar's values are `sidecar.*`, as the chart's templates read them.
    assert_values_cases(
        &shape,
        ("charts/web/values-prod.yaml", 2, 4),
        &["sidecar:"],
        "  ",
        "    ",
    );
    // The web container renders as before in each case.
    for case in CASES {
        let layout = shape.layout(case);
        let render = |layout: &Layout| {
            documents(&(shape.render)(layout, "prod"))[0]["spec"]["template"]["spec"]["containers"]
                [0]
            .clone()
        };
        let web = render(&layout);
        layout.propose("prod", &shape.snapshot(case));
        assert_eq!(render(&layout), web, "{case:?}");
    }
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
    let files = move |limit: Option<&str>| {
        let config = environments(&[
            ("prod", "[\"argo/prod.yaml\"]"),
            ("dev", "[\"argo/dev.yaml\"]"),
        ]);
        let common = match limit {
            Some(l) => format!(
                "replicaCount: 2\nimage:\n  tag: \"1\"\nresources:\n  limits:\n    memory: {l}\n"
            ),
            None => "replicaCount: 2\nimage:\n  tag: \"1\"\n".to_owned(),
        };
        owned(&[
            ("remediator.yaml", &config),
            ("envs/common.yaml", &common),
            ("envs/prod/values.yaml", "replicaCount: 3\n"),
            ("envs/dev/values.yaml", "replicaCount: 1\n"),
            ("argo/prod.yaml", &app("prod")),
            ("argo/dev.yaml", &app("dev")),
        ])
    };
    let bump = |_: Option<&str>| {
        owned(&[(
            "envs/prod/values.yaml",
            "replicaCount: 3\nimage:\n  tag: \"2\"\n",
        )])
    };
    // The chart comes from a Helm repository: rendered from a copy outside the repository.
    let render = |layout: &Layout, env: &str| {
        let chart = layout.aside().join("web");
        common::write_files(
            &chart,
            &[
                ("Chart.yaml", CHART),
                ("values.yaml", &chart_values(None, false)),
                ("templates/deployment.yaml", DEPLOYMENT_TEMPLATE),
            ],
        );
        let own = format!("envs/{env}/values.yaml");
        let files = ["envs/common.yaml", own.as_str()];
        helm_template(layout.root(), &format!("web-{env}"), &chart, &files)
    };
    let shape = Shape {
        files: Box::new(files),
        bump: Box::new(bump),
        failing: "prod",
        others: vec!["dev"],
        render: Box::new(render),
        live: Live {
            namespace: "web-prod",
            name: "web-prod-web",
            container: "web",
            image: "web",
            limit_mib: 256,
            tags: ["1", "2"],
            marks: argo_marks("prod"),
        },
    };
    // Prod's own values file, not the common one dev reads too.
    assert_values_cases(&shape, ("envs/prod/values.yaml", 2, 3), &[], "", "  ");
}

/// A Deployment `name` with container `ui` of image `ui:<tag>`, and a memory limit or none.
fn ui(name: &str, tag: u8, limit: Option<&str>) -> String {
    let resources = limit
        .map(|l| format!("          resources:\n            limits: {{memory: {l}}}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: ui
          image: ui:{tag}
{resources}"
    )
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
    let files = move |limit: Option<&str>| {
        let config = environments(&[("prod", "[\"argo/**\"]")]);
        owned(&[
            ("remediator.yaml", &config),
            ("argo/apps.yaml", appset),
            ("apps/shop/api.yaml", &ui("api", 1, limit)),
            ("apps/blog/api.yaml", &ui("api", 1, limit)),
        ])
    };
    let bump = |limit: Option<&str>| owned(&[("apps/shop/api.yaml", &ui("api", 2, limit))]);
    // A directory source renders as its files; the other directory is the other "render".
    let render = |layout: &Layout, app: &str| {
        let dir = if app == "prod" { "shop" } else { app };
        std::fs::read_to_string(layout.root().join(format!("apps/{dir}/api.yaml"))).unwrap()
    };
    // Each directory's namespace-less Deployment runs in the namespace its Application gives
    // it, and belongs to the environment of the ApplicationSet that makes it.
    let shape = Shape {
        files: Box::new(files),
        bump: Box::new(bump),
        failing: "prod",
        others: vec!["blog"],
        render: Box::new(render),
        live: Live {
            namespace: "shop",
            name: "api",
            container: "ui",
            image: "ui",
            limit_mib: 256,
            tags: ["1", "2"],
            marks: json!({}),
        },
    };
    let expected = |at: usize, lines: &[&str]| in_file("apps/shop/api.yaml", at, lines);
    assert_eq!(
        shape.check(Case::OomWithLimit),
        expected(
            16,
            &[
                "-            limits: {memory: 256Mi}",
                "+            limits: {memory: 384Mi}"
            ]
        )
    );
    assert_eq!(
        shape.check(Case::OomWithoutLimit),
        expected(
            15,
            &[
                "+          resources:",
                "+            requests:",
                "+              memory: 368Mi",
                "+            limits:",
                "+              memory: 368Mi"
            ]
        )
    );
    assert_eq!(
        shape.check(Case::UnderProvisioned),
        expected(
            16,
            &[
                "-            limits: {memory: 256Mi}",
                "+            limits: {memory: 312Mi}"
            ]
        )
    );
    assert_eq!(
        shape.check(Case::ImageAfterBump),
        expected(14, &["-          image: ui:2", "+          image: ui:1"])
    );
}

#[test]
fn kustomize_with_name_prefix_and_a_namespace_transform() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "kustomize_with_name_prefix_and_a_namespace_transform",
    ) {
        return;
    }
    let files = move |limit: Option<&str>| {
        let config = environments(&[
            ("prod", "[\"clusters/prod/**\"]"),
            ("dev", "[\"clusters/dev/**\"]"),
        ]);
        owned(&[
            ("remediator.yaml", &config),
            (
                "base/ui/kustomization.yaml",
                "resources:\n  - deployment.yaml\n",
            ),
            ("base/ui/deployment.yaml", &ui("ui", 1, limit)),
            (
                "clusters/prod/kustomization.yaml",
                "namePrefix: prod-\nnamespace: shop\nresources:\n  - ../../base/ui\n",
            ),
            (
                "clusters/dev/kustomization.yaml",
                "namePrefix: dev-\nnamespace: shop-dev\nresources:\n  - ../../base/ui\n",
            ),
        ])
    };
    let bump = |_: Option<&str>| {
        owned(&[(
            "clusters/prod/kustomization.yaml",
            "namePrefix: prod-\nnamespace: shop\nresources:\n  - ../../base/ui\nimages:\n  - name: ui\n    newTag: \"2\"\n",
        )])
    };
    let render = |layout: &Layout, env: &str| kustomize(layout.root(), &format!("clusters/{env}"));
    let shape = Shape {
        files: Box::new(files),
        bump: Box::new(bump),
        failing: "prod",
        others: vec!["dev"],
        render: Box::new(render),
        live: Live {
            namespace: "shop",
            name: "prod-ui",
            container: "ui",
            image: "ui",
            limit_mib: 256,
            tags: ["1", "2"],
            marks: json!({}),
        },
    };
    // A new patch in prod's overlay, listed in the file's own list indentation.
    let patch = |resources: &[&str]| -> Vec<String> {
        let out = in_file(
            "clusters/prod/kustomization.yaml",
            5,
            &["+patches:", "+  - path: deployment-ui-patch.yaml"],
        );
        let head = [
            "+# remediator: {code} on Deployment/shop/prod-ui; only this overlay's build sees it.",
            "+apiVersion: apps/v1",
            "+kind: Deployment",
            "+metadata:",
            "+  name: ui",
            "+spec:",
            "+  template:",
            "+    spec:",
            "+      containers:",
            "+        - name: ui",
            "+          resources:",
        ];
        let mut lines: Vec<String> = head.iter().map(|l| (*l).to_owned()).collect();
        lines.extend(resources.iter().map(|l| format!("+            {l}")));
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let mut all = in_file("clusters/prod/deployment-ui-patch.yaml", 1, &lines);
        all.extend(out);
        all
    };
    let code = |case: Case, lines: Vec<String>| -> Vec<String> {
        let code = if case == Case::UnderProvisioned {
            "under-provisioned"
        } else {
            "crash-loop-oom"
        };
        lines
            .into_iter()
            .map(|l| l.replace("{code}", code))
            .collect()
    };
    let mut got = shape.check(Case::OomWithLimit);
    got.sort();
    let mut want = code(Case::OomWithLimit, patch(&["limits:", "  memory: 384Mi"]));
    want.sort();
    assert_eq!(got, want);
    let mut got = shape.check(Case::OomWithoutLimit);
    got.sort();
    let mut want = code(
        Case::OomWithoutLimit,
        patch(&["requests:", "  memory: 368Mi", "limits:", "  memory: 368Mi"]),
    );
    want.sort();
    assert_eq!(got, want);
    let mut got = shape.check(Case::UnderProvisioned);
    got.sort();
    let mut want = code(
        Case::UnderProvisioned,
        patch(&["limits:", "  memory: 312Mi"]),
    );
    want.sort();
    assert_eq!(got, want);
    // The tag prod's `images:` entry bumped goes back to what the base ran.
    assert_eq!(
        shape.check(Case::ImageAfterBump),
        [
            "clusters/prod/kustomization.yaml:7: -    newTag: \"2\"",
            "clusters/prod/kustomization.yaml:7: +    newTag: \"1\""
        ]
    );
}

#[test]
fn a_base_shared_by_two_cluster_directories_is_patched_in_the_failing_cluster_s_applier() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_base_shared_by_two_cluster_directories_is_patched_in_the_failing_cluster_s_applier",
    ) {
        return;
    }
    let flux = |cluster: &str| {
        format!(
            "# The apps of {cluster}.
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m
  path: ./apps/web
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"
        )
    };
    let web = |tag: u8, limit: Option<&str>| {
        ui("web", tag, limit)
            .replace("ui:", "web:")
            .replace("- name: ui", "- name: web")
            .replace("name: web\nspec", "name: web\n  namespace: shop\nspec")
    };
    let files = move |limit: Option<&str>| {
        let config = environments(&[
            ("prod", "[\"clusters/prod/**\"]"),
            ("staging", "[\"clusters/staging/**\"]"),
        ]);
        owned(&[
            ("remediator.yaml", &config),
            (
                "apps/web/kustomization.yaml",
                "resources:\n  - deployment.yaml\n",
            ),
            ("apps/web/deployment.yaml", &web(1, limit)),
            ("clusters/prod/apps.yaml", &flux("prod")),
            ("clusters/staging/apps.yaml", &flux("staging")),
        ])
    };
    let bump = move |limit: Option<&str>| owned(&[("apps/web/deployment.yaml", &web(2, limit))]);
    // As kustomize-controller builds a Kustomization: the path, with the applier's patches.
    let render = |layout: &Layout, env: &str| {
        let text = std::fs::read_to_string(layout.root().join(format!("clusters/{env}/apps.yaml")))
            .unwrap();
        let applier = &documents(&text)[0];
        let dir = layout.aside().join(format!("build-{env}"));
        // kustomize takes no absolute resource: the path from beside the repository.
        assert_eq!(layout.aside().parent(), layout.root().parent());
        let name = layout.root().file_name().unwrap().to_str().unwrap();
        let kustomization = json!({
            "resources": [format!("../../{name}/apps/web")],
            "patches": applier["spec"]["patches"].as_array().cloned().unwrap_or_default(),
        });
        common::write_files(&dir, &[("kustomization.yaml", &kustomization.to_string())]);
        kustomize(&dir, ".")
    };
    let shape = Shape {
        files: Box::new(files),
        bump: Box::new(bump),
        failing: "prod",
        others: vec!["staging"],
        render: Box::new(render),
        live: Live {
            namespace: "shop",
            name: "web",
            container: "web",
            image: "web",
            limit_mib: 256,
            tags: ["1", "2"],
            marks: json!({"labels": {"kustomize.toolkit.fluxcd.io/name": "apps",
                "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}}),
        },
    };
    let entry = |code: &str, sets: &[&str]| -> Vec<String> {
        let mut lines = vec![
            "+  patches:".to_owned(),
            "+    - patch: |".to_owned(),
            format!(
                "+        # remediator: {code} on Deployment/shop/web; only this environment's applier sees it."
            ),
        ];
        for l in [
            "apiVersion: apps/v1",
            "kind: Deployment",
            "metadata:",
            "  name: web",
            "  namespace: shop",
            "spec:",
            "  template:",
            "    spec:",
            "      containers:",
            "        - name: web",
        ] {
            lines.push(format!("+        {l}"));
        }
        lines.extend(sets.iter().map(|l| format!("+        {l}")));
        lines.extend(
            [
                "+      target:",
                "+        kind: Deployment",
                "+        name: web",
                "+        namespace: shop",
            ]
            .map(str::to_owned),
        );
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        in_file("clusters/prod/apps.yaml", 14, &lines)
    };
    assert_eq!(
        shape.check(Case::OomWithLimit),
        entry(
            "crash-loop-oom",
            &[
                "          resources:",
                "            limits:",
                "              memory: 384Mi"
            ]
        )
    );
    assert_eq!(
        shape.check(Case::OomWithoutLimit),
        entry(
            "crash-loop-oom",
            &[
                "          resources:",
                "            requests:",
                "              memory: 368Mi",
                "            limits:",
                "              memory: 368Mi"
            ]
        )
    );
    assert_eq!(
        shape.check(Case::UnderProvisioned),
        entry(
            "under-provisioned",
            &[
                "          resources:",
                "            limits:",
                "              memory: 312Mi"
            ]
        )
    );
    assert_eq!(
        shape.check(Case::ImageAfterBump),
        entry("image-pull-backoff", &["          image: web:1"])
    );
}

#[test]
fn a_chart_that_hard_codes_its_limit_is_refused_naming_the_template() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_chart_that_hard_codes_its_limit_is_refused_naming_the_template",
    ) {
        return;
    }
    let hard_coded = DEPLOYMENT_TEMPLATE.replace(
        "{{ toYaml .Values.resources | indent 12 }}\n        - name: sidecar",
        "            limits: {memory: 256Mi}\n        - name: sidecar",
    );
    let hard_coded = hard_coded.replace(
        "{{ toYaml .Values.sidecar.resources | indent 12 }}\n",
        "            limits: {memory: 64Mi}\n",
    );
    assert!(!hard_coded.contains(".Values.resources"), "{hard_coded}");
    let files = move |_: Option<&str>| {
        let config = environments(&[
            ("prod", "[\"argo/prod.yaml\"]"),
            ("dev", "[\"argo/dev.yaml\"]"),
        ]);
        owned(&[
            ("remediator.yaml", &config),
            ("charts/web/Chart.yaml", CHART),
            (
                "charts/web/values.yaml",
                "replicaCount: 1\nimage:\n  tag: \"1\"\nsidecar:\n  image:\n    tag: \"1\"\n",
            ),
            ("charts/web/values-prod.yaml", "replicaCount: 3\n"),
            ("charts/web/templates/apps/deployment.yaml", &hard_coded),
            (
                "argo/prod.yaml",
                &argo_app("prod", "[values.yaml, values-prod.yaml]"),
            ),
            ("argo/dev.yaml", &argo_app("dev", "[values.yaml]")),
        ])
    };
    let mut shape = web_chart(false);
    shape.files = Box::new(files);
    for case in [
        Case::OomWithLimit,
        Case::OomWithoutLimit,
        Case::UnderProvisioned,
    ] {
        let printed = shape.refusal(case);
        assert!(
            printed.contains(
                "no value reaches the resources of container `web`: they are written in its templates (`charts/web/templates/apps/deployment.yaml`)"
            ),
            "{case:?}: {printed}"
        );
    }
    // Its image is still the values' to roll back.
    assert_eq!(
        shape.check(Case::ImageAfterBump),
        [
            "charts/web/values-prod.yaml:3: -  tag: \"2\"",
            "charts/web/values-prod.yaml:3: +  tag: \"1\""
        ]
    );
}

/// fluxcd/flux2-kustomize-helm-example (`tests/fixtures`): podinfo's HelmRelease in a base,
/// with a values patch per environment, rendered as helm-controller does with podinfo's own
/// chart (stefanprodan/podinfo, `tests/fixtures/podinfo`). Where a case needs them, the team
/// pins staging's image tag in its patch and sets a limit in the base.
#[test]
fn the_flux_example_repository() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "the_flux_example_repository",
    ) {
        return;
    }
    let files = move |limit: Option<&str>| {
        let config = environments(&[
            ("staging", "[\"clusters/staging/**\", \"apps/staging/**\"]"),
            (
                "production",
                "[\"clusters/production/**\", \"apps/production/**\"]",
            ),
        ]);
        let mut files = fixture_files("flux2-kustomize-helm-example");
        for (path, text) in &mut files {
            if path == "apps/base/podinfo/release.yaml" {
                *text = with_limit(text, "  values:\n", "    ", limit);
            }
            if path == "apps/staging/podinfo-values.yaml" {
                text.push_str("    image:\n      tag: 6.14.0\n");
            }
        }
        files.push(("remediator.yaml".into(), config));
        files
    };
    let bump = move |limit: Option<&str>| {
        let path = "apps/staging/podinfo-values.yaml";
        let text = (files)(limit)
            .into_iter()
            .find(|(p, _)| p == path)
            .unwrap()
            .1
            .replace("tag: 6.14.0", "tag: 6.14.2");
        vec![(path.to_owned(), text)]
    };
    let render = |layout: &Layout, env: &str| {
        let built = documents(&kustomize(layout.root(), &format!("apps/{env}")));
        let release = built.iter().find(|d| d["kind"] == "HelmRelease").unwrap();
        let values = layout.aside().join(format!("{env}-values.json"));
        std::fs::write(&values, release["spec"]["values"].to_string()).unwrap();
        let chart =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/podinfo/charts/podinfo");
        helm_template(
            layout.root(),
            "podinfo",
            &chart,
            &[values.to_str().unwrap()],
        )
    };
    let live = |name: &'static str, container: &'static str, image: &'static str| Live {
        namespace: "podinfo",
        name,
        container,
        image,
        limit_mib: 256,
        tags: ["6.14.0", "6.14.2"],
        marks: json!({"labels": {"helm.toolkit.fluxcd.io/name": "podinfo",
            "helm.toolkit.fluxcd.io/namespace": "podinfo"}}),
    };
    let mut shape = Shape {
        files: Box::new(files),
        bump: Box::new(bump),
        failing: "staging",
        others: vec!["production"],
        render: Box::new(render),
        live: live("podinfo", "podinfo", "ghcr.io/stefanprodan/podinfo"),
    };
    // Appended to staging's own patch, below its last line; the base's values still reach it.
    assert_values_cases(
        &shape,
        ("apps/staging/podinfo-values.yaml", 18, 17),
        &[],
        "    ",
        "      ",
    );
    // The chart is fetched from a Helm repository: the common keys are a guess only for the
    // release's own workload, never for its Redis.
    shape.live = live(
        "podinfo-redis",
        "redis",
        "public.ecr.aws/docker/library/redis",
    );
    let printed = shape.refusal(Case::OomWithLimit);
    assert!(
        printed.contains(
            "the chart of HelmRelease podinfo/podinfo is not in the repository, and `podinfo-redis` is not the release's own workload (podinfo or podinfo-podinfo)"
        ),
        "{printed}"
    );
}

fn environments(pairs: &[(&str, &str)]) -> String {
    let mut out = String::from("environments:\n");
    for (name, paths) in pairs {
        out.push_str(&format!("  - name: {name}\n    paths: {paths}\n"));
    }
    out
}

/// The files of the fixture folder `name` under `tests/fixtures`, by path.
fn fixture_files(name: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let mut out = Vec::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path
                    .strip_prefix(&root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                out.push((relative, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// GoogleCloudPlatform/microservices-demo's Helm chart (`tests/fixtures`), deployed by an Argo
/// CD Application per environment with its own values file. Every service's container is named
/// `server` and takes its resources from its own key (`adService.resources`), and all take one
/// image tag (`images.tag`): only `helm template` with marker values tells them apart.
#[test]
fn the_microservices_demo_chart_through_argo_cd() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "the_microservices_demo_chart_through_argo_cd",
    ) {
        return;
    }
    let app = |env: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: boutique-{env}
  namespace: argocd
spec:
  project: default
  destination:
    server: https://kubernetes.default.svc
    namespace: shop-{env}
  source:
    repoURL: https://git.example.com/platform.git
    targetRevision: main
    path: helm-chart
    helm:
      valueFiles:
        - values.yaml
        - ../envs/{env}/values.yaml
"
        )
    };
    let tagged = |tag: &str| format!("# The shop in prod.\nimages:\n  tag: {tag}\n");
    // Where a case has no limit, prod's values take out the chart's, as Helm takes out a null.
    let unlimited = "adService:\n  resources:\n    limits:\n      memory: null\n";
    let files = move |limit: Option<&str>| {
        let config = environments(&[
            ("prod", "[\"argo/prod.yaml\"]"),
            ("dev", "[\"argo/dev.yaml\"]"),
        ]);
        let mut files = fixture_files("microservices-demo");
        let prod = match limit {
            Some(_) => tagged("v0.10.5"),
            None => tagged("v0.10.5") + unlimited,
        };
        files.extend(owned(&[
            ("remediator.yaml", &config),
            ("envs/prod/values.yaml", &prod),
            ("envs/dev/values.yaml", "loadGenerator:\n  create: false\n"),
            ("argo/prod.yaml", &app("prod")),
            ("argo/dev.yaml", &app("dev")),
        ]));
        files
    };
    let bump = move |_: Option<&str>| owned(&[("envs/prod/values.yaml", &tagged("v0.10.7"))]);
    let render = |layout: &Layout, env: &str| {
        let own = format!("envs/{env}/values.yaml");
        let files = ["helm-chart/values.yaml", own.as_str()];
        helm_template(
            layout.root(),
            &format!("boutique-{env}"),
            Path::new("helm-chart"),
            &files,
        )
    };
    let live = |name: &'static str, container: &'static str, image: &'static str| Live {
        namespace: "shop-prod",
        name,
        container,
        image,
        limit_mib: 300,
        tags: ["v0.10.5", "v0.10.7"],
        marks: json!({"annotations": {"argocd.argoproj.io/tracking-id":
            format!("boutique-prod:apps/Deployment:shop-prod/{name}")}}),
    };
    let mut shape = Shape {
        files: Box::new(files),
        bump: Box::new(bump),
        failing: "prod",
        others: vec!["dev"],
        render: Box::new(render),
        live: live(
            "adservice",
            "server",
            "us-central1-docker.pkg.dev/online-boutique-ci/microservices-demo/adservice",
        ),
    };
    let file = "envs/prod/values.yaml";
    // The chart limits adservice to 300Mi; prod's own values file gets the raise.
    assert_eq!(
        shape.check(Case::OomWithLimit),
        in_file(
            file,
            4,
            &[
                "+adService:",
                "+  resources:",
                "+    limits:",
                "+      memory: 450Mi"
            ]
        )
    );
    assert_eq!(
        shape.check(Case::UnderProvisioned),
        in_file(
            file,
            4,
            &[
                "+adService:",
                "+  resources:",
                "+    limits:",
                "+      memory: 370Mi"
            ]
        )
    );
    assert_eq!(
        shape.check(Case::ImageAfterBump),
        in_file(file, 3, &["-  tag: v0.10.7", "+  tag: v0.10.5"])
    );
    // No limit in prod: a first one, and a request to match, from the usage peak.
    assert_eq!(
        shape.check(Case::OomWithoutLimit),
        in_file(
            file,
            7,
            &[
                "-      memory: null",
                "+      memory: 368Mi",
                "+    requests:",
                "+      memory: 368Mi"
            ]
        )
    );
    // Another service's `server` takes its own key.
    shape.live = live(
        "cartservice",
        "server",
        "us-central1-docker.pkg.dev/online-boutique-ci/microservices-demo/cartservice",
    );
    shape.live.limit_mib = 256;
    assert_eq!(
        shape.check(Case::OomWithLimit),
        in_file(
            file,
            4,
            &[
                "+cartService:",
                "+  resources:",
                "+    limits:",
                "+      memory: 384Mi"
            ]
        )
    );
    // redis-cart's limit is written in the template: no value changes it.
    shape.live = live("redis-cart", "redis", "redis");
    let printed = shape.refusal(Case::OomWithLimit);
    assert!(
        printed.contains(
            "shows that no value reaches the resources of container `redis`: they are written in its templates (`helm-chart/templates/cartservice.yaml`)"
        ),
        "{printed}"
    );
}

/// `text` with a memory limit of `limit` (when there is one) after the line `after`, at
/// `indent`.
fn with_limit(text: &str, after: &str, indent: &str, limit: Option<&str>) -> String {
    match limit {
        Some(limit) => text.replacen(
            after,
            &format!("{after}{indent}resources:\n{indent}  limits:\n{indent}    memory: {limit}\n"),
            1,
        ),
        None => text.to_owned(),
    }
}

/// argoproj/argo-cd's list-generator example (`tests/fixtures/argo-cd`): one ApplicationSet
/// (Go templates) making an Application per cluster, each of its own directory of plain
/// manifests. A limit, where a case has one, is the team's own addition to both directories.
#[test]
fn the_argo_cd_list_generator_example() {
    const DIR: &str = "applicationset/examples/list-generator/guestbook";
    let deployment = |env: &str| format!("{DIR}/engineering-{env}/guestbook-ui-deployment.yaml");
    let files = move |limit: Option<&str>| {
        let config = environments(&[
            (
                "engineering-prod",
                &format!("[\"{DIR}/engineering-prod/**\"]"),
            ),
            (
                "engineering-dev",
                &format!("[\"{DIR}/engineering-dev/**\"]"),
            ),
        ]);
        let mut files = fixture_files("argo-cd");
        for (path, text) in &mut files {
            if path.starts_with(DIR) && path.ends_with("deployment.yaml") {
                *text = with_limit(text, "        name: guestbook-ui\n", "        ", limit);
            }
        }
        files.push(("remediator.yaml".into(), config));
        files
    };
    let bump = move |limit: Option<&str>| {
        let path = deployment("prod");
        let text = (files)(limit)
            .into_iter()
            .find(|(p, _)| *p == path)
            .unwrap()
            .1
            .replace("argocd-e2e-container:0.2", "argocd-e2e-container:0.3");
        vec![(path, text)]
    };
    // A directory source renders as its files.
    let render = |layout: &Layout, env: &str| {
        let dir = layout.root().join(DIR).join(env);
        ["guestbook-ui-deployment.yaml", "guestbook-ui-svc.yaml"]
            .map(|f| std::fs::read_to_string(dir.join(f)).unwrap())
            .join("---\n")
    };
    let shape = Shape {
        files: Box::new(files),
        bump: Box::new(bump),
        failing: "engineering-prod",
        others: vec!["engineering-dev"],
        render: Box::new(move |layout, env| render(layout, env)),
        live: Live {
            namespace: "guestbook",
            name: "guestbook-ui",
            container: "guestbook-ui",
            image: "quay.io/argoprojlabs/argocd-e2e-container",
            limit_mib: 256,
            tags: ["0.2", "0.3"],
            marks: json!({"annotations": {"argocd.argoproj.io/tracking-id":
                "engineering-prod-guestbook:apps/Deployment:guestbook/guestbook-ui"}}),
        },
    };
    let file = deployment("prod");
    let changed = |at: usize, lines: &[&str]| in_file(&file, at, lines);
    assert_eq!(
        shape.check(Case::OomWithLimit),
        changed(
            21,
            &["-            memory: 256Mi", "+            memory: 384Mi"]
        )
    );
    assert_eq!(
        shape.check(Case::OomWithoutLimit),
        changed(
            21,
            &[
                "+        resources:",
                "+          requests:",
                "+            memory: 368Mi",
                "+          limits:",
                "+            memory: 368Mi"
            ]
        )
    );
    assert_eq!(
        shape.check(Case::UnderProvisioned),
        changed(
            21,
            &["-            memory: 256Mi", "+            memory: 312Mi"]
        )
    );
    assert_eq!(
        shape.check(Case::ImageAfterBump),
        changed(
            17,
            &[
                "-      - image: quay.io/argoprojlabs/argocd-e2e-container:0.3",
                "+      - image: quay.io/argoprojlabs/argocd-e2e-container:0.2"
            ]
        )
    );
}

/// argoproj/argo-cd's `helm-guestbook` example chart (`tests/fixtures/argo-cd`), as
/// `helm create` writes charts: the container's name and the Deployment's come from templates
/// and `_helpers.tpl`, its values file for production sets only the service type. Deployed by
/// an Argo CD Application per environment.
#[test]
fn the_argo_cd_helm_guestbook_chart() {
    const CHART: &str = "applicationset/examples/git-generator-directory/excludes/cluster-addons/exclude-helm-guestbook";
    let app = |env: &str, files: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: guestbook-{env}
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://github.com/argoproj/argo-cd.git
    targetRevision: HEAD
    path: {CHART}
    helm:
      valueFiles: {files}
  destination:
    server: https://kubernetes.default.svc
    namespace: guestbook-{env}
"
        )
    };
    let files = move |limit: Option<&str>| {
        let config = environments(&[
            ("production", "[\"argo/production.yaml\"]"),
            ("dev", "[\"argo/dev.yaml\"]"),
        ]);
        let mut files: Vec<(String, String)> = fixture_files("argo-cd")
            .into_iter()
            .filter(|(p, _)| p.starts_with(CHART) || p == "LICENSE")
            .collect();
        for (path, text) in &mut files {
            if let Some(limit) = limit.filter(|_| path.ends_with("/values.yaml")) {
                *text = text.replace(
                    "resources: {}\n",
                    &format!("resources:\n  limits:\n    memory: {limit}\n"),
                );
            }
        }
        files.extend(owned(&[
            ("remediator.yaml", &config),
            (
                "argo/production.yaml",
                &app("production", "[values.yaml, values-production.yaml]"),
            ),
            ("argo/dev.yaml", &app("dev", "[values.yaml]")),
        ]));
        files
    };
    let production = format!("{CHART}/values-production.yaml");
    let bump = move |_: Option<&str>| {
        vec![(
            production.clone(),
            "service:\n  type: LoadBalancer\nimage:\n  tag: 0.2\n".to_owned(),
        )]
    };
    let render = |layout: &Layout, env: &str| {
        let mut files = vec![format!("{CHART}/values.yaml")];
        if env == "production" {
            files.push(format!("{CHART}/values-production.yaml"));
        }
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        helm_template(
            layout.root(),
            &format!("guestbook-{env}"),
            Path::new(CHART),
            &files,
        )
    };
    let shape = Shape {
        files: Box::new(files),
        bump: Box::new(bump),
        failing: "production",
        others: vec!["dev"],
        render: Box::new(render),
        live: Live {
            namespace: "guestbook-production",
            name: "guestbook-production-helm-guestbook",
            container: "helm-guestbook",
            image: "quay.io/argoprojlabs/argocd-e2e-container",
            limit_mib: 256,
            tags: ["0.1", "0.2"],
            marks: json!({"annotations": {"argocd.argoproj.io/tracking-id":
                "guestbook-production:apps/Deployment:guestbook-production/guestbook-production-helm-guestbook"}}),
        },
    };
    // Production's own values file, never the chart's defaults that dev reads too; the tag
    // goes back as it was written, a number.
    assert_values_cases(
        &shape,
        (&format!("{CHART}/values-production.yaml"), 3, 4),
        &[],
        "",
        "  ",
    );
}

/// A Flux HelmRelease over the chart's own defaults (which set the limit) and a `valuesFrom`
/// ConfigMap that the base generates from a values file (which sets the tag): the value is
/// read through them as helm-controller merges them, and the edit goes to the environment's own
/// patch. A `valuesFrom` Secret cannot be read: a limit it may set is not known.
#[test]
fn a_flux_release_reads_its_chart_defaults_and_values_from() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_flux_release_reads_its_chart_defaults_and_values_from",
    ) {
        return;
    }
    let release = |secret: bool| {
        let from = if secret {
            "    - kind: Secret\n      name: web-secret-values\n"
        } else {
            ""
        };
        format!(
            "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: web
  namespace: web
spec:
  interval: 10m
  chart:
    spec:
      chart: ./charts/web
      sourceRef:
        kind: GitRepository
        name: flux-system
        namespace: flux-system
  valuesFrom:
    - kind: ConfigMap
      name: web-values
{from}  values:
    replicaCount: 2
"
        )
    };
    let base = "resources:\n  - release.yaml\nnamespace: web\nconfigMapGenerator:\n  - name: web-values\n    files:\n      - values.yaml=web-values.yaml\ngeneratorOptions:\n  disableNameSuffixHash: true\n";
    let layout_files = move |limit: Option<&str>, secret: bool| {
        flux_web(
            limit,
            &[
                ("apps/base/web/kustomization.yaml", base),
                ("apps/base/web/release.yaml", &release(secret)),
                (
                    "apps/base/web/web-values.yaml",
                    "# Shared by every cluster.\nimage:\n  tag: \"1\"\n",
                ),
            ],
        )
    };
    // As helm-controller renders: the chart's defaults, then valuesFrom, then values.
    let render = |layout: &Layout, env: &str| {
        let built = documents(&kustomize(layout.root(), &format!("apps/{env}")));
        let release = built.iter().find(|d| d["kind"] == "HelmRelease").unwrap();
        let from = built.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
        let from_file = layout.aside().join(format!("{env}-from.yaml"));
        std::fs::write(&from_file, from["data"]["values.yaml"].as_str().unwrap()).unwrap();
        let values = layout.aside().join(format!("{env}-values.json"));
        std::fs::write(&values, release["spec"]["values"].to_string()).unwrap();
        let files = [from_file.to_str().unwrap(), values.to_str().unwrap()];
        helm_template(layout.root(), "web", Path::new("charts/web"), &files)
    };
    let live = Live {
        namespace: "web",
        name: "web-web",
        container: "web",
        image: "web",
        limit_mib: 256,
        tags: ["1", "2"],
        marks: json!({"labels": {"helm.toolkit.fluxcd.io/name": "web",
            "helm.toolkit.fluxcd.io/namespace": "web"}}),
    };
    let shape = Shape {
        files: Box::new(move |limit| layout_files(limit, false)),
        bump: Box::new(flux_web_bump),
        failing: "production",
        others: vec!["staging"],
        render: Box::new(render),
        live,
    };
    // The chart's defaults set the limit, the generated ConfigMap the tag: production's own
    // patch gets the new values.
    assert_values_cases(
        &shape,
        ("apps/production/web-values.yaml", 9, 10),
        &[],
        "    ",
        "      ",
    );
    let mut secret = shape;
    secret.files = Box::new(move |limit| layout_files(limit, true));
    let printed = secret.refusal(Case::OomWithoutLimit);
    assert!(
        printed.contains(
            "the values of HelmRelease web/web come in part from Secret web/web-secret-values (`values.yaml`), which cannot be read here"
        ),
        "{printed}"
    );
}

/// A value a later layer sets in a way the edit cannot see (an inline JSON 6902 patch of the
/// overlay) is caught by rendering the edit: the proposal is dropped, naming the transformers
/// kustomize says changed the object, not opened with an edit that changes nothing. (The raise
/// starts from the 256Mi that runs: 384Mi.)
#[test]
fn an_edit_a_later_layer_overrides_is_disproven_by_rendering() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "an_edit_a_later_layer_overrides_is_disproven_by_rendering",
    ) {
        return;
    }
    let config = environments(&[("prod", "[\"clusters/prod/**\", \"base/**\"]")]);
    let overlay = "resources:
  - ../../base/ui
patches:
  - target: {kind: Deployment, name: ui}
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/resources/limits/memory
        value: 256Mi
";
    let layout = Layout::new(&[
        ("remediator.yaml", &config),
        (
            "base/ui/kustomization.yaml",
            "resources:\n  - deployment.yaml\n",
        ),
        ("base/ui/deployment.yaml", &ui("ui", 1, Some("200Mi"))),
        ("clusters/prod/kustomization.yaml", overlay),
    ]);
    let live = Live {
        namespace: "default",
        name: "ui",
        container: "ui",
        image: "ui",
        limit_mib: 256,
        tags: ["1", "2"],
        marks: json!({}),
    };
    let shape = Shape {
        files: Box::new(|_| vec![]),
        bump: Box::new(|_| vec![]),
        failing: "prod",
        others: vec![],
        render: Box::new(|_, _| String::new()),
        live,
    };
    let (ok, printed) = layout.run("prod", &shape.snapshot(Case::OomWithLimit), "none");
    assert!(!ok, "a proposal that failed fails the run: {printed}");
    assert!(
        printed.contains("0 proposals")
            && printed.contains(
                "rendering `clusters/prod` after the edit gives `spec.template.spec.containers[name=ui].resources.limits.memory` = \"256Mi\", not \"384Mi\": a later layer sets it; the transformers that changed it after its declaration: PatchTransformer in `clusters/prod/kustomization.yaml`"
            ),
        "{printed}"
    );
}

/// An Argo CD Application of the web chart in environment `env`, with `helm` as its Helm
/// settings.
fn argo_app_with(env: &str, helm: &str) -> String {
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
{helm}"
    )
}

/// The Argo CD Helm layers beyond values files: an Application with no values file of its own
/// gets one, added to its `valueFiles`; values written as one text are read, and the edit goes
/// above them; `parameters`, over every layer, are refused, naming them.
#[test]
fn argo_cd_values_text_parameters_and_a_values_file_of_its_own() {
    let layout_with = |prod_helm: &str| {
        let config = environments(&[
            ("prod", "[\"argo/prod.yaml\"]"),
            ("dev", "[\"argo/dev.yaml\"]"),
        ]);
        Layout::new(&[
            ("remediator.yaml", &config),
            ("charts/web/Chart.yaml", CHART),
            (
                "charts/web/values.yaml",
                &chart_values(Some("256Mi"), false),
            ),
            ("charts/web/templates/deployment.yaml", DEPLOYMENT_TEMPLATE),
            ("argo/prod.yaml", &argo_app_with("prod", prod_helm)),
            (
                "argo/dev.yaml",
                &argo_app_with("dev", "      valueFiles: [values.yaml]\n"),
            ),
        ])
    };
    let live = Live {
        namespace: "web-prod",
        name: "web-prod-web",
        container: "web",
        image: "web",
        limit_mib: 256,
        tags: ["1", "2"],
        marks: argo_marks("prod"),
    };
    let shape = Shape {
        files: Box::new(|_| vec![]),
        bump: Box::new(|_| vec![]),
        failing: "prod",
        others: vec![],
        render: Box::new(|_, _| String::new()),
        live,
    };
    let snapshot = shape.snapshot(Case::OomWithLimit);
    let dev_render = |layout: &Layout| {
        helm_template(
            layout.root(),
            "web-dev",
            Path::new("charts/web"),
            &["charts/web/values.yaml"],
        )
    };
    let limit_of = |render: &str| {
        documents(render)[0]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
            ["memory"]
            .clone()
    };

    // No values file of prod's own: a new one, in the list's own style.
    let layout = layout_with("      valueFiles: [values.yaml]\n");
    let dev = dev_render(&layout);
    let changed = layout.propose("prod", &snapshot);
    assert_eq!(
        diff_lines(&changed),
        [
            "argo/prod.yaml:13: -      valueFiles: [values.yaml]",
            "argo/prod.yaml:13: +      valueFiles: [values.yaml, values-prod.yaml]",
            "charts/web/values-prod.yaml:1: +# remediator: crash-loop-oom on Deployment/web-prod/web-prod-web; only this Application reads it.",
            "charts/web/values-prod.yaml:2: +resources:",
            "charts/web/values-prod.yaml:3: +  limits:",
            "charts/web/values-prod.yaml:4: +    memory: 384Mi",
        ]
    );
    let prod = helm_template(
        layout.root(),
        "web-prod",
        Path::new("charts/web"),
        &["charts/web/values.yaml", "charts/web/values-prod.yaml"],
    );
    assert_eq!(limit_of(&prod), "384Mi");
    assert_eq!(dev_render(&layout), dev);

    // Values as one text set the limit: read through, and outdone by `valuesObject`. The
    // text's 300Mi is what runs, so the raise starts there.
    let text = "      valueFiles: [values.yaml]\n      values: |\n        resources:\n          limits:\n            memory: 300Mi\n";
    let layout = layout_with(text);
    let mut running = snapshot.clone();
    for object in running.iter_mut().filter(|o| o["kind"] == "Deployment") {
        object["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] =
            json!("300Mi");
    }
    let changed = layout.propose("prod", &running);
    assert_eq!(
        diff_lines(&changed),
        [
            "argo/prod.yaml:18: +      valuesObject:",
            "argo/prod.yaml:19: +        resources:",
            "argo/prod.yaml:20: +          limits:",
            "argo/prod.yaml:21: +            memory: 450Mi",
        ],
        "from the text's 300Mi, in the one layer above it"
    );
    let app = &documents(&changed[0].2)[0]["spec"]["source"]["helm"];
    let text_values = layout.aside().join("text.yaml");
    std::fs::write(&text_values, app["values"].as_str().unwrap()).unwrap();
    let object_values = layout.aside().join("object.json");
    std::fs::write(&object_values, app["valuesObject"].to_string()).unwrap();
    let prod = helm_template(
        layout.root(),
        "web-prod",
        Path::new("charts/web"),
        &[
            "charts/web/values.yaml",
            text_values.to_str().unwrap(),
            object_values.to_str().unwrap(),
        ],
    );
    assert_eq!(limit_of(&prod), "450Mi");

    // Values text that does not parse: a limit it may set is not known, so none is made up.
    let broken = "      valueFiles: [values.yaml]\n      values: \"resources: [\"\n";
    let layout = layout_with(broken);
    let mut unlimited = shape.snapshot(Case::OomWithoutLimit);
    unlimited[0]["metadata"]["name"] = json!("web-prod-web");
    let (_, printed) = layout.run("prod", &unlimited, "none");
    assert!(
        printed.contains("come in part from `spec.source.helm.values` of argo/prod.yaml ("),
        "{printed}"
    );

    // A parameter sets it: refused, naming it.
    let parameters = "      valueFiles: [values.yaml]\n      parameters:\n        - name: resources.limits.memory\n          value: 300Mi\n";
    let layout = layout_with(parameters);
    let (_, printed) = layout.run("prod", &snapshot, "none");
    assert!(
        printed.contains(
            "`resources.limits.memory` is set by `spec.source.helm.parameters` of argo/prod.yaml, which overrides every values layer: change it there"
        ),
        "{printed}"
    );
}

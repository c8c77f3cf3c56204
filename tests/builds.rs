//! `check` and `reconcile` on the history of a repository shaped like Flux's
//! flux2-kustomize-helm-example: a shared base with staging and production overlays that patch
//! it, each applied by a pruning Flux Kustomization. Every input of a build counts; what cannot
//! be rendered says why; a removal is rated by what its pruning owner does with it.

mod common;

use common::check;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const BASE_KUSTOMIZATION: &str = "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: podinfo
resources:
  - namespace.yaml
  - repository.yaml
  - release.yaml
configMapGenerator:
  - name: podinfo-values
    files: [values.yaml=values.yaml]
generatorOptions:
  disableNameSuffixHash: true
";

const NAMESPACE: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: podinfo
";

const REPOSITORY: &str = "apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata:
  name: podinfo
spec:
  interval: 5m
  url: https://stefanprodan.github.io/podinfo
";

fn release(interval: &str) -> String {
    format!(
        "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
spec:
  interval: {interval}
  chart:
    spec:
      chart: podinfo
      sourceRef: {{kind: HelmRepository, name: podinfo}}
  valuesFrom:
    - kind: ConfigMap
      name: podinfo-values
"
    )
}

fn overlay(patch: &str) -> String {
    format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../base/podinfo
patches:
  - path: {patch}
    target:
      kind: HelmRelease
"
    )
}

fn values_patch(host: &str) -> String {
    format!(
        "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
spec:
  values:
    ingress:
      hosts: [{{host: {host}}}]
"
    )
}

fn flux_kustomization(cluster: &str) -> String {
    format!(
        "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m
  path: ./apps/{cluster}
  prune: true
  sourceRef: {{kind: GitRepository, name: flux-system}}
"
    )
}

const CONFIG: &str = "environments:
  - name: staging
    paths: [\"apps/staging/**\", \"clusters/staging/**\"]
  - name: production
    paths: [\"apps/production/**\", \"clusters/production/**\"]
";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The check of the last commit as JSON, with its exit code.
fn check_last(work: &Path, base: git2::Oid) -> (Option<i32>, Value) {
    let out = check(work, &base.to_string(), &["--output", "json"]);
    let value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out.status.code(), value)
}

/// `(object, environment)` of every changed object.
fn changed(report: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["object"].as_str().unwrap().to_owned(),
                o["environment"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn kustomize_present(test: &str) -> bool {
    common::tools::require(common::tools::Tool::Kustomize, test)
}

#[test]
fn every_input_of_a_build_counts_in_a_flux_shaped_history() {
    if !kustomize_present("every_input_of_a_build_counts_in_a_flux_shaped_history") {
        return;
    }
    let staging_patch = values_patch("podinfo.staging");
    let production_patch = values_patch("podinfo.production");
    let first_release = release("50m");
    let staging_overlay = overlay("podinfo-values.yaml");
    let staging_flux = flux_kustomization("staging");
    let production_flux = flux_kustomization("production");
    let remote = common::git_remote(
        None,
        &[
            ("remediator.yaml", CONFIG),
            ("apps/base/podinfo/kustomization.yaml", BASE_KUSTOMIZATION),
            ("apps/base/podinfo/namespace.yaml", NAMESPACE),
            ("apps/base/podinfo/repository.yaml", REPOSITORY),
            ("apps/base/podinfo/release.yaml", &first_release),
            ("apps/base/podinfo/values.yaml", "replicaCount: 1\n"),
            ("apps/staging/kustomization.yaml", &staging_overlay),
            ("apps/staging/podinfo-values.yaml", &staging_patch),
            ("apps/production/kustomization.yaml", &staging_overlay),
            ("apps/production/podinfo-values.yaml", &production_patch),
            ("clusters/staging/apps.yaml", &staging_flux),
            ("clusters/production/apps.yaml", &production_flux),
        ],
    );
    let work = &remote.work;
    let mut base = common::branch_head(work, "main").unwrap();
    let step = |base: &mut git2::Oid, files: &[(&str, &str)], message: &str| {
        common::write_files(work, files);
        let head = common::commit_all(work, message);
        let checked = check_last(work, *base);
        let markdown = text(&check(work, &base.to_string(), &[]));
        *base = head;
        (checked.0, checked.1, markdown)
    };

    // A change to the shared base shows in both builds. The release's chart is Helm's to
    // render: what it changes is unknown, so it is high and needs more approvals.
    let (code, report, markdown) = step(
        &mut base,
        &[("apps/base/podinfo/release.yaml", &release("10m"))],
        "Reconcile podinfo more often",
    );
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["assessment"]["risk"], "high", "{report}");
    let why = report["objects"][0]["unrendered"].as_str().unwrap();
    assert!(
        why.contains("chart `podinfo` from HelmRepository podinfo"),
        "{why}"
    );
    assert!(
        markdown.contains("**Not rendered**: its chart `podinfo`"),
        "{markdown}"
    );
    assert_eq!(
        changed(&report),
        [
            ("HelmRelease/podinfo/podinfo".into(), "production".into()),
            ("HelmRelease/podinfo/podinfo".into(), "staging".into()),
        ]
    );
    assert!(
        report["renderer"].as_str().unwrap().contains("kustomize"),
        "the renderer is named: {report}"
    );

    // A change to the production patch alone shows in production only.
    let (_, report, _) = step(
        &mut base,
        &[(
            "apps/production/podinfo-values.yaml",
            &values_patch("podinfo.example.com"),
        )],
        "Serve production on its public name",
    );
    assert_eq!(
        changed(&report),
        [("HelmRelease/podinfo/podinfo".into(), "production".into())]
    );
    let field = &report["objects"][0]["fields"][0];
    assert_eq!(field["new"][0]["host"], "podinfo.example.com", "{report}");

    // A values file read by a generator is an input too.
    let (_, report, _) = step(
        &mut base,
        &[("apps/base/podinfo/values.yaml", "replicaCount: 2\n")],
        "Two podinfo replicas",
    );
    assert_eq!(
        changed(&report),
        [
            (
                "ConfigMap/podinfo/podinfo-values".into(),
                "production".into()
            ),
            ("ConfigMap/podinfo/podinfo-values".into(), "staging".into()),
        ]
    );

    // A file no build and no directory of manifests reads is said to be unused.
    let (code, report, markdown) = step(
        &mut base,
        &[("examples/values-override.yaml", "replicaCount: 5\n")],
        "An example of overriding values",
    );
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["objects"], serde_json::json!([]));
    assert_eq!(
        report["unused"],
        serde_json::json!(["examples/values-override.yaml"])
    );
    assert!(
        markdown.contains("Applied by no build and no directory of manifests"),
        "{markdown}"
    );

    // A remote resource that cannot be fetched is not rendered, with kustomize's reason, and
    // at least high; never "no change".
    let with_remote = |version: &str| {
        staging_overlay.replace(
            "resources:\n  - ../base/podinfo\n",
            &format!(
                "resources:\n  - ../base/podinfo\n  - https://releases.example.invalid/kyverno/{version}/install.yaml\n"
            ),
        )
    };
    let (code, report, _) = step(
        &mut base,
        &[("apps/staging/kustomization.yaml", &with_remote("v1.10.0"))],
        "Install Kyverno in staging",
    );
    assert_eq!(
        code,
        Some(1),
        "nothing is denied, more approvals are needed; the action's --fail-on decides: {report}"
    );
    assert_eq!(
        report["objects"],
        serde_json::json!([]),
        "no object is taken as removed"
    );
    assert_eq!(
        report["not_rendered"][0]["build"], "apps/staging",
        "{report}"
    );
    assert!(
        report["not_rendered"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("releases.example.invalid"),
        "{report}"
    );
    assert_eq!(report["assessment"]["risk"], "high", "{report}");
    let (_, report, markdown) = step(
        &mut base,
        &[("apps/staging/kustomization.yaml", &with_remote("v1.11.0"))],
        "Kyverno 1.11",
    );
    assert_eq!(
        report["not_rendered"][0]["build"], "apps/staging",
        "{report}"
    );
    assert_eq!(report["assessment"]["risk"], "high", "{report}");
    assert!(
        markdown.contains("**Not rendered**: `apps/staging`"),
        "{markdown}"
    );

    // Removing the HelmRelease from a pruned tree uninstalls it: high, and said.
    std::fs::remove_file(work.join("apps/base/podinfo/release.yaml")).unwrap();
    let (_, report, markdown) = step(
        &mut base,
        &[(
            "apps/base/podinfo/kustomization.yaml",
            &BASE_KUSTOMIZATION.replace("  - release.yaml\n", ""),
        )],
        "Retire podinfo's release",
    );
    let removed: Vec<&Value> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["object"] == "HelmRelease/podinfo/podinfo")
        .collect();
    // Staging, which cannot be rendered, is listed as such rather than as a removal.
    assert_eq!(removed.len(), 1, "{report}");
    assert_eq!(removed[0]["environment"], "production");
    assert_eq!(
        report["not_rendered"][0]["build"], "apps/staging",
        "{report}"
    );
    for object in removed {
        assert_eq!(object["change"], "removed");
        assert_eq!(object["deletes"], true);
        assert_eq!(object["applier"], "Flux Kustomization flux-system/apps");
        assert_eq!(object["assessment"]["risk"], "high", "{object}");
    }
    assert!(
        markdown.contains("**Merging deletes it from the cluster**"),
        "{markdown}"
    );
}

/// A ConfigMap `settings` whose `level` is `level`.
fn settings(level: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: default\ndata:\n  level: \"{level}\"\n  owner: platform\n"
    )
}

/// A strategic-merge patch of the settings' `owner`.
fn owner_patch(owner: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  owner: {owner}\n"
    )
}

const OVERLAY: &str = "resources: [../base]\npatches:\n  - path: owner.yaml\n";

#[test]
fn reconcile_applies_a_base_change_to_every_build_and_a_patch_to_its_own() {
    if !kustomize_present("reconcile_applies_a_base_change_to_every_build_and_a_patch_to_its_own") {
        return;
    }
    let prod = testkit::TestCluster::start();
    let files = [
        (
            "base/kustomization.yaml",
            "resources: [settings.yaml]\n".to_owned(),
        ),
        ("base/settings.yaml", settings("1")),
        ("dev/kustomization.yaml", OVERLAY.to_owned()),
        ("dev/owner.yaml", owner_patch("dev-team")),
        ("prod/kustomization.yaml", OVERLAY.to_owned()),
        ("prod/owner.yaml", owner_patch("sre")),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let world = common::world::World::dev_and_prod(&files, &prod, "");
    let live = |cluster: &testkit::TestCluster| {
        let settings = cluster.object("ConfigMap", "default", "settings");
        settings.map(|s| (s["data"]["level"].clone(), s["data"]["owner"].clone()))
    };

    // The shared base changes: both builds, each in its own cluster, each with its own patch.
    let merge = world.merge_change("level-2", &[("base/settings.yaml", &settings("2"))]);
    let out = world.reconcile_routed(&merge, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::world::text(&out));
    let (dev, prod_live) = (live(&world.cluster), live(&prod));
    assert_eq!(dev, Some(("2".into(), "dev-team".into())));
    assert_eq!(prod_live, Some(("2".into(), "sre".into())));
    let record = world.last("verified");
    assert!(
        record["renderer"].as_str().unwrap().contains("kustomize"),
        "the audit record names the renderer: {record}"
    );

    // The production patch alone changes production alone.
    let writes = |cluster| common::writes_to(cluster, "/configmaps/settings");
    let before = (writes(&world.cluster), writes(&prod));
    let merge = world.merge_change("prod-owner", &[("prod/owner.yaml", &owner_patch("oncall"))]);
    let out = world.reconcile_routed(&merge, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::world::text(&out));
    assert_eq!(live(&prod), Some(("2".into(), "oncall".into())));
    assert_eq!(writes(&world.cluster), before.0, "dev is not written");
    assert_eq!(writes(&prod), before.1 + 1);
}

#[test]
fn without_kustomize_a_changed_build_is_an_error_naming_it() {
    let remote = common::git_remote(
        None,
        &[
            ("base/kustomization.yaml", "resources: [settings.yaml]\n"),
            ("base/settings.yaml", &settings("1")),
            ("prod/kustomization.yaml", OVERLAY),
            ("prod/owner.yaml", &owner_patch("sre")),
        ],
    );
    let base = common::branch_head(&remote.work, "main").unwrap();
    common::write_files(&remote.work, &[("base/settings.yaml", &settings("2"))]);
    common::commit_all(&remote.work, "Level 2");
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_remediator"))
        .args(["check", "--repo", remote.work.to_str().unwrap()])
        .args(["--base", &base.to_string()])
        .env("PATH", empty.path())
        .env_remove("GITHUB_EVENT_PATH")
        .output()
        .unwrap();
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(3), "{printed}");
    assert!(
        printed.contains("prod/kustomization.yaml: cannot be rendered: neither `kustomize` nor `kubectl` is on PATH"),
        "{printed}"
    );
}

const CLUSTER_VARS: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: cluster-vars
  namespace: flux-system
data:
  cluster_region: eu-west-1
";

fn substituting_flux(substitute: &str) -> String {
    let post_build = format!(
        "  postBuild:\n    substitute: {{{substitute}}}\n    substituteFrom:\n      - kind: ConfigMap\n        name: cluster-vars\n"
    );
    flux_kustomization("").replace("path: ./apps/\n", "path: ./apps\n") + &post_build
}

const SUBSTITUTED: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: default
data:
  region: ${cluster_region}
  env: ${cluster_env:=dev}
  replicas: \"${replicas}\"
";

#[test]
fn flux_post_build_variables_are_substituted_and_a_missing_one_is_named() {
    if !kustomize_present("flux_post_build_variables_are_substituted_and_a_missing_one_is_named") {
        return;
    }
    let remote = common::git_remote(
        None,
        &[
            ("clusters/prod/vars.yaml", CLUSTER_VARS),
            (
                "clusters/prod/apps.yaml",
                &substituting_flux("replicas: \"3\""),
            ),
            ("apps/kustomization.yaml", "resources: [settings.yaml]\n"),
            ("apps/settings.yaml", SUBSTITUTED),
        ],
    );
    let work = &remote.work;
    let base = common::branch_head(work, "main").unwrap();
    // The variable's value changes in the ConfigMap: the object changes with it.
    common::write_files(
        work,
        &[(
            "clusters/prod/vars.yaml",
            &CLUSTER_VARS.replace("eu-west-1", "us-east-1"),
        )],
    );
    let head = common::commit_all(work, "Move to us-east-1");
    let (code, report) = check_last(work, base);
    assert_eq!(code, Some(0), "{report}");
    let settings: Vec<&Value> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["object"] == "ConfigMap/default/settings")
        .collect();
    assert_eq!(settings.len(), 1, "{report}");
    let field = &settings[0]["fields"][0];
    assert_eq!(field["path"], "data.region");
    assert_eq!(
        (&field["old"], &field["new"]),
        (&Value::from("eu-west-1"), &Value::from("us-east-1"))
    );

    // A variable that has no value is an error naming it and the build.
    common::write_files(work, &[("clusters/prod/apps.yaml", &substituting_flux(""))]);
    common::commit_all(work, "Forget the replicas");
    let out = check(work, &head.to_string(), &[]);
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(3), "{printed}");
    assert!(
        printed.contains("apps: post-build substitution of Flux Kustomization flux-system/apps: no value for ${replicas}"),
        "{printed}"
    );
}

#[test]
fn a_chart_change_is_not_rendered_and_its_templates_are_not_manifests() {
    if !kustomize_present("a_chart_change_is_not_rendered_and_its_templates_are_not_manifests") {
        return;
    }
    let template = |replicas: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{{{ .Release.Name }}}}\nspec:\n  replicas: {replicas}\n{{{{- if .Values.extra }}}}\n  paused: true\n{{{{- end }}}}\n"
        )
    };
    let remote = common::git_remote(
        None,
        &[
            (
                "charts/podinfo/Chart.yaml",
                "apiVersion: v2\nname: podinfo\nversion: 1.0.0\n",
            ),
            ("charts/podinfo/values.yaml", "extra: false\n"),
            ("charts/podinfo/templates/deployment.yaml", &template("1")),
            ("apps/settings.yaml", SETTINGS),
        ],
    );
    let base = common::branch_head(&remote.work, "main").unwrap();
    common::write_files(
        &remote.work,
        &[(
            "charts/podinfo/templates/deployment.yaml",
            &template("{{ .Values.replicas }}"),
        )],
    );
    common::commit_all(&remote.work, "Replicas from values");
    let (code, report) = check_last(&remote.work, base);
    assert_eq!(
        code,
        Some(1),
        "high, more approvals; no parse error: {report}"
    );
    assert_eq!(report["objects"], serde_json::json!([]));
    assert_eq!(
        report["not_rendered"][0]["build"], "charts/podinfo",
        "{report}"
    );
    assert_eq!(report["assessment"]["risk"], "high");
    assert_eq!(
        report["unused"],
        serde_json::json!([]),
        "a chart's files are its own"
    );
}

#[test]
fn a_generated_secret_is_masked_like_any_secret() {
    if !kustomize_present("a_generated_secret_is_masked_like_any_secret") {
        return;
    }
    let generator = |password: &str| {
        format!(
            "resources: [settings.yaml]\nsecretGenerator:\n  - name: db\n    namespace: default\n    literals: [password={password}]\n    options: {{disableNameSuffixHash: true}}\n"
        )
    };
    let (remote, base) = two_kustomizations(
        &generator("first-s3cret-value"),
        &generator("second-s3cret-value"),
    );
    let json = check(&remote.work, &base, &["--output", "json"]);
    let markdown = check(&remote.work, &base, &[]);
    let printed = format!("{}{}", text(&json), text(&markdown));
    assert!(printed.contains("Secret/default/db"), "{printed}");
    for secret in ["first-s3cret-value", "second-s3cret-value"] {
        use std::io::Write as _;
        let encoded = {
            let mut out = Vec::new();
            let mut child = Command::new("base64")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(secret.as_bytes())
                .unwrap();
            out.extend(child.wait_with_output().unwrap().stdout);
            String::from_utf8(out).unwrap().trim().to_owned()
        };
        assert!(!printed.contains(secret), "{printed}");
        assert!(!printed.contains(&encoded), "{printed}");
    }
}

/// A ConfigMap for builds that need one object.
const SETTINGS: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s, namespace: default}\ndata: {a: \"1\"}\n";

/// A repository whose build `apps` (with one ConfigMap) has `first` as its kustomization, then
/// `second` in a later commit; returns it with the first commit.
fn two_kustomizations(first: &str, second: &str) -> (common::GitRemote, String) {
    two_kustomizations_with(&[], first, second)
}

/// [`two_kustomizations`] with `files` in the base commit too (a `remediator.yaml`).
fn two_kustomizations_with(
    files: &[(&str, &str)],
    first: &str,
    second: &str,
) -> (common::GitRemote, String) {
    let mut all = vec![
        ("apps/kustomization.yaml", first),
        ("apps/settings.yaml", SETTINGS),
    ];
    all.extend_from_slice(files);
    let remote = common::git_remote(None, &all);
    let base = common::branch_head(&remote.work, "main")
        .unwrap()
        .to_string();
    common::write_files(&remote.work, &[("apps/kustomization.yaml", second)]);
    common::commit_all(&remote.work, "The change");
    (remote, base)
}

/// `check --output json` of the work clone's HEAD against `base`, with `path` as `PATH`.
fn check_with_path(work: &Path, base: &str, path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_remediator"))
        .args(["check", "--repo", work.to_str().unwrap(), "--base", base])
        .args(["--output", "json"])
        .env("PATH", path)
        .env_remove("GITHUB_EVENT_PATH")
        .output()
        .unwrap()
}

/// The report of [`check_with_path`].
fn json_with_path(work: &Path, base: &str, path: &Path) -> Value {
    let out = check_with_path(work, base, path);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

/// A directory holding links to this machine's kustomize and kubectl, and `extra` scripts.
fn path_with(extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["kustomize", "kubectl"] {
        if let Some(found) = std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
        {
            std::os::unix::fs::symlink(found, dir.path().join(name)).unwrap();
        }
    }
    for (name, script) in extra {
        use std::os::unix::fs::PermissionsExt as _;
        let file = dir.path().join(name);
        std::fs::write(&file, script).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// The object `name` of a check's JSON report.
fn reported<'r>(report: &'r Value, name: &str) -> &'r Value {
    report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == name)
        .unwrap_or_else(|| panic!("{name} is not in {report}"))
}

/// `command`'s output, once it has succeeded.
fn succeeded(command: &mut Command) -> Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// [`path_with`] and a real helm (see `common::helm`).
fn path_with_real_helm() -> tempfile::TempDir {
    let dir = path_with(&[]);
    std::os::unix::fs::symlink(common::helm(), dir.path().join("helm")).unwrap();
    dir
}

/// A chart template that shows what the release gets: its name, namespace and values.
const VALUES_TEMPLATE: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-values
  namespace: {{ .Release.Namespace }}
data:
  replicaCount: {{ .Values.replicaCount | quote }}
  tier: {{ .Values.tier | default \"\" | quote }}
";

#[test]
fn helm_charts_without_helm_are_not_rendered_and_an_unreachable_chart_names_the_build() {
    if !kustomize_present(
        "helm_charts_without_helm_are_not_rendered_and_an_unreachable_chart_names_the_build",
    ) {
        return;
    }
    let kustomization = |version: &str| {
        format!(
            "resources: [settings.yaml]\nhelmCharts:\n  - name: podinfo\n    repo: https://charts.example.invalid\n    version: {version}\n    releaseName: podinfo\n"
        )
    };
    let (remote, base) = two_kustomizations(&kustomization("6.0.0"), &kustomization("6.1.0"));
    let run = |path: &Path| check_with_path(&remote.work, &base, path);

    // Each way the build stays not rendered: exit 1, the build named with the reason, high.
    let not_rendered = |out: &Output, why: &str| {
        assert_eq!(out.status.code(), Some(1), "{}", text(out));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["not_rendered"][0]["build"], "apps", "{report}");
        let reason = report["not_rendered"][0]["reason"].as_str().unwrap();
        assert!(reason.contains(why), "{report}");
        assert_eq!(report["assessment"]["risk"], "high");
    };
    let without_helm = path_with(&[]);
    not_rendered(&run(without_helm.path()), "`helm` is not on PATH");

    let failing_helm = path_with(&[(
        "helm",
        "#!/bin/sh\necho 'Error: looks like \"https://charts.example.invalid\" is not a valid chart repository or cannot be reached' >&2\nexit 1\n",
    )]);
    // A chart repository the trusted configuration does not allow is never asked.
    not_rendered(
        &run(failing_helm.path()),
        "it fetches `https://charts.example.invalid`, which `render.allowRemote`",
    );

    // One it allows is fetched; a fetch that fails names the build and helm's reason.
    let (remote, base) = two_kustomizations_with(
        &[(
            "remediator.yaml",
            "render:\n  allowRemote: [charts.example.invalid]\n",
        )],
        &kustomization("6.0.0"),
        &kustomization("6.1.0"),
    );
    not_rendered(
        &check_with_path(&remote.work, &base, failing_helm.path()),
        "could not be fetched",
    );
}

fn local_release(replicas: u32) -> String {
    format!(
        "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: podinfo
spec:
  interval: 10m
  chart:
    spec:
      chart: ./charts/podinfo
      sourceRef: {{kind: GitRepository, name: flux-system, namespace: flux-system}}
  values:
    replicaCount: {replicas}
"
    )
}

fn chart_service(port: u32) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: podinfo\n  namespace: podinfo\nspec:\n  ports: [{{port: {port}}}]\n"
    )
}

#[test]
fn a_release_with_its_chart_in_the_repository_is_rendered_with_helm_template() {
    if !kustomize_present(
        "a_release_with_its_chart_in_the_repository_is_rendered_with_helm_template",
    ) {
        return;
    }
    let remote = common::git_remote(
        None,
        &[
            (
                "charts/podinfo/Chart.yaml",
                "apiVersion: v2\nname: podinfo\nversion: 1.0.0\n",
            ),
            ("charts/podinfo/templates/service.yaml", &chart_service(80)),
            ("charts/podinfo/templates/values.yaml", VALUES_TEMPLATE),
            ("apps/release.yaml", &local_release(1)),
        ],
    );
    let work = &remote.work;
    let helm = path_with_real_helm();
    let run = |base: &str| json_with_path(work, base, helm.path());
    // The values change: the release and the objects its chart makes with them.
    let base = common::branch_head(work, "main").unwrap().to_string();
    common::write_files(work, &[("apps/release.yaml", &local_release(2))]);
    let head = common::commit_all(work, "Two replicas").to_string();
    let report = run(&base);
    assert_eq!(
        changed(&report),
        [
            ("ConfigMap/podinfo/podinfo-values".into(), "-".into()),
            ("HelmRelease/podinfo/podinfo".into(), "-".into()),
        ],
        "{report}"
    );
    for object in report["objects"].as_array().unwrap() {
        assert!(object["unrendered"].is_null(), "{object}");
    }
    let made = reported(&report, "ConfigMap/podinfo/podinfo-values");
    assert_eq!(made["fields"][0]["path"], "data.replicaCount", "{made}");
    assert_eq!(made["fields"][0]["new"], "2", "{made}");
    assert_eq!(report["not_rendered"], serde_json::json!([]));
    assert_eq!(report["assessment"]["risk"], "low", "{report}");

    // The chart's template changes: the object it makes.
    common::write_files(
        work,
        &[(
            "charts/podinfo/templates/service.yaml",
            &chart_service(8080),
        )],
    );
    common::commit_all(work, "Serve on 8080");
    let report = run(&head);
    assert_eq!(
        changed(&report),
        [("Service/podinfo/podinfo".into(), "-".into())],
        "{report}"
    );
    assert_eq!(report["not_rendered"], serde_json::json!([]), "{report}");
}

#[test]
fn an_argo_cd_application_with_its_chart_in_the_repository_is_rendered_too() {
    if !kustomize_present("an_argo_cd_application_with_its_chart_in_the_repository_is_rendered_too")
    {
        return;
    }
    let application = |replicas: u32| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: guestbook\n  namespace: argocd\nspec:\n  destination: {{namespace: guestbook, server: https://kubernetes.default.svc}}\n  source:\n    repoURL: https://github.com/acme/config\n    path: charts/guestbook\n    helm:\n      valueFiles: [values-prod.yaml]\n      valuesObject: {{replicaCount: {replicas}}}\n"
        )
    };
    let remote = common::git_remote(
        None,
        &[
            (
                "charts/guestbook/Chart.yaml",
                "apiVersion: v2\nname: guestbook\nversion: 1.0.0\n",
            ),
            ("charts/guestbook/values-prod.yaml", "tier: prod\n"),
            (
                "charts/guestbook/templates/service.yaml",
                &chart_service(80),
            ),
            ("charts/guestbook/templates/values.yaml", VALUES_TEMPLATE),
            ("argo/guestbook.yaml", &application(1)),
        ],
    );
    let work = &remote.work;
    let base = common::branch_head(work, "main").unwrap().to_string();
    common::write_files(work, &[("argo/guestbook.yaml", &application(3))]);
    common::commit_all(work, "Three guestbooks");
    let helm = path_with_real_helm();
    let report = json_with_path(work, &base, helm.path());
    assert_eq!(
        changed(&report),
        [
            ("Application/argocd/guestbook".into(), "-".into()),
            ("ConfigMap/guestbook/guestbook-values".into(), "-".into()),
        ],
        "{report}"
    );
    let made = reported(&report, "ConfigMap/guestbook/guestbook-values");
    // Only the object's value changed; the values file's still reaches the chart.
    assert_eq!(made["fields"][0]["path"], "data.replicaCount", "{made}");
    assert_eq!(made["fields"][0]["new"], "3", "{made}");
    let diff = made["diff"].as_str().unwrap();
    assert!(
        diff.contains("+  replicaCount: \"3\"") && diff.contains(" tier: prod"),
        "the values file and the object merged: {diff}"
    );
    assert_eq!(report["not_rendered"], serde_json::json!([]), "{report}");
}

/// A ConfigMap `name` in `default`.
fn config_map(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\ndata:\n  a: \"1\"\n"
    )
}

#[test]
fn reconcile_deletes_what_a_merge_removes_when_it_applied_it_and_nothing_else() {
    let prod = testkit::TestCluster::start();
    let files = [
        ("dev/kept.yaml", config_map("kept")),
        ("dev/retired.yaml", config_map("retired")),
        ("dev/adopted.yaml", config_map("adopted")),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let world = common::world::World::dev_and_prod(&files, &prod, "");
    // remediator applied `kept` and `retired`; `adopted` was made by someone else.
    for path in ["dev/kept.yaml", "dev/retired.yaml"] {
        let out = world.run(&["apply", "--path", path]);
        assert_eq!(out.status.code(), Some(0), "{}", common::world::text(&out));
    }
    let adopted = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "adopted", "namespace": "default"}, "data": {"a": "by hand"}});
    world
        .cluster
        .create(adopted, "kubectl-client-side-apply")
        .unwrap();

    let work = &world.remote.work;
    std::fs::remove_file(work.join("dev/retired.yaml")).unwrap();
    std::fs::remove_file(work.join("dev/adopted.yaml")).unwrap();
    let removal = world.merge_change("retire", &[]);
    let out = world.reconcile_routed(&removal, &["--env", "dev"]);
    let printed = common::world::text(&out);
    assert_eq!(out.status.code(), Some(0), "{printed}");
    assert!(
        printed.contains("ConfigMap/default/retired deleted"),
        "{printed}"
    );
    assert!(
        world
            .cluster
            .object("ConfigMap", "default", "retired")
            .is_none()
    );
    assert!(
        printed.contains("ConfigMap/default/adopted skipped"),
        "{printed}"
    );
    let adopted = world
        .cluster
        .object("ConfigMap", "default", "adopted")
        .unwrap();
    assert_eq!(
        adopted["data"]["a"], "by hand",
        "someone else's object is left alone"
    );
    assert!(
        world
            .cluster
            .object("ConfigMap", "default", "kept")
            .is_some()
    );
    let deletes = world
        .cluster
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert_eq!(deletes, 1, "one delete, of the object remediator applied");
}

/// An HTTP chart repository on loopback: `index.yaml` and the packaged charts of `podinfo` at
/// each version, made by the real helm; counts the requests it answers.
struct ChartRepository {
    url: String,
    served: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl ChartRepository {
    fn start(versions: &[&str]) -> ChartRepository {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let dir = tempfile::tempdir().unwrap();
        let (source, served_dir) = (dir.path().join("chart"), dir.path().join("repo"));
        std::fs::create_dir_all(source.join("templates")).unwrap();
        std::fs::create_dir_all(&served_dir).unwrap();
        std::fs::write(
            source.join("templates/values.yaml"),
            format!("{VALUES_TEMPLATE}  chart: {{{{ .Chart.Name }}}}-{{{{ .Chart.Version }}}}\n"),
        )
        .unwrap();
        let helm = common::helm();
        for version in versions {
            std::fs::write(
                source.join("Chart.yaml"),
                format!("apiVersion: v2\nname: podinfo\nversion: {version}\n"),
            )
            .unwrap();
            succeeded(
                Command::new(&helm)
                    .arg("package")
                    .arg(&source)
                    .arg("-d")
                    .arg(&served_dir),
            );
        }
        succeeded(
            Command::new(&helm)
                .args(["repo", "index"])
                .arg(&served_dir)
                .args(["--url", &url]),
        );
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = served.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut line = String::new();
                if BufReader::new(&stream).read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/");
                let file = served_dir.join(path.trim_start_matches('/'));
                let answer = match std::fs::read(&file) {
                    Ok(body) if file.starts_with(&served_dir) => {
                        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let mut head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        head.extend(body);
                        head
                    }
                    _ => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = stream.write_all(&answer);
            }
        });
        ChartRepository {
            url,
            served,
            _dir: dir,
        }
    }

    /// How many files it has served.
    fn served(&self) -> usize {
        self.served.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn a_release_from_a_helm_repository_is_rendered_by_helm_fetching_its_chart() {
    if !kustomize_present("a_release_from_a_helm_repository_is_rendered_by_helm_fetching_its_chart")
    {
        return;
    }
    let release = |replicas: u32| {
        format!(
            "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: podinfo\n  namespace: podinfo\nspec:\n  chart:\n    spec:\n      chart: podinfo\n      version: \">=6.0.0\"\n      sourceRef: {{kind: HelmRepository, name: podinfo}}\n  values:\n    replicaCount: {replicas}\n"
        )
    };
    // A chart repository on loopback, served as any HTTP chart repository is: an index and
    // packaged charts, versions 5.0.0 and 6.1.0, packaged and indexed by the real helm.
    let charts = ChartRepository::start(&["5.0.0", "6.1.0"]);
    let repository = format!(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: podinfo\n  namespace: podinfo\nspec:\n  url: {}\n",
        charts.url
    );
    let helm = path_with_real_helm();
    // Without the repository on the trusted allow-list, nothing is fetched.
    let closed = common::git_remote(
        None,
        &[
            ("apps/repository.yaml", &repository),
            ("apps/release.yaml", &release(1)),
        ],
    );
    let base = common::branch_head(&closed.work, "main")
        .unwrap()
        .to_string();
    common::write_files(&closed.work, &[("apps/release.yaml", &release(2))]);
    common::commit_all(&closed.work, "Two replicas");
    let report = json_with_path(&closed.work, &base, helm.path());
    let object = &report["objects"][0];
    assert_eq!(object["object"], "HelmRelease/podinfo/podinfo", "{report}");
    assert!(
        object["unrendered"].as_str().unwrap().contains(&format!(
            "`{}`, which `render.allowRemote` in the trusted configuration does not allow",
            charts.url
        )),
        "{object}"
    );
    assert_eq!(report["assessment"]["risk"], "high");
    assert_eq!(charts.served(), 0, "nothing was fetched");

    let remote = common::git_remote(
        None,
        &[
            ("remediator.yaml", "render:\n  allowRemote: [127.0.0.1]\n"),
            ("apps/repository.yaml", &repository),
            ("apps/release.yaml", &release(1)),
        ],
    );
    let work = &remote.work;
    let base = common::branch_head(work, "main").unwrap().to_string();
    common::write_files(work, &[("apps/release.yaml", &release(2))]);
    common::commit_all(work, "Two replicas");
    let report = json_with_path(work, &base, helm.path());
    let made = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == "ConfigMap/podinfo/podinfo-values")
        .unwrap_or_else(|| panic!("{report}"));
    assert!(made["unrendered"].is_null(), "{made}");
    let release_object = reported(&report, "HelmRelease/podinfo/podinfo");
    assert!(release_object["unrendered"].is_null(), "{release_object}");
    // helm fetched the chart from the declared repository, at the newest version the declared
    // range allows.
    assert!(charts.served() >= 2, "the index and a chart were fetched");
    let diff = made["diff"].as_str().unwrap();
    assert!(diff.contains(" chart: podinfo-6.1.0"), "{diff}");
    let fields = made["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 1, "{made}");
    assert_eq!(fields[0]["path"], "data.replicaCount", "{made}");
    assert_eq!(fields[0]["new"], "2", "{made}");

    // A helm that cannot fetch it leaves the release not rendered, with helm's reason.
    let failing = path_with(&[(
        "helm",
        "#!/bin/sh\necho 'Error: failed to fetch https://stefanprodan.github.io/podinfo/index.yaml' >&2\nexit 1\n",
    )]);
    let report = json_with_path(work, &base, failing.path());
    let object = &report["objects"][0];
    assert_eq!(object["object"], "HelmRelease/podinfo/podinfo", "{report}");
    assert!(
        object["unrendered"]
            .as_str()
            .unwrap()
            .contains("failed to fetch"),
        "{object}"
    );
    assert_eq!(report["assessment"]["risk"], "high");
}

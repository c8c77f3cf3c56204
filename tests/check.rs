//! `remediator check` on base and head commits of real Git repositories: risk, denials, breaking
//! CRD changes with their paths, no Secret value in any output, one comment on the fake GitHub
//! updated in place; and the GitHub Action and example workflows that run it.

mod common;

use common::check;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use testkit::github::{BOT_TOKEN, FakeGitHub};

const CONFIG: &str = "environments:
  - name: prod
    paths: [\"prod/**\"]
    riskTolerance: medium
";

fn deployment(replicas: u32, image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: shop
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api}}}}
    spec:
      containers:
        - name: api
          image: {image}
"
    )
}

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size: {type: integer}
                color: {type: string}
                note: {type: string}
";

const SECRET_BEFORE: &str = "apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: shop
data:
  password: b2xkLXNlY3JldC12YWx1ZQ==
stringData:
  token: old-plain-token
";

const SECRET_AFTER: &str = "apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: shop
data:
  password: bmV3LXNlY3JldC12YWx1ZQ==
stringData:
  token: new-plain-token
";

/// Every form the Secret's values could leak in.
const SECRET_VALUES: [&str; 6] = [
    "b2xkLXNlY3JldC12YWx1ZQ==",
    "bmV3LXNlY3JldC12YWx1ZQ==",
    "old-secret-value",
    "new-secret-value",
    "old-plain-token",
    "new-plain-token",
];

/// A repository whose first commit has `base` and second `head` (path, text); returns it with
/// the base commit.
fn repo(base: &[(&str, &str)], head: &[(&str, &str)]) -> (common::GitRemote, String) {
    let mut files = vec![("remediator.yaml", CONFIG)];
    files.extend_from_slice(base);
    let remote = common::git_remote(None, &files);
    let first = common::branch_head(&remote.work, "main")
        .unwrap()
        .to_string();
    common::write_files(&remote.work, head);
    common::commit_all(&remote.work, "The pull request's change");
    (remote, first)
}

/// `remediator check --repo WORK --base BASE` as GitHub Actions runs it, against the fake GitHub.
fn on_github(remote: &common::GitRemote, github: &FakeGitHub, base: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_remediator"));
    command
        .args([
            "check",
            "--repo",
            remote.work.to_str().unwrap(),
            "--base",
            base,
        ])
        .env("GITHUB_TOKEN", BOT_TOKEN)
        .env("GITHUB_REPOSITORY", "acme/config")
        .env("GITHUB_API_URL", github.url())
        .env_remove("GITHUB_EVENT_PATH")
        .env_remove("GITHUB_REF");
    command
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(work: &Path, base: &str) -> Value {
    let out = check(work, base, &["--output", "json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

#[test]
fn an_image_bump_is_low_risk_and_passes() {
    let (remote, base) = repo(
        &[("apps/api.yaml", &deployment(3, "api:1.0"))],
        &[("apps/api.yaml", &deployment(3, "api:1.1"))],
    );
    let out = check(&remote.work, &base, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = text(&out);
    assert!(
        report.starts_with("## remediator check: low risk\n"),
        "{report}"
    );
    assert!(report.contains("1 object change between"), "{report}");
    assert!(
        report.contains("| `Deployment/shop/api` | - | modified | low | 0 |"),
        "{report}"
    );
    assert!(
        report.contains("-          image: api:1.0\n+          image: api:1.1"),
        "{report}"
    );
    let templates = remote.dir.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("check.md.j2"),
        "{{ report.objects|length }} change, {{ report.assessment.risk }} risk\n",
    )
    .unwrap();
    let custom = check(
        &remote.work,
        &base,
        &["--templates", templates.to_str().unwrap()],
    );
    assert_eq!(
        String::from_utf8_lossy(&custom.stdout),
        "1 change, low risk\n"
    );
    let value = json(&remote.work, &base);
    assert_eq!(value["assessment"]["risk"], "low");
    assert_eq!(
        value["objects"][0]["fields"][0]["path"],
        "spec.template.spec.containers[name=api].image"
    );
    assert_eq!(value["objects"][0]["file"], "apps/api.yaml");
    assert_eq!(value["objects"][0]["line"], 1);
}

#[test]
fn one_replica_in_production_is_denied() {
    let (remote, base) = repo(
        &[("prod/api.yaml", &deployment(3, "api:1.0"))],
        &[("prod/api.yaml", &deployment(1, "api:1.0"))],
    );
    let sarif = remote.dir.path().join("out.sarif");
    let out = check(&remote.work, &base, &["--sarif", sarif.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let report = text(&out);
    assert!(
        report.contains("- **Denied by policy**: Deployment/shop/api: scaling spec.replicas below 2 replicas in production leaves no redundancy"),
        "{report}"
    );
    assert!(
        report.contains("| `Deployment/shop/api` | prod | modified | medium, denied | 1 |"),
        "{report}"
    );
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(sarif).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["ruleId"], "policy-denial");
    assert_eq!(results[0]["level"], "error");
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "prod/api.yaml"
    );
}

/// A base no glob of the configuration names, applied by the Flux Kustomization of prod's
/// directory, is prod's: one replica there is denied as in production.
#[test]
fn a_base_a_production_applier_applies_is_judged_as_production() {
    let flux = "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  path: ./apps/shared
  sourceRef: {kind: GitRepository, name: flux-system}
";
    let (remote, base) = repo(
        &[
            ("prod/apps.yaml", flux),
            ("apps/shared/api.yaml", &deployment(3, "api:1.0")),
        ],
        &[("apps/shared/api.yaml", &deployment(1, "api:1.0"))],
    );
    let out = check(&remote.work, &base, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let report = text(&out);
    assert!(
        report.contains("| `Deployment/shop/api` | prod | modified | medium, denied | 1 |"),
        "{report}"
    );
}

#[test]
fn crd_changes_that_break_resources_are_critical_with_their_paths() {
    let cases = [
        (
            "                note: {type: string}\n",
            "",
            ".spec.note",
            "field removed",
            // Gone from the file: the line of its parent's properties.
            20,
            None,
        ),
        (
            "required: [size]",
            "required: [size, color]",
            ".spec.color",
            "newly required",
            22,
            Some(true),
        ),
        (
            "size: {type: integer}",
            "size: {type: string}",
            ".spec.size",
            "type changed from integer to string",
            21,
            Some(true),
        ),
    ];
    for (from, to, path, change, line, ratcheted) in cases {
        let changed = CRD.replace(from, to);
        assert_ne!(changed, CRD, "{path}: the test edit applies");
        let (remote, base) = repo(
            &[("crds/widgets.yaml", CRD)],
            &[("crds/widgets.yaml", &changed)],
        );
        let out = check(&remote.work, &base, &[]);
        assert_eq!(out.status.code(), Some(1), "{path}: {}", text(&out));
        let report = text(&out);
        assert!(
            report.starts_with("## remediator check: critical risk\n"),
            "{report}"
        );
        assert!(
            report.contains(&format!(
                "- **breaking** (v1) `{path}` (line {line}): {change}{}\n",
                if ratcheted.is_some() { RATCHETED } else { "" }
            )),
            "{report}"
        );
        assert!(
            report.contains("Merging needs **2 approvals, including security**"),
            "{report}"
        );
        let value = json(&remote.work, &base);
        let breaking = &value["objects"][0]["breaking"];
        assert_eq!(breaking.as_array().unwrap().len(), 1, "{breaking}");
        assert_eq!(breaking[0]["path"], path);
        assert_eq!(breaking[0]["change"], change);
        assert_eq!(breaking[0]["line"], line);
        assert_eq!(breaking[0]["severity"], "breaking");
        assert_eq!(
            breaking[0].get("ratcheted").and_then(|r| r.as_bool()),
            ratcheted
        );
    }
}

const RATCHETED: &str = "\n  - Ratcheted: an object that fails it can still be updated if the update leaves that field as it is.";

#[test]
fn a_crd_version_without_served_is_an_error_at_its_line_whether_added_or_changed() {
    let bare = CRD.replace("      served: true\n", "");
    let other = bare.replace("widgets.example.com", "gadgets.example.com");
    let (remote, base) = repo(
        &[("crds/widgets.yaml", CRD)],
        &[
            (
                "crds/widgets.yaml",
                &bare.replace("color: {type: string}", "color: {type: integer}"),
            ),
            ("crds/gadgets.yaml", &other),
        ],
    );
    let out = check(&remote.work, &base, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = text(&out);
    for name in ["widgets", "gadgets"] {
        assert!(
            report.contains(&format!(
                "**`CustomResourceDefinition/{name}.example.com`**"
            )),
            "{report}"
        );
    }
    assert_eq!(
        report
            .matches("- **breaking** (v1) `spec.versions[name=v1].served` (line 10): `served` of version v1 is missing")
            .count(),
        2,
        "{report}"
    );
    // The changed CRD's schema is still compared.
    assert!(
        report.contains("`.spec.color` (line 21): type changed from string to integer"),
        "{report}"
    );
}

/// flux2-multi-tenancy's layout: the cluster directory is applied by the bootstrap's own
/// Kustomization (not declared in the repository), the tenants directory by `tenants`, and the
/// tenant's Kustomization `apps/dev-team` has no `path` and syncs the tenant's own branch.
const TENANT_SYNC: &str = "apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: dev-team
  namespace: apps
spec:
  interval: 1m
  url: URL
  ref:
    branch: dev-team
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: dev-team
  namespace: apps
spec:
  interval: 5m
  sourceRef:
    kind: GitRepository
    name: dev-team
  prune: true
";

fn flux_kustomization(name: &str, path: &str, interval: &str) -> String {
    format!(
        "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: {name}
  namespace: flux-system
spec:
  interval: {interval}
  sourceRef:
    kind: GitRepository
    name: flux-system
  path: {path}
  prune: true
"
    )
}

#[test]
fn each_file_names_the_flux_kustomization_that_really_reads_it() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "each_file_names_the_flux_kustomization_that_really_reads_it",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("x").display());
    let sync = TENANT_SYNC.replace("URL", &url);
    let base = [
        (
            "clusters/staging/flux-system/gotk-sync.yaml",
            "# This file will be generated automatically by flux bootstrap.\n",
        ),
        (
            "clusters/staging/tenants.yaml",
            &flux_kustomization("tenants", "./tenants/staging", "5m") as &str,
        ),
        ("tenants/base/dev-team/sync.yaml", &sync),
        (
            "tenants/base/dev-team/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: apps\nresources: [sync.yaml]\n",
        ),
        (
            "tenants/staging/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: apps\nresources: [../base/dev-team]\n",
        ),
    ];
    let (remote, first) = repo(
        &base,
        &[
            (
                "clusters/staging/tenants.yaml",
                &flux_kustomization("tenants", "./tenants/staging", "10m"),
            ),
            ("tenants/base/dev-team/sync.yaml", &sync.replace("1m", "2m")),
        ],
    );
    // The same URL as the tenant's source: only the branch tells them apart.
    let work = git2::Repository::open(&remote.work).unwrap();
    work.remote_set_url("origin", &url).unwrap();
    work.reference(
        "refs/remotes/origin/main",
        first.parse().unwrap(),
        true,
        "base",
    )
    .unwrap();
    let appliers = |base: &str| -> Vec<(String, Value)> {
        let out = check(&remote.work, base, &["--output", "json"]);
        let value: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
        value["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (o["file"].as_str().unwrap().to_owned(), o["applier"].clone()))
            .collect()
    };
    let found = appliers("origin/main");
    // Given as a commit, the base names no branch: the branch checked out (`main`) is taken.
    assert_eq!(appliers(&first), found);
    assert_eq!(
        found,
        [
            (
                "clusters/staging/tenants.yaml".to_owned(),
                // The bootstrap's Kustomization is not in the repository: none is named.
                Value::Null
            ),
            (
                "tenants/base/dev-team/sync.yaml".to_owned(),
                Value::from("Flux Kustomization flux-system/tenants")
            ),
        ]
    );
    // With the bootstrap's Kustomization declared, the cluster directory names it.
    common::write_files(
        &remote.work,
        &[(
            "clusters/staging/flux-system/gotk-sync.yaml",
            &flux_kustomization("flux-system", "./clusters/staging", "10m"),
        )],
    );
    common::commit_all(&remote.work, "Bootstrap declared");
    let found = appliers("origin/main");
    assert!(
        found.contains(&(
            "clusters/staging/tenants.yaml".to_owned(),
            Value::from("Flux Kustomization flux-system/flux-system")
        )),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .all(|(_, a)| a != "Flux Kustomization apps/dev-team"),
        "{found:?}"
    );
}

/// A remote base replaced by a local Flux source and Kustomization: the build could not be
/// rendered before (nothing remote is fetched) and renders after, so both objects are added.
#[test]
fn a_remote_base_made_local_lists_every_object_it_adds() {
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "a_remote_base_made_local_lists_every_object_it_adds",
    ) {
        return;
    }
    let remote_base = "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - https://github.com/example/fleet-infra//infrastructure?ref=v1.0.0
";
    let local = "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - infrastructure.yaml
";
    let infrastructure = "apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: fleet-infra
  namespace: flux-system
spec:
  interval: 10m
  url: https://github.com/example/fleet-infra
  ref:
    tag: v1.0.0
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: infrastructure
  namespace: flux-system
spec:
  interval: 10m
  sourceRef:
    kind: GitRepository
    name: fleet-infra
  path: ./infrastructure
  prune: true
";
    let (remote, base) = repo(
        &[("prod/kustomization.yaml", remote_base)],
        &[
            ("prod/kustomization.yaml", local),
            ("prod/infrastructure.yaml", infrastructure),
        ],
    );
    let value = json(&remote.work, &base);
    let listed: Vec<(&str, &str)> = value["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["object"].as_str().unwrap(), o["change"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [
            ("GitRepository/flux-system/fleet-infra", "added"),
            ("Kustomization/flux-system/infrastructure", "added"),
        ],
        "{value}"
    );
    // And back: what the build applies after is unknown, so nothing is taken as removed; the
    // build is reported as not rendered, which the policies weigh.
    let (remote, base) = repo(
        &[
            ("prod/kustomization.yaml", local),
            ("prod/infrastructure.yaml", infrastructure),
        ],
        &[("prod/kustomization.yaml", remote_base)],
    );
    common::write_files(&remote.work, &[]);
    std::fs::remove_file(remote.work.join("prod/infrastructure.yaml")).unwrap();
    common::commit_all(&remote.work, "Back to the remote base");
    let value = json(&remote.work, &base);
    assert_eq!(value["objects"], serde_json::json!([]), "{value}");
    assert_eq!(value["not_rendered"][0]["build"], "prod", "{value}");
    assert_eq!(value["assessment"]["risk"], "high", "{value}");
}

#[test]
fn a_commit_that_only_respells_durations_and_quantities_changes_nothing() {
    let app = |memory: &str, cpu: &str, interval: &str, replicas: &str| {
        format!(
            "{}          resources:\n            limits: {{memory: {memory}, cpu: {cpu}}}\n---\n{}",
            deployment(3, "api:1.0").replace("replicas: 3", &format!("replicas: {replicas}")),
            flux_kustomization("apps", "./apps", interval)
        )
    };
    let (remote, base) = repo(
        &[("prod/api.yaml", &app("1Gi", "\"1\"", "720m", "3"))],
        &[("prod/api.yaml", &app("1024Mi", "1000m", "720m0s", "0x3"))],
    );
    let out = check(&remote.work, &base, &[]);
    let report = text(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(report.contains("No Kubernetes object changes."), "{report}");
    assert!(
        report.contains("Formatting only, no change for Kubernetes")
            && report.contains("`prod/api.yaml`"),
        "{report}"
    );
    // A value that does change is still a change.
    common::write_files(
        &remote.work,
        &[("prod/api.yaml", &app("1024Mi", "1000m", "721m", "3"))],
    );
    common::commit_all(&remote.work, "A minute more");
    let value = json(&remote.work, &base);
    assert_eq!(value["objects"].as_array().unwrap().len(), 1, "{value}");
    assert_eq!(value["objects"][0]["fields"][0]["path"], "spec.interval");
}

#[test]
fn a_secret_change_shows_no_value_anywhere() {
    let (remote, base) = repo(
        &[("apps/db.yaml", SECRET_BEFORE)],
        &[("apps/db.yaml", SECRET_AFTER)],
    );
    common::push(&remote.work, "refs/heads/main:refs/heads/rotate");
    common::push(&remote.work, &format!("+{base}:refs/heads/main"));
    let github = FakeGitHub::start("acme/config", &remote.bare);
    let number = github.open_pull("rotate", "main", "Rotate the password", "dev");
    let sarif = remote.dir.path().join("out.sarif");
    let summary = remote.dir.path().join("summary.md");
    let outputs = remote.dir.path().join("outputs");
    let markdown = on_github(&remote, &github, &base)
        .args(["--comment", "--pull", &number.to_string()])
        .args(["--summary", "--github-output"])
        .args(["--sarif", sarif.to_str().unwrap()])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", &outputs)
        .output()
        .unwrap();
    assert_eq!(markdown.status.code(), Some(0), "{}", text(&markdown));
    let comments = github.comments(number);
    assert_eq!(comments.len(), 1);
    let outputs_text = std::fs::read_to_string(&outputs).unwrap();
    assert_eq!(outputs_text, "risk=low\nchanged-objects=Secret/shop/db\n");
    let all = [
        text(&markdown),
        comments[0].body.clone(),
        text(&check(&remote.work, &base, &[])),
        text(&check(&remote.work, &base, &["--output", "json"])),
        std::fs::read_to_string(&sarif).unwrap(),
        std::fs::read_to_string(&summary).unwrap(),
        outputs_text,
    ]
    .concat();
    assert!(
        all.matches("password: *** (after)").count() >= 4,
        "the diff is in every report"
    );
    for secret in SECRET_VALUES {
        assert!(!all.contains(secret), "{secret} leaked");
    }
    assert!(
        all.contains("-  password: *** (before)\n+  password: *** (after)"),
        "{all}"
    );
    let value = json(&remote.work, &base);
    let fields = value["objects"][0]["fields"].as_array().unwrap();
    assert!(
        fields
            .iter()
            .all(|f| f["old"] == "***" && f["new"] == "***"),
        "{fields:?}"
    );
}

#[test]
fn a_check_run_annotates_the_removed_crd_field_at_its_line_and_a_token_without_checks_gets_a_status()
 {
    let changed = CRD.replace("                note: {type: string}\n", "");
    let (remote, base) = repo(
        &[
            ("crds/widgets.yaml", CRD),
            ("prod/api.yaml", &deployment(3, "api:1.0")),
        ],
        &[
            ("crds/widgets.yaml", &changed),
            ("prod/api.yaml", &deployment(1, "api:1.0")),
        ],
    );
    let head = common::branch_head(&remote.work, "main")
        .unwrap()
        .to_string();
    let github = FakeGitHub::start("acme/config", &remote.bare);
    github.add_token_with_permissions(
        "actions-token",
        "github-actions[bot]",
        &[("checks", "write")],
    );
    let out = on_github(&remote, &github, &base)
        .arg("--check-run")
        .env("GITHUB_TOKEN", "actions-token")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let runs = github.check_runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    assert_eq!(run.name, "remediator/check");
    assert_eq!(run.head_sha, head);
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    assert!(
        run.summary
            .starts_with("## remediator check: critical risk"),
        "{}",
        run.summary
    );
    let removed = run
        .annotations
        .iter()
        .find(|a| a["title"].as_str().unwrap().contains(".spec.note"))
        .unwrap_or_else(|| panic!("{:?}", run.annotations));
    assert_eq!(removed["path"], "crds/widgets.yaml");
    // The removed field's place in the new CRD: its parent's properties, line 20.
    assert_eq!(removed["start_line"], 20);
    assert_eq!(removed["annotation_level"], "failure");
    assert!(
        removed["message"]
            .as_str()
            .unwrap()
            .contains("field removed"),
        "{removed}"
    );
    let denial = run
        .annotations
        .iter()
        .find(|a| a["path"] == "prod/api.yaml" && a["annotation_level"] == "failure")
        .unwrap_or_else(|| panic!("{:?}", run.annotations));
    assert_eq!(denial["start_line"], 1);
    assert!(
        denial["message"]
            .as_str()
            .unwrap()
            .contains("below 2 replicas"),
        "{denial}"
    );
    // A token that may not write checks: the verdict as a commit status, said once.
    let out = on_github(&remote, &github, &base)
        .arg("--check-run")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr
            .matches("the token may not write check runs (checks: write)")
            .count(),
        1,
        "{stderr}"
    );
    let statuses = github.statuses(&head);
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].context, "remediator/check");
    assert_eq!(statuses[0].state, "failure");
    assert_eq!(github.check_runs().len(), 1);
}

#[test]
fn a_comment_on_a_pull_request_that_does_not_exist_is_an_error() {
    let (remote, base) = repo(
        &[("apps/api.yaml", &deployment(3, "api:1.0"))],
        &[("apps/api.yaml", &deployment(3, "api:1.1"))],
    );
    let github = FakeGitHub::start("acme/config", &remote.bare);
    let out = on_github(&remote, &github, &base)
        .args(["--comment", "--pull", "7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: read the comments of #7: GitHub answered 404: Not Found\n"
    );
}

/// A pull request on the fake GitHub moving api from 1.0 to 1.1, and the event file a
/// workflow run of it gives `check`.
struct PullRequest {
    remote: common::GitRemote,
    base: String,
    github: FakeGitHub,
    number: u64,
    event: std::path::PathBuf,
}

impl PullRequest {
    fn bumping_api() -> PullRequest {
        let (remote, base) = repo(
            &[("apps/api.yaml", &deployment(3, "api:1.0"))],
            &[("apps/api.yaml", &deployment(3, "api:1.1"))],
        );
        common::push(&remote.work, "refs/heads/main:refs/heads/feature");
        let github = FakeGitHub::start("acme/config", &remote.bare);
        common::push(&remote.work, &format!("{base}:refs/heads/main"));
        let number = github.open_pull("feature", "main", "Bump api", "dev");
        let event = remote.dir.path().join("event.json");
        std::fs::write(
            &event,
            format!("{{\"pull_request\": {{\"number\": {number}}}}}"),
        )
        .unwrap();
        PullRequest {
            remote,
            base,
            github,
            number,
            event,
        }
    }

    /// `check --comment` of the pull request, with `env` set.
    fn check_comment_with(&self, env: &[(&str, &str)]) -> Output {
        on_github(&self.remote, &self.github, &self.base)
            .arg("--comment")
            .env("GITHUB_EVENT_PATH", &self.event)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    /// `check --comment` of the pull request.
    fn check_comment(&self) -> Output {
        self.check_comment_with(&[])
    }
}

#[test]
fn the_comment_is_created_once_and_updated_on_the_next_run() {
    let pull = PullRequest::bumping_api();
    let (remote, github, number) = (&pull.remote, &pull.github, pull.number);
    let run = || pull.check_comment();
    let first = run();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let comments = github.comments(number);
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0].body.contains("image: api:1.1"),
        "{}",
        comments[0].body
    );
    // main is not protected: the comment says GitHub's check on the last pusher is off.
    let protection = "`main` does not require approval of the most recent reviewable push";
    assert!(
        comments[0].body.contains(protection),
        "{}",
        comments[0].body
    );
    github.protect("main", true);
    common::write_files(
        &remote.work,
        &[("apps/api.yaml", &deployment(3, "api:1.2"))],
    );
    common::commit_all(&remote.work, "Bump again");
    let second = run();
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let comments = github.comments(number);
    assert_eq!(comments.len(), 1, "updated in place");
    assert!(
        comments[0].body.contains("image: api:1.2"),
        "{}",
        comments[0].body
    );
    assert!(
        !comments[0].body.contains("Branch protection"),
        "{}",
        comments[0].body
    );
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every `inputs.NAME` an expression or script uses.
fn inputs_used(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("inputs.") {
        rest = &rest[at + "inputs.".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        found.push(name);
    }
    found
}

fn help(command: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_remediator"))
        .args([command, "--help"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "remediator {command} is not a command"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_action_declares_every_input_it_uses_and_runs_only_real_commands() {
    let action = yaml("action.yml");
    let declared: Vec<&String> = action["inputs"].as_object().unwrap().keys().collect();
    let steps = action["runs"]["steps"].as_array().unwrap();
    assert_eq!(action["runs"]["using"], "composite");
    let whole = serde_json::to_string(&action["runs"]).unwrap();
    let used = inputs_used(&whole);
    assert!(!used.is_empty());
    for name in &used {
        assert!(
            declared.contains(&name),
            "inputs.{name} is used but not declared"
        );
    }
    for name in ["mode", "github-token", "kubeconfig", "config", "policies"] {
        assert!(
            declared.iter().any(|d| d.as_str() == name),
            "{name} is not declared"
        );
        assert!(
            used.iter().any(|u| u == name),
            "{name} is declared but never used"
        );
    }
    for output in ["risk", "changed-objects"] {
        let value = action["outputs"][output]["value"].as_str().unwrap();
        assert_eq!(value, format!("${{{{ steps.check.outputs.{output} }}}}"));
    }
    let mut commands = 0;
    for step in steps {
        let Some(script) = step["run"].as_str() else {
            continue;
        };
        let Some(at) = script.find("args=(") else {
            continue;
        };
        let line = script[at + "args=(".len()..].lines().next().unwrap();
        let command = line.split_whitespace().next().unwrap();
        let help = help(command);
        commands += 1;
        let flags = script
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
            .filter(|w| w.starts_with("--") && w.len() > 2);
        for flag in flags {
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                "remediator {command} has no {flag}"
            );
        }
    }
    assert_eq!(commands, 2, "check and reconcile");
    let kube = steps.iter().find(|s| s["id"] == "kube").unwrap();
    let script = kube["run"].as_str().unwrap();
    assert!(
        script.contains("umask 077") && script.contains("chmod 600"),
        "{script}"
    );
    let cleanup = steps.last().unwrap();
    assert!(
        cleanup["if"].as_str().unwrap().starts_with("always()"),
        "the kubeconfig is always removed"
    );
}

#[test]
fn the_example_workflows_use_the_action_as_it_is_declared() {
    let action = yaml("action.yml");
    let declared: Vec<&String> = action["inputs"].as_object().unwrap().keys().collect();
    for (file, mode, event) in [
        (
            "examples/workflows/remediator-check.yml",
            "check",
            "pull_request",
        ),
        (
            "examples/workflows/remediator-reconcile.yml",
            "reconcile",
            "push",
        ),
    ] {
        let workflow = yaml(file);
        assert!(
            workflow["on"].get(event).is_some(),
            "{file}: runs on {event}"
        );
        let steps = workflow["jobs"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()["steps"]
            .as_array()
            .unwrap()
            .clone();
        let checkout = &steps[0];
        assert!(
            checkout["uses"]
                .as_str()
                .unwrap()
                .starts_with("actions/checkout@")
        );
        assert_eq!(
            checkout["with"]["fetch-depth"], 0,
            "{file}: needs the base branch"
        );
        let ours = steps
            .iter()
            .find(|s| {
                s["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("remediator/remediator@"))
            })
            .unwrap_or_else(|| panic!("{file} does not use the action"));
        assert_eq!(ours["with"]["mode"], mode);
        for input in ours["with"].as_object().unwrap().keys() {
            assert!(
                declared.contains(&input),
                "{file}: {input} is not an input of the action"
            );
        }
        let permissions = &workflow["permissions"];
        assert_eq!(permissions["pull-requests"], "write", "{file}");
    }
    let reconcile = yaml("examples/workflows/remediator-reconcile.yml");
    assert_eq!(reconcile["concurrency"]["cancel-in-progress"], false);
    assert!(reconcile["concurrency"]["group"].is_string());
    assert_eq!(reconcile["permissions"]["contents"], "write");
    assert_eq!(reconcile["on"]["push"]["branches"][0], "main");
}

#[test]
fn with_a_cluster_the_report_carries_the_dry_run_and_the_other_owners() {
    let (remote, base) = repo(
        &[("apps/api.yaml", &deployment(3, "api:1.0"))],
        &[("apps/api.yaml", &deployment(5, "api:1.0"))],
    );
    let cluster = testkit::TestCluster::start();
    let namespace =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
    cluster.create(namespace, "kubectl").unwrap();
    let mut live: Value = serde_saphyr::from_str(&deployment(3, "api:1.0")).unwrap();
    live["metadata"]["labels"] = serde_json::json!({"team": "shop"});
    cluster.create(live, "kubectl-client-side-apply").unwrap();
    let out = check(
        &remote.work,
        &base,
        &["--kubeconfig", cluster.kubeconfig().to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = text(&out);
    assert!(
        report.contains("Server-side dry-run (`dryRun=All`)"),
        "{report}"
    );
    assert!(
        report.contains("| `Deployment/shop/api` | configured |"),
        "{report}"
    );
    assert!(report.contains("kubectl-client-side-apply"), "{report}");
    let writes = cluster
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && !r.query.contains("dryRun"))
        .count();
    assert_eq!(writes, 0, "a check writes nothing");
}

#[test]
fn a_pull_request_is_checked_by_the_policies_of_its_base_and_its_policy_change_is_critical() {
    let rego = remediator::assess::DEFAULT_POLICIES[0].1;
    let permissive = common::PERMISSIVE_POLICY;
    let (remote, base) = repo(
        &[
            ("prod/api.yaml", &deployment(3, "api:1.0")),
            ("policies/remediator.rego", rego),
        ],
        &[
            ("prod/api.yaml", &deployment(1, "api:1.0")),
            ("policies/remediator.rego", permissive),
        ],
    );
    let policies = remote.work.join("policies");
    let out = check(
        &remote.work,
        &base,
        &["--policies", policies.to_str().unwrap(), "--output", "json"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["assessment"]["risk"], "critical", "{report}");
    let reasons = report["assessment"]["reasons"].to_string();
    assert!(
        reasons.contains("policies/remediator.rego decides what is applied"),
        "{reasons}"
    );
    let denials = report["assessment"]["denials"].to_string();
    assert!(denials.contains("below 2 replicas"), "{denials}");
}

/// Where `check --comment` left the pull request: its comments and the statuses of its head.
#[derive(Debug, PartialEq)]
struct Commented {
    comments: Vec<String>,
    statuses: Vec<(String, String)>,
}

/// Checks a pull request with `--comment`, first with `fault` on the fake GitHub (when given),
/// then again without; returns where it ended, whether the first run stopped short, what it
/// said, and the requests of the first run.
fn comment_drill(
    fault: Option<testkit::Fault>,
) -> (Commented, bool, String, common::faults::Calls) {
    let pull = PullRequest::bumping_api();
    let (github, number) = (&pull.github, pull.number);
    let run = || pull.check_comment();
    github.faults().clear_log();
    let disturbed = fault.is_some();
    let (mut stopped, mut first) = (false, String::new());
    if let Some(fault) = fault {
        github.faults().add(fault);
        let out = pull.check_comment_with(&[common::faults::REQUEST_TIMEOUT]);
        first = text(&out);
        stopped = out.status.code() != Some(0);
        if stopped {
            assert!(first.contains("error:"), "a stop without a reason: {first}");
        }
    }
    let mut calls = common::faults::logged(None, github);
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{first}\n{}", text(&out));
    if !disturbed {
        calls = common::faults::logged(None, github);
    }
    let head = github.pulls()[0].head_sha.clone().unwrap_or_default();
    let end = Commented {
        comments: github
            .comments(number)
            .into_iter()
            .map(|c| common::faults::steady(&c.body))
            .collect(),
        statuses: github
            .statuses(&head)
            .into_iter()
            .map(|s| (s.context, s.state))
            .collect(),
    };
    (end, stopped, first, calls)
}

/// The fault matrix of `check --comment`: every call a clean run makes to GitHub gets every
/// fault kind, and each run ends with the one comment of the clean run, never a second.
#[test]
fn a_fault_on_any_call_of_a_check_never_leaves_a_second_comment() {
    let (clean, _, _, calls) = comment_drill(None);
    assert_eq!(clean.comments.len(), 1, "{clean:?}");
    let kinds = common::faults::fault_matrix("check --comment", &calls, true, |label, _, fault| {
        let (end, stopped, first, _) = comment_drill(Some(fault));
        assert_eq!(end.comments, clean.comments, "{label}: {first}");
        assert_eq!(
            end.statuses.last(),
            clean.statuses.last(),
            "{label}: {first}"
        );
        (stopped, first)
    });
    assert_eq!(
        kinds, 3,
        "reading the branch protection and the comments, and writing one"
    );
}

/// A request timeout that is not a number of seconds is an error naming the variable, never
/// the clients' default taken silently.
#[test]
fn a_request_timeout_that_is_no_number_of_seconds_is_an_error() {
    let pull = PullRequest::bumping_api();
    for bad in ["soon", "0", "-5"] {
        let out = pull.check_comment_with(&[("REMEDIATOR_REQUEST_TIMEOUT", bad)]);
        assert_ne!(out.status.code(), Some(0), "{bad}: {}", text(&out));
        assert!(
            text(&out).contains(&format!(
                "REMEDIATOR_REQUEST_TIMEOUT={bad}: give the seconds each request may take"
            )),
            "{bad}: {}",
            text(&out)
        );
    }
    assert!(pull.github.comments(pull.number).is_empty());
}

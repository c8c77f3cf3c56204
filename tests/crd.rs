//! A CustomResourceDefinition change checked against a cluster: the live custom resources that
//! the new schema rejects are named and make the change critical, and the live CRD's
//! storedVersions decide whether a version may go.

mod common;

use std::process::Output;

use serde_json::{Value, json};

const CONFIG: &str = "fieldManager: remediator\n";

/// The Gadget CRD; `extra` is added to `.spec`'s schema, `versions` precede v1.
fn crd(extra: &str, versions: &str) -> String {
    format!(
        "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  names: {{kind: Gadget, plural: gadgets, singular: gadget, listKind: GadgetList}}
  scope: Namespaced
  versions:
{versions}    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size:
                  type: integer
                  minimum: 0
{extra}                colour:
                  type: string
"
    )
}

fn gadget(namespace: &str, name: &str, size: i64, colour: &str) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Gadget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"size": size, "colour": colour}})
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A repository whose base declares `base` and whose head declares `head`; the base commit.
fn repo(base: &str, head: &str) -> (common::GitRemote, String) {
    let remote = common::git_remote(
        None,
        &[("remediator.yaml", CONFIG), ("crds/gadgets.yaml", base)],
    );
    let first = common::branch_head(&remote.work, "main")
        .unwrap()
        .to_string();
    common::write_files(&remote.work, &[("crds/gadgets.yaml", head)]);
    common::commit_all(&remote.work, "Upgrade the gadget operator");
    (remote, first)
}

fn applied(cluster: &testkit::TestCluster, crd_text: &str) {
    let crd: Value = serde_saphyr::from_str(crd_text).unwrap();
    cluster.create(crd, "kubectl").unwrap();
}

#[test]
fn live_objects_that_fail_the_new_schema_are_named_and_make_the_change_critical() {
    let before = crd("", "");
    // The new operator caps size at 5 and retires red.
    let after = crd("                  maximum: 5\n", "").replace(
        "              type: object\n              properties:\n                size:",
        "              type: object\n              x-kubernetes-validations:\n                - rule: \"self.colour != 'red'\"\n                  message: red is retired\n              properties:\n                size:",
    );
    assert_ne!(
        after,
        crd("                  maximum: 5\n", ""),
        "the rule is added"
    );
    let (remote, base) = repo(&before, &after);
    let cluster = testkit::TestCluster::start();
    for namespace in ["team-a", "team-b"] {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
        cluster.create(ns, "kubectl").unwrap();
    }
    applied(&cluster, &before);
    for object in [
        gadget("team-a", "blue", 3, "blue"),
        gadget("team-a", "big", 9, "blue"),
        gadget("team-b", "red", 1, "red"),
        gadget("team-b", "green", 2, "green"),
    ] {
        cluster.create(object, "kubectl").unwrap();
    }
    let kubeconfig = cluster.kubeconfig().to_str().unwrap().to_owned();
    let out = common::check(&remote.work, &base, &["--kubeconfig", &kubeconfig]);
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.starts_with("## remediator check: critical risk\n"),
        "{report}"
    );
    assert!(
        report.contains("**2 of 4 `Gadget` objects would fail the new schema.** They can still be read, but not updated until they are fixed"),
        "{report}"
    );
    assert!(
        report.contains("  - `.spec: red is retired` (v1): team-b/red (1 object)\n"),
        "{report}"
    );
    assert!(
        report.contains("  - `.spec.size: ") && report.contains("(v1): team-a/big (1 object)\n"),
        "{report}"
    );
    assert!(
        !report.contains("team-a/blue"),
        "valid objects are not named: {report}"
    );
    assert!(
        report.contains("critical: 2 of 4 existing objects (v1) fail the new schema"),
        "{report}"
    );
    assert!(
        report.contains(
            "- Versions: served v1; storage v1; objects stored at v1 (live): they stay readable."
        ),
        "{report}"
    );
    // The same in JSON, and in SARIF at the CRD's file.
    let sarif = remote.dir.path().join("out.sarif");
    let out = common::check(
        &remote.work,
        &base,
        &[
            "--kubeconfig",
            &kubeconfig,
            "--output",
            "json",
            "--sarif",
            sarif.to_str().unwrap(),
        ],
    );
    let value: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let existing = &value["objects"][0]["existing"];
    assert_eq!(existing["live"], true);
    let invalid: Vec<&str> = existing["versions"][0]["validation"]["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["object"].as_str().unwrap())
        .collect();
    assert_eq!(invalid, ["team-a/big", "team-b/red"]);
    assert_eq!(existing["versions"][0]["validation"]["total"], 4);
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(sarif).unwrap()).unwrap();
    let rules: Vec<&str> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ruleId"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"crd-existing-objects-invalid"), "{rules:?}");
    // A check writes nothing.
    let writes = cluster
        .requests()
        .iter()
        .filter(|r| {
            matches!(r.method.as_str(), "PATCH" | "PUT" | "POST" | "DELETE")
                && !r.query.contains("dryRun")
        })
        .count();
    assert_eq!(writes, 0, "a check writes nothing");
}

#[test]
fn all_live_objects_passing_leaves_the_rules_to_judge() {
    let before = crd("", "");
    let after = crd("                  maximum: 50\n", "");
    let (remote, base) = repo(&before, &after);
    let cluster = testkit::TestCluster::start();
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}});
    cluster.create(ns, "kubectl").unwrap();
    applied(&cluster, &before);
    cluster
        .create(gadget("team-a", "blue", 3, "blue"), "kubectl")
        .unwrap();
    let kubeconfig = cluster.kubeconfig().to_str().unwrap().to_owned();
    let out = common::check(&remote.work, &base, &["--kubeconfig", &kubeconfig]);
    let report = text(&out);
    // A maximum that appears is breaking by the rules; the live objects all pass it.
    assert!(
        report.starts_with("## remediator check: critical risk\n"),
        "{report}"
    );
    assert!(
        report.contains("- Live objects: all 1 `Gadget` objects pass the new schema."),
        "{report}"
    );
    assert!(!report.contains("fail the new schema"), "{report}");
}

#[test]
fn a_version_still_in_the_live_stored_versions_may_not_go() {
    let old = "    - name: v1alpha1\n      served: false\n      storage: false\n      schema:\n        openAPIV3Schema: {type: object}\n";
    let before = crd("", old);
    let after = crd("", "");
    let (remote, base) = repo(&before, &after);
    // Offline, only the storage version is known to hold objects: v1alpha1 may go.
    let out = common::check(&remote.work, &base, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The cluster says objects are still stored at v1alpha1.
    let cluster = testkit::TestCluster::start();
    applied(&cluster, &before);
    let mut live = cluster
        .object("CustomResourceDefinition", "", "gadgets.example.com")
        .unwrap();
    live["status"]["storedVersions"] = json!(["v1alpha1", "v1"]);
    cluster
        .set_status(
            "CustomResourceDefinition",
            "",
            "gadgets.example.com",
            live["status"].clone(),
        )
        .unwrap();
    let kubeconfig = cluster.kubeconfig().to_str().unwrap().to_owned();
    let out = common::check(&remote.work, &base, &["--kubeconfig", &kubeconfig]);
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("- **breaking** (v1alpha1) `spec.versions[name=v1alpha1]`"),
        "{report}"
    );
    assert!(
        report
            .contains("version v1alpha1 is in the live CRD's status.storedVersions and is removed"),
        "{report}"
    );
    assert!(report.contains("**not all stay readable**"), "{report}");
}

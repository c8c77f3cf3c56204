//! Edits on the embedded example repository (examples/repo): each remediation-shaped change
//! touches only its own lines, keeps quoting and flow maps, and gives the same result on a CRLF
//! copy.

mod common;

use std::path::Path;

use remediator::manifests::edit::{Edit, EditOp};
use remediator::manifests::{IndexOptions, RepoIndex, diff, edit_object};
use remediator::model::RefQuery;
use serde_json::{Value, json};

fn edited(object: &str, edits: &[(&str, EditOp)], crlf: bool) -> (String, String) {
    let copy = common::copy_tree(&common::example_repo(), crlf);
    let index = RepoIndex::build(copy.path(), &IndexOptions::default()).unwrap();
    assert!(index.errors.is_empty(), "{:?}", index.errors);
    let query: RefQuery = object.parse().unwrap();
    let edits: Vec<Edit> = edits
        .iter()
        .map(|(p, op)| Edit {
            path: p.parse().unwrap(),
            op: op.clone(),
        })
        .collect();
    let change = edit_object(&index, &query, None, &edits).unwrap();
    (
        diff::unified(&change.path, &change.old, &change.new, false),
        change.new,
    )
}

fn check(object: &str, edits: &[(&str, EditOp)], expected: &str) {
    let (diff, lf) = edited(object, edits, false);
    assert_eq!(diff, expected);
    let (_, crlf) = edited(object, edits, true);
    assert_eq!(crlf, lf.replace('\n', "\r\n"), "CRLF copy of {object}");
}

fn set(value: impl Into<Value>) -> EditOp {
    EditOp::Set(value.into())
}

#[test]
fn replicas_change_in_place_with_their_comment_kept() {
    check(
        "Deployment/shop/worker",
        &[("spec.replicas", set(2))],
        "--- a/apps/worker/deployment.yaml
+++ b/apps/worker/deployment.yaml
@@ -7,7 +7,7 @@
     app.kubernetes.io/name: worker
     app.kubernetes.io/part-of: shop
 spec:
-  replicas: 1
+  replicas: 2
   selector:
     matchLabels:
       app.kubernetes.io/name: worker
",
    );
}

#[test]
fn memory_limit_in_a_block_and_in_a_flow_map() {
    check(
        "Deployment/shop/api",
        &[
            (
                "spec.template.spec.containers[name=api].resources.limits.memory",
                set("768Mi"),
            ),
            (
                "spec.template.spec.containers[name=log-shipper].resources.limits.memory",
                set("128Mi"),
            ),
        ],
        "--- a/apps/api/deployment.yaml
+++ b/apps/api/deployment.yaml
@@ -43,8 +43,8 @@
               cpu: 500m
               memory: 512Mi
             limits:
-              memory: 512Mi # equal to the request: no overcommit for the JVM
+              memory: 768Mi # equal to the request: no overcommit for the JVM
         # Ships access logs to the collector.
         - name: log-shipper
           image: fluent/fluent-bit:3.1
-          resources: {requests: {cpu: 50m, memory: 32Mi}, limits: {memory: 64Mi}}
+          resources: {requests: {cpu: 50m, memory: 32Mi}, limits: {memory: 128Mi}}
",
    );
}

#[test]
fn a_quoted_image_keeps_its_quotes() {
    check(
        "Deployment/shop/api",
        &[(
            "spec.template.spec.containers[name=api].image",
            set("ghcr.io/acme/shop-api:1.17.2"),
        )],
        "--- a/apps/api/deployment.yaml
+++ b/apps/api/deployment.yaml
@@ -25,7 +25,7 @@
     spec:
       containers:
         - name: api
-          image: \"ghcr.io/acme/shop-api:1.18.0\"
+          image: \"ghcr.io/acme/shop-api:1.17.2\"
           args: [\"--port=9000\", \"--db=postgres://db:5432/shop\"]
           ports:
             - name: http
",
    );
}

#[test]
fn an_annotation_joins_the_existing_block() {
    check(
        "Deployment/shop/api",
        &[(
            r#"metadata.annotations["remediator.io/finding"]"#,
            set("crash-loop-oom"),
        )],
        "--- a/apps/api/deployment.yaml
+++ b/apps/api/deployment.yaml
@@ -8,6 +8,7 @@
     app.kubernetes.io/part-of: shop
   annotations:
     owner: \"team-orders\"
+    remediator.io/finding: crash-loop-oom
 spec:
   replicas: 2
   revisionHistoryLimit: 5
",
    );
}

#[test]
fn a_resources_block_where_none_existed() {
    check(
        "CronJob/shop/cart-cleanup",
        &[(
            "spec.jobTemplate.spec.template.spec.containers[name=cleanup].resources",
            set(
                json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}),
            ),
        )],
        "--- a/apps/api/cronjob-cleanup.yaml
+++ b/apps/api/cronjob-cleanup.yaml
@@ -16,3 +16,9 @@
           - name: cleanup
             image: \"ghcr.io/acme/shop-api:1.18.0\"
             args: [cleanup, --older-than=720h]
+            resources:
+              requests:
+                cpu: 100m
+                memory: 128Mi
+              limits:
+                memory: 256Mi
",
    );
}

#[test]
fn a_single_quoted_config_value_stays_single_quoted() {
    check(
        "ConfigMap/shop/web-config",
        &[
            ("data.FEATURE_FLAGS", set("new-checkout")),
            ("data.CACHE_TTL_SECONDS", set(60)),
        ],
        "--- a/apps/web/configmap.yaml
+++ b/apps/web/configmap.yaml
@@ -4,5 +4,5 @@
   name: web-config
 data:
   API_URL: \"http://api\"
-  CACHE_TTL_SECONDS: \"30\"
-  FEATURE_FLAGS: 'new-checkout,dark-mode'
+  CACHE_TTL_SECONDS: \"60\"
+  FEATURE_FLAGS: 'new-checkout'
",
    );
}

#[test]
fn the_prod_overlay_image_tag_is_edited_in_the_kustomization() {
    // Kustomizations are files, not objects: edit them by location.
    let copy = common::copy_tree(&common::example_repo(), false);
    let index = RepoIndex::build(copy.path(), &IndexOptions::default()).unwrap();
    let prod = index
        .kustomizations
        .iter()
        .find(|k| k.dir == Path::new("clusters/prod"))
        .unwrap();
    assert_eq!(
        prod.kustomization.images[2].new_tag.as_deref(),
        Some("3.3.0")
    );
    let text = std::fs::read_to_string(copy.path().join(&prod.location.file)).unwrap();
    let edit = Edit::set(
        "images[name=ghcr.io/acme/shop-worker].newTag"
            .parse()
            .unwrap(),
        "3.2.0",
    );
    let new = remediator::manifests::edit::apply(&text, &prod.location, &[edit]).unwrap();
    let diff = diff::unified(&prod.location.file, &text, &new, false);
    assert!(diff.contains("-    newTag: \"3.3.0\" # released 2026-11-20\n+    newTag: \"3.2.0\" # released 2026-11-20\n"), "{diff}");
    assert_eq!(
        diff.lines().filter(|l| l.starts_with(['+', '-'])).count(),
        4,
        "{diff}"
    );
}

//! The index and the editor on real-world manifests nobody on this project wrote
//! (`tests/fixtures/corpus`): every file loads, every object is listed at the right line, and editing
//! changes only what it means to.

mod common;

use std::path::Path;
use std::str::FromStr;

use remediator::manifests::edit::{Edit, apply};
use remediator::manifests::{IndexOptions, RepoIndex, parse_text};
use serde_json::Value;

#[test]
fn every_corpus_file_loads_and_every_object_has_its_line() {
    let projects = common::corpus_projects();
    for project in &projects {
        let index = RepoIndex::build(project, &IndexOptions::default()).unwrap();
        assert!(
            index.errors.is_empty(),
            "{}: {:?}",
            project.display(),
            index.errors
        );
        assert_eq!(
            index.files.len(),
            common::yaml_files(project).len(),
            "{}",
            project.display()
        );
        assert!(!index.objects.is_empty());
        for decl in &index.declarations {
            let text = std::fs::read_to_string(project.join(&decl.location.file)).unwrap();
            let loc = &decl.location;
            // The line is where the span starts, and holds the object's first key.
            let line_start = text[..loc.span.start].rfind('\n').map_or(0, |i| i + 1);
            assert_eq!(
                text[..loc.span.start].matches('\n').count() + 1,
                loc.line,
                "{loc}"
            );
            let line = text[line_start..].lines().next().unwrap();
            assert!(
                line.trim_start()
                    .starts_with(|c: char| c.is_ascii_alphabetic()),
                "{loc}: {line:?}"
            );
            // The span alone parses to the declared object.
            if loc.item.is_none() {
                let alone: Value = serde_saphyr::from_str(&text[loc.span.clone()]).unwrap();
                assert_eq!(alone, decl.value, "{loc}");
            }
        }
    }
    if !projects.is_empty() {
        let counts: usize = projects
            .iter()
            .map(|p| {
                RepoIndex::build(p, &IndexOptions::default())
                    .unwrap()
                    .declarations
                    .len()
            })
            .sum();
        println!("{} projects, {counts} declarations", projects.len());
    }
}

#[test]
fn every_document_with_apiversion_and_kind_is_declared_once() {
    for project in common::corpus_projects() {
        let index = RepoIndex::build(&project, &IndexOptions::default()).unwrap();
        for file in common::yaml_files(&project) {
            let relative = file.strip_prefix(&project).unwrap();
            let text = std::fs::read_to_string(&file).unwrap();
            let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
            // kustomize's transformer configurations (`apiVersion: builtin`) are build inputs,
            // not objects.
            let objects = docs.iter().filter(|d| {
                let version = d["apiVersion"].as_str().and_then(|a| a.rsplit('/').next());
                version.is_some_and(|v| {
                    v.starts_with('v') && v[1..].starts_with(|c: char| c.is_ascii_digit())
                }) && d.get("kind").is_some()
            });
            let is_support = index.patches.iter().any(|p| p == relative)
                || index
                    .kustomizations
                    .iter()
                    .any(|k| k.location.file == relative);
            let expected = if is_support { 0 } else { objects.count() };
            let declared = index
                .declarations
                .iter()
                .filter(|d| d.location.file == relative)
                .count();
            assert_eq!(declared, expected, "{}", relative.display());
        }
    }
}

#[test]
fn yaml_edit_round_trips_every_file_byte_for_byte() {
    for crlf in [false, true] {
        for project in common::corpus_projects() {
            let copy = common::copy_tree(&project, crlf);
            for file in common::yaml_files(copy.path()) {
                let text = std::fs::read_to_string(&file).unwrap();
                let cst = yaml_edit::YamlFile::from_str(&text).unwrap();
                assert_eq!(cst.to_string(), text, "{}", file.display());
            }
        }
    }
}

#[test]
fn a_no_op_edit_of_every_object_is_byte_identical() {
    for crlf in [false, true] {
        for project in common::corpus_projects() {
            let copy = common::copy_tree(&project, crlf);
            let index = RepoIndex::build(copy.path(), &IndexOptions::default()).unwrap();
            for decl in &index.declarations {
                let text = std::fs::read_to_string(copy.path().join(&decl.location.file)).unwrap();
                let name = decl.value["metadata"]["name"].clone();
                let edit = Edit::set("metadata.name".parse().unwrap(), name);
                let edited = apply(&text, &decl.location, &[edit]).unwrap();
                assert!(edited == text, "{} changed", decl.location);
            }
        }
    }
}

#[test]
fn a_new_plain_image_keeps_every_line_s_style_comment_and_trailing_space() {
    let mut edited = 0;
    for crlf in [false, true] {
        for project in common::corpus_projects() {
            let copy = common::copy_tree(&project, crlf);
            let index = RepoIndex::build(copy.path(), &IndexOptions::default()).unwrap();
            for decl in &index.declarations {
                let containers = decl.value["spec"]["template"]["spec"]["containers"].as_array();
                for container in containers.into_iter().flatten() {
                    let (Some(name), Some(image)) =
                        (container["name"].as_str(), container["image"].as_str())
                    else {
                        continue;
                    };
                    let text =
                        std::fs::read_to_string(copy.path().join(&decl.location.file)).unwrap();
                    let new_image = format!("{image}-patched");
                    let path = format!("spec.template.spec.containers[name={name}].image");
                    let edit = Edit::set(path.parse().unwrap(), Value::from(new_image.clone()));
                    let new = apply(&text, &decl.location, &[edit]).unwrap();
                    // Exactly one line changes, and only by its value: no quotes added, the
                    // comment and the trailing whitespace where they were.
                    let old_lines: Vec<&str> = text.split_inclusive('\n').collect();
                    let new_lines: Vec<&str> = new.split_inclusive('\n').collect();
                    assert_eq!(old_lines.len(), new_lines.len(), "{}", decl.location);
                    let changed: Vec<(&&str, &&str)> = old_lines
                        .iter()
                        .zip(&new_lines)
                        .filter(|(a, b)| a != b)
                        .collect();
                    assert_eq!(changed.len(), 1, "{}", decl.location);
                    let (old_line, new_line) = changed[0];
                    assert_eq!(
                        old_line.replacen(image, &new_image, 1),
                        **new_line,
                        "{}",
                        decl.location
                    );
                    edited += 1;
                }
            }
        }
    }
    assert!(edited > 50, "{edited} images edited");
}

/// Applies `edits` to the object declared at `file`:`line` and returns the unified diff.
fn diff_of(
    project: &Path,
    file: &str,
    line: usize,
    edits: &[(&str, Value)],
    crlf: bool,
) -> (String, String) {
    let copy = common::copy_tree(project, crlf);
    let index = RepoIndex::build(copy.path(), &IndexOptions::default()).unwrap();
    let decl = index
        .declarations
        .iter()
        .find(|d| d.location.file == Path::new(file) && d.location.line == line)
        .unwrap_or_else(|| panic!("nothing declared at {file}:{line}"));
    let text = std::fs::read_to_string(copy.path().join(file)).unwrap();
    let edits: Vec<Edit> = edits
        .iter()
        .map(|(p, v)| Edit::set(p.parse().unwrap(), v.clone()))
        .collect();
    let new = apply(&text, &decl.location, &edits).unwrap();
    assert!(parse_text(Path::new(file), &new).errors.is_empty());
    let diff = remediator::manifests::diff::unified(Path::new(file), &text, &new, false);
    (diff, new)
}

fn check_edit(project: &str, file: &str, line: usize, edits: &[(&str, Value)], expected: &str) {
    let project = common::corpus().join(project);
    let (diff, lf) = diff_of(&project, file, line, edits, false);
    assert_eq!(diff, expected, "{file}");
    // A CRLF copy gets the same change, with CRLF on every line, inserted ones included.
    let (_, crlf) = diff_of(&project, file, line, edits, true);
    assert_eq!(crlf, lf.replace('\n', "\r\n"), "{file} (CRLF)");
}

#[test]
fn setting_replicas_inserts_one_line() {
    check_edit(
        "podinfo",
        "deploy/bases/cache/deployment.yaml",
        1,
        &[("spec.replicas", Value::from(3))],
        "--- a/deploy/bases/cache/deployment.yaml
+++ b/deploy/bases/cache/deployment.yaml
@@ -3,6 +3,7 @@
 metadata:
   name: cache
 spec:
+  replicas: 3
   selector:
     matchLabels:
       app.kubernetes.io/name: cache
",
    );
}

#[test]
fn setting_a_memory_limit_and_an_image_tag_changes_two_lines() {
    check_edit(
        "microservices-demo",
        "kubernetes-manifests/frontend.yaml",
        15,
        &[
            (
                "spec.template.spec.containers[name=server].resources.limits.memory",
                "256Mi".into(),
            ),
            (
                "spec.template.spec.containers[name=server].image",
                "frontend:v0.10.4".into(),
            ),
        ],
        "--- a/kubernetes-manifests/frontend.yaml
+++ b/kubernetes-manifests/frontend.yaml
@@ -44,7 +44,7 @@
                 - ALL
             privileged: false
             readOnlyRootFilesystem: true
-          image: frontend
+          image: frontend:v0.10.4
           ports:
           - containerPort: 8080
           readinessProbe:
@@ -103,7 +103,7 @@
               memory: 64Mi
             limits:
               cpu: 200m
-              memory: 128Mi
+              memory: 256Mi
 ---
 apiVersion: v1
 kind: Service
",
    );
}

#[test]
fn adding_an_annotation_to_a_new_annotations_block() {
    check_edit(
        "flux2-kustomize-helm-example",
        "apps/base/podinfo/release.yaml",
        1,
        &[(
            r#"metadata.annotations["remediator.io/finding"]"#,
            "crash-loop-oom".into(),
        )],
        "--- a/apps/base/podinfo/release.yaml
+++ b/apps/base/podinfo/release.yaml
@@ -3,6 +3,8 @@
 metadata:
   name: podinfo
   namespace: podinfo
+  annotations:
+    remediator.io/finding: crash-loop-oom
 spec:
   interval: 50m
   releaseName: podinfo
",
    );
}

#[test]
fn adding_a_resources_block_where_none_existed() {
    check_edit(
        "microservices-demo",
        "kustomize/components/google-cloud-operations/otel-collector.yaml",
        16,
        &[(
            "spec.template.spec.containers[name=otel-gateway].resources",
            serde_json::json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}),
        )],
        "--- a/kustomize/components/google-cloud-operations/otel-collector.yaml
+++ b/kustomize/components/google-cloud-operations/otel-collector.yaml
@@ -72,6 +72,12 @@
         volumeMounts:
         - name: collector-gateway-config
           mountPath: /conf
+        resources:
+          requests:
+            cpu: 100m
+            memory: 128Mi
+          limits:
+            memory: 256Mi
       volumes:
       # Simple ConfigMap volume with template file
       - name: collector-gateway-config-template
",
    );
}

/// The security rules over each corpus project: the count of findings per rule, and the
/// well-known facts checked by hand. microservices-demo runs every workload as non-root and
/// sets limits on its main containers (its load generator's init container and the optional
/// OpenTelemetry collector have none); it keeps one API key as a plain env value. podinfo sets
/// runAsNonRoot nowhere, and its "secure" frontend allows privilege escalation and adds
/// NET_BIND_SERVICE.
#[test]
fn the_security_rules_find_what_each_corpus_project_is_known_for() {
    use remediator::report::security;
    let projects = common::corpus_projects();
    for project in &projects {
        let name = project.file_name().unwrap().to_str().unwrap();
        let index = RepoIndex::build(project, &IndexOptions::default()).unwrap();
        let mut rules = security::rules(None).unwrap();
        let findings = security::scan_repository(&mut rules, &index).unwrap();
        let report = security::report(findings.clone());
        let counts: Vec<(&str, usize)> = report
            .by_rule
            .iter()
            .map(|(rule, n)| (rule.as_str(), *n))
            .collect();
        let expected: &[(&str, usize)] = match name {
            "microservices-demo" => &[
                ("automount-token", 38),
                ("latest-tag", 12),
                ("no-limits", 5),
                ("no-probes", 5),
                ("secret-in-env", 1),
            ],
            "podinfo" => &[
                ("privilege-escalation", 15),
                ("run-as-root", 15),
                ("automount-token", 14),
                ("no-probes", 4),
                ("added-capabilities", 1),
            ],
            "flux2-kustomize-helm-example" => &[],
            other => panic!("no expectation for corpus project {other}"),
        };
        assert_eq!(counts, expected, "{name}");
        for f in &findings {
            let line = std::fs::read_to_string(project.join(f.file.as_deref().unwrap()))
                .unwrap()
                .lines()
                .nth(f.line.unwrap() - 1)
                .map(str::to_owned);
            assert!(line.is_some(), "{f:?} names a line past its file's end");
        }
        match name {
            "microservices-demo" => {
                assert!(!findings.iter().any(|f| f.rule == "run-as-root"));
                let secret = findings.iter().find(|f| f.rule == "secret-in-env").unwrap();
                assert!(
                    secret.path.ends_with("env[name=GOOGLE_API_KEY].value"),
                    "{secret:?}"
                );
                assert!(
                    findings
                        .iter()
                        .filter(|f| f.rule == "no-limits")
                        .all(|f| f.path.contains("initContainers")
                            || f.object == "Deployment/opentelemetrycollector"),
                    "{findings:?}"
                );
            }
            "podinfo" => {
                let secure = |rule: &str| {
                    findings.iter().any(|f| {
                        f.rule == rule
                            && f.file.as_deref() == Some("deploy/secure/frontend/deployment.yaml")
                    })
                };
                assert!(secure("privilege-escalation") && secure("added-capabilities"));
                let added = findings
                    .iter()
                    .find(|f| f.rule == "added-capabilities")
                    .unwrap();
                assert_eq!(added.severity, "low", "NET_BIND_SERVICE alone is low");
            }
            _ => {}
        }
    }
}

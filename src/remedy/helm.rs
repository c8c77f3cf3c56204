//! Workloads a Helm release makes: the repository declares the release (a Flux `HelmRelease`, or
//! an Argo CD `Application` with a Helm source and `valuesObject`), not the Deployment, so the
//! edit goes into the release's values. The live workload names its release (Flux's
//! `helm.toolkit.fluxcd.io/*` labels, Helm's `meta.helm.sh/*` annotations, Argo CD's tracking
//! annotation or labels). Without the chart's templates the value's key is the common convention
//! (`resources`, `replicaCount`, `image.tag`, `autoscaling.maxReplicas`), and the pull request
//! says it is one. Pure.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::manifests::path::FieldPath;
use crate::manifests::{IndexedObject, RepoIndex};
use crate::model::{ObjectRef, Snapshot};

/// Where a release's values are, and what the guess is based on.
#[derive(Debug, Clone)]
pub(crate) struct HelmValues {
    /// The values' path in the release object (`spec.values`).
    pub prefix: String,
    /// The release, for the pull request (`HelmRelease podinfo/podinfo`).
    pub release: String,
    /// The top-level values the chart's templates read, when the chart is in the repository.
    pub read: Option<std::collections::BTreeSet<String>>,
}

impl HelmValues {
    /// The path of `key` (`resources.limits.memory`) in the release's values; an error when
    /// the chart is in the repository and its templates do not read the key.
    pub fn path(&self, key: &str) -> Result<FieldPath, String> {
        let root = key.split('.').next().unwrap_or(key);
        if self.read.as_ref().is_some_and(|read| !read.contains(root)) {
            return Err(format!(
                "the chart of {} does not read `.Values.{root}`; set the value where its templates take it",
                self.release
            ));
        }
        format!("{}.{key}", self.prefix)
            .parse()
            .map_err(|e| format!("`{key}`: {e}"))
    }

    /// What the pull request says about the keys.
    pub fn guess(&self, keys: &str) -> String {
        match &self.read {
            Some(_) => format!(
                "`{keys}` in the values of {}: the chart's templates read them",
                self.release
            ),
            None => format!(
                "`{keys}` in the values of {}: the chart's templates are not in the repository, so the key is the common convention for charts; check that this chart reads it",
                self.release
            ),
        }
    }
}

/// The labels and annotations of the live workload `target`.
fn live_metadata(
    snapshot: &Snapshot,
    target: &ObjectRef,
) -> Option<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    let matches = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        m.name.as_deref() == Some(target.name.as_str()) && m.namespace == target.namespace
    };
    let metadata = match target.kind.as_str() {
        "Deployment" => snapshot
            .deployments
            .iter()
            .map(|d| &d.metadata)
            .find(|m| matches(m)),
        "StatefulSet" => snapshot
            .stateful_sets
            .iter()
            .map(|d| &d.metadata)
            .find(|m| matches(m)),
        "DaemonSet" => snapshot
            .daemon_sets
            .iter()
            .map(|d| &d.metadata)
            .find(|m| matches(m)),
        _ => None,
    }?;
    Some((
        metadata.labels.clone().unwrap_or_default(),
        metadata.annotations.clone().unwrap_or_default(),
    ))
}

/// The release in the repository that makes `target`, among the declarations `accept` takes
/// (those of one environment: a release in a base shared by several overlays is declared once
/// per overlay), with where its values are.
pub(crate) fn release_of<'i>(
    index: &'i RepoIndex,
    snapshot: &Snapshot,
    target: &ObjectRef,
    accept: impl Fn(&IndexedObject) -> bool,
) -> Option<(&'i IndexedObject, HelmValues)> {
    let (labels, annotations) = live_metadata(snapshot, target)?;
    let flux = labels
        .get("helm.toolkit.fluxcd.io/name")
        .zip(labels.get("helm.toolkit.fluxcd.io/namespace"));
    let helm = annotations
        .get("meta.helm.sh/release-name")
        .zip(annotations.get("meta.helm.sh/release-namespace"));
    let argo = argo_application(&labels, &annotations);
    index
        .objects
        .iter()
        .filter(|o| accept(o))
        .find_map(|object| {
            let id = &object.id;
            let value = &index.declaration(object).value;
            let namespace = id.namespace.as_deref().unwrap_or("default");
            if id.group == "helm.toolkit.fluxcd.io" && id.kind == "HelmRelease" {
                let release_name = value
                    .pointer("/spec/releaseName")
                    .and_then(Value::as_str)
                    .unwrap_or(&id.name);
                let target_namespace = value
                    .pointer("/spec/targetNamespace")
                    .and_then(Value::as_str)
                    .unwrap_or(namespace);
                let by_flux = flux.is_some_and(|(n, ns)| *n == id.name && ns == namespace);
                let by_helm =
                    helm.is_some_and(|(n, ns)| n == release_name && ns == target_namespace);
                (by_flux || by_helm).then(|| {
                    let release = format!("HelmRelease {namespace}/{}", id.name);
                    (
                        object,
                        HelmValues {
                            prefix: "spec.values".into(),
                            release,
                            read: chart_dir(value)
                                .and_then(|dir| index.chart_values.get(&dir).cloned()),
                        },
                    )
                })
            } else if id.group == "argoproj.io" && id.kind == "Application" {
                let helm_source = value.pointer("/spec/source/helm")?;
                // Values written as one string block cannot be edited key by key.
                let tracked = argo.as_ref().is_some_and(|(name, app_namespace)| {
                    *name == id.name
                        && app_namespace
                            .as_deref()
                            .is_none_or(|ns| Some(ns) == id.namespace.as_deref())
                });
                let by_argo = tracked && !helm_source["values"].is_string();
                by_argo.then(|| {
                    let release = format!("Argo CD Application {namespace}/{}", id.name);
                    let prefix = "spec.source.helm.valuesObject".into();
                    let dir: Option<std::path::PathBuf> = value
                        .pointer("/spec/source/path")
                        .and_then(Value::as_str)
                        .map(|p| {
                            p.split('/')
                                .filter(|s| !s.is_empty() && *s != ".")
                                .collect()
                        });
                    let read = dir.and_then(|dir| index.chart_values.get(&dir).cloned());
                    (
                        object,
                        HelmValues {
                            prefix,
                            release,
                            read,
                        },
                    )
                })
            } else {
                None
            }
        })
}

/// The Argo CD Application tracking a live object, and its namespace when the tracking says it,
/// as Argo CD tracks: the `argocd.argoproj.io/tracking-id` annotation (Argo CD 3's default,
/// `app:group/kind:namespace/name`, with `namespace_app` for an Application outside Argo CD's
/// own namespace), else the legacy `argocd.argoproj.io/instance` label, else the
/// `app.kubernetes.io/instance` label that `application.resourceTrackingMethod: label` writes.
fn argo_application(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Option<(String, Option<String>)> {
    if let Some(id) = annotations.get("argocd.argoproj.io/tracking-id") {
        let (application, rest) = id.split_once(':')?;
        if application.is_empty() || !rest.contains('/') {
            return None;
        }
        return Some(match application.split_once('_') {
            Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => {
                (name.to_owned(), Some(namespace.to_owned()))
            }
            _ => (application.to_owned(), None),
        });
    }
    labels
        .get("argocd.argoproj.io/instance")
        .or_else(|| labels.get("app.kubernetes.io/instance"))
        .map(|name| (name.clone(), None))
}

/// The chart directory of a Flux HelmRelease from a `GitRepository`.
fn chart_dir(release: &Value) -> Option<std::path::PathBuf> {
    let chart = release.pointer("/spec/chart/spec")?;
    if chart.pointer("/sourceRef/kind").and_then(Value::as_str) != Some("GitRepository") {
        return None;
    }
    let path = chart["chart"].as_str()?;
    Some(
        path.split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect(),
    )
}

/// The values key of a workload field a remedy changes, by the charts' common conventions:
/// `spec.template.spec.containers[name=x].resources.limits.memory` is `resources.limits.memory`,
/// `spec.replicas` is `replicaCount`.
pub(crate) fn conventional_key(rest: &str) -> Option<String> {
    if rest.starts_with("resources.") {
        return Some(rest.to_owned());
    }
    match rest {
        "replicas" => Some("replicaCount".into()),
        "image" => Some("image.tag".into()),
        "maxReplicas" => Some("autoscaling.maxReplicas".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::remediate;
    use super::super::testing::{context, proposal, usage};
    use crate::config::Config;
    use crate::detect::fixtures;
    use crate::manifests::{IndexOptions, RepoIndex};
    use crate::model::{Finding, FindingCode, ObjectRef, Severity};

    const RELEASE: &str = "# podinfo, as Flux installs it
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: podinfo
spec:
  interval: 50m
  chart:
    spec:
      chart: podinfo
      version: \">=1.0.0\" # any release
      sourceRef: {kind: HelmRepository, name: podinfo}
  values:
    replicaCount: 2 # two for rolling updates
    resources:
      requests:
        cpu: \"1\" # sized by hand
        memory: 512Mi
";

    fn live(labels: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "podinfo", "namespace": "podinfo", "labels": labels},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "podinfo"}},
                "template": {"metadata": {"labels": {"app": "podinfo"}},
                    "spec": {"containers": [{"name": "podinfod", "image": "podinfo:6"}]}}}})
    }

    fn over_provisioned() -> Finding {
        let target = ObjectRef::new("apps/v1", "Deployment", Some("podinfo"), "podinfo");
        let mut f = Finding::new(
            FindingCode::OverProvisioned,
            Severity::Warning,
            target.clone(),
            "x".into(),
        );
        f.owner = Some(target);
        f.container = Some("podinfod".into());
        f.usage = vec![usage("cpu", 100.0), usage("memory", 100.0 * 1048576.0)];
        f
    }

    #[test]
    fn a_right_size_of_a_flux_release_edits_its_values_in_place_with_comments_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("apps/podinfo")).unwrap();
        std::fs::write(dir.path().join("apps/podinfo/release.yaml"), RELEASE).unwrap();
        let index = RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap();
        let config = Config::default();
        let labels = json!({"helm.toolkit.fluxcd.io/name": "podinfo", "helm.toolkit.fluxcd.io/namespace": "podinfo"});
        let snapshot = fixtures::snapshot(vec![live(labels)]);
        let r = proposal(remediate(
            &over_provisioned(),
            &context(&index, &config, &snapshot),
        ));
        let changes = crate::propose::apply_changes(dir.path(), &r).unwrap();
        assert_eq!(changes.len(), 1);
        let text_diff = similar::TextDiff::from_lines(&changes[0].old, &changes[0].new);
        let diff: Vec<&str> = text_diff
            .iter_all_changes()
            .filter(|c| c.tag() != similar::ChangeTag::Equal)
            .map(|c| c.value())
            .collect();
        assert_eq!(
            diff,
            [
                "        cpu: \"1\" # sized by hand\n",
                "        memory: 512Mi\n",
                "        cpu: \"130m\" # sized by hand\n",
                "        memory: 130Mi\n",
            ]
        );
        assert!(
            r.finding
                .fact("values key")
                .unwrap()
                .contains("HelmRelease podinfo/podinfo"),
            "the key is stated as a guess: {:?}",
            r.finding.evidence
        );
    }

    #[test]
    fn a_release_in_a_base_shared_by_two_overlays_is_found_for_each_environment() {
        let dir = tempfile::tempdir().unwrap();
        let overlay = |env: &str| {
            format!(
                "resources: [../../base/podinfo]\npatches:\n  - path: values.yaml\n    target: {{kind: HelmRelease, name: podinfo}}\n# {env}\n"
            )
        };
        let patch = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: podinfo, namespace: podinfo}\nspec:\n  values:\n    replicaCount: 3\n";
        let files = [
            (
                "base/podinfo/kustomization.yaml",
                "resources: [release.yaml]\n".to_owned(),
            ),
            ("base/podinfo/release.yaml", RELEASE.to_owned()),
            ("clusters/staging/kustomization.yaml", overlay("staging")),
            ("clusters/staging/values.yaml", patch.to_owned()),
            (
                "clusters/production/kustomization.yaml",
                overlay("production"),
            ),
            ("clusters/production/values.yaml", patch.to_owned()),
        ];
        for (path, text) in &files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let index = RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap();
        let config = Config::parse(
            std::path::Path::new("remediator.yaml"),
            "environments:\n  - name: staging\n    paths: [\"clusters/staging/**\"]\n  - name: production\n    paths: [\"clusters/production/**\"]\n",
        )
        .unwrap();
        let labels = json!({"helm.toolkit.fluxcd.io/name": "podinfo", "helm.toolkit.fluxcd.io/namespace": "podinfo"});
        let snapshot = fixtures::snapshot(vec![live(labels)]);
        for env in ["staging", "production"] {
            let ctx = crate::remedy::Context {
                environment: Some(env),
                ..context(&index, &config, &snapshot)
            };
            let r = proposal(remediate(&over_provisioned(), &ctx));
            for field in &r.fields {
                assert!(
                    field.file.starts_with(format!("clusters/{env}")),
                    "{env}: {} {}",
                    field.file.display(),
                    field.path
                );
            }
        }
    }

    #[test]
    fn an_argo_cd_helm_application_is_found_by_every_way_argo_cd_tracks() {
        let app = "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: podinfo
  namespace: argocd
spec:
  destination: {namespace: podinfo}
  source:
    repoURL: https://stefanprodan.github.io/podinfo
    chart: podinfo
    targetRevision: 6.5.0
    helm:
      valuesObject:
        resources:
          requests: {cpu: \"1\", memory: 512Mi}
";
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("argo")).unwrap();
        std::fs::write(dir.path().join("argo/podinfo.yaml"), app).unwrap();
        let index = RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap();
        let config = Config::default();
        let tracked = [
            json!({"metadata": {"annotations": {"argocd.argoproj.io/tracking-id": "podinfo:apps/Deployment:podinfo/podinfo"}}}),
            json!({"metadata": {"annotations": {"argocd.argoproj.io/tracking-id": "argocd_podinfo:apps/Deployment:podinfo/podinfo"}}}),
            json!({"metadata": {"labels": {"argocd.argoproj.io/instance": "podinfo"}}}),
            json!({"metadata": {"labels": {"app.kubernetes.io/instance": "podinfo"}}}),
        ];
        let marked = |marker: &serde_json::Value| {
            let mut object = live(json!({}));
            for key in ["labels", "annotations"] {
                if let Some(found) = marker["metadata"].get(key) {
                    object["metadata"][key] = found.clone();
                }
            }
            object
        };
        for marker in tracked {
            let object = marked(&marker);
            let snapshot = fixtures::snapshot(vec![object]);
            let r = proposal(remediate(
                &over_provisioned(),
                &context(&index, &config, &snapshot),
            ));
            assert_eq!(
                r.fields[0].path, "spec.source.helm.valuesObject.resources.requests.cpu",
                "{marker}"
            );
        }
        // An Application of the same name in another namespace is not this one.
        let object = marked(
            &json!({"metadata": {"annotations": {"argocd.argoproj.io/tracking-id": "team-a_podinfo:apps/Deployment:podinfo/podinfo"}}}),
        );
        let snapshot = fixtures::snapshot(vec![object]);
        assert!(matches!(
            remediate(&over_provisioned(), &context(&index, &config, &snapshot)),
            crate::remedy::Outcome::Unmanaged { .. }
        ));
    }

    #[test]
    fn a_chart_in_the_repository_confirms_the_key_or_refuses_it() {
        let local = RELEASE.replace(
            "chart: podinfo\n      version: \">=1.0.0\" # any release\n      sourceRef: {kind: HelmRepository, name: podinfo}",
            "chart: ./charts/podinfo\n      sourceRef: {kind: GitRepository, name: flux-system}",
        );
        assert!(local.contains("GitRepository"), "{local}");
        let run = |template: &str| {
            let dir = tempfile::tempdir().unwrap();
            let files = [
                ("apps/release.yaml", local.as_str()),
                (
                    "charts/podinfo/Chart.yaml",
                    "apiVersion: v2\nname: podinfo\nversion: 1.0.0\n",
                ),
                ("charts/podinfo/templates/deployment.yaml", template),
            ];
            for (name, text) in files {
                let path = dir.path().join(name);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, text).unwrap();
            }
            let index = RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap();
            let labels = json!({"helm.toolkit.fluxcd.io/name": "podinfo", "helm.toolkit.fluxcd.io/namespace": "podinfo"});
            let snapshot = fixtures::snapshot(vec![live(labels)]);
            remediate(
                &over_provisioned(),
                &context(&index, &Config::default(), &snapshot),
            )
        };
        let reads = run("resources: {{- toYaml .Values.resources | nindent 12 }}\n");
        let r = proposal(reads);
        assert!(
            r.finding
                .fact("values key")
                .unwrap()
                .contains("the chart's templates read them"),
            "{:?}",
            r.finding.evidence
        );
        let ignores = run("replicas: {{ .Values.replicaCount }}\n");
        let super::super::Outcome::Diagnosis { reason, .. } = ignores else {
            panic!("{ignores:?}");
        };
        assert!(
            reason.contains("does not read `.Values.resources`"),
            "{reason}"
        );
    }

    #[test]
    fn a_workload_without_release_labels_stays_unmanaged() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("release.yaml"), RELEASE).unwrap();
        let index = RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap();
        let config = Config::default();
        let snapshot = fixtures::snapshot(vec![live(json!({"app": "podinfo"}))]);
        let outcome = remediate(&over_provisioned(), &context(&index, &config, &snapshot));
        assert!(
            matches!(outcome, super::super::Outcome::Unmanaged { .. }),
            "{outcome:?}"
        );
    }

    #[test]
    fn helm_s_own_annotations_find_the_release_too() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("release.yaml"), RELEASE).unwrap();
        let index = RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap();
        let mut live = live(json!({}));
        live["metadata"]["annotations"] = json!({"meta.helm.sh/release-name": "podinfo", "meta.helm.sh/release-namespace": "podinfo"});
        let snapshot = fixtures::snapshot(vec![live]);
        let target = ObjectRef::new("apps/v1", "Deployment", Some("podinfo"), "podinfo");
        let (object, values) = super::release_of(&index, &snapshot, &target, |_| true).unwrap();
        assert_eq!(object.id.kind, "HelmRelease");
        assert_eq!(values.prefix, "spec.values");
    }
}

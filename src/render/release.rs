//! Helm releases the repository declares (a Flux `HelmRelease`, an Argo CD `Application` with a
//! Helm source) whose charts' objects are not rendered here (see [`super::helm`] for those that
//! are): a change to one changes objects this run cannot see. Each one says why, so that it is
//! reported as not rendered and weighed as an unknown change, never as no change. Pure.

use serde_json::Value;

/// Why the chart output of `object` is not rendered here; `None` when it is no Helm release.
pub fn unrendered(object: &Value, helm_on_path: bool) -> Option<String> {
    let kind = object["kind"].as_str()?;
    let api = object["apiVersion"].as_str().unwrap_or_default();
    let source = if api.starts_with("helm.toolkit.fluxcd.io/") && kind == "HelmRelease" {
        let chart = object.pointer("/spec/chart/spec");
        let reference = object.pointer("/spec/chartRef");
        match (chart, reference) {
            (Some(chart), _) => {
                let source = &chart["sourceRef"];
                format!(
                    "chart `{}` from {} {}",
                    chart["chart"].as_str().unwrap_or("?"),
                    source["kind"].as_str().unwrap_or("?"),
                    source["name"].as_str().unwrap_or("?")
                )
            }
            (None, Some(reference)) => format!(
                "chart from {} {}",
                reference["kind"].as_str().unwrap_or("?"),
                reference["name"].as_str().unwrap_or("?")
            ),
            (None, None) => "chart".to_owned(),
        }
    } else if api.starts_with("argoproj.io/") && kind == "Application" {
        let sources = crate::manifests::appset::sources(object);
        let helm = sources
            .into_iter()
            .find(|s| s.get("chart").is_some() || s.get("helm").is_some())?;
        match helm["chart"].as_str() {
            Some(chart) => format!(
                "chart `{chart}` from {}",
                helm["repoURL"].as_str().unwrap_or("?")
            ),
            None => format!("chart at `{}`", helm["path"].as_str().unwrap_or("?")),
        }
    } else {
        return None;
    };
    let why = if helm_on_path {
        "its chart source (a directory, or a HelmRepository with its URL) is not declared in the repository"
    } else {
        "`helm` is not on PATH"
    };
    Some(format!(
        "its {source} is rendered by Helm in the cluster, not here: {why}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flux_and_argo_cd_releases_say_what_is_not_rendered() {
        let release = json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "spec": {"chart": {"spec": {"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "podinfo"}}}}});
        let why = unrendered(&release, false).unwrap();
        assert!(
            why.contains("chart `podinfo` from HelmRepository podinfo"),
            "{why}"
        );
        assert!(why.ends_with("`helm` is not on PATH"), "{why}");
        let app = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "spec": {"source": {"repoURL": "https://charts.example.com", "chart": "redis", "helm": {}}}});
        assert!(
            unrendered(&app, true)
                .unwrap()
                .contains("chart `redis` from https://charts.example.com")
        );
        let plain = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "spec": {"source": {"repoURL": "https://git.example.com/x", "path": "k8s"}}});
        assert_eq!(
            unrendered(&plain, false),
            None,
            "a plain directory source is no release"
        );
        assert_eq!(
            unrendered(&json!({"apiVersion": "v1", "kind": "ConfigMap"}), false),
            None
        );
    }
}

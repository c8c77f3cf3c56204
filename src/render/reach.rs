//! Which values key reaches which container of a chart, as `helm template` shows it: each
//! release whose chart is in the repository is rendered once with a marker in place of every
//! `resources` and `tag` value, and each rendered container names the marker it took. A
//! container whose resources come from `.Values.adService.resources` is then changed there, not
//! by a guess from its name. I/O: through [`Renderer`].

use std::collections::BTreeMap;

use serde_json::Value;

use super::Renderer;
use super::helm::{Chart, local_release, merge_values, repositories, template};
use crate::manifests::{Reached, RepoIndex, ValuesReach};

const MARK: &str = "remediator-mark-";

/// Renders each release of `index` whose chart is a directory of the repository with marker
/// values, and records what reaches each container ([`RepoIndex::chart_reach`]). Without helm
/// nothing is rendered and the charts' templates are scanned instead; a release that does not
/// render is named in the returned warnings.
pub fn learn_reach(index: &mut RepoIndex, renderer: &Renderer) -> Vec<String> {
    let mut warnings = Vec::new();
    if !renderer.has_helm() {
        return warnings;
    }
    let repositories = repositories(index);
    let mut learned = BTreeMap::new();
    for (at, declaration) in index.declarations.iter().enumerate() {
        let Some(Ok(mut release)) = local_release(
            &declaration.value,
            &declaration.location.file,
            &index.charts,
            &repositories,
            &index.root,
        ) else {
            continue;
        };
        let Chart::Dir(chart) = &release.chart else {
            continue;
        };
        // The chart's own defaults under the release's values, as helm merges them: a key only
        // the defaults set is marked too.
        if let Some((_, defaults)) = index.values_files.get(&chart.join("values.yaml")) {
            let mut merged = defaults.clone();
            merge_values(&mut merged, std::mem::take(&mut release.values));
            release.values = merged;
        }
        let mut marks = Vec::new();
        mark(&mut release.values, "", &mut marks);
        if marks.is_empty() {
            continue;
        }
        match template(renderer, &index.root, &release) {
            Some(Ok(objects)) => {
                learned.insert(at, reached(&objects, &marks));
            }
            Some(Err(error)) => warnings.push(format!(
                "{} in {} does not render with marker values ({error}): which values key reaches which container is read from its chart's templates",
                declaration.id,
                declaration.location.file.display()
            )),
            None => {}
        }
    }
    index.chart_reach = learned;
    warnings
}

/// Replaces, in `values` (at key path `path`), each `resources` value with a memory limit that
/// is a marker, and each scalar `tag` with a marker, recording the keys by marker number.
fn mark(values: &mut Value, path: &str, marks: &mut Vec<String>) {
    let Value::Object(map) = values else {
        return;
    };
    for (key, value) in map.iter_mut() {
        let here = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let scalar = !value.is_object() && !value.is_array();
        if key == "resources" && (value.is_object() || value.is_null()) {
            *value = serde_json::json!({"limits": {"memory": format!("{MARK}{}", marks.len())}});
            marks.push(here);
        } else if key == "tag" && scalar {
            *value = Value::String(format!("{MARK}{}", marks.len()));
            marks.push(here);
        } else {
            mark(value, &here, marks);
        }
    }
}

/// What reaches each container of the workloads in `objects`, by the markers `marks` numbers.
fn reached(objects: &[Value], marks: &[String]) -> ValuesReach {
    let key_of = |text: &str| -> Option<String> {
        let (_, rest) = text.split_once(MARK)?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        marks.get(digits.parse::<usize>().ok()?).cloned()
    };
    let mut out = ValuesReach::new();
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        let spec = match kind {
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
                &object["spec"]["template"]["spec"]
            }
            "CronJob" => &object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            _ => continue,
        };
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let containers = ["containers", "initContainers"]
            .iter()
            .filter_map(|list| spec[*list].as_array())
            .flatten();
        for container in containers {
            let Some(container_name) = container["name"].as_str() else {
                continue;
            };
            let resources = container["resources"]["limits"]["memory"]
                .as_str()
                .and_then(key_of);
            let tag = container["image"].as_str().and_then(key_of);
            out.insert(
                (kind.to_owned(), name.to_owned(), container_name.to_owned()),
                Reached { resources, tag },
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn markers_name_the_key_each_container_takes() {
        let mut values = json!({
            "images": {"repository": "r", "tag": ""},
            "adService": {"name": "adservice", "resources": {"limits": {"memory": "300Mi"}}},
            "cartService": {"resources": null},
            "list": [{"resources": {}}],
        });
        let mut marks = Vec::new();
        mark(&mut values, "", &mut marks);
        marks.sort();
        assert_eq!(
            marks,
            ["adService.resources", "cartService.resources", "images.tag"]
        );
        assert_eq!(values["adService"]["name"], "adservice", "names are kept");
        assert_eq!(values["list"], json!([{"resources": {}}]), "lists are left");
        let rendered = vec![
            json!({"kind": "Deployment", "metadata": {"name": "adservice"},
            "spec": {"template": {"spec": {"containers": [
                {"name": "server", "image": format!("r/adservice:{MARK}2"),
                    "resources": {"limits": {"memory": format!("{MARK}0")}}},
                {"name": "proxy", "image": "envoy:1", "resources": {"limits": {"memory": "64Mi"}}}
            ]}}}}),
        ];
        let marks = [
            "adService.resources".to_owned(),
            String::new(),
            "images.tag".into(),
        ];
        let reach = reached(&rendered, &marks);
        let key = |c: &str| {
            (
                "Deployment".to_owned(),
                "adservice".to_owned(),
                c.to_owned(),
            )
        };
        assert_eq!(
            reach[&key("server")],
            Reached {
                resources: Some("adService.resources".into()),
                tag: Some("images.tag".into())
            }
        );
        assert_eq!(reach[&key("proxy")], Reached::default(), "hard-coded");
    }
}

//! The names objects are applied under when a kustomize build renames them (`namePrefix`,
//! `nameSuffix`, in the build or a base it includes): each build that renames is rendered, and
//! each rendered object is traced back to its declaration by kustomize's own origin annotation,
//! so that a live `prod-ui` is found as the `ui` its base declares. I/O: through [`Renderer`].

use super::{Origin, Renderer, identity};
use crate::manifests::RepoIndex;

/// Renders the builds of `index` that rename what they apply and records, for each object,
/// the name it is applied under ([`RepoIndex::renamed`]). A build that cannot be rendered is
/// named in the returned warnings; its objects keep only their declared names.
pub fn learn_renames(index: &mut RepoIndex, renderer: &Renderer) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut renamed = Vec::new();
    for build in index
        .builds
        .iter()
        .filter(|b| !b.component && index.renames(b))
    {
        let rendered = match renderer.render(&index.root, build) {
            Ok(rendered) => rendered,
            Err(failure) => {
                warnings.push(format!(
                    "{failure}: the names it applies its objects under are not known"
                ));
                continue;
            }
        };
        for object in rendered {
            let Origin::File(file) = &object.origin else {
                continue;
            };
            let id = identity(&object.value, &index.scopes);
            // The declaration in the origin's file, of this build and kind, whose name the
            // rendered one is made of: the longest, when one name holds another.
            let declared = index
                .objects
                .iter()
                .enumerate()
                .filter(|(_, o)| index.unit(o).path == build.dir)
                .filter(|(_, o)| &index.declaration(o).location.file == file)
                .filter(|(_, o)| o.id.kind == id.kind && o.id.group == id.group)
                .filter(|(_, o)| id.name.contains(o.id.name.as_str()))
                .max_by_key(|(_, o)| o.id.name.len());
            if let Some((at, o)) = declared
                && o.id != id
            {
                renamed.push((id, at));
            }
        }
    }
    index.renamed = renamed;
    warnings
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::Config;
    use crate::manifests::IndexOptions;
    use crate::model::{Finding, FindingCode, ObjectRef, Severity, UsageFacts};
    use crate::remedy::testing::{context, edits, proposal};
    use crate::remedy::{Situation, remediate};

    const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: ui
spec:
  selector: {matchLabels: {app: ui}}
  template:
    metadata: {labels: {app: ui}}
    spec:
      containers:
        - name: ui
          image: ui:1
          resources:
            requests: {memory: 256Mi}
            limits: {memory: 256Mi}
";

    #[test]
    fn a_live_name_made_by_name_prefix_and_a_namespace_is_found_as_its_declaration() {
        if !crate::render::kustomize_for_test(
            "a_live_name_made_by_name_prefix_and_a_namespace_is_found_as_its_declaration",
        ) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in [
            (
                "base/ui/kustomization.yaml",
                "resources: [deployment.yaml]\n",
            ),
            ("base/ui/deployment.yaml", DEPLOYMENT),
            (
                "clusters/prod/kustomization.yaml",
                "namePrefix: prod-\nnamespace: shop\nresources:\n  - ../../base/ui\n",
            ),
            (
                "clusters/dev/kustomization.yaml",
                "nameSuffix: -dev\nnamespace: shop-dev\nresources:\n  - ../../base/ui\n",
            ),
        ] {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let mut index = RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap();
        let renderer = Renderer::from_path(Default::default());
        assert!(learn_renames(&mut index, &renderer).is_empty());
        let live = ObjectRef::new("apps/v1", "Deployment", Some("shop"), "prod-ui");
        let found: Vec<String> = index
            .renamed_as(&live)
            .map(|o| format!("{} in {}", o.id, index.unit(o).path.display()))
            .collect();
        assert_eq!(found, ["Deployment/shop/ui in clusters/prod"]);
        let dev = ObjectRef::new("apps/v1", "Deployment", Some("shop-dev"), "ui-dev");
        assert_eq!(index.renamed_as(&dev).count(), 1);

        // An OOM kill of the live `prod-ui` is remedied where prod sets its values.
        let config = Config::parse(
            std::path::Path::new("remediator.yaml"),
            "environments:\n  - name: prod\n    paths: [\"clusters/prod/**\"]\n  - name: dev\n    paths: [\"clusters/dev/**\"]\n",
        )
        .unwrap();
        let snapshot = crate::detect::fixtures::snapshot(vec![json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "prod-ui", "namespace": "shop"}, "spec": {}})]);
        let mut finding = Finding::new(
            FindingCode::CrashLoopOom,
            Severity::Critical,
            live.clone(),
            "x".into(),
        );
        finding.owner = Some(live);
        finding.container = Some("ui".into());
        finding.usage = vec![UsageFacts {
            forecast_from: None,
            resource: "memory".into(),
            p95: 0.0,
            max: 0.0,
            request: None,
            limit: None,
            chart: vec![],
        }];
        let ctx = Situation {
            environment: Some("prod"),
            ..context(&index, &config, &snapshot)
        };
        let r = proposal(remediate(&finding, &ctx));
        for edit in edits(&r) {
            assert!(edit.starts_with("clusters/prod/"), "{edit}");
        }
        assert!(!edits(&r).is_empty());

        // Rendered again: prod's `prod-ui` has the new limit, dev renders byte for byte as before.
        let render = |index: &RepoIndex, dir: &str| {
            let build = index.builds.iter().find(|b| b.dir.ends_with(dir)).unwrap();
            let objects = renderer.render(&index.root, build).unwrap();
            objects.into_iter().map(|o| o.value).collect::<Vec<_>>()
        };
        let dev_before = render(&index, "clusters/dev");
        for change in crate::propose::apply_changes(dir.path(), &r).unwrap() {
            let path = dir.path().join(&change.path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, change.new).unwrap();
        }
        for change in &r.changes {
            if let crate::remedy::Change::Create { path, content } = change {
                std::fs::write(dir.path().join(path), content).unwrap();
            }
        }
        let after = RepoIndex::build(dir.path(), &IndexOptions::default()).unwrap();
        let prod = render(&after, "clusters/prod");
        assert_eq!(prod[0]["metadata"]["name"], "prod-ui");
        let resources = &prod[0]["spec"]["template"]["spec"]["containers"][0]["resources"];
        assert_eq!(resources["limits"]["memory"], "384Mi", "{resources}");
        assert_eq!(render(&after, "clusters/dev"), dev_before);
    }
}

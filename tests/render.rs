//! Builds rendered by kustomize itself, on the real-world repositories of `tests/fixtures/corpus`:
//! every build kustomize can build renders to the same objects as `kubectl kustomize`, each
//! traced to the file that declares it; the rest are reported with kustomize's reason.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use remediator::manifests::{IndexOptions, RepoIndex, parse_text};
use remediator::render::{self, Renderer};

/// `Kind/namespace/name` of a rendered object, as kustomize wrote it.
fn label_of(v: &serde_json::Value) -> String {
    format!(
        "{}/{}/{}",
        v["kind"].as_str().unwrap_or_default(),
        v["metadata"]["namespace"].as_str().unwrap_or_default(),
        v["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// `Kind/namespace/name` of every object `kubectl kustomize dir` prints, or `None` when it
/// cannot build the directory.
fn kubectl_kustomize(dir: &Path) -> Option<BTreeSet<String>> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).unwrap();
    let parsed = parse_text(Path::new("out.yaml"), &text);
    Some(
        parsed
            .documents
            .iter()
            .map(|d| label_of(&d.value))
            .collect(),
    )
}

#[test]
fn every_corpus_build_kustomize_can_build_renders_to_the_same_objects() {
    let projects = common::corpus_projects();
    if !common::tools::require(
        common::tools::Tool::Kustomize,
        "every_corpus_build_kustomize_can_build_renders_to_the_same_objects",
    ) {
        return;
    }
    let renderer = Renderer::from_path(Default::default());
    let name = renderer.name().expect("kustomize was found");
    println!("rendering with {name}");
    let (mut rendered, mut reported, mut components) = (0, 0, 0);
    for project in &projects {
        let index = RepoIndex::build(project, &IndexOptions::default()).unwrap();
        for build in &index.builds {
            let label = format!("{}/{}", project.display(), build.dir.display());
            if build.component {
                // A component no build uses: alone it gives no object, or no build at all.
                let alone = kubectl_kustomize(&project.join(&build.dir));
                assert!(alone.is_none_or(|objects| objects.is_empty()), "{label}");
                let ours =
                    render::objects(&index, &renderer, |dir, built| built && dir == build.dir);
                assert!(ours.objects.is_empty() && ours.failed.is_empty(), "{label}");
                components += 1;
                continue;
            }
            let expected = kubectl_kustomize(&project.join(&build.dir));
            let ours = render::objects(&index, &renderer, |dir, built| built && dir == build.dir);
            match expected {
                Some(expected) => {
                    assert!(ours.failed.is_empty(), "{label}: {:?}", ours.failed);
                    assert!(
                        ours.not_rendered.is_empty(),
                        "{label}: {:?}",
                        ours.not_rendered
                    );
                    let got: BTreeSet<String> = ours
                        .objects
                        .iter()
                        .filter(|o| o.built)
                        .map(|o| label_of(&o.value))
                        .collect();
                    assert_eq!(got, expected, "{label}");
                    // Every object names a file of the build and a line that declares it.
                    for object in ours.objects.iter().filter(|o| o.built) {
                        let (file, line) = &object.declared;
                        assert!(project.join(file).is_file(), "{label}: {file:?}");
                        assert!(
                            build.reads(file),
                            "{label}: {} is outside the build",
                            file.display()
                        );
                        let text = std::fs::read_to_string(project.join(file)).unwrap();
                        assert!(*line >= 1 && *line <= text.lines().count(), "{label}");
                        let annotations = object.value["metadata"]["annotations"].as_object();
                        assert!(
                            annotations
                                .is_none_or(|a| !a.contains_key("config.kubernetes.io/origin")),
                            "{label}: the origin annotation is taken off"
                        );
                    }
                    rendered += 1;
                }
                None => {
                    // Not buildable alone: kustomize's own reason, never a panic or a silence.
                    let said = ours.failed.len() + ours.not_rendered.len();
                    assert_eq!(said, 1, "{label}: {:?}", ours.objects.len());
                    // The corpus keeps podinfo's manifests without its scripts, which its
                    // frontend base generates a ConfigMap from.
                    let message = &ours.failed[0].message;
                    assert!(message.contains("warm-cache"), "{label}: {message}");
                    reported += 1;
                }
            }
        }
    }
    println!(
        "{rendered} builds rendered as kubectl kustomize renders them; {reported} reported with kustomize's reason; {components} components no build uses"
    );
    assert_eq!(
        (rendered, reported, components),
        (12, 3, 9),
        "the corpus's builds"
    );
}

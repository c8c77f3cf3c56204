//! What a merged commit changes in the cluster: both trees are written out into temporary
//! directories and indexed, every build is rendered by kustomize (each set of inputs once), and
//! the objects that differ are compared field by field. I/O: reads the Git repository, writes
//! the trees into temporary directories removed afterwards, runs kustomize.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use git2::Oid;
use serde_json::{Map, Value};

pub mod pruning;
mod waves;

use crate::config::Config;
use crate::git::ConfigRepo;
use crate::manifests::{IndexOptions, RepoIndex, Scope};
use crate::model::quantity::{cpu_millis, memory_bytes};
use crate::model::{FieldChange, ObjectRef};
use crate::render::{self, AppliedObject, NotRendered, Renderer};
use pruning::Applier;

/// One object the commit changes.
#[derive(Debug, Clone)]
pub struct ObjectChange {
    /// The object, as applied.
    pub object: ObjectRef,
    /// The build (kustomization directory, or directory of plain manifests) applying it.
    pub unit: PathBuf,
    /// The file deciding its environment.
    pub placement: PathBuf,
    /// The declaring file and the 1-based line the object starts on (after the change; before
    /// it when the change removes the object).
    pub declared: (PathBuf, usize),
    /// The environment it is applied in, when the config names one.
    pub environment: Option<String>,
    /// As applied before the commit; `None` when the commit adds it.
    pub before: Option<Value>,
    /// As applied after the commit; `None` when the commit removes it.
    pub after: Option<Value>,
    /// The fields that differ.
    pub fields: Vec<FieldChange>,
    /// The Flux Kustomization or Argo CD Application the repository has apply it, if any.
    pub applier: Option<Applier>,
    /// For a Helm release: why the objects its chart makes are not rendered here.
    pub unrendered: Option<String>,
    /// The environment before this one in `promotion.order` when, as of the parent commit, it
    /// does not run what the change sets (the object with the same kind and name, every changed
    /// field at its new value): the change skips that wave.
    pub skips: Option<String>,
}

impl ObjectChange {
    /// Whether the change removes the object and what applies it prunes: a Flux Kustomization
    /// or Argo CD Application with pruning, or, without one, remediator's own reconcile (which
    /// deletes what it applied). The object is deleted from the cluster, not merely left there.
    pub fn deletes(&self) -> bool {
        self.after.is_none() && self.applier.as_ref().is_none_or(|a| a.prune)
    }

    /// What deletes it when [`deletes`](Self::deletes).
    pub fn pruner(&self) -> Option<String> {
        self.deletes().then(|| match &self.applier {
            Some(applier) => applier.name.clone(),
            None => "remediator's reconcile (for an object it applied)".to_owned(),
        })
    }

    /// The object's labels after the change (before, when it is removed).
    pub fn labels(&self) -> Map<String, Value> {
        self.after
            .as_ref()
            .or(self.before.as_ref())
            .and_then(|v| v.pointer("/metadata/labels"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }
}

/// Why the change cannot be worked out.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Git failed.
    #[error(transparent)]
    Git(#[from] crate::git::Error),
    /// A tree could not be written out or indexed.
    #[error("{what}: {message}")]
    Index {
        /// Which commit.
        what: String,
        /// What went wrong.
        message: String,
    },
    /// Files of the merged tree do not parse, or builds cannot be rendered: applying the rest
    /// would apply half the change.
    #[error("{commit}: {}", problems.join("; "))]
    Unreadable {
        /// The commit.
        commit: String,
        /// Each file or build, with the reason.
        problems: Vec<String>,
    },
}

/// The objects applied at a commit, by (build, object).
type Applied = BTreeMap<(PathBuf, String), AppliedObject>;

/// Something at a commit that cannot be read or rendered: the files or directories it is
/// about, the message, and the placement of the objects it concerns.
type Problem = (Vec<PathBuf>, String, Option<PathBuf>);

/// What a commit applies: its objects, what cannot be read or rendered, and the builds not
/// rendered for a reason outside the repository, with the directories each reads.
struct AtCommit {
    applied: Applied,
    appliers: Vec<Applier>,
    /// What the commit's builds and plain directories read: build directories, plain files
    /// declaring objects, chart directories.
    used: Vec<PathBuf>,
    problems: Vec<Problem>,
    not_rendered: Vec<(NotRendered, Vec<PathBuf>, PathBuf)>,
}

/// A commit's tree, written out for kustomize (removed when dropped), and its index.
struct Tree {
    _dir: tempfile::TempDir,
    index: RepoIndex,
}

fn tree_at(repo: &ConfigRepo, config: &Config, commit: Oid) -> Result<Tree, Error> {
    let what = format!("commit {}", short(commit));
    let index_error = |message: String| Error::Index {
        what: what.clone(),
        message,
    };
    let dir = tempfile::Builder::new()
        .prefix("remediator-tree-")
        .tempdir()
        .map_err(|e| index_error(e.to_string()))?;
    repo.write_tree(commit, dir.path())
        .map_err(|e| index_error(e.to_string()))?;
    let mut origin = config.origin.clone();
    if origin.url.is_none() {
        origin.url = repo.remote_url(&config.git.remote)?;
    }
    let options = IndexOptions {
        excludes: config.excludes.clone(),
        threads: 0,
        origin,
    };
    let index = RepoIndex::build(dir.path(), &options).map_err(|e| index_error(e.to_string()))?;
    Ok(Tree { _dir: dir, index })
}

/// What `tree` applies, rendering only the builds `render` names (the others cannot differ
/// from the other commit's).
fn applied_at(tree: &Tree, renderer: &Renderer, render: &BTreeSet<PathBuf>) -> AtCommit {
    let index = &tree.index;
    let mut problems: Vec<Problem> = index
        .errors
        .iter()
        .map(|e| {
            let files = e.files().into_iter().map(Path::to_owned).collect();
            (files, e.to_string(), None)
        })
        .collect();
    let rendering = render::objects(index, renderer, |dir, built| !built || render.contains(dir));
    for failed in rendering.failed {
        problems.push((failed.about, failed.message, Some(failed.placement)));
    }
    let not_rendered = rendering
        .not_rendered
        .into_iter()
        .filter_map(|not| {
            let build = index.builds.iter().find(|b| b.dir == not.build)?;
            let (dirs, placement) = (build.dirs.clone(), build.kustomization.clone());
            Some((not, dirs, placement))
        })
        .collect();
    let applied = rendering
        .objects
        .into_iter()
        .map(|o| ((o.unit.clone(), o.id.to_string()), o))
        .collect();
    let used = index
        .builds
        .iter()
        .flat_map(|b| b.dirs.iter().cloned())
        .chain(index.declarations.iter().map(|d| d.location.file.clone()))
        .chain(index.charts.iter().cloned())
        .collect();
    AtCommit {
        applied,
        used,
        appliers: pruning::appliers(index),
        problems,
        not_rendered,
    }
}

/// The builds whose output may differ between two indexed trees: those whose inputs (files,
/// and the Flux variables they get) differ, or that only one of them has.
fn changed_builds(before: &Tree, after: &Tree) -> BTreeSet<PathBuf> {
    let prints = |tree: &Tree| -> BTreeMap<PathBuf, u64> {
        let substitutions = render::flux::substitutions(&tree.index);
        tree.index
            .builds
            .iter()
            .map(|b| {
                let print = render::fingerprint(&tree.index.root, b, &substitutions);
                (b.dir.clone(), print)
            })
            .collect()
    };
    let (old, new) = (prints(before), prints(after));
    old.keys()
        .chain(new.keys())
        .filter(|dir| old.get(*dir) != new.get(*dir))
        .cloned()
        .collect()
}

/// The first 12 digits of a commit.
pub fn short(commit: Oid) -> String {
    commit.to_string().chars().take(12).collect()
}

/// What a commit changes.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// The objects that differ.
    pub objects: Vec<ObjectChange>,
    /// The builds the commit changes that could not be rendered: their change is unknown.
    pub not_rendered: Vec<NotRendered>,
    /// The program builds were rendered with, when there were builds.
    pub renderer: Option<String>,
    /// Manifest files the commit changes that no build and no plain directory reads, before
    /// or after it: they change nothing in any cluster.
    pub unused: Vec<PathBuf>,
    /// Helm charts of the repository the commit changes: what they make is rendered by the
    /// releases that install them, not here.
    pub charts: Vec<NotRendered>,
    /// Kinds of changed objects without a namespace whose scope is neither built in nor
    /// declared by a CRD of the repository: identified without a namespace, and reported.
    pub unknown_scope: BTreeSet<String>,
    /// Files whose objects differ only in how values are spelled (`1Gi` and `1024Mi`,
    /// `720m` and `720m0s`): the same objects for Kubernetes, no change.
    pub formatting: BTreeSet<PathBuf>,
    /// Every value of a Secret the repository declares before or after the commit, as written
    /// and decoded: what Flux substitutes from a Secret into another object, or a generator
    /// copies, must be masked wherever it shows.
    pub secret_values: Vec<String>,
}

/// The Helm releases rendered by `helm template`.
#[derive(Default)]
struct Released {
    /// Per release (by its key among the applied objects): `None` when its chart's objects
    /// were rendered on both sides, else why not.
    outcome: BTreeMap<(PathBuf, String), Option<String>>,
    /// The chart directories rendered through a release.
    charts: BTreeSet<PathBuf>,
}

/// Adds to each side the objects made by its HelmReleases whose chart is in the repository,
/// when the release or its chart changes and `helm` is there: `helm template` with the
/// release's values as applied.
fn render_releases(
    renderer: &Renderer,
    sides: [(&Tree, &mut Applied); 2],
    touched: &[PathBuf],
) -> Released {
    let mut released = Released::default();
    if !renderer.has_helm() {
        return released;
    }
    let [(before_tree, before), (after_tree, after)] = sides;
    type Found = (
        (PathBuf, String),
        Result<render::helm::LocalRelease, String>,
        AppliedObject,
    );
    let releases = |tree: &Tree, applied: &Applied| -> Vec<Found> {
        let repositories = render::helm::repositories(&tree.index);
        applied
            .iter()
            .filter_map(|(key, object)| {
                let release = render::helm::local_release(
                    &object.value,
                    &object.declared.0,
                    &tree.index.charts,
                    &repositories,
                    &tree.index.root,
                )?;
                Some((key.clone(), release, object.clone()))
            })
            .collect()
    };
    let (old, new) = (releases(before_tree, before), releases(after_tree, after));
    let changed = |key: &(PathBuf, String), chart: Option<&Path>| {
        let value = |list: &[Found]| {
            list.iter()
                .find(|(k, _, _)| k == key)
                .map(|(_, _, o)| o.value.clone())
        };
        value(&old) != value(&new)
            || chart.is_some_and(|c| touched.iter().any(|t| t.starts_with(c)))
    };
    // What each side's releases make, kept apart until every release is rendered on both
    // sides: a release that fails on one side contributes nothing, rather than removals.
    let mut made: [Vec<((PathBuf, String), AppliedObject)>; 2] = [vec![], vec![]];
    for (side, (tree, list)) in [(before_tree, &old), (after_tree, &new)]
        .into_iter()
        .enumerate()
    {
        for (key, release, object) in list {
            let chart = release.as_ref().ok().and_then(|r| r.chart.dir());
            if !changed(key, chart) {
                continue;
            }
            let outcome = match release {
                Ok(release) => render::helm::template(renderer, &tree.index.root, release),
                Err(error) => Some(Err(error.clone())),
            };
            let objects = match outcome {
                Some(Ok(objects)) => objects,
                Some(Err(error)) => {
                    let why = format!("`helm template` failed: {error}");
                    released.outcome.insert(key.clone(), Some(why));
                    continue;
                }
                None => continue,
            };
            let Ok(release) = release else { continue };
            released.outcome.entry(key.clone()).or_insert(None);
            if let Some(dir) = release.chart.dir() {
                released.charts.insert(dir.to_owned());
            }
            let unit = PathBuf::from(format!("{}#{}", key.0.display(), key.1));
            for value in objects {
                let id = render::identity(&value, &tree.index.scopes);
                let object = AppliedObject {
                    id: id.clone(),
                    unit: unit.clone(),
                    value,
                    ..object.clone()
                };
                made[side].push((key.clone(), object));
            }
        }
    }
    let [made_before, made_after] = made;
    for (applied, made) in [(before, made_before), (after, made_after)] {
        for (release, object) in made {
            if released.outcome.get(&release) == Some(&None) {
                applied.insert((object.unit.clone(), object.id.to_string()), object);
            }
        }
    }
    released
}

/// A YAML or JSON file outside the directories Flux never packs (`.github/` and `.circleci/`
/// hold CI files, not manifests). Other dotfiles are manifests like any other: Flux applies them.
fn is_manifest_like(file: &Path) -> bool {
    let ci = file.components().any(|c| {
        [".github", ".circleci", ".git"].contains(&c.as_os_str().to_string_lossy().as_ref())
    });
    let extension = file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    !ci && ["yaml", "yml", "json"].contains(&extension)
}

/// Whether `touched` changes anything under `about` (files or directories).
fn touches(touched: &[PathBuf], about: &[PathBuf]) -> bool {
    touched
        .iter()
        .any(|t| about.iter().any(|a| t.starts_with(a)))
}

/// The environment an object of `unit` placed at `placement` is applied in: the one the
/// configuration's paths give its placement; else those of the Flux Kustomizations and Argo CD
/// Applications that apply its unit, by the files that declare them (a base two clusters'
/// directories apply is in both): `wanted` when it is one of them, else the strictest (the
/// lowest risk tolerance), so a change is judged by the strictest environment it reaches.
fn environment_of(
    config: &Config,
    index: &crate::manifests::RepoIndex,
    placement: &Path,
    unit: &Path,
    wanted: Option<&str>,
) -> Option<String> {
    if let Some(env) = config.environment_for(placement) {
        return Some(env.name.clone());
    }
    let mut found: Vec<&crate::config::Environment> = crate::remedy::appliers_of(index, unit)
        .iter()
        .filter_map(|(_, file)| config.environment_for(file))
        .collect();
    found.sort_by(|a, b| {
        a.risk_tolerance
            .cmp(&b.risk_tolerance)
            .then(a.name.cmp(&b.name))
    });
    found.dedup_by(|a, b| a.name == b.name);
    match wanted {
        Some(wanted) if found.iter().any(|e| e.name == wanted) => Some(wanted.to_owned()),
        _ => found.first().map(|e| e.name.clone()),
    }
}

/// The objects that differ between `parent` and `commit`, in the environment `environment` when
/// given. A file the commit changes that does not parse, or a build it changes that kustomize
/// refuses, stops everything: applying the rest would apply half the change. Problems the
/// commit does not touch are not its own.
pub fn between(
    repo: &ConfigRepo,
    config: &Config,
    renderer: &Renderer,
    parent: Oid,
    commit: Oid,
    environment: Option<&str>,
) -> Result<Changes, Error> {
    // Both trees are written out first: a build whose inputs are the same in both cannot
    // change, and is not rendered at all.
    let after_tree = tree_at(repo, config, commit)?;
    // The parent's own unreadable files are not this commit's doing, but a parent tree that
    // cannot be indexed at all leaves nothing to compare with: every object would look new.
    let before_tree = tree_at(repo, config, parent)?;
    let render = changed_builds(&before_tree, &after_tree);
    let after = applied_at(&after_tree, renderer, &render);
    let in_environment = |placement: &Option<PathBuf>| match (environment, placement) {
        (Some(wanted), Some(placement)) => config
            .environment_for(placement)
            .is_some_and(|e| e.name == wanted),
        _ => true,
    };
    // What cannot be read or rendered stops the reconcile only when the commit touches it.
    let touched = repo.changed_files(parent, commit)?;
    let mut blocking: Vec<String> = after
        .problems
        .into_iter()
        .filter(|(about, _, _)| touches(&touched, about))
        .filter(|(_, _, placement)| in_environment(placement))
        .map(|(_, message, _)| message)
        .collect();
    if !blocking.is_empty() {
        blocking.sort();
        blocking.dedup();
        return Err(Error::Unreadable {
            commit: short(commit),
            problems: blocking,
        });
    }
    let mut not_rendered: Vec<NotRendered> = after
        .not_rendered
        .iter()
        .filter(|(_, dirs, placement)| {
            touches(&touched, dirs) && in_environment(&Some(placement.clone()))
        })
        .map(|(not, _, _)| not.clone())
        .collect();
    // A manifest that is a symbolic link is read here as the path it holds, while the tools
    // that apply the tree follow it: what it applies is unknown, never "unused".
    let mut links = Vec::new();
    for file in touched.iter().filter(|f| is_manifest_like(f)) {
        if repo.is_symlink_at(commit, file)? || repo.is_symlink_at(parent, file)? {
            links.push(file.clone());
        }
    }
    not_rendered.extend(links.iter().map(|file| NotRendered {
        build: file.clone(),
        reason: "it is a symbolic link: the tools that apply the tree follow it, and what it points to is not read here".to_owned(),
    }));
    let before = applied_at(&before_tree, renderer, &render);
    // A build not rendered after the commit applies unknown objects: those it rendered before
    // are not taken as removed (a remote resource added keeps every local one), and the build
    // is reported as not rendered. One rendered after the commit but not before (a remote base
    // made local) has all its objects added: they are what it applies from now on.
    let unknown: Vec<&PathBuf> = after
        .not_rendered
        .iter()
        .map(|(not, _, _)| &not.build)
        .collect();
    let unused = touched
        .iter()
        .filter(|file| {
            is_manifest_like(file)
                && file.as_path() != Path::new(crate::manifests::CONFIG_FILE)
                && !links.contains(file)
        })
        .filter(|file| {
            !after
                .used
                .iter()
                .chain(&before.used)
                .any(|u| file.starts_with(u))
        })
        .cloned()
        .collect();
    let (mut before_applied, mut after_applied) = (before.applied, after.applied);
    let released = render_releases(
        renderer,
        [
            (&before_tree, &mut before_applied),
            (&after_tree, &mut after_applied),
        ],
        &touched,
    );
    let mut charts: Vec<&PathBuf> = after_tree
        .index
        .charts
        .iter()
        .chain(&before_tree.index.charts)
        .filter(|chart| touched.iter().any(|t| t.starts_with(chart)))
        .filter(|chart| !released.charts.contains(*chart))
        .collect();
    charts.sort();
    charts.dedup();
    let charts = charts
        .into_iter()
        .map(|chart| NotRendered {
            build: chart.clone(),
            reason: "a Helm chart changes: the objects it makes are rendered by the releases that install it, not here".to_owned(),
        })
        .collect();
    let appliers = [after.appliers, before.appliers];
    let (before, after) = (before_applied, after_applied);
    let mut keys: Vec<&(PathBuf, String)> = after
        .keys()
        .chain(before.keys())
        .filter(|(unit, _)| !unknown.contains(&unit))
        .collect();
    keys.sort();
    keys.dedup();
    let mut changes = Vec::new();
    let mut formatting = Vec::new();
    for key in keys {
        let (old, new) = (before.get(key), after.get(key));
        if old.map(|o| &o.value) == new.map(|n| &n.value) {
            continue;
        }
        // Values spelled another way (`1Gi` for `1024Mi`, `720m0s` for `720m`): the same
        // object for Kubernetes, so no change.
        if let (Some(o), Some(n)) = (old, new)
            && crate::model::equivalent(&o.value, &n.value)
        {
            formatting.push(n.declared.0.clone());
            continue;
        }
        let Some(applied) = new.or(old) else {
            continue;
        };
        let placement = &applied.placement;
        let env = environment_of(config, &after_tree.index, placement, &key.0, environment);
        if environment.is_some_and(|wanted| env.as_deref() != Some(wanted)) {
            continue;
        }
        let (old, new) = (old.map(|o| o.value.clone()), new.map(|n| n.value.clone()));
        let unrendered = match released.outcome.get(key) {
            Some(outcome) => outcome.clone(),
            None => new
                .as_ref()
                .or(old.as_ref())
                .and_then(|v| render::release::unrendered(v, renderer.has_helm())),
        };
        let mut fields = Vec::new();
        diff_values(
            &applied.declared.0,
            "",
            old.as_ref().unwrap_or(&Value::Null),
            new.as_ref().unwrap_or(&Value::Null),
            &mut fields,
        );
        changes.push(ObjectChange {
            object: applied.id.clone(),
            unit: key.0.clone(),
            placement: placement.clone(),
            declared: applied.declared.clone(),
            environment: env,
            before: old,
            after: new,
            fields,
            applier: appliers
                .iter()
                .find_map(|a| pruning::applier_of(a, &key.0))
                .cloned(),
            unrendered,
            skips: None,
        });
    }
    waves::mark_skipped(config, renderer, &before_tree.index, &mut changes);
    let unknown_scope = changes
        .iter()
        .filter(|c| c.object.namespace.is_none())
        .map(|c| c.object.kind.clone())
        .filter(|kind| {
            [&before_tree, &after_tree]
                .iter()
                .all(|tree| tree.index.scopes.of(kind) == Scope::Unknown)
        })
        .collect();
    let secret_values = [&before_tree, &after_tree]
        .iter()
        .flat_map(|tree| &tree.index.declarations)
        .filter(|d| d.id.kind == "Secret" && d.id.group.is_empty())
        .flat_map(|d| secret_values_of(&d.value))
        .chain(before.values().chain(after.values()).flat_map(|o| {
            let secret = o.id.kind == "Secret" && o.id.group.is_empty();
            secret
                .then(|| secret_values_of(&o.value))
                .into_iter()
                .flatten()
        }))
        .collect();
    Ok(Changes {
        objects: changes,
        not_rendered,
        renderer: renderer.name().map(str::to_owned),
        unused,
        charts,
        unknown_scope,
        secret_values,
        formatting: formatting.into_iter().collect(),
    })
}

/// The values of a Secret: `data` as written (base64) and decoded, and `stringData`.
fn secret_values_of(secret: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (field, encoded) in [("data", true), ("stringData", false)] {
        for value in secret[field]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            if encoded && let Some(decoded) = render::flux::decode_base64(&text) {
                out.push(decoded);
            }
            out.push(text);
        }
    }
    out
}

/// `path` with `key` after it, written as [`FieldPath`](crate::manifests::path::FieldPath)
/// reads it back: a key with `.`, `[`, `]` or `=` in it (an annotation's `example.com/x`) in
/// quotes and brackets.
fn join(path: &str, key: &str) -> String {
    if key.contains(['.', '[', ']', '=']) {
        format!("{path}[\"{key}\"]")
    } else if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn named(items: &[Value]) -> bool {
    !items.is_empty() && items.iter().all(|i| i["name"].is_string())
}

/// The leaves that differ between two values, as field changes with `[name=x]` list keys.
pub fn diff_values(file: &Path, path: &str, old: &Value, new: &Value, out: &mut Vec<FieldChange>) {
    if old == new || path == "status" || path == "metadata.managedFields" {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                let child = join(path, key);
                let null = Value::Null;
                diff_values(
                    file,
                    &child,
                    a.get(key).unwrap_or(&null),
                    b.get(key).unwrap_or(&null),
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) if named(a) && named(b) => {
            let find =
                |items: &[Value], name: &Value| items.iter().find(|i| &i["name"] == name).cloned();
            let mut names: Vec<&Value> = a.iter().chain(b.iter()).map(|i| &i["name"]).collect();
            names.dedup();
            let mut seen = Vec::new();
            for name in names {
                if seen.contains(&name) {
                    continue;
                }
                seen.push(name);
                let child = format!("{path}[name={}]", name.as_str().unwrap_or_default());
                let (x, y) = (
                    find(a, name).unwrap_or(Value::Null),
                    find(b, name).unwrap_or(Value::Null),
                );
                diff_values(file, &child, &x, &y, out);
            }
        }
        (Value::Null, Value::Object(_) | Value::Array(_))
        | (Value::Object(_) | Value::Array(_), Value::Null) => {
            let (empty_old, empty_new) = match (old, new) {
                (Value::Null, Value::Object(_)) => (Value::Object(Map::new()), new.clone()),
                (Value::Object(_), Value::Null) => (old.clone(), Value::Object(Map::new())),
                _ => (old.clone(), new.clone()),
            };
            if empty_old.is_object() && empty_new.is_object() {
                diff_values(file, path, &empty_old, &empty_new, out);
            } else {
                out.push(leaf(file, path, old, new));
            }
        }
        _ => out.push(leaf(file, path, old, new)),
    }
}

fn leaf(file: &Path, path: &str, old: &Value, new: &Value) -> FieldChange {
    let some = |v: &Value| (!v.is_null()).then(|| v.clone());
    let ratio = old
        .as_f64()
        .zip(new.as_f64())
        .map(|(o, n)| n / o)
        .or_else(|| {
            let (o, n) = (old.as_str()?, new.as_str()?);
            memory_bytes(o)
                .zip(memory_bytes(n))
                .or_else(|| cpu_millis(o).zip(cpu_millis(n)))
                .map(|(o, n)| n / o)
        });
    FieldChange {
        file: file.to_owned(),
        path: path.to_owned(),
        old: some(old),
        new: some(new),
        ratio: ratio.filter(|r| r.is_finite()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn leaves_are_compared_with_named_list_items_and_ratios() {
        let old = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "api", "image": "api:1", "resources": {"limits": {"memory": "256Mi"}}},
            {"name": "side", "image": "side:1"}]}}}, "status": {"x": 1}});
        let new = json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [
            {"name": "api", "image": "api:1", "resources": {"limits": {"memory": "1Gi"}}},
            {"name": "side", "image": "side:2"}]}}}, "status": {"x": 2}});
        let mut out = Vec::new();
        diff_values(Path::new("f.yaml"), "", &old, &new, &mut out);
        let paths: Vec<(&str, Option<f64>)> =
            out.iter().map(|f| (f.path.as_str(), f.ratio)).collect();
        assert_eq!(
            paths,
            [
                ("spec.replicas", Some(1.0 / 3.0)),
                (
                    "spec.template.spec.containers[name=api].resources.limits.memory",
                    Some(4.0)
                ),
                ("spec.template.spec.containers[name=side].image", None),
            ]
        );
    }

    #[test]
    fn every_field_path_reads_back_to_its_field() {
        let old = json!({"metadata": {"annotations": {"example.com/owner": "a", "plain": "x"}}});
        let new = json!({"metadata": {"annotations": {"example.com/owner": "b", "plain": "y"}}});
        let mut out = Vec::new();
        diff_values(Path::new("f.yaml"), "", &old, &new, &mut out);
        let paths: Vec<&str> = out.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "metadata.annotations[\"example.com/owner\"]",
                "metadata.annotations.plain"
            ]
        );
        for field in &out {
            let path: crate::manifests::path::FieldPath = field.path.parse().unwrap();
            assert_eq!(path.get(&new), field.new.as_ref(), "{}", field.path);
        }
    }

    /// Writes `files` into the work tree of `repo` and commits them on HEAD.
    fn commit(repo: &git2::Repository, files: &[(&str, &str)], parents: &[git2::Oid]) -> Oid {
        let workdir = repo.workdir().unwrap();
        let mut index = repo.index().unwrap();
        for (name, text) in files {
            std::fs::write(workdir.join(name), text).unwrap();
            index.add_path(Path::new(name)).unwrap();
        }
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let parents: Vec<git2::Commit<'_>> = parents
            .iter()
            .map(|p| repo.find_commit(*p).unwrap())
            .collect();
        let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, "m", &tree, &parents)
            .unwrap()
    }

    /// ConfigMap `d/c` whose `v` is `value`.
    fn config_map(value: &str) -> String {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c, namespace: d}}\ndata: {{v: \"{value}\"}}\n"
        )
    }

    /// [`between`] with the default configuration, every environment.
    fn between_plain(repo: &ConfigRepo, parent: Oid, child: Oid) -> Result<Changes, Error> {
        let renderer = Renderer::from_path(Default::default());
        between(repo, &Config::default(), &renderer, parent, child, None)
    }

    #[test]
    fn both_trees_are_compared_and_none_is_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let parent = commit(&repo, &[("cm.yaml", &config_map("1"))], &[]);
        let child = commit(&repo, &[("cm.yaml", &config_map("2"))], &[parent]);
        let config_repo = ConfigRepo::open(dir.path()).unwrap();
        let changes = between_plain(&config_repo, parent, child).unwrap().objects;
        assert_eq!(changes.len(), 1);
        assert!(changes[0].before.is_some(), "the object was there before");
        assert!(!config_repo.state_dir().join("trees").exists());
    }

    #[test]
    fn a_duplicate_stops_a_commit_that_touches_either_of_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let copies = [("a.yaml", config_map("1")), ("b.yaml", config_map("1"))];
        let copies: Vec<(&str, &str)> = copies.iter().map(|(n, t)| (*n, t.as_str())).collect();
        let parent = commit(&repo, &copies, &[]);
        // The commit touches only the first copy; the index names the error after the second.
        let child = commit(&repo, &[("a.yaml", &config_map("2"))], &[parent]);
        let config_repo = ConfigRepo::open(dir.path()).unwrap();
        let error = between_plain(&config_repo, parent, child).unwrap_err();
        let Error::Unreadable { problems, .. } = &error else {
            panic!("{error}");
        };
        assert!(
            problems[0].starts_with("b.yaml") && problems[0].contains("a.yaml"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_new_object_lists_its_leaves() {
        let mut out = Vec::new();
        diff_values(
            Path::new("f.yaml"),
            "",
            &Value::Null,
            &json!({"spec": {"replicas": 2}}),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].path, "spec.replicas");
        assert_eq!(out[0].old, None);
        assert_eq!(out[0].new, Some(json!(2)));
    }
}

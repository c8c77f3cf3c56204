//! The repository index: every Kubernetes object the config repository declares, with the file,
//! document, line and byte span that declares it.
//!
//! Objects are grouped in *units*, what one tool would apply together: each kustomize build (a
//! kustomization no other kustomization includes, with everything it reaches), and each directory
//! of plain manifests outside any build. Namespaces are defaulted as kustomize does (the outermost
//! `namespace:` wins), duplicates are errors within a unit, and the same base reached from two
//! overlays is listed once per overlay. Reads the files under the root; writes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Serialize;
use serde_json::Value;

use super::builds::{Build, BuildGraph, join_relative};
use super::kustomize::{Kustomization, KustomizationFile};
use super::scope::{Scope, Scopes, namespace_of};
use super::source::{Location, ParsedDocument, ParsedFile};
use super::walk::{parse_all, walk};
use super::{Error, Result};
use crate::model::{ObjectRef, RefQuery};

/// How to build an index.
#[derive(Debug, Clone, Default)]
pub struct IndexOptions {
    /// gitignore-style patterns of paths to leave out, relative to the root.
    pub excludes: Vec<String>,
    /// Threads that parse files; 0 uses every core.
    pub threads: usize,
    /// The repository's URL and branch, when known: which appliers read it.
    pub origin: super::Upstream,
}

/// One object as the repository declares it.
#[derive(Debug, Clone)]
pub struct Declaration {
    /// The object, with the namespace written in the file (`None` when there is none).
    pub id: ObjectRef,
    /// Where it is declared.
    pub location: Location,
    /// The declared object.
    pub value: Value,
}

/// What one tool applies together.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Unit {
    /// The kustomization's directory, or the directory of plain manifests.
    pub path: PathBuf,
    /// The kustomization file, for a kustomize build.
    pub kustomization: Option<PathBuf>,
}

/// An object as it lands in the cluster: a declaration seen through the unit that applies it.
#[derive(Debug, Clone)]
pub struct IndexedObject {
    /// The object, its namespace as it will be applied.
    pub id: ObjectRef,
    /// Index into [`RepoIndex::declarations`].
    pub declaration: usize,
    /// Index into [`RepoIndex::units`].
    pub unit: usize,
}

/// Every object of a config repository, and what could not be read.
#[derive(Debug, Default)]
pub struct RepoIndex {
    /// The repository root.
    pub root: PathBuf,
    /// Every YAML file read, relative to the root.
    pub files: Vec<PathBuf>,
    /// Every object declaration, in file order.
    pub declarations: Vec<Declaration>,
    /// Every object per unit, sorted by file and line.
    pub objects: Vec<IndexedObject>,
    /// The later declarations of an object a unit declares more than once (each also an error):
    /// never edited on their own, always named.
    pub duplicates: Vec<IndexedObject>,
    /// The units, sorted by path.
    pub units: Vec<Unit>,
    /// The kustomization files.
    pub kustomizations: Vec<KustomizationFile>,
    /// The kustomize builds, by directory.
    pub builds: Vec<Build>,
    /// Helm chart directories (with a `Chart.yaml`): their files are rendered by Helm through a
    /// release, never read as manifests.
    pub charts: Vec<PathBuf>,
    /// The scopes the repository's own CRDs declare.
    pub scopes: Scopes,
    /// Kinds of objects without a namespace whose scope is neither built in nor declared by a
    /// CRD of the repository: taken without a namespace, and reported.
    pub unknown_scope: BTreeSet<String>,
    /// For each chart, the top-level values its templates read (`.Values.resources` gives
    /// `resources`); filled by [`RepoIndex::build`], which reads the templates.
    pub chart_values: BTreeMap<PathBuf, BTreeSet<String>>,
    /// For each chart, the `resources` blocks its templates write without reading
    /// `.Values`: the templates, relative to the root. A value hard-coded there is not the
    /// chart's values' to change.
    pub chart_literals: BTreeMap<PathBuf, Vec<PathBuf>>,
    /// For each chart, the values key each container (by the literal name its templates give
    /// it) takes its resources from: `sidecar` → `sidecar.resources`.
    pub chart_containers: BTreeMap<PathBuf, BTreeMap<String, String>>,
    /// Files that kustomizations use as patches.
    pub patches: Vec<PathBuf>,
    /// The objects strategic-merge patch files declare: where an overlay overrides a field.
    pub patch_declarations: Vec<Declaration>,
    /// YAML files that hold no Kubernetes object (Helm values, CI files).
    pub others: Vec<PathBuf>,
    /// Everything that could not be read; the rest is still indexed.
    pub errors: Vec<Error>,
    /// Files of values rather than objects (Helm values files, the YAML files at the top of a
    /// chart directory): the first document of each, where it is a mapping.
    pub values_files: BTreeMap<PathBuf, (Location, Value)>,
    /// The names objects are applied under when their build renames them (`namePrefix`,
    /// `nameSuffix`), each with the position of the object in [`RepoIndex::objects`]: learned
    /// from kustomize's own origin annotations (see `render::learn_renames`), never guessed.
    pub renamed: Vec<(ObjectRef, usize)>,
    /// For each release declaration whose chart is in the repository (by its position in
    /// [`RepoIndex::declarations`]), the values keys that reach each container it renders:
    /// learned by rendering it with marker values (see `render::learn_reach`), when helm is here.
    pub chart_reach: BTreeMap<usize, ValuesReach>,
    /// The repository's URL and branch, as far as known: which of its appliers read it.
    pub origin: super::Upstream,
    /// [`RepoIndex::appliers`], worked out from the declarations the first time it is asked.
    appliers: OnceLock<Vec<Applier>>,
    /// [`RepoIndex::argo_applications`], the same way.
    argo: OnceLock<Vec<(Value, PathBuf)>>,
}

/// A Flux Kustomization or an Argo CD Application source of the repository that reads this
/// repository, with the path it applies.
#[derive(Debug, Clone)]
pub struct Applier {
    /// The directory it applies, relative to the root.
    pub path: PathBuf,
    /// `Flux Kustomization flux-system/apps`, `Argo CD Application argocd/shop`.
    pub name: String,
    /// The file that declares it.
    pub file: PathBuf,
}

/// The values keys one rendered container takes, when it takes them from the values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reached {
    /// The key of its `resources` (`adService.resources`).
    pub resources: Option<String>,
    /// The key of its image's tag (`images.tag`).
    pub tag: Option<String>,
}

/// For each container a release renders, by workload kind, name and container name.
pub type ValuesReach = BTreeMap<(String, String, String), Reached>;

impl RepoIndex {
    /// Whether `build`, or a kustomization it includes, renames what it applies.
    pub fn renames(&self, build: &Build) -> bool {
        self.kustomizations
            .iter()
            .filter(|k| build.dirs.contains(&k.dir))
            .any(|k| {
                ["namePrefix", "nameSuffix"]
                    .iter()
                    .any(|key| k.kustomization.others.contains_key(*key))
            })
    }

    /// Every Flux Kustomization and Argo CD Application source (those an ApplicationSet makes
    /// included) of the repository that reads this repository, with its path. Worked out once
    /// from the declarations and the origin, which do not change after [`RepoIndex::build`].
    pub fn appliers(&self) -> &[Applier] {
        self.appliers.get_or_init(|| {
            let mut found = Vec::new();
            let mut consider = |path: &str, name: String, file: &Path| {
                if let Some(path) = super::normalise(Path::new(path.trim_start_matches('/'))) {
                    found.push(Applier {
                        path,
                        name,
                        file: file.to_owned(),
                    });
                }
            };
            for declaration in &self.declarations {
                let id = &declaration.id;
                if id.group != "kustomize.toolkit.fluxcd.io"
                    || id.kind != "Kustomization"
                    || !self.origin.flux_reads(&self.declarations, declaration)
                {
                    continue;
                }
                if let Some(path) = declaration
                    .value
                    .pointer("/spec/path")
                    .and_then(Value::as_str)
                {
                    let namespace = id.namespace.as_deref().unwrap_or("default");
                    let name = format!("Flux Kustomization {namespace}/{}", id.name);
                    consider(path, name, &declaration.location.file);
                }
            }
            for (app, file) in self.argo_applications() {
                let namespace = app
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("argocd");
                let name = format!(
                    "Argo CD Application {namespace}/{}",
                    app.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                );
                for source in super::appset::sources(app).filter(|s| self.origin.argo_reads(s)) {
                    if let Some(path) = source["path"].as_str() {
                        consider(path, name.clone(), file);
                    }
                }
            }
            found
        })
    }

    /// The objects applied under the name `id` by a build that renames them.
    pub fn renamed_as<'i>(&'i self, id: &ObjectRef) -> impl Iterator<Item = &'i IndexedObject> {
        self.renamed
            .iter()
            .filter(move |(rendered, _)| rendered == id)
            .map(|(_, at)| &self.objects[*at])
    }

    /// Every Argo CD Application of the repository, each with the file that declares it: those
    /// it declares, and those its ApplicationSets make (see [`super::appset`]). Worked out once,
    /// when every declaration has been read.
    pub fn argo_applications(&self) -> &[(Value, PathBuf)] {
        self.argo.get_or_init(|| {
            let mut out = Vec::new();
            for declaration in &self.declarations {
                let id = &declaration.id;
                if id.group != "argoproj.io" {
                    continue;
                }
                let file = declaration.location.file.clone();
                match id.kind.as_str() {
                    "Application" => out.push((declaration.value.clone(), file)),
                    "ApplicationSet" => out.extend(
                        super::appset::applications(&declaration.value, &self.files)
                            .into_iter()
                            .map(|app| (app, file.clone())),
                    ),
                    _ => {}
                }
            }
            out
        })
    }

    /// Reads and indexes every `.yaml`/`.yml` file under `root`, honouring `.gitignore` files and
    /// `options.excludes`. Fails only when the root cannot be listed; a bad file is an entry of
    /// [`RepoIndex::errors`].
    pub fn build(root: &Path, options: &IndexOptions) -> Result<Self> {
        let files = walk(root, &options.excludes)?;
        let parsed = parse_all(root, &files, options.threads);
        let mut index = Self::from_parsed(root, parsed);
        index.origin = options.origin.clone();
        for chart in index.charts.clone() {
            let scan = scan_templates(root, &chart.join("templates"));
            index.chart_values.insert(chart.clone(), scan.read);
            index.chart_literals.insert(chart.clone(), scan.literal);
            index.chart_containers.insert(chart, scan.containers);
        }
        Ok(index)
    }

    /// Indexes files already parsed, given with paths relative to the root, in any order.
    pub fn from_parsed(root: &Path, mut parsed: Vec<(PathBuf, ParsedFile)>) -> Self {
        parsed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut index = RepoIndex {
            root: root.to_owned(),
            ..Default::default()
        };
        index.charts = parsed
            .iter()
            .filter(|(file, _)| file.file_name().is_some_and(|n| n == "Chart.yaml"))
            .map(|(file, _)| parent(file))
            .collect();
        let mut docs = Vec::new();
        for (file, parsed) in parsed {
            // A chart's files are Helm's: its `templates/` are not YAML until rendered, `crds/`
            // and `charts/` are installed by Helm as they are, and the values files beside its
            // Chart.yaml are kept as values. Anything else under the chart's folder (examples,
            // a kustomization beside it) is Helm's nothing, and is indexed as any manifest.
            let helms = |chart: &PathBuf| {
                file.parent() == Some(chart.as_path())
                    || ["templates", "crds", "charts"]
                        .iter()
                        .any(|sub| file.starts_with(chart.join(sub)))
            };
            if let Some(chart) = index
                .charts
                .iter()
                .find(|chart| file.starts_with(chart) && helms(chart))
            {
                let beside = file.parent() == Some(chart.as_path())
                    && file.file_name() != Some("Chart.yaml".as_ref());
                if beside
                    && let Some(doc) = parsed.documents.into_iter().find(|d| d.value.is_object())
                {
                    index
                        .values_files
                        .insert(file.clone(), (document_location(&file, &doc), doc.value));
                }
                continue;
            }
            index.errors.extend(parsed.errors);
            index.files.push(file.clone());
            docs.push((file, parsed.documents));
        }
        index.read_kustomizations(&docs);
        let patches: HashSet<PathBuf> = index.patches.iter().cloned().collect();
        let scopes = Scopes::declared_by(docs.iter().flat_map(|(_, d)| d).map(|d| &d.value));
        for (file, documents) in docs {
            if patches.contains(&file) {
                index.read_patches(&file, documents);
            } else {
                index.read_objects(&file, documents);
            }
        }
        index.assign_units(&scopes);
        index.scopes = scopes;
        index
    }

    /// Places the objects of kinds whose scope the repository leaves unknown by `found` (a
    /// cluster's discovery): a cluster-scoped kind loses the namespace it was written with, a
    /// namespaced one without a namespace lands in `default`. Kinds still unknown stay so.
    pub fn rescope(&mut self, found: &Scopes) {
        self.scopes = std::mem::take(&mut self.scopes).merged(found);
        if self.unknown_scope.is_empty() {
            return;
        }
        for object in &mut self.objects {
            if !self.unknown_scope.contains(&object.id.kind) {
                continue;
            }
            let namespace = namespace_of(
                &object.id.kind,
                object.id.namespace.as_deref(),
                &self.scopes,
            );
            object.id = object.id.with_namespace(namespace.as_deref());
        }
        let scopes = &self.scopes;
        self.unknown_scope
            .retain(|kind| scopes.of(kind) == Scope::Unknown);
    }

    /// The objects `query` names.
    pub fn find(&self, query: &RefQuery) -> Vec<&IndexedObject> {
        self.objects
            .iter()
            .filter(|o| o.id.matches(query))
            .collect()
    }

    /// Every declaration of `object` in its unit, itself first: more than one when the unit
    /// declares it more than once.
    pub fn copies<'i>(&'i self, object: &'i IndexedObject) -> Vec<&'i Location> {
        let mut copies = vec![&self.declaration(object).location];
        copies.extend(
            self.duplicates
                .iter()
                .filter(|d| d.id == object.id && d.unit == object.unit)
                .map(|d| &self.declaration(d).location),
        );
        copies
    }

    /// The declaration behind an indexed object.
    pub fn declaration(&self, object: &IndexedObject) -> &Declaration {
        &self.declarations[object.declaration]
    }

    /// The unit an indexed object belongs to.
    pub fn unit(&self, object: &IndexedObject) -> &Unit {
        &self.units[object.unit]
    }

    /// The file that decides which environment an object is applied in: the kustomization of
    /// its build, or its own file outside any build. A base shared by two overlays belongs to
    /// each overlay's environment, not to the base's directory.
    pub fn placement(&self, object: &IndexedObject) -> &Path {
        let unit = self.unit(object);
        unit.kustomization
            .as_deref()
            .unwrap_or(&self.declaration(object).location.file)
    }

    fn read_kustomizations(&mut self, docs: &[(PathBuf, Vec<ParsedDocument>)]) {
        for (file, documents) in docs {
            let Some(doc) = documents.first() else {
                continue;
            };
            if !Kustomization::is_kustomization(file, &doc.value) {
                continue;
            }
            let location = document_location(file, doc);
            match Kustomization::from_value(&doc.value) {
                Ok(kustomization) => {
                    let dir = parent(file);
                    for patch in kustomization.patch_files() {
                        if let Some(path) = join_relative(&dir, patch) {
                            self.patches.push(path);
                        }
                    }
                    self.kustomizations.push(KustomizationFile {
                        location,
                        dir,
                        kustomization,
                    });
                }
                Err(message) => {
                    self.errors.push(Error::Kustomization {
                        file: file.clone(),
                        line: doc.line,
                        message,
                    });
                }
            }
        }
        self.patches.sort();
        self.patches.dedup();
    }

    fn read_objects(&mut self, file: &Path, documents: Vec<ParsedDocument>) {
        if documents
            .iter()
            .any(|d| Kustomization::is_kustomization(file, &d.value))
        {
            return;
        }
        let before = self.declarations.len();
        let mut foreign = false;
        let mut first_foreign = None;
        for doc in documents {
            let Value::Object(map) = &doc.value else {
                let message = format!(
                    "document {} is {}, not a mapping; a Kubernetes manifest is a mapping with apiVersion and kind",
                    doc.document + 1,
                    describe(&doc.value)
                );
                self.errors.push(Error::NotAnObject {
                    file: file.to_owned(),
                    line: doc.line,
                    message,
                });
                continue;
            };
            if !looks_like_kubernetes(map) {
                foreign = true;
                if first_foreign.is_none() {
                    first_foreign = Some((document_location(file, &doc), doc.value.clone()));
                }
                continue;
            }
            let location = document_location(file, &doc);
            if map.get("kind").and_then(Value::as_str) == Some("List") && map.contains_key("items")
            {
                self.read_list(file, doc, &location);
            } else {
                self.push_declaration(doc.value, location);
            }
        }
        if foreign && self.declarations.len() == before {
            self.others.push(file.to_owned());
            if let Some(values) = first_foreign {
                self.values_files.insert(file.to_owned(), values);
            }
        }
    }

    fn read_patches(&mut self, file: &Path, documents: Vec<ParsedDocument>) {
        for doc in documents {
            let location = document_location(file, &doc);
            if let Ok(id) = declared_id(&doc.value) {
                self.patch_declarations.push(Declaration {
                    id,
                    location,
                    value: doc.value,
                });
            }
        }
    }

    fn read_list(&mut self, file: &Path, mut doc: ParsedDocument, location: &Location) {
        let items = match doc.value["items"].take() {
            Value::Array(items) => items,
            _ => vec![],
        };
        for (i, item) in items.into_iter().enumerate() {
            let (line, span) = doc
                .items
                .get(i)
                .cloned()
                .unwrap_or((doc.line, doc.span.clone()));
            let location = Location {
                item: Some(i),
                line,
                span,
                ..location.clone()
            };
            if item.get("apiVersion").is_none() || item.get("kind").is_none() {
                let message = format!("item {} of the List has no apiVersion or kind", i + 1);
                self.errors.push(Error::NotAnObject {
                    file: file.to_owned(),
                    line,
                    message,
                });
                continue;
            }
            self.push_declaration(item, location);
        }
    }

    fn push_declaration(&mut self, value: Value, location: Location) {
        match declared_id(&value) {
            Ok(id) => self.declarations.push(Declaration {
                id,
                location,
                value,
            }),
            Err(message) => self.errors.push(Error::NotAnObject {
                file: location.file.clone(),
                line: location.line,
                message,
            }),
        }
    }

    fn assign_units(&mut self, scopes: &Scopes) {
        // Declarations are in file order, so each file's declarations are one contiguous run.
        let mut by_file: HashMap<&Path, Vec<usize>> = HashMap::new();
        for (i, decl) in self.declarations.iter().enumerate() {
            by_file
                .entry(decl.location.file.as_path())
                .or_default()
                .push(i);
        }
        let mut builds = BuildGraph::new(&self.kustomizations, &self.files);
        self.errors.append(&mut builds.errors);
        self.builds = Build::all(&builds, &self.kustomizations);
        let kustomization_files: HashMap<&Path, &Path> = self
            .kustomizations
            .iter()
            .map(|k| (k.dir.as_path(), k.location.file.as_path()))
            .collect();
        let mut members: BTreeMap<Unit, Vec<(usize, Option<String>)>> = BTreeMap::new();
        let mut reached: HashSet<&Path> = HashSet::new();
        for (root, files) in &builds.reach {
            let kustomization = kustomization_files
                .get(root.as_path())
                .map(|f| f.to_path_buf());
            let unit = Unit {
                path: root.clone(),
                kustomization,
            };
            let entry = members.entry(unit).or_default();
            for (file, namespace) in files {
                reached.insert(file.as_path());
                let decls = by_file.get(file.as_path()).into_iter().flatten();
                entry.extend(decls.map(|&d| (d, namespace.clone())));
            }
        }
        for file in &self.files {
            let Some(decls) = by_file.get(file.as_path()) else {
                continue;
            };
            if !reached.contains(file.as_path()) {
                let unit = Unit {
                    path: parent(file),
                    kustomization: None,
                };
                members
                    .entry(unit)
                    .or_default()
                    .extend(decls.iter().map(|&d| (d, None)));
            }
        }
        let destinations = self.argo_destinations();
        for (unit_index, (unit, decls)) in members.into_iter().enumerate() {
            let destination = destination_of(&destinations, &unit.path);
            self.add_unit_objects(unit_index, &unit, decls, destination.as_deref(), scopes);
            self.units.push(unit);
        }
        // Declaration order is file order, then line order.
        self.objects
            .sort_unstable_by_key(|o| (o.declaration, o.unit));
    }

    /// The Argo CD Applications of the repository that apply a directory of it to a
    /// destination namespace: (directory, whether subdirectories are applied too, namespace).
    fn argo_destinations(&self) -> Vec<(PathBuf, bool, String)> {
        let mut out = Vec::new();
        for (value, _) in self.argo_applications() {
            let Some(namespace) = value
                .pointer("/spec/destination/namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            else {
                continue;
            };
            let sources = super::appset::sources(value);
            for source in sources {
                let Some(path) = source["path"].as_str() else {
                    continue;
                };
                let Some(dir) = super::builds::normalise(Path::new(path.trim_start_matches('/')))
                else {
                    continue;
                };
                let recurse = source
                    .pointer("/directory/recurse")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                out.push((dir, recurse, namespace.to_owned()));
            }
        }
        out
    }

    /// Adds the objects of `unit`: each in the namespace its build gives it, else the one it is
    /// written with, else `destination` (an Argo CD Application's), else `default` when its
    /// kind is namespaced.
    fn add_unit_objects(
        &mut self,
        unit_index: usize,
        unit: &Unit,
        decls: Vec<(usize, Option<String>)>,
        destination: Option<&str>,
        scopes: &Scopes,
    ) {
        let mut seen: HashMap<ObjectRef, usize> = HashMap::new();
        for (decl, build_namespace) in decls {
            let declared = &self.declarations[decl];
            let kind = &declared.id.kind;
            // Argo CD gives its destination only to namespaced kinds.
            let destination = destination.filter(|_| scopes.of(kind) == Scope::Namespaced);
            let written = build_namespace
                .or_else(|| declared.id.namespace.clone())
                .or_else(|| destination.map(str::to_owned));
            if written.is_none() && scopes.of(kind) == Scope::Unknown {
                self.unknown_scope.insert(kind.clone());
            }
            let namespace = namespace_of(kind, written.as_deref(), scopes);
            let id = declared.id.with_namespace(namespace.as_deref());
            if let Some(&first) = seen.get(&id) {
                let first = &self.declarations[first].location;
                if first != &declared.location {
                    self.errors.push(Error::Duplicate {
                        object: id.to_string(),
                        unit: unit.path.clone(),
                        file: declared.location.file.clone(),
                        line: declared.location.line,
                        other_file: first.file.clone(),
                        other_line: first.line,
                    });
                    self.duplicates.push(IndexedObject {
                        id,
                        declaration: decl,
                        unit: unit_index,
                    });
                }
                continue;
            }
            seen.insert(id.clone(), decl);
            self.objects.push(IndexedObject {
                id,
                declaration: decl,
                unit: unit_index,
            });
        }
    }
}

/// The namespace an Argo CD Application gives the namespace-less objects of the unit at `dir`:
/// the one whose source path is the unit's directory, or a parent of it with `recurse`; the
/// deepest wins.
fn destination_of(destinations: &[(PathBuf, bool, String)], dir: &Path) -> Option<String> {
    destinations
        .iter()
        .filter(|(path, recurse, _)| dir == path || *recurse && dir.starts_with(path))
        .max_by_key(|(path, _, _)| path.components().count())
        .map(|(_, _, namespace)| namespace.clone())
}

/// Whether a document is meant as a Kubernetes object: an `apiVersion` of the form `v1` or
/// `group/v1beta1` and a `kind` that is a name. Other tools' files with those keys (ksonnet's
/// `app.yaml`: `apiVersion: 0.1.0`, `kind: ksonnet.io/app`) are not; a document that means to be
/// one but lacks a name is still reported.
fn looks_like_kubernetes(map: &serde_json::Map<String, Value>) -> bool {
    let (Some(api_version), Some(kind)) = (map.get("apiVersion"), map.get("kind")) else {
        return false;
    };
    let (Some(api_version), Some(kind)) = (api_version.as_str(), kind.as_str()) else {
        // Not strings: reported as a broken object, not set aside.
        return true;
    };
    let version = api_version.rsplit('/').next().unwrap_or_default();
    let version_ok =
        version.starts_with('v') && version[1..].starts_with(|c: char| c.is_ascii_digit());
    let kind_ok = kind.starts_with(|c: char| c.is_ascii_alphabetic())
        && kind.chars().all(|c| c.is_ascii_alphanumeric());
    version_ok && kind_ok
}

/// What the templates of a chart say about its values.
#[derive(Default)]
struct TemplateScan {
    /// The top-level keys of `.Values` they read.
    read: BTreeSet<String>,
    /// The templates (relative to the root) with a `resources:` block that reads no value.
    literal: Vec<PathBuf>,
    /// Each container with a literal name, and the values key its resources come from (empty
    /// when templates give the name different keys).
    containers: BTreeMap<String, String>,
}

/// Reads the templates under `dir` (relative to `root`), subdirectories and `_helpers.tpl`
/// included.
fn scan_templates(root: &Path, dir: &Path) -> TemplateScan {
    let mut scan = TemplateScan::default();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(root.join(&dir)) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let relative = dir.join(entry.file_name());
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(relative),
                Ok(t) if t.is_file() => {
                    let Ok(text) = std::fs::read_to_string(entry.path()) else {
                        continue;
                    };
                    for (at, _) in text.match_indices(".Values.") {
                        let key: String = text[at + 8..]
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        if !key.is_empty() {
                            scan.read.insert(key);
                        }
                    }
                    if literal_resources(&text) {
                        scan.literal.push(relative);
                    }
                    // A name that several templates give different keys (every service's
                    // `server`) tells nothing: kept empty.
                    for (name, key) in container_resources(&text) {
                        let known = scan.containers.entry(name).or_insert_with(|| key.clone());
                        if *known != key {
                            known.clear();
                        }
                    }
                }
                _ => {}
            }
        }
    }
    scan
}

/// The containers of a template with a literal `- name:`, each with the `.Values` key its
/// `resources` come from (`.Values.sidecar.resources` gives `sidecar.resources`).
fn container_resources(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = line.trim_start().strip_prefix("- name:") else {
            continue;
        };
        let name = name.trim().trim_matches(['"', '\'']);
        if name.is_empty() || name.contains("{{") {
            continue;
        }
        // The item runs to the next line at or left of its dash, template lines aside.
        let item = lines[i + 1..].iter().take_while(|l| {
            l.trim().is_empty() || indent(l) > indent(line) || l.trim_start().starts_with("{{")
        });
        let key = item.filter_map(|l| {
            let at = l.find(".Values.")?;
            let rest: String = l[at + 8..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                .collect();
            rest.ends_with("resources").then_some(rest)
        });
        if let Some(key) = key.into_iter().next() {
            out.push((name.to_owned(), key));
        }
    }
    out
}

/// Whether a template writes a `resources:` block whose lines read no value.
fn literal_resources(text: &str) -> bool {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    lines.iter().enumerate().any(|(i, line)| {
        if line.trim() != "resources:" {
            return false;
        }
        let block: Vec<&&str> = lines[i + 1..]
            .iter()
            .take_while(|l| {
                l.trim().is_empty() || indent(l) > indent(line) || l.trim_start().starts_with("{{")
            })
            .collect();
        !block.is_empty()
            && block
                .iter()
                .all(|l| !l.contains(".Values") && !l.contains("include"))
    })
}

/// The object identity of a declared manifest, or what is missing.
fn declared_id(value: &Value) -> std::result::Result<ObjectRef, String> {
    let field = |name: &str| value.get(name).and_then(Value::as_str);
    let (Some(api_version), Some(kind)) = (field("apiVersion"), field("kind")) else {
        return Err("apiVersion and kind must be strings".to_owned());
    };
    let metadata = value.get("metadata");
    // An object named by the server (`generateName`, Jobs especially) is known by its prefix.
    let name = |key: &str| {
        metadata
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
    };
    let Some(name) = name("name").or_else(|| name("generateName")) else {
        return Err(format!(
            "{kind} has no metadata.name or metadata.generateName"
        ));
    };
    let namespace = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str);
    Ok(ObjectRef::new(
        api_version,
        kind,
        namespace.filter(|n| !n.is_empty()),
        name,
    ))
}

/// Kinds that the repository's own CRDs declare cluster-scoped.
fn document_location(file: &Path, doc: &ParsedDocument) -> Location {
    Location {
        file: file.to_owned(),
        document: doc.document,
        item: None,
        line: doc.line,
        span: doc.span.clone(),
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) | Value::Number(_) | Value::String(_) => "a scalar",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

fn parent(file: &Path) -> PathBuf {
    file.parent().map(Path::to_owned).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::parse_text;

    fn index(files: &[(&str, &str)]) -> RepoIndex {
        let parsed = files
            .iter()
            .map(|(path, text)| (PathBuf::from(path), parse_text(Path::new(path), text)))
            .collect();
        RepoIndex::from_parsed(Path::new("/repo"), parsed)
    }

    fn ids(index: &RepoIndex) -> Vec<String> {
        index.objects.iter().map(|o| o.id.to_string()).collect()
    }

    const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n";

    #[test]
    fn plain_directories_default_the_namespace() {
        let idx = index(&[
            ("apps/api.yaml", DEPLOY),
            (
                "apps/ns.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n",
            ),
            ("values.yaml", "replicaCount: 2\n"),
        ]);
        assert_eq!(ids(&idx), ["Deployment/default/api", "Namespace/prod"]);
        assert_eq!(idx.others, [PathBuf::from("values.yaml")]);
        assert!(idx.errors.is_empty(), "{:?}", idx.errors);
    }

    #[test]
    fn an_argo_cd_application_s_destination_namespace_places_namespace_less_objects() {
        let app = |name: &str, path: &str, extra: &str| {
            format!(
                "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {{name: {name}, namespace: argocd}}\nspec:\n  destination: {{namespace: {name}}}\n  source: {{repoURL: https://git.example.com/x, path: {path}{extra}}}\n"
            )
        };
        let idx = index(&[
            ("argo/shop.yaml", &app("shop", "./apps/shop", "")),
            (
                "argo/all.yaml",
                &app("all", "apps/all", ", directory: {recurse: true}"),
            ),
            ("apps/shop/api.yaml", DEPLOY),
            (
                "apps/shop/pinned.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: pinned, namespace: ops}\n",
            ),
            (
                "apps/shop/ns.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n",
            ),
            (
                "apps/shop/sub/web.yaml",
                &DEPLOY.replace("name: api", "name: web"),
            ),
            (
                "apps/all/deep/x.yaml",
                &DEPLOY.replace("name: api", "name: x"),
            ),
            ("other/y.yaml", &DEPLOY.replace("name: api", "name: other")),
        ]);
        let mut found = ids(&idx);
        found.sort();
        assert_eq!(
            found,
            [
                "Application/argocd/all",
                "Application/argocd/shop",
                "Deployment/all/x",
                "Deployment/default/other",
                "Deployment/default/web",
                "Deployment/ops/pinned",
                "Deployment/shop/api",
                "Namespace/shop",
            ],
            "its destination for namespace-less namespaced objects of its path (recursing only when told), never over a written namespace"
        );
    }

    #[test]
    fn scope_comes_from_the_repository_s_crds_or_is_reported_unknown() {
        let crd = |kind: &str, scope: &str| {
            format!(
                "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {kind}s.example.com\nspec:\n  group: example.com\n  scope: {scope}\n  names: {{kind: {kind}, plural: x}}\n  versions: []\n"
            )
        };
        let object = |kind: &str| {
            format!("apiVersion: example.com/v1\nkind: {kind}\nmetadata:\n  name: one\n")
        };
        let csv = crd("ClusterServiceVersion", "Namespaced");
        let issuer = crd("ClusterIssuer", "Cluster");
        let declared = index(&[
            ("crds/csv.yaml", &csv),
            ("crds/issuer.yaml", &issuer),
            ("apps/csv.yaml", &object("ClusterServiceVersion")),
            ("apps/issuer.yaml", &object("ClusterIssuer")),
        ]);
        let found = ids(&declared);
        assert!(
            found.contains(&"ClusterServiceVersion/default/one".to_owned()),
            "{found:?}"
        );
        assert!(found.contains(&"ClusterIssuer/one".to_owned()), "{found:?}");
        assert!(declared.unknown_scope.is_empty());

        let undeclared = index(&[
            ("apps/csv.yaml", &object("ClusterServiceVersion")),
            ("apps/widget.yaml", &object("Widget")),
        ]);
        assert_eq!(
            ids(&undeclared),
            ["ClusterServiceVersion/one", "Widget/one"]
        );
        let unknown: Vec<&str> = undeclared
            .unknown_scope
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(unknown, ["ClusterServiceVersion", "Widget"]);

        // A cluster's discovery places what the repository could not.
        let mut placed = undeclared;
        let found = Scopes::default().with([
            ("ClusterServiceVersion".to_owned(), Scope::Namespaced),
            ("Gadget".to_owned(), Scope::Cluster),
        ]);
        placed.rescope(&found);
        assert_eq!(
            ids(&placed),
            ["ClusterServiceVersion/default/one", "Widget/one"]
        );
        let unknown: Vec<&str> = placed.unknown_scope.iter().map(String::as_str).collect();
        assert_eq!(unknown, ["Widget"]);
    }

    #[test]
    fn other_tools_files_are_set_aside_not_reported() {
        let idx = index(&[
            (
                "guestbook/app.yaml",
                "apiVersion: 0.1.0\nkind: ksonnet.io/app\nenvironments: {}\n",
            ),
            (
                "guestbook/broken.yaml",
                "apiVersion: v1\nkind: ConfigMap\ndata: {}\n",
            ),
        ]);
        assert_eq!(idx.others, [PathBuf::from("guestbook/app.yaml")]);
        assert_eq!(idx.errors.len(), 1, "{:?}", idx.errors);
        assert!(
            idx.errors[0]
                .to_string()
                .starts_with("guestbook/broken.yaml")
        );
    }

    #[test]
    fn objects_named_by_the_server_are_indexed_by_their_prefix() {
        let idx = index(&[
            (
                "jobs/migrate.yaml",
                "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: migrate-\n  namespace: shop\n",
            ),
            (
                "jobs/charts/Chart.yaml",
                "apiVersion: v2\nname: c\nversion: 1.0.0\n",
            ),
            (
                "jobs/charts/templates/job.yaml",
                "{{ if .Values.x }}\nkind: Job\n{{ end }}\n",
            ),
        ]);
        assert_eq!(ids(&idx), ["Job/shop/migrate-"]);
        assert!(idx.errors.is_empty(), "{:?}", idx.errors);
        assert_eq!(
            idx.charts,
            [PathBuf::from("jobs/charts")],
            "templates are Helm's"
        );
    }

    #[test]
    fn manifests_beside_a_chart_s_templates_are_indexed() {
        let deployment = |name: &str| {
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: shop}}\n"
            )
        };
        let idx = index(&[
            (
                "web/Chart.yaml",
                "apiVersion: v2\nname: web\nversion: 1.0.0\n",
            ),
            ("web/values.yaml", "replicaCount: 1\n"),
            (
                "web/templates/deployment.yaml",
                "{{ if .Values.x }}\nkind: Deployment\n{{ end }}\n",
            ),
            ("web/crds/widget.yaml", &deployment("installed-by-helm")),
            (
                "web/charts/sub/templates/x.yaml",
                &deployment("a-subchart-s"),
            ),
            ("web/deploy/plain.yaml", &deployment("plain")),
            ("web/examples/other.yaml", &deployment("example")),
        ]);
        assert_eq!(
            ids(&idx),
            ["Deployment/shop/plain", "Deployment/shop/example"],
            "only templates/, crds/ and charts/ are Helm's"
        );
        assert!(idx.values_files.contains_key(Path::new("web/values.yaml")));
    }

    #[test]
    fn overlays_set_namespaces_outermost_first() {
        let idx = index(&[
            (
                "base/kustomization.yaml",
                "namespace: base\nresources: [api.yaml]\n",
            ),
            ("base/api.yaml", DEPLOY),
            (
                "prod/kustomization.yaml",
                "namespace: prod\nresources: [../base]\npatches: [{path: patch.yaml}]\n",
            ),
            (
                "prod/patch.yaml",
                "- op: replace\n  path: /spec/replicas\n  value: 3\n",
            ),
            ("dev/kustomization.yaml", "resources: [../base]\n"),
        ]);
        assert!(idx.errors.is_empty(), "{:?}", idx.errors);
        assert_eq!(ids(&idx), ["Deployment/base/api", "Deployment/prod/api"]);
        let units: Vec<_> = idx
            .objects
            .iter()
            .map(|o| idx.unit(o).path.clone())
            .collect();
        assert_eq!(units, [PathBuf::from("dev"), PathBuf::from("prod")]);
        assert_eq!(idx.patches, [PathBuf::from("prod/patch.yaml")]);
    }

    #[test]
    fn duplicates_in_one_unit_name_both_places() {
        let idx = index(&[
            ("a/one.yaml", DEPLOY),
            ("a/two.yaml", &format!("# x\n{DEPLOY}")),
        ]);
        assert_eq!(ids(&idx), ["Deployment/default/api"]);
        let err = idx.errors[0].to_string();
        assert!(
            err.starts_with("a/two.yaml:2: Deployment/default/api is declared twice"),
            "{err}"
        );
        assert!(err.contains("a/one.yaml:1"), "{err}");
        // The same object in two directories is two units, not a duplicate.
        let idx = index(&[("a/one.yaml", DEPLOY), ("b/one.yaml", DEPLOY)]);
        assert!(idx.errors.is_empty());
        assert_eq!(idx.objects.len(), 2);
    }

    #[test]
    fn bad_documents_are_reported_and_the_rest_indexed() {
        let idx = index(&[
            ("a.yaml", "- just\n- a list\n"),
            ("b.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"),
            (
                "c.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n",
            ),
            ("d/kustomization.yaml", "resources: [missing.yaml]\n"),
        ]);
        assert_eq!(ids(&idx), ["ConfigMap/default/ok"]);
        let errors: Vec<_> = idx.errors.iter().map(ToString::to_string).collect();
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("a.yaml:1: document 1 is a sequence")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e
                .starts_with("b.yaml:1: ConfigMap has no metadata.name or metadata.generateName")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("`missing.yaml`")),
            "{errors:?}"
        );
    }

    #[test]
    fn lists_and_repository_crds() {
        let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- apiVersion: x.io/v1\n  kind: Bucket\n  metadata: {name: b}\n";
        let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: buckets.x.io}\nspec:\n  scope: Cluster\n  names: {kind: Bucket}\n";
        let idx = index(&[("l.yaml", list), ("crd.yaml", crd)]);
        assert_eq!(
            ids(&idx),
            [
                "CustomResourceDefinition/buckets.x.io",
                "ConfigMap/default/a",
                "Bucket/b"
            ]
        );
        let bucket = idx.declaration(&idx.objects[2]);
        assert_eq!((bucket.location.line, bucket.location.item), (7, Some(1)));
    }
}

//! `metadata.managedFields`: who owns which field, and how Apply and Update operations change
//! that, with the API server's conflict rules. Pure data; the handlers call it under the lock.

use serde_json::{Map, Value, json};

use crate::fieldset::{Path, Set, display};
use crate::schema::Schema;
use crate::typed::{compare, fieldset, merge, prune};

/// The operation a managedFields entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write (create, update, patch).
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// Identifies one entry: appliers are one entry whatever version they used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagerId {
    /// The `fieldManager`.
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// The API version the manager wrote with.
    pub api_version: String,
    /// `status`, `scale`, or none for the main resource.
    pub subresource: Option<String>,
}

impl ManagerId {
    fn same_entry(&self, other: &ManagerId) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }

    /// The manager as conflict messages name it.
    pub fn label(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if let Some(subresource) = &self.subresource {
            out.push_str(&format!(" with subresource {subresource:?}"));
        }
        if self.operation == Operation::Update {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }
}

/// One managedFields entry.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Who and how.
    pub id: ManagerId,
    /// When the entry last changed.
    pub time: Option<String>,
    /// The fields it owns.
    pub set: Set,
}

/// All entries of one object.
#[derive(Clone, Debug, Default)]
pub struct Managed {
    /// The entries, in no particular order until written.
    pub entries: Vec<Entry>,
}

/// A field another manager owns with a different value.
#[derive(Clone, Debug)]
pub struct Conflict {
    /// The owner, as messages name it.
    pub manager: String,
    /// The contested field.
    pub path: Path,
}

impl Managed {
    /// Reads `metadata.managedFields` of an object.
    pub fn read(object: &Value) -> Managed {
        let entries = object
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .map(|entries| entries.iter().filter_map(read_entry).collect())
            .unwrap_or_default();
        Managed { entries }
    }

    /// Writes the entries back, sorted as the API server sorts them; drops empty ones.
    pub fn write(mut self, object: &mut Value) {
        self.entries.retain(|e| !e.set.is_empty());
        self.entries.sort_by(|a, b| {
            (
                a.id.operation,
                &a.time,
                &a.id.manager,
                &a.id.api_version,
                &a.id.subresource,
            )
                .cmp(&(
                    b.id.operation,
                    &b.time,
                    &b.id.manager,
                    &b.id.api_version,
                    &b.id.subresource,
                ))
        });
        let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        if self.entries.is_empty() {
            metadata.shift_remove("managedFields");
            return;
        }
        let entries: Vec<Value> = self.entries.iter().map(write_entry).collect();
        metadata.insert("managedFields".into(), Value::Array(entries));
    }

    fn position(&self, id: &ManagerId) -> Option<usize> {
        self.entries.iter().position(|e| e.id.same_entry(id))
    }

    fn owned(&self) -> Set {
        self.entries
            .iter()
            .fold(Set::new(), |all, e| all.union(&e.set))
    }

    fn upsert(&mut self, id: &ManagerId, set: Set, time: &str) {
        match self.position(id) {
            Some(index) => {
                let entry = &mut self.entries[index];
                entry.id = id.clone();
                entry.set = set;
                entry.time = Some(time.to_string());
            }
            None => self.entries.push(Entry {
                id: id.clone(),
                time: Some(time.to_string()),
                set,
            }),
        }
    }

    /// Server-side apply of `config` onto `live` (both without server-owned metadata). Returns
    /// the merged object, or the conflicts when another manager owns a field it changes and
    /// `force` is off; with `force` the other managers lose those fields.
    pub fn apply(
        &mut self,
        schema: &Schema,
        live: &Value,
        config: &Value,
        id: &ManagerId,
        force: bool,
        time: &str,
    ) -> Result<Value, Vec<Conflict>> {
        let mut merged = merge(schema, live, config);
        let last = self.position(id).map(|i| self.entries[i].set.clone());
        self.upsert(id, fieldset(schema, config), time);
        if let Some(last) = last {
            prune(&mut merged, &last, &self.owned());
        }
        let comparison = compare(schema, live, &merged);
        let changed = comparison.modified.union(&comparison.added);
        let mut conflicts = Vec::new();
        for entry in &mut self.entries {
            if entry.id.same_entry(id) {
                continue;
            }
            let contested = entry.set.intersection(&changed);
            if contested.is_empty() {
                continue;
            }
            if force {
                entry.set = entry.set.difference(&contested);
            } else {
                let manager = entry.id.label();
                conflicts.extend(contested.paths().into_iter().map(|path| Conflict {
                    manager: manager.clone(),
                    path,
                }));
            }
        }
        if !conflicts.is_empty() {
            conflicts.sort_by(|a, b| (&a.manager, &a.path).cmp(&(&b.manager, &b.path)));
            return Err(conflicts);
        }
        Ok(merged)
    }

    /// Records an Update operation from `old` to `new`: the manager gains what it added or
    /// changed, loses what it removed, and every other manager loses what it changed.
    pub fn update(
        &mut self,
        schema: &Schema,
        old: &Value,
        new: &Value,
        id: &ManagerId,
        time: &str,
    ) {
        let comparison = compare(schema, old, new);
        let changed = comparison.modified.union(&comparison.added);
        if changed.is_empty() && comparison.removed.is_empty() {
            return;
        }
        for entry in &mut self.entries {
            if !entry.id.same_entry(id) {
                entry.set = entry.set.difference(&changed);
            }
        }
        let previous = self
            .position(id)
            .map(|i| self.entries[i].set.clone())
            .unwrap_or_default();
        let set = previous.union(&changed).difference(&comparison.removed);
        self.upsert(id, set, time);
    }
}

/// The 409 message for apply conflicts, worded as the API server words it.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [conflict] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            conflict.manager,
            display(&conflict.path)
        );
    }
    let mut lines = Vec::new();
    let mut current: Option<&str> = None;
    for conflict in conflicts {
        if current != Some(conflict.manager.as_str()) {
            lines.push(format!("conflict with {}:", conflict.manager));
            current = Some(conflict.manager.as_str());
        }
        lines.push(format!("- {}", display(&conflict.path)));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

fn read_entry(value: &Value) -> Option<Entry> {
    let operation = match value.get("operation")?.as_str()? {
        "Apply" => Operation::Apply,
        _ => Operation::Update,
    };
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    Some(Entry {
        id: ManagerId {
            manager: text("manager").unwrap_or_default(),
            operation,
            api_version: text("apiVersion").unwrap_or_default(),
            subresource: text("subresource"),
        },
        time: text("time"),
        set: Set::from_fields_v1(value.get("fieldsV1").unwrap_or(&Value::Null)),
    })
}

fn write_entry(entry: &Entry) -> Value {
    let mut out = Map::new();
    out.insert("manager".into(), json!(entry.id.manager));
    out.insert("operation".into(), json!(entry.id.operation.as_str()));
    out.insert("apiVersion".into(), json!(entry.id.api_version));
    if let Some(time) = &entry.time {
        out.insert("time".into(), json!(time));
    }
    out.insert("fieldsType".into(), json!("FieldsV1"));
    out.insert("fieldsV1".into(), entry.set.to_fields_v1());
    if let Some(subresource) = &entry.id.subresource {
        out.insert("subresource".into(), json!(subresource));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(manager: &str, operation: Operation) -> ManagerId {
        ManagerId {
            manager: manager.into(),
            operation,
            api_version: "apps/v1".into(),
            subresource: None,
        }
    }

    fn schema() -> Schema {
        Schema::Builtin("Deployment".into())
    }

    fn applied_by_gitops(config: &Value) -> (Managed, Value) {
        let mut managed = Managed::default();
        let gitops = id("gitops", Operation::Apply);
        let live = managed
            .apply(&schema(), &json!({}), config, &gitops, false, "t")
            .unwrap();
        (managed, live)
    }

    #[test]
    fn a_second_applier_conflicts_then_forces_ownership_away() {
        let first = json!({"spec": {"replicas": 2}});
        let second = json!({"spec": {"replicas": 5}});
        let other = id("remediator", Operation::Apply);
        let (mut managed, live) = applied_by_gitops(&first);
        let conflicts = managed
            .apply(&schema(), &live, &second, &other, false, "t")
            .unwrap_err();
        assert_eq!(
            conflict_message(&conflicts),
            "Apply failed with 1 conflict: conflict with \"gitops\": .spec.replicas"
        );
        let (mut managed, live) = applied_by_gitops(&first);
        let forced = managed
            .apply(&schema(), &live, &second, &other, true, "t")
            .unwrap();
        assert_eq!(forced, json!({"spec": {"replicas": 5}}));
        let mut object = json!({"metadata": {}});
        managed.write(&mut object);
        let entries = object["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["manager"], "remediator");
    }

    #[test]
    fn update_managers_are_named_with_their_version() {
        let two = json!({"spec": {"replicas": 2}});
        let (mut managed, live) = applied_by_gitops(&two);
        let scaled = json!({"spec": {"replicas": 4}});
        let kcm = id("kcm", Operation::Update);
        managed.update(&schema(), &live, &scaled, &kcm, "t");
        let gitops = id("gitops", Operation::Apply);
        let conflicts = managed
            .apply(&schema(), &scaled, &two, &gitops, false, "t")
            .unwrap_err();
        assert_eq!(conflicts[0].manager, "\"kcm\" using apps/v1");
    }
}

# Unit tests of the default policies; `cargo test` runs every test_ rule.
package remediator_test

import data.remediator

base := {
	"finding": {"code": "crash-loop-oom", "severity": "critical"},
	"action": {"name": "raise-memory", "baseRisk": "low", "reversible": true, "imperative": false},
	"target": {"kind": "Deployment", "namespace": "shop", "name": "api", "labels": {}},
	"environment": {"name": "dev", "riskTolerance": "medium"},
	"change": {"fields": [{"file": "d.yaml", "path": "spec.template.spec.containers[name=api].resources.limits.memory", "old": "512Mi", "new": "768Mi", "ratio": 1.5}]},
}

prod := object.union(base, {"environment": {"name": "prod", "riskTolerance": "medium"}})

test_low_risk_in_dev if {
	d := remediator.decision with input as base
	d.risk == "low"
	d.approvals.count == 0
	count(d.denials) == 0
}

test_production_raises_risk if {
	d := remediator.decision with input as prod
	d.risk == "medium"
	d.approvals.count == 1
}

test_memory_more_than_doubled_is_high if {
	doubled := object.union(base, {"change": {"fields": [{"file": "d.yaml", "path": "x.limits.memory", "old": "256Mi", "new": "1Gi", "ratio": 4}]}})
	d := remediator.decision with input as doubled
	d.risk == "high"
	d.approvals.count == 3
	d.escalated
}

test_scaling_below_two_in_production_is_denied if {
	one := object.union(prod, {"action": {"name": "scale-replicas", "baseRisk": "low", "reversible": true, "imperative": false}, "change": {"fields": [{"file": "k.yaml", "path": "replicas[name=api].count", "old": 3, "new": 1, "ratio": 0.33}]}})
	d := remediator.decision with input as one
	count(d.denials) == 1
	two := object.union(one, {"change": {"fields": [{"file": "k.yaml", "path": "spec.replicas", "old": 3, "new": 2, "ratio": 0.66}]}})
	e := remediator.decision with input as two
	count(e.denials) == 0
}

test_node_drain_is_critical if {
	drain := object.union(base, {"action": {"name": "drain-node", "baseRisk": "high", "reversible": true, "imperative": true}, "target": {"kind": "Node", "namespace": null, "name": "n1", "labels": {}}})
	d := remediator.decision with input as drain
	d.risk == "critical"
	d.approvals.teams == ["security"]
}

test_pvc_shrink_is_denied if {
	shrink := object.union(base, {"action": {"name": "expand-pvc", "baseRisk": "medium", "reversible": false, "imperative": false}, "change": {"fields": [{"file": "p.yaml", "path": "spec.resources.requests.storage", "old": "10Gi", "new": "5Gi", "ratio": 0.5}]}})
	d := remediator.decision with input as shrink
	count(d.denials) == 1
}

test_kube_system_is_critical if {
	system := object.union(base, {"target": {"kind": "Deployment", "namespace": "kube-system", "name": "coredns", "labels": {}}})
	d := remediator.decision with input as system
	d.risk == "critical"
}

test_breaking_crd_change_is_critical if {
	crd := object.union(base, {
		"target": {"kind": "CustomResourceDefinition", "namespace": null, "name": "widgets.example.com", "labels": {}},
		"environment": null,
		"change": {"fields": [], "breaking": [{"version": "v1", "path": ".spec.size", "change": "field removed"}]},
	})
	d := remediator.decision with input as crd
	d.risk == "critical"
	d.approvals.count == 2
	d.approvals.teams == ["security"]
	"critical: breaking CRD change at .spec.size (v1): field removed" in d.reasons
}

crd_change(change) := object.union(base, {
	"target": {"kind": "CustomResourceDefinition", "namespace": null, "name": "widgets.example.com", "labels": {}},
	"environment": null,
	"change": object.union({"fields": [], "breaking": []}, change),
})

test_a_crd_default_changed_is_high_not_critical if {
	warning := {"version": "v1", "path": ".spec.mode", "change": "default changed", "rule": "default-changed", "severity": "warning"}
	d := remediator.decision with input as crd_change({"breaking": [warning]})
	d.risk == "high"
	"high: CRD behaviour change at .spec.mode (v1): default changed" in d.reasons
}

test_live_objects_failing_the_new_schema_are_critical if {
	d := remediator.decision with input as crd_change({"existing": [{"version": "v1", "total": 340, "invalid": 12}]})
	d.risk == "critical"
	"critical: 12 of 340 existing objects (v1) fail the new schema" in d.reasons
	valid := remediator.decision with input as crd_change({"existing": [{"version": "v1", "total": 340, "invalid": 0}]})
	valid.risk != "critical"
}

test_live_objects_that_could_not_be_checked_are_high if {
	d := remediator.decision with input as crd_change({"existing": [{"version": "v1", "total": 340, "invalid": 0, "unchecked": true}]})
	d.risk == "high"
	"high: 340 existing objects (v1) could not be checked against the new schema" in d.reasons
}

test_changing_the_configuration_or_the_policies_is_critical if {
	trust := {
		"finding": {"code": "manual-change", "severity": null},
		"action": {"name": "manifest-change", "baseRisk": "low", "reversible": true, "imperative": false},
		"target": {"kind": "RemediatorConfiguration", "namespace": null, "name": "remediator", "labels": {}},
		"environment": null,
		"change": {"fields": [], "trust": ["remediator.yaml"]},
	}
	d := remediator.decision with input as trust
	d.risk == "critical"
	d.approvals.count == 2
	d.approvals.teams == ["security"]
}

test_a_change_that_touches_no_trusted_file_is_not_raised if {
	d := remediator.decision with input as object.union(base, {"change": {"fields": base.change.fields, "trust": []}})
	d.risk == "low"
}

claim := {
	"finding": {"code": "manual-change", "severity": null},
	"action": {"name": "manifest-change", "baseRisk": "low", "reversible": true, "imperative": false},
	"target": {"kind": "PersistentVolumeClaim", "namespace": "shop", "name": "data", "labels": {}},
	"environment": {"name": "prod", "riskTolerance": "medium"},
}

test_an_added_claim_is_not_a_shrunk_one if {
	added := object.union(claim, {"change": {"fields": [{"file": "c.yaml", "path": "spec.resources.requests.storage", "old": null, "new": "10Gi", "ratio": null}]}})
	d := remediator.decision with input as added
	count(d.denials) == 0
}

test_a_removed_claim_is_not_a_shrunk_one if {
	removed := object.union(claim, {"change": {"fields": [{"file": "c.yaml", "path": "spec.resources.requests.storage", "old": "10Gi", "new": null, "ratio": null}]}})
	d := remediator.decision with input as removed
	count(d.denials) == 0
}

test_a_shrunk_claim_is_denied if {
	shrunk := object.union(claim, {"change": {"fields": [{"file": "c.yaml", "path": "spec.resources.requests.storage", "old": "10Gi", "new": "5Gi", "ratio": 0.5}]}})
	d := remediator.decision with input as shrunk
	count(d.denials) == 1
}

test_removing_replicas_in_production_is_no_scale_down if {
	removed := object.union(prod, {"change": {"fields": [{"file": "d.yaml", "path": "spec.replicas", "old": 3, "new": null, "ratio": null}]}})
	d := remediator.decision with input as removed
	count(d.denials) == 0
}

test_a_removed_memory_limit_is_not_doubled if {
	removed := object.union(base, {"change": {"fields": [{"file": "d.yaml", "path": "x.limits.memory", "old": "1Gi", "new": null, "ratio": null}]}})
	d := remediator.decision with input as removed
	d.risk == "low"
}

# Every shape of change: an added object has a null `old` on every field, a removed one a null
# `new`, so no rule may compare a null by accident.
shape(kind, name, change_kind, fields, deletes) := object.union(prod, {
	"action": {"name": "manual-change", "baseRisk": "low", "reversible": true, "imperative": false},
	"finding": {"code": "manual-change", "severity": null},
	"target": {"kind": kind, "namespace": "shop", "name": name, "labels": {}},
	"change": {"kind": change_kind, "fields": fields, "deletes": deletes, "applier": "Flux Kustomization flux-system/apps"},
})

decide(change) := d if {
	d := remediator.decision with input as change
}

field(path, old, new, ratio) := {"file": "f.yaml", "path": path, "old": old, "new": new, "ratio": ratio}

test_added_and_removed_volume_claims_are_not_shrinks if {
	added := shape("PersistentVolumeClaim", "data", "added", [field("spec.resources.requests.storage", null, "10Gi", null)], false)
	count(decide(added).denials) == 0
	removed := shape("PersistentVolumeClaim", "data", "removed", [field("spec.resources.requests.storage", "10Gi", null, null)], false)
	count(decide(removed).denials) == 0
	grown := shape("PersistentVolumeClaim", "data", "modified", [field("spec.resources.requests.storage", "10Gi", "20Gi", 2)], false)
	count(decide(grown).denials) == 0
	shrunk := shape("PersistentVolumeClaim", "data", "modified", [field("spec.resources.requests.storage", "10Gi", "5Gi", 0.5)], false)
	count(decide(shrunk).denials) == 1
}

test_replicas_are_denied_only_when_scaled_down_below_two if {
	added := shape("Deployment", "api", "added", [field("spec.replicas", null, 1, null)], false)
	count(decide(added).denials) == 0
	removed := shape("Deployment", "api", "removed", [field("spec.replicas", 3, null, null)], false)
	count(decide(removed).denials) == 0
	scaled := shape("Deployment", "api", "modified", [field("spec.replicas", 3, 1, 0.33)], false)
	count(decide(scaled).denials) == 1
}

test_memory_of_added_and_removed_containers_is_not_a_ratio if {
	added := shape("Deployment", "api", "added", [field("spec.template.spec.containers[name=api].resources.limits.memory", null, "4Gi", null)], false)
	decide(added).risk == "medium"
	removed := shape("Deployment", "api", "removed", [field("spec.template.spec.containers[name=api].resources.limits.memory", "4Gi", null, null)], false)
	decide(removed).risk == "medium"
	doubled := shape("Deployment", "api", "modified", [field("spec.template.spec.containers[name=api].resources.limits.memory", "1Gi", "4Gi", 4)], false)
	decide(doubled).risk == "high"
}

test_a_removal_nothing_prunes_is_not_a_deletion if {
	kept := shape("Namespace", "shop", "removed", [], false)
	d := remediator.decision with input as kept
	d.risk == "medium"
	every r in d.reasons {
		not contains(r, "delet")
	}
}

test_pruned_removals_are_rated_by_what_they_delete if {
	decide(shape("Namespace", "shop", "removed", [], true)).risk == "critical"
	decide(shape("CustomResourceDefinition", "widgets.example.com", "removed", [], true)).risk == "critical"
	decide(shape("PersistentVolumeClaim", "data", "removed", [], true)).risk == "high"
	decide(shape("HelmRelease", "podinfo", "removed", [], true)).risk == "high"
	decide(shape("NetworkPolicy", "deny-all", "removed", [], true)).risk == "high"
	decide(shape("ClusterPolicy", "require-labels", "removed", [], true)).risk == "high"
	decide(shape("ConfigMap", "settings", "removed", [], true)).risk == "medium"
	d := remediator.decision with input as shape("HelmRelease", "podinfo", "removed", [], true)
	"high: deleting a HelmRelease uninstalls the release" in d.reasons
	"medium: removing it deletes it from the cluster (Flux Kustomization flux-system/apps prunes)" in d.reasons
}

test_a_rename_is_a_removal_and_an_addition if {
	old := shape("NetworkPolicy", "deny-all", "removed", [], true)
	new := shape("NetworkPolicy", "deny-everything", "added", [field("spec.podSelector", null, {}, null)], false)
	decide(old).risk == "high"
	decide(new).risk == "medium"
	count(decide(new).denials) == 0
}

test_an_added_namespace_or_crd_is_not_a_deletion if {
	decide(shape("Namespace", "shop", "added", [], false)).risk == "medium"
	decide(shape("CustomResourceDefinition", "widgets.example.com", "added", [], false)).risk == "medium"
}

test_a_change_that_skips_a_wave_is_critical_and_asks_for_security if {
	skipping := object.union(prod, {"change": object.union(prod.change, {"skipsWave": true, "earlierWave": "staging"})})
	d := remediator.decision with input as skipping
	d.risk == "critical"
	d.approvals.teams == ["security"]
	"critical: staging does not run this yet: the change skips a wave of promotion.order" in d.reasons
	proven := object.union(prod, {"change": object.union(prod.change, {"skipsWave": false, "earlierWave": null})})
	remediator.decision.risk == "medium" with input as proven
}

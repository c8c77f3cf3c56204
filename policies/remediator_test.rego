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

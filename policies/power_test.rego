# Unit tests of policies/power.rego; `cargo test` runs every test_ rule.
package power_test

import data.remediator

change(kind, fields) := {
	"finding": {"code": "manual-change", "severity": null},
	"action": {"name": "manifest-change", "baseRisk": "low", "reversible": true, "imperative": false},
	"target": {"kind": kind, "namespace": "shop", "name": "x", "labels": {}},
	"environment": {"name": "dev", "riskTolerance": "medium"},
	"change": {"kind": "modified", "fields": fields},
}

high(input_value) if {
	d := remediator.decision with input as input_value
	d.risk == "high"
}

low(input_value) if {
	d := remediator.decision with input as input_value
	d.risk == "low"
}

test_a_role_with_an_escalation_verb_is_high if {
	every verb in ["*", "escalate", "bind", "impersonate"] {
		high(change("Role", [{"path": "rules", "old": null, "new": [{"apiGroups": [""], "resources": ["pods"], "verbs": [verb]}]}]))
	}
}

test_a_role_that_reads_pods_is_low if {
	low(change("Role", [{"path": "rules", "old": null, "new": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}]))
}

test_an_escalation_verb_added_to_an_existing_rule_is_high if {
	high(change("ClusterRole", [{"path": "rules.verbs", "old": ["get"], "new": ["get", "impersonate"]}]))
}

test_an_unchanged_escalation_rule_is_not_raised_again if {
	rule := {"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}
	low(change("Role", [{"path": "rules", "old": [rule], "new": [rule, {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}]))
}

test_cluster_wide_secret_reads_are_high_and_namespaced_ones_are_not if {
	rule := {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}
	high(change("ClusterRole", [{"path": "rules", "old": null, "new": [rule]}]))
	low(change("Role", [{"path": "rules", "old": null, "new": [rule]}]))
}

test_a_binding_to_cluster_admin_is_high if {
	high(change("ClusterRoleBinding", [{"path": "roleRef.name", "old": null, "new": "cluster-admin"}]))
	low(change("ClusterRoleBinding", [{"path": "roleRef.name", "old": null, "new": "view"}]))
}

test_admission_webhooks_and_policies_are_high if {
	every kind in ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"] {
		high(change(kind, [{"path": "webhooks[name=x].rules", "old": null, "new": []}]))
	}
}

test_a_privileged_container_is_high_added_whole_or_as_a_field if {
	high(change("Deployment", [{"path": "spec.template.spec.containers", "old": null, "new": [{"name": "app", "securityContext": {"privileged": true}}]}]))
	high(change("Deployment", [{"path": "spec.template.spec.containers[name=app].securityContext.privileged", "old": null, "new": true}]))
	low(change("Deployment", [{"path": "spec.template.spec.containers[name=app].securityContext.privileged", "old": true, "new": false}]))
}

test_a_container_that_stays_privileged_is_not_raised_again if {
	c := {"name": "app", "securityContext": {"privileged": true}}
	low(change("Deployment", [{"path": "spec.template.spec.containers", "old": [c], "new": [c]}]))
}

test_host_namespaces_are_high if {
	every key in ["hostNetwork", "hostPID", "hostIPC"] {
		high(change("DaemonSet", [{"path": sprintf("spec.template.spec.%s", [key]), "old": null, "new": true}]))
	}
}

test_host_path_volumes_are_high if {
	high(change("Deployment", [{"path": "spec.template.spec.volumes", "old": null, "new": [{"name": "root", "hostPath": {"path": "/"}}]}]))
	high(change("Deployment", [{"path": "spec.template.spec.volumes[name=root].hostPath.path", "old": null, "new": "/"}]))
	low(change("Deployment", [{"path": "spec.template.spec.volumes", "old": null, "new": [{"name": "cache", "emptyDir": {}}]}]))
}

test_added_capabilities_are_high if {
	high(change("Deployment", [{"path": "spec.template.spec.containers[name=app].securityContext.capabilities.add", "old": ["NET_BIND_SERVICE"], "new": ["NET_BIND_SERVICE", "SYS_ADMIN"]}]))
	high(change("Deployment", [{"path": "spec.template.spec.containers", "old": null, "new": [{"name": "app", "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}]}]))
	low(change("Deployment", [{"path": "spec.template.spec.containers[name=app].securityContext.capabilities.add", "old": ["NET_ADMIN"], "new": []}]))
}

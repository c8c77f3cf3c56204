# Unit tests of the security rules; `cargo test` runs every test_ rule.
package remediator.security_test

import data.remediator.security

deployment(pod) := {"kind": "Deployment", "namespace": "shop", "name": "web", "object": {}, "pod": pod, "podPath": "spec.template.spec"}

web := {
	"name": "web", "image": "ghcr.io/acme/web:1.2.3",
	"securityContext": {"allowPrivilegeEscalation": false},
	"resources": {"limits": {"memory": "256Mi"}},
	"readinessProbe": {"httpGet": {"path": "/", "port": 80}},
}

hardened_with(container) := {
	"automountServiceAccountToken": false,
	"securityContext": {"runAsNonRoot": true},
	"containers": [container],
}

hardened := hardened_with(web)

rules(input_value) := {f.rule | some f in security.findings with input as input_value}

test_a_hardened_pod_has_no_finding if {
	count(rules(deployment(hardened))) == 0
}

test_privileged_root_and_host_access_are_found if {
	pod := {
		"hostNetwork": true, "hostPID": true,
		"volumes": [{"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}],
		"containers": [{"name": "agent", "image": "agent", "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}}}],
	}
	found := rules(deployment(pod))
	every rule in {"privileged", "run-as-root", "privilege-escalation", "added-capabilities", "host-path", "host-network", "host-pid", "no-limits", "latest-tag", "no-probes", "automount-token"} {
		found[rule]
	}
}

test_a_digest_or_a_tag_is_pinned if {
	pinned := hardened_with(object.union(web, {"image": "registry:5000/web@sha256:abc"}))
	not rules(deployment(pinned))["latest-tag"]
	latest := hardened_with(object.union(web, {"image": "web:latest"}))
	rules(deployment(latest))["latest-tag"]
}

test_a_plain_password_in_env_is_found_and_a_secret_ref_is_not if {
	plain := hardened_with(object.union(web, {"env": [{"name": "DB_PASSWORD", "value": "hunter2"}]}))
	rules(deployment(plain))["secret-in-env"]
	referenced := hardened_with(object.union(web, {"env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]}))
	not rules(deployment(referenced))["secret-in-env"]
	named := hardened_with(object.union(web, {"env": [{"name": "DB_SECRET_NAME", "value": "db-credentials"}]}))
	not rules(deployment(named))["secret-in-env"]
}

test_cluster_admin_bindings_are_critical if {
	binding := {"kind": "ClusterRoleBinding", "name": "ci", "object": {"roleRef": {"name": "cluster-admin"}}, "pod": null, "podPath": null}
	some f in security.findings with input as binding
	f.rule == "cluster-admin-binding"
	f.severity == "critical"
}

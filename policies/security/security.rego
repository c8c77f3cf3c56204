# Security posture rules, run by `remediator report security` over every object the repository
# declares and every live one. Replace them with `--rules DIR`.
#
# input:
#   kind, namespace, name   the object
#   object                  the whole object
#   pod                     its pod spec (a Pod's spec, a workload's template spec, a CronJob's
#                           job template's), or null
#   podPath                 where that pod spec sits (`spec.template.spec`)
#
# Output: data.remediator.security.findings, a set of {rule, severity, message, fix, path}.
package remediator.security

containers contains {"c": c, "path": sprintf("%s.containers[name=%s]", [input.podPath, c.name])} if {
	some c in input.pod.containers
}

containers contains {"c": c, "path": sprintf("%s.initContainers[name=%s]", [input.podPath, c.name])} if {
	some c in input.pod.initContainers
}

findings contains {"rule": "privileged", "severity": "high", "path": sprintf("%s.securityContext.privileged", [x.path]), "message": sprintf("container %s runs privileged: it has every capability of the node's root", [x.c.name]), "fix": "remove `privileged: true`; add only the capabilities it needs"} if {
	some x in containers
	x.c.securityContext.privileged == true
}

pod_non_root if input.pod.securityContext.runAsNonRoot == true

pod_non_root if input.pod.securityContext.runAsUser > 0

container_non_root(c) if c.securityContext.runAsNonRoot == true

container_non_root(c) if c.securityContext.runAsUser > 0

findings contains {"rule": "run-as-root", "severity": "medium", "path": sprintf("%s.securityContext.runAsNonRoot", [x.path]), "message": sprintf("container %s may run as root: neither it nor its pod sets runAsNonRoot or a non-zero runAsUser", [x.c.name]), "fix": "set `runAsNonRoot: true` (and a runAsUser the image supports) in the pod's securityContext"} if {
	some x in containers
	not pod_non_root
	not container_non_root(x.c)
}

# A finding with `edit` ({path, value}) has a safe edit: `propose --security` proposes it.
findings contains {"rule": "privilege-escalation", "severity": "medium", "path": sprintf("%s.securityContext.allowPrivilegeEscalation", [x.path]), "message": sprintf("container %s may gain more privileges than its parent process (allowPrivilegeEscalation is not false)", [x.c.name]), "fix": "set `allowPrivilegeEscalation: false`", "edit": {"path": sprintf("%s.securityContext.allowPrivilegeEscalation", [x.path]), "value": false}} if {
	some x in containers
	not x.c.securityContext.allowPrivilegeEscalation == false
}

dangerous := {"ALL", "SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYS_MODULE"}

findings contains {"rule": "added-capabilities", "severity": severity, "path": sprintf("%s.securityContext.capabilities.add", [x.path]), "message": sprintf("container %s adds capabilities %v", [x.c.name, x.c.securityContext.capabilities.add]), "fix": "drop ALL and add back only what it needs (NET_BIND_SERVICE to bind a low port)"} if {
	some x in containers
	count(x.c.securityContext.capabilities.add) > 0
	severity := capability_severity(x.c.securityContext.capabilities.add)
}

capability_severity(added) := "high" if {
	some cap in added
	dangerous[cap]
} else := "low"

findings contains {"rule": "host-path", "severity": "high", "path": sprintf("%s.volumes[name=%s].hostPath", [input.podPath, v.name]), "message": sprintf("volume %s mounts the node's %s", [v.name, v.hostPath.path]), "fix": "use an emptyDir, a ConfigMap or a PersistentVolumeClaim instead of the node's filesystem"} if {
	some v in input.pod.volumes
	v.hostPath
}

findings contains {"rule": "host-network", "severity": "high", "path": sprintf("%s.hostNetwork", [input.podPath]), "message": "the pod shares the node's network namespace", "fix": "remove `hostNetwork: true`; expose it with a Service"} if {
	input.pod.hostNetwork == true
}

findings contains {"rule": "host-pid", "severity": "high", "path": sprintf("%s.hostPID", [input.podPath]), "message": "the pod sees every process of the node", "fix": "remove `hostPID: true`"} if {
	input.pod.hostPID == true
}

findings contains {"rule": "no-limits", "severity": "low", "path": sprintf("%s.resources.limits", [x.path]), "message": sprintf("container %s has no memory limit: one leak can take the node's memory", [x.c.name]), "fix": "set a memory limit (and a request to match)"} if {
	some x in containers
	not x.c.resources.limits.memory
}

untagged(image) if {
	not contains(image, "@")
	parts := split(image, "/")
	not contains(parts[count(parts) - 1], ":")
}

findings contains {"rule": "latest-tag", "severity": "medium", "path": sprintf("%s.image", [x.path]), "message": sprintf("container %s runs %s, which names no fixed version", [x.c.name, x.c.image]), "fix": "pin a version tag or a digest, so that a restart runs what was reviewed"} if {
	some x in containers
	endswith(x.c.image, ":latest")
}

findings contains {"rule": "latest-tag", "severity": "medium", "path": sprintf("%s.image", [x.path]), "message": sprintf("container %s runs %s, which has no tag (so :latest)", [x.c.name, x.c.image]), "fix": "pin a version tag or a digest, so that a restart runs what was reviewed"} if {
	some x in containers
	untagged(x.c.image)
}

findings contains {"rule": "no-probes", "severity": "low", "path": x.path, "message": sprintf("container %s has neither a readiness nor a liveness probe", [x.c.name]), "fix": "add a readinessProbe, so that traffic waits until it is ready"} if {
	some x in containers
	startswith(x.path, sprintf("%s.containers", [input.podPath]))
	not x.c.readinessProbe
	not x.c.livenessProbe
}

findings contains {"rule": "automount-token", "severity": "low", "path": sprintf("%s.automountServiceAccountToken", [input.podPath]), "message": "the pod mounts a service-account token it may not use", "fix": "set `automountServiceAccountToken: false` unless it talks to the Kubernetes API"} if {
	is_object(input.pod)
	not input.pod.automountServiceAccountToken == false
}

secret_words := ["password", "passwd", "secret", "token", "apikey", "api_key", "private_key", "credentials"]

# A name that holds a reference to a secret (`DB_SECRET_NAME`, `TOKEN_FILE`) is not one.
reference_suffixes := ["_name", "_file", "_path", "_ref"]

secret_name(name) if {
	some word in secret_words
	contains(lower(name), word)
	not reference(name)
}

reference(name) if {
	some suffix in reference_suffixes
	endswith(lower(name), suffix)
}

findings contains {"rule": "secret-in-env", "severity": "high", "path": sprintf("%s.env[name=%s].value", [x.path, e.name]), "message": sprintf("container %s has %s as a plain value in its manifest", [x.c.name, e.name]), "fix": "move the value to a Secret and read it with valueFrom.secretKeyRef"} if {
	some x in containers
	some e in x.c.env
	secret_name(e.name)
	is_string(e.value)
	e.value != ""
}

findings contains {"rule": "default-namespace", "severity": "low", "path": "metadata.namespace", "message": sprintf("%s %s is in the default namespace", [input.kind, input.name]), "fix": "give it a namespace of its own, with its own RBAC and quotas"} if {
	input.namespace == "default"
}

findings contains {"rule": "cluster-admin-binding", "severity": "critical", "path": "roleRef.name", "message": sprintf("ClusterRoleBinding %s grants cluster-admin", [input.name]), "fix": "bind a role with only the verbs and resources needed"} if {
	input.kind == "ClusterRoleBinding"
	input.object.roleRef.name == "cluster-admin"
}

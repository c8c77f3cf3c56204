# What grants power: a change that adds or widens a way into the cluster is at least high,
# whatever it touches, because a pull request that adds one is how an attacker gets in.
#   - RBAC rules with escalation verbs (`*`, `escalate`, `bind`, `impersonate`), or read access to
#     Secrets in a ClusterRole (every namespace's Secrets); a binding to cluster-admin;
#   - admission webhooks and admission policies (they see or change every object they match);
#   - privileged containers, hostPath volumes, hostNetwork, hostPID, hostIPC, added capabilities.
# The input is the same as remediator.rego's. A field the change adds appears either as a leaf
# (`...securityContext.privileged`, old null) or, for a list added whole, as the list itself
# (`spec.template.spec.containers`, `rules`): both shapes are read.
package remediator

escalation_verbs := {"*", "escalate", "bind", "impersonate"}

secret_verbs := {"*", "get", "list", "watch"}

rbac_kinds := {"Role", "ClusterRole"}

admission_kinds := {
	"ValidatingWebhookConfiguration",
	"MutatingWebhookConfiguration",
	"ValidatingAdmissionPolicy",
	"ValidatingAdmissionPolicyBinding",
	"MutatingAdmissionPolicy",
	"MutatingAdmissionPolicyBinding",
}

container_lists := {"containers", "initContainers", "ephemeralContainers"}

host_namespaces := {"hostNetwork", "hostPID", "hostIPC"}

# The items of a field's old side, when it is a list.
old_items(f) := f.old if {
	is_array(f.old)
} else := []

# The last segment of a field path, without a `[name=x]` key.
last_segment(path) := name if {
	parts := split(path, ".")
	name := split(parts[count(parts) - 1], "[")[0]
}

# RBAC: a rule the change adds, with an escalation verb.
reasons contains {"level": "high", "reason": sprintf("%s grants `%s` on %v: it lets its holder gain permissions it was not given", [input.target.kind, verb, rule.resources])} if {
	input.target.kind in rbac_kinds
	some f in input.change.fields
	last_segment(f.path) == "rules"
	some rule in f.new
	not rule in old_items(f)
	some verb in rule.verbs
	verb in escalation_verbs
}

# RBAC: an escalation verb added to a rule's verbs.
reasons contains {"level": "high", "reason": sprintf("%s grants `%s` at %s: it lets its holder gain permissions it was not given", [input.target.kind, verb, f.path])} if {
	input.target.kind in rbac_kinds
	some f in input.change.fields
	last_segment(f.path) == "verbs"
	some verb in f.new
	verb in escalation_verbs
	not verb in old_items(f)
}

# RBAC: Secrets read in every namespace.
reasons contains {"level": "high", "reason": sprintf("ClusterRole %s reads Secrets in every namespace (%v on %v)", [input.target.name, rule.verbs, rule.resources])} if {
	input.target.kind == "ClusterRole"
	some f in input.change.fields
	last_segment(f.path) == "rules"
	some rule in f.new
	not rule in old_items(f)
	some resource in rule.resources
	resource in {"secrets", "*"}
	some verb in rule.verbs
	verb in secret_verbs
}

# RBAC: a binding to cluster-admin.
reasons contains {"level": "high", "reason": sprintf("%s binds cluster-admin: every permission on every object", [input.target.kind])} if {
	input.target.kind in {"RoleBinding", "ClusterRoleBinding"}
	some f in input.change.fields
	f.path == "roleRef.name"
	f.new == "cluster-admin"
}

# Admission control: a webhook or policy added or changed sees (or rewrites) what it matches.
reasons contains {"level": "high", "reason": sprintf("%s %s decides what the API server admits: a change to it is a change to every object it matches", [input.target.kind, input.change.kind])} if {
	input.target.kind in admission_kinds
	input.change.kind in {"added", "modified"}
}

# Workloads: a privileged container.
reasons contains {"level": "high", "reason": sprintf("a privileged container (%s): it has the node's powers", [f.path])} if {
	some f in input.change.fields
	endswith(f.path, "securityContext.privileged")
	f.new == true
}

reasons contains {"level": "high", "reason": sprintf("a privileged container (%s[name=%s]): it has the node's powers", [f.path, c.name])} if {
	some f in input.change.fields
	last_segment(f.path) in container_lists
	some c in f.new
	c.securityContext.privileged == true
	not privileged_before(f, c.name)
}

privileged_before(f, name) if {
	some old in old_items(f)
	old.name == name
	old.securityContext.privileged == true
}

# Workloads: the node's network, process or IPC namespace.
reasons contains {"level": "high", "reason": sprintf("%s: the pod shares the node's namespace", [f.path])} if {
	some f in input.change.fields
	last_segment(f.path) in host_namespaces
	f.new == true
}

# Workloads: a hostPath volume.
reasons contains {"level": "high", "reason": sprintf("a hostPath volume (%s): the node's files inside the pod", [f.path])} if {
	some f in input.change.fields
	contains(f.path, ".hostPath")
	f.old == null
	f.new != null
}

reasons contains {"level": "high", "reason": sprintf("a hostPath volume (%s[name=%s]): the node's files inside the pod", [f.path, v.name])} if {
	some f in input.change.fields
	last_segment(f.path) == "volumes"
	some v in f.new
	v.hostPath
	not v in old_items(f)
}

# Workloads: added Linux capabilities.
reasons contains {"level": "high", "reason": sprintf("capability %s added (%s)", [cap, f.path])} if {
	some f in input.change.fields
	endswith(f.path, "capabilities.add")
	some cap in f.new
	not cap in old_items(f)
}

reasons contains {"level": "high", "reason": sprintf("capability %s added (%s[name=%s])", [cap, f.path, c.name])} if {
	some f in input.change.fields
	last_segment(f.path) in container_lists
	some c in f.new
	some cap in c.securityContext.capabilities.add
	not capability_before(f, c.name, cap)
}

capability_before(f, name, cap) if {
	some old in old_items(f)
	old.name == name
	cap in old.securityContext.capabilities.add
}

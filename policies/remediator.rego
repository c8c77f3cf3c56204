# Default remediation policies: the risk of a proposed change, what is denied, and the approvals
# a merge needs. A platform team starts from these and edits them in its own policies directory.
#
# input:
#   finding     {code, severity} (on a merged commit: its Finding trailer, severity null)
#   action      {name, baseRisk, reversible, imperative} (manifest-change, low, for changes
#               that are not remediator's own)
#   target      {kind, namespace, name, labels}
#   environment {name, riskTolerance} or null
#   change      {kind: added|modified|removed, deletes: bool, applier: string or null,
#               fields: [{file, path, old, new, ratio}],
#               breaking: [{version, path, change, rule, severity: breaking|warning}],
#               existing: [{version, total, invalid, unchecked}], trust: [file],
#               unrendered: [{build, reason}], skipsWave: bool, earlierWave: string or null}
#               (breaking: for CustomResourceDefinitions;
#               existing: with a cluster, how many of a CRD's live custom resources fail its
#               new schema; trust: on a merged commit or a pull request, the
#               configuration and policy files it changes, which decide what later merges need;
#               unrendered: builds the change touches that could not be rendered;
#               skipsWave: on a merged commit or a pull request, the environment before this
#               one in promotion.order (earlierWave) does not run the object at these values)
#
# Output: data.remediator.decision = {risk, denials, approvals: {count, teams}, escalated, reasons}.
package remediator

levels := {"low": 0, "medium": 1, "high": 2, "critical": 3}

names := ["low", "medium", "high", "critical"]

production if startswith(input.environment.name, "prod")

# Every reason that sets a floor under the risk.
reasons contains {"level": input.action.baseRisk, "reason": sprintf("%s starts at %s risk", [input.action.name, input.action.baseRisk])}

reasons contains {"level": names[min([levels[input.action.baseRisk] + 1, 3])], "reason": "production raises the risk one level"} if production

reasons contains {"level": "medium", "reason": "the action cannot be undone by a revert"} if not input.action.reversible

reasons contains {"level": "high", "reason": sprintf("memory more than doubled at %s (x%.1f)", [f.path, f.ratio])} if {
	some f in input.change.fields
	contains(f.path, "memory")
	is_number(f.ratio)
	f.ratio > 2
}

reasons contains {"level": "critical", "reason": "draining a node evicts every pod on it"} if input.action.name == "drain-node"

reasons contains {"level": "critical", "reason": "kube-system runs the cluster itself"} if input.target.namespace == "kube-system"

# A CustomResourceDefinition change that breaks existing custom resources or clients (served or
# stored version removed, field removed, type changed, newly required, validation tightened; see
# docs/crd-compatibility.md).
reasons contains {"level": "critical", "reason": sprintf("breaking CRD change at %s (%s): %s", [b.path, b.version, b.change])} if {
	some b in input.change.breaking
	not b.severity == "warning"
}

# A CRD change that keeps objects valid but changes what they mean (a default added, changed or
# removed): at least high.
reasons contains {"level": "high", "reason": sprintf("CRD behaviour change at %s (%s): %s", [b.path, b.version, b.change])} if {
	some b in input.change.breaking
	b.severity == "warning"
}

# Live custom resources that the new schema rejects: they can still be read, but not updated
# until they are fixed.
reasons contains {"level": "critical", "reason": sprintf("%d of %d existing objects (%s) fail the new schema", [e.invalid, e.total, e.version])} if {
	some e in input.change.existing
	e.invalid > 0
}

# Live custom resources the new schema could not check: whether they break is unknown.
reasons contains {"level": "high", "reason": sprintf("%d existing objects (%s) could not be checked against the new schema", [e.total, e.version])} if {
	some e in input.change.existing
	e.unchecked
}

# The configuration and the policies decide what every later merge needs and who may approve
# it: changing them needs what a critical change needs.
reasons contains {"level": "critical", "reason": sprintf("%s decides what is applied and who must approve it", [f])} if {
	some f in input.change.trust
}

# A change that reaches a later wave of promotion.order before the earlier one runs it (copied
# by hand straight to prod, or a value made for this environment alone) was never proven where
# it should have been first: it needs what a critical change needs.
reasons contains {"level": "critical", "reason": sprintf("%s does not run this yet: the change skips a wave of promotion.order", [input.change.earlierWave])} if {
	input.change.skipsWave
}

# A build that could not be rendered (Helm not installed, a remote resource out of reach) changes
# the cluster in ways nobody has seen: at least high.
reasons contains {"level": "high", "reason": sprintf("%s is not rendered (%s): what it changes is unknown", [b.build, b.reason])} if {
	some b in input.change.unrendered
}

# Removing an object from Git deletes it from the cluster when what applies it prunes (a Flux
# Kustomization with `prune: true`, an Argo CD Application with automated pruning).
reasons contains {"level": "medium", "reason": sprintf("removing it deletes it from the cluster (%s prunes)", [input.change.applier])} if {
	input.change.deletes
}

reasons contains {"level": level, "reason": sprintf("deleting a %s %s", [input.target.kind, why])} if {
	input.change.deletes
	[level, why] := deletion_weight[input.target.kind]
}

deletion_weight := {
	"Namespace": ["critical", "deletes every object in it"],
	"CustomResourceDefinition": ["critical", "deletes every custom resource of its kind"],
	"PersistentVolumeClaim": ["high", "can delete its volume and the data on it"],
	"PersistentVolume": ["high", "can delete the data on it"],
	"HelmRelease": ["high", "uninstalls the release"],
	"Kustomization": ["high", "can delete everything it applied"],
	"Application": ["high", "can delete everything it applied"],
	"NetworkPolicy": ["high", "opens the traffic it restricted"],
	"ValidatingWebhookConfiguration": ["high", "lifts an admission control"],
	"MutatingWebhookConfiguration": ["high", "lifts an admission control"],
	"ValidatingAdmissionPolicy": ["high", "lifts an admission control"],
	"ValidatingAdmissionPolicyBinding": ["high", "lifts an admission control"],
	"ClusterPolicy": ["high", "lifts an admission control"],
	"Policy": ["high", "lifts an admission control"],
	"ConstraintTemplate": ["high", "lifts an admission control"],
}

# Changes that are refused whatever the approvals.
# In Rego `null < 2` is true: a field a change adds or removes has a null side, so every
# comparison asks for numbers first.
denials contains sprintf("scaling %s below 2 replicas in production leaves no redundancy", [f.path]) if {
	production
	some f in input.change.fields
	replica_field(f.path)
	is_number(f.old)
	is_number(f.new)
	f.new < 2
}

denials contains sprintf("shrinking a volume claim (%s) is not possible", [f.path]) if {
	some f in input.change.fields
	contains(f.path, "storage")
	is_number(f.ratio)
	f.ratio < 1
}

replica_field(path) if endswith(path, "replicas")

replica_field(path) if endswith(path, "].count")

replica_field(path) if endswith(path, "minReplicas")

risk_level := max({levels[r.level] | some r in reasons})

risk := names[risk_level]

tolerance := levels[input.environment.riskTolerance]

escalated if risk_level > tolerance

default escalated := false

base_approvals := [0, 1, 2, 2]

# Risk above the environment's tolerance needs one more approval.
extra_approvals := 1 if escalated

default extra_approvals := 0

teams := ["security"] if risk_level == 3

default teams := []

approvals := {"count": base_approvals[risk_level] + extra_approvals, "teams": teams}

decision := {
	"risk": risk,
	"denials": sort([d | some d in denials]),
	"approvals": approvals,
	"escalated": escalated,
	"reasons": sort([sprintf("%s: %s", [r.level, r.reason]) | some r in reasons]),
}

//! The `remediator` binary: `index`, `locate` and `set` on the example repository and on bad
//! input, with their exit codes (0 ok, 1 not found or no change, 2 bad input).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn remediator(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_remediator"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn repo_arg(dir: &Path) -> String {
    dir.to_str().unwrap().to_owned()
}

#[test]
fn index_lists_the_example_with_files_lines_and_environments() {
    let repo = repo_arg(&common::example_repo());
    let out = remediator(&["index", "--repo", &repo]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Deployment/shop/api"), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Deployment/shop-dev/api "))
        .unwrap();
    assert!(
        line.contains("apps/api/deployment.yaml:2") && line.contains("env dev"),
        "{line}"
    );
    assert!(stdout.trim_end().ends_with("; 0 errors"), "{stdout}");

    let out = remediator(&["index", "--repo", &repo, "--output", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let objects = report["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 28);
    let redis = objects
        .iter()
        .find(|o| o["kind"] == "StatefulSet" && o["namespace"] == "shop")
        .unwrap();
    assert_eq!(
        (redis["file"].as_str(), redis["line"].as_u64()),
        (Some("apps/redis/statefulset.yaml"), Some(2))
    );
    assert_eq!(redis["environment"], "prod");
    assert_eq!(
        report["patches"][0],
        "clusters/prod/patches/web-resources.yaml"
    );
}

#[test]
fn locate_finds_declarations_and_says_when_there_is_none() {
    let repo = repo_arg(&common::example_repo());
    let out = remediator(&["locate", "--repo", &repo, "deployment/shop/api"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "Deployment/shop/api  apps/api/deployment.yaml:2  (unit clusters/prod)\n"
    );
    let out = remediator(&["locate", "--repo", &repo, "Deployment/shop/nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Deployment/shop/nope: not declared"));
    let out = remediator(&["locate", "--repo", &repo, "Deployment"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("KIND/NAMESPACE/NAME"));
}

#[test]
fn set_prints_the_diff_and_writes_only_when_asked() {
    let copy = common::copy_tree(&common::example_repo(), false);
    let repo = repo_arg(copy.path());
    let file = copy.path().join("apps/worker/deployment.yaml");
    let before = std::fs::read_to_string(&file).unwrap();
    let args = [
        "set",
        "--repo",
        &repo,
        "Deployment/shop/worker",
        "spec.replicas=4",
    ];
    let out = remediator(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("-  replicas: 1\n+  replicas: 4\n"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);

    let out = remediator(&[&args[..], &["--write"]].concat());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        before.replace("replicas: 1", "replicas: 4")
    );

    // Asking again changes nothing: exit 1.
    let out = remediator(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("nothing to change"));
}

#[test]
fn set_errors_name_the_object_and_leave_files_alone() {
    let copy = common::copy_tree(&common::example_repo(), false);
    let repo = repo_arg(copy.path());
    let file = copy.path().join("apps/api/deployment.yaml");
    let before = std::fs::read_to_string(&file).unwrap();
    let cases: [(&[&str], i32, &str); 4] = [
        (
            &["spec.template.spec.containers[name=web].image=x", "--write"],
            1,
            "no item has name=web",
        ),
        (
            &["spec.replicas.count=1", "--write"],
            2,
            "`spec.replicas` is a scalar, not a mapping",
        ),
        (&["spec..replicas=1"], 2, "is not a field path"),
        (
            &["--remove", "spec.paused", "--write"],
            1,
            "there is no key `paused`",
        ),
    ];
    for (extra, code, message) in cases {
        let out =
            remediator(&[&["set", "--repo", &repo, "Deployment/shop/api"][..], extra].concat());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{extra:?}: {stderr}");
        assert!(stderr.contains(message), "{extra:?}: {stderr}");
        assert!(
            stderr.starts_with("error: Deployment/shop/api") || code == 2,
            "{stderr}"
        );
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
}

#[test]
fn bad_files_are_named_with_their_lines_and_the_rest_is_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).unwrap();
    let cm = |name: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n");
    write("good.yaml", cm("good").as_bytes());
    write(
        "syntax.yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n namespace: y\n",
    );
    write("list.yaml", b"# not a manifest\n- a\n- b\n");
    write(
        "latin1.yaml",
        b"apiVersion: v1\nkind: ConfigMap\ndata:\n  city: Z\xfcrich\n",
    );
    write("dup1.yaml", cm("dup").as_bytes());
    write("dup2.yaml", format!("---\n{}", cm("dup")).as_bytes());
    write(
        "multi.yaml",
        format!("{}---\na: [1, 2\n", cm("multi-ok")).as_bytes(),
    );

    let repo = repo_arg(dir.path());
    let out = remediator(&["index", "--repo", &repo, "--output", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dup", "good", "multi-ok"]);
    let errors: Vec<&str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    let expect = [
        "dup2.yaml:2: ConfigMap/default/dup is declared twice in .: here and at dup1.yaml:1",
        "latin1.yaml:4: not UTF-8",
        "list.yaml:2: document 1 is a sequence, not a mapping",
        "multi.yaml:6:",
        "syntax.yaml:5:2: YAML syntax error",
    ];
    for prefix in expect {
        assert!(
            errors.iter().any(|e| e.starts_with(prefix)),
            "no error starting {prefix:?} in {errors:#?}"
        );
    }
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
    // Text mode: the same errors on stderr.
    let out = remediator(&["index", "--repo", &repo]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr)
            .lines()
            .filter(|l| l.starts_with("error: "))
            .count(),
        expect.len()
    );
}

#[test]
fn a_bad_config_names_the_key_and_line() {
    let copy = common::copy_tree(&common::example_repo(), false);
    let config = copy.path().join("remediator.yaml");
    let text_before = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text_before.replace(
            "riskTolerance: high",
            "riskTolerance: high\n    riskTolerence: low",
        ),
    )
    .unwrap();
    let out = remediator(&["index", "--repo", &repo_arg(copy.path())]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("remediator.yaml:11:") && stderr.contains("riskTolerence"),
        "{stderr}"
    );
}

fn keys_of(section: &Value) -> Vec<String> {
    section["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

/// The JSON Schema and the parser agree: a value for every property the schema declares is
/// accepted, and a key the schema does not declare is refused.
#[test]
fn the_config_schema_matches_the_parser() {
    use remediator::config::Config;
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/remediator.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let sample = |key: &str| -> &str {
        match key {
            "fieldManager" => "fieldManager: x\n",
            "excludes" => "excludes: [a]\n",
            "environments" => {
                "environments: [{name: a, paths: [x], context: c, kubeconfig: k, riskTolerance: low}]\n"
            }
            "forge" => {
                "forge: {type: github, repository: a/b, baseBranch: main, apiUrl: http://x, app: {id: 1, privateKeyEnv: KEY, installationId: 2}}\n"
            }
            "git" => "git: {remote: upstream, author: {name: bot, email: bot@example.com}}\n",
            "reconcile" => {
                "reconcile: {rollback: pull-request, healthTimeoutSeconds: 60, lockNamespace: ops, lockWaitSeconds: 0, conflicts: {controllers: skip-field, others: force}}\n"
            }
            "audit" => "audit: {path: audit/remediator.jsonl, signingKey: {env: AUDIT_KEY}}\n",
            "approvals" => {
                "approvals: {teams: {security: [carol, \"@acme/security\"]}, requiredChecks: [ci/test]}\n"
            }
            "serve" => {
                "serve: {listen: \"127.0.0.1:9000\", environment: dev, debounceSeconds: 2, resyncSeconds: 60, queue: 8, metricsIntervalSeconds: 10, leaseSeconds: 5, leaseNamespace: ops, advertise: \"10.0.0.1:8080\", githubWebhookSecret: {env: HOOK}, alertmanagerToken: {file: /t}, alerts: [{alert: A, finding: crash-loop, kind: Pod, label: pod}]}\n"
            }
            "clusters" => {
                "clusters: [{name: eu, context: c, kubeconfig: k}]\nenvironments: [{name: a, paths: [x], clusters: [eu]}]\n"
            }
            "metrics" => {
                "metrics: {prometheus: {url: \"https://prometheus:9090\", bearerToken: {env: PROM_TOKEN}, caFile: /ca.pem, labels: {cluster: prod-eu-1}, windowDays: 14, stepSeconds: 60, concurrency: 4}}\n"
            }
            "llm" => {
                "llm: {url: \"http://127.0.0.1:8000/v1\", model: m, apiKey: {env: LLM_KEY}, timeoutSeconds: 5, caFile: /ca.pem}\n"
            }
            "promotion" => {
                "environments: [{name: a, paths: [x], context: ca}, {name: b, paths: [y], context: cb}]\npromotion: {order: [a, b], soakSeconds: 60, canary: 1, maxParallel: 2}\n"
            }
            "render" => "render: {allowRemote: [github.com/acme, charts.example.com]}\n",
            other => panic!("the schema declares `{other}`, which this test does not know"),
        }
    };
    let top = schema["properties"].as_object().unwrap();
    for key in top.keys() {
        Config::parse(Path::new("r.yaml"), sample(key)).unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    let env_keys: Vec<&String> = top["environments"]["items"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        env_keys,
        [
            "name",
            "paths",
            "context",
            "kubeconfig",
            "clusters",
            "riskTolerance"
        ]
    );
    assert_eq!(
        keys_of(&top["promotion"]),
        ["order", "soakSeconds", "canary", "maxParallel"]
    );
    assert_eq!(
        keys_of(&top["clusters"]["items"]),
        ["name", "context", "kubeconfig"]
    );
    let forge_keys: Vec<&String> = top["forge"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        forge_keys,
        ["type", "repository", "baseBranch", "apiUrl", "app"]
    );
    assert_eq!(
        keys_of(&top["forge"]["properties"]["app"]),
        ["id", "privateKeyFile", "privateKeyEnv", "installationId"]
    );
    let keys = |section: &str| -> Vec<String> {
        top[section]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(keys("git"), ["remote", "author"]);
    assert_eq!(
        keys("reconcile"),
        [
            "rollback",
            "healthTimeoutSeconds",
            "lockNamespace",
            "lockWaitSeconds",
            "conflicts"
        ]
    );
    let all = Config::parse(
        Path::new("r.yaml"),
        &["git", "reconcile", "audit", "approvals"]
            .map(sample)
            .concat(),
    )
    .unwrap();
    assert_eq!(all.git.remote, "upstream");
    assert_eq!(all.git.author.email, "bot@example.com");
    assert_eq!(
        all.reconcile.rollback,
        remediator::config::RollbackMode::PullRequest
    );
    assert_eq!(
        all.reconcile.health_timeout,
        std::time::Duration::from_secs(60)
    );
    assert_eq!(all.reconcile.lock_namespace, "ops");
    assert_eq!(all.reconcile.lock_wait, std::time::Duration::ZERO);
    assert_eq!(
        all.audit_path.as_deref(),
        Some(Path::new("audit/remediator.jsonl"))
    );
    assert_eq!(all.teams["security"], ["carol", "@acme/security"]);
    assert_eq!(all.required_checks, ["ci/test"]);
    let zero = Config::parse(
        Path::new("r.yaml"),
        "reconcile:\n  healthTimeoutSeconds: 0\n",
    );
    assert_eq!(
        zero.unwrap_err().to_string(),
        "r.yaml:2: `reconcile.healthTimeoutSeconds`: must be at least 1"
    );
    assert!(Config::parse(Path::new("r.yaml"), "unknown: 1\n").is_err());
    // The example's configuration is valid.
    Config::load(&common::example_repo()).unwrap();
}

#[test]
fn secret_values_never_reach_the_output() {
    let copy = common::copy_tree(&common::example_repo(), false);
    let repo = repo_arg(copy.path());
    let out = remediator(&[
        "set",
        "--repo",
        &repo,
        "Secret/shop/api-db",
        "data.password=bmV3LXBhc3N3b3Jk",
        "stringData.extra=plain-text-secret",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    for secret in ["Y2hhbmdlLW1l", "bmV3LXBhc3N3b3Jk", "plain-text-secret"] {
        assert!(!all.contains(secret), "{secret} leaked: {all}");
    }
    assert!(
        all.contains("-  password: *** (before)\n+  password: *** (after)\n"),
        "{all}"
    );
    assert!(all.contains("+  extra: *** (after)\n"), "{all}");
}

/// `propose` on a copy of the example and its snapshot, with `llm:` pointing at `endpoint`
/// (timeout 1 s) when one is given.
fn propose_explained(endpoint: Option<&str>, output: &str) -> Output {
    let copy = common::copy_tree(&common::example_repo(), false);
    if let Some(endpoint) = endpoint {
        let config = copy.path().join("remediator.yaml");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "llm: {{url: \"{endpoint}\", model: explainer-1, timeoutSeconds: 1}}\n"
        ));
        std::fs::write(&config, text).unwrap();
    }
    propose_example(&repo_arg(copy.path()), output, &[])
}

/// `propose` of `repo` on the example snapshot at a fixed time, with no forge.
fn propose_example(repo: &str, output: &str, extra: &[&str]) -> Output {
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/snapshot");
    let mut args = vec![
        "propose",
        "--repo",
        repo,
        "--snapshot",
        snapshot.to_str().unwrap(),
        "--forge",
        "none",
        "--output",
        output,
        "--now",
        "2026-03-01T12:00:00Z",
    ];
    args.extend_from_slice(extra);
    remediator(&args)
}

/// The proposals of a JSON report without their explanations: what was decided.
fn decided(out: &Output) -> Value {
    let mut report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stderr)));
    let mut proposals = report["proposals"].take();
    for proposal in proposals.as_array_mut().unwrap() {
        proposal.as_object_mut().unwrap().remove("plainWords");
        proposal.as_object_mut().unwrap().remove("plain_words");
    }
    proposals
}

#[test]
fn an_explanation_is_labelled_generated_and_changes_nothing_decided() {
    use testkit::llm::{Behaviour, FakeLlm};
    let answer = "The api container is killed for memory; the change gives it more.";
    let fine = FakeLlm::start(Behaviour::Answer(answer.into()));
    let body = propose_explained(Some(fine.url()), "markdown");
    let printed = text(&body.stdout);
    assert_eq!(body.status.code(), Some(0), "{}", text(&body.stderr));
    assert!(printed.contains("### In plain words"), "{printed}");
    assert!(
        printed.contains("> Generated by `explainer-1`"),
        "{printed}"
    );
    assert!(printed.contains(answer), "{printed}");
    // What it was sent: the finding and the change, nothing secret.
    let sent = fine.sent();
    assert!(!sent.is_empty());
    let prompts: Vec<&str> = sent
        .iter()
        .map(|s| s["messages"][1]["content"].as_str().unwrap())
        .collect();
    assert!(
        prompts
            .iter()
            .any(|p| p.contains("Finding: crash-loop-oom")),
        "{prompts:?}"
    );
    assert!(prompts.iter().all(|p| p.contains("Proposed change:")));
    for secret in ["Y2hhbmdlLW1l", "change-me"] {
        assert!(!serde_json::to_string(&sent).unwrap().contains(secret));
    }
    // Slow or failing: the pull request still opens, saying so; nothing decided changes.
    let slow = FakeLlm::start(Behaviour::Slow(
        std::time::Duration::from_secs(5),
        answer.into(),
    ));
    let failing = FakeLlm::start(Behaviour::Fail(500, "model overloaded".into()));
    let baseline = decided(&propose_explained(None, "json"));
    for (endpoint, reason) in [
        (slow.url(), "no answer within 1s"),
        (
            failing.url(),
            "HTTP 500 Internal Server Error: model overloaded",
        ),
    ] {
        let body = propose_explained(Some(endpoint), "markdown");
        let printed = text(&body.stdout);
        assert_eq!(body.status.code(), Some(0), "{}", text(&body.stderr));
        assert!(
            printed.contains(&format!("The explanation was not available: {reason}.")),
            "{printed}"
        );
        assert!(!printed.contains(answer), "{printed}");
        let json = propose_explained(Some(endpoint), "json");
        assert_eq!(decided(&json), baseline);
    }
    assert_eq!(
        decided(&propose_explained(Some(fine.url()), "json")),
        baseline
    );
}

#[test]
fn the_capacity_and_security_reports_read_the_example() {
    let repo = repo_arg(&common::example_repo());
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/snapshot");
    let snapshot = snapshot.to_str().unwrap();
    let report = |kind: &str, extra: &[&str]| {
        let mut args = vec!["report", kind, "--repo", &repo];
        args.extend_from_slice(extra);
        remediator(&args)
    };
    let capacity = report(
        "capacity",
        &["--snapshot", snapshot, "--now", "2026-03-01T12:00:00Z"],
    );
    let printed = text(&capacity.stdout);
    assert_eq!(
        capacity.status.code(),
        Some(0),
        "{}",
        text(&capacity.stderr)
    );
    assert!(
        printed.contains("| `shop` | 2800m used of 7250m requested (39 %) |"),
        "{printed}"
    );
    assert!(
        printed.contains("| `Deployment/shop/api` | `api` | 511Mi of 512Mi (100 %) |"),
        "{printed}"
    );
    assert!(
        printed.contains("| `StatefulSet/shop/redis` | `redis` | 1.78 | 3.62 |"),
        "{printed}"
    );
    // Capacity needs a cluster; security reads the repository alone, with file and line.
    let alone = report("capacity", &[]);
    assert_eq!(alone.status.code(), Some(2), "{}", text(&alone.stderr));
    assert!(
        text(&alone.stderr).contains("reads a cluster"),
        "{}",
        text(&alone.stderr)
    );
    let security = report("security", &["--output", "json"]);
    assert_eq!(
        security.status.code(),
        Some(0),
        "{}",
        text(&security.stderr)
    );
    let found: Value = serde_json::from_slice(&security.stdout).unwrap();
    let first = &found["findings"][0];
    assert!(
        first["file"].as_str().unwrap().ends_with(".yaml"),
        "{first}"
    );
    assert!(first["line"].as_u64().unwrap() >= 1, "{first}");
}

#[test]
fn propose_security_turns_a_rule_s_safe_edit_into_a_weighed_pull_request() {
    let copy = common::copy_tree(&common::example_repo(), false);
    let repo = repo_arg(copy.path());
    let propose = |extra: &[&str]| {
        let out = propose_example(&repo, "json", extra);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        report["proposals"].as_array().unwrap().clone()
    };
    let insecure = |proposals: &[Value]| -> Vec<Value> {
        proposals
            .iter()
            .filter(|p| p["finding"] == "insecure-workload")
            .cloned()
            .collect()
    };
    assert!(insecure(&propose(&[])).is_empty());
    let hardening = insecure(&propose(&["--security"]));
    // Every workload of both environments, at the layer of its environment.
    assert_eq!(hardening.len(), 10, "{hardening:#?}");
    let web = hardening
        .iter()
        .find(|p| p["target"] == "Deployment/shop/web")
        .unwrap();
    assert_eq!(web["action"], "harden-workload");
    // The policies weigh it as any change: production raises it one level.
    assert_eq!(web["risk"], "high");
    assert_eq!(
        web["fields"][0]["file"], "clusters/prod/patches/web-resources.yaml",
        "{web}"
    );
    assert_eq!(
        web["fields"][0]["path"],
        "spec.template.spec.containers[name=web].securityContext.allowPrivilegeEscalation"
    );
    assert_eq!(web["fields"][0]["new"], false);
    let dev = hardening
        .iter()
        .find(|p| p["target"] == "Deployment/shop-dev/web")
        .unwrap();
    assert_eq!(dev["risk"], "medium");
}

#[test]
fn excludes_and_sourceignore_keep_files_out_of_the_index_and_gitignore_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let cm = |name: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n");
    for (path, name) in [
        ("apps/a.yaml", "a"),
        ("docs/b.yaml", "b"),
        ("build/c.yaml", "c"),
        ("apps/d.tmpl.yaml", "d"),
        ("apps/.e.yaml", "e"),
        ("scratch/f.yaml", "f"),
        (".github/workflows/ci.yaml", "ci"),
    ] {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, cm(name)).unwrap();
    }
    // What Flux applies is what is indexed: `.gitignore` hides nothing from it, `.sourceignore`
    // does, dotfiles are applied, and CI files are never packed.
    std::fs::write(dir.path().join(".gitignore"), "build/\n").unwrap();
    std::fs::write(dir.path().join(".sourceignore"), "scratch/\n").unwrap();
    std::fs::write(
        dir.path().join("remediator.yaml"),
        "excludes: [\"docs/**\", \"*.tmpl.yaml\"]\n",
    )
    .unwrap();
    let out = remediator(&["index", "--repo", &repo_arg(dir.path()), "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<&str> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "c", "e"]);
}

#[test]
fn a_snapshot_that_is_not_there_is_an_error_not_zero_findings() {
    let repo = repo_arg(&common::example_repo());
    let out = remediator(&[
        "propose",
        "--repo",
        &repo,
        "--snapshot",
        "/nonexistent/snapshot",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("/nonexistent/snapshot: cannot read"),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&out.stdout).contains("0 findings"));
}

/// The example with the api Deployment declared a second time in its build, as an "all-in-one"
/// file beside the per-service files would.
fn example_with_a_duplicate() -> tempfile::TempDir {
    let repo = common::copy_tree(&common::example_repo(), false);
    let api = repo.path().join("apps/api");
    let deployment = std::fs::read_to_string(api.join("deployment.yaml")).unwrap();
    let copy = format!(
        "# Everything in one file.\n{}",
        deployment.replace("replicas: 2", "replicas: 2 # the all-in-one copy")
    );
    std::fs::write(api.join("all-in-one.yaml"), copy).unwrap();
    let kustomization = api.join("kustomization.yaml");
    let text = std::fs::read_to_string(&kustomization).unwrap();
    std::fs::write(
        &kustomization,
        text.replace(
            "  - deployment.yaml\n",
            "  - deployment.yaml\n  - all-in-one.yaml\n",
        ),
    )
    .unwrap();
    repo
}

#[test]
fn an_object_declared_twice_is_never_edited_silently() {
    let repo = example_with_a_duplicate();
    let repo_arg = repo_arg(repo.path());
    let memory = "spec.template.spec.containers[name=api].resources.limits.memory=768Mi";
    let set = |extra: &[&str]| {
        let args = ["set", "--repo", &repo_arg, "Deployment/shop/api", memory];
        remediator(&[&args[..], extra].concat())
    };
    let before = std::fs::read_to_string(repo.path().join("apps/api/deployment.yaml")).unwrap();
    let out = set(&["--write"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("apps/api/all-in-one.yaml:3")
            && stderr.contains("apps/api/deployment.yaml:2"),
        "{stderr}"
    );
    let after = std::fs::read_to_string(repo.path().join("apps/api/deployment.yaml")).unwrap();
    assert_eq!(before, after, "nothing written");

    // --file reaches the copy it names, the second one included.
    let out = set(&["--file", "apps/api/all-in-one.yaml", "--write"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let copy = std::fs::read_to_string(repo.path().join("apps/api/all-in-one.yaml")).unwrap();
    assert!(copy.contains("memory: 768Mi"), "{copy}");
    assert!(copy.contains("replicas: 2 # the all-in-one copy"), "{copy}");

    // propose refuses the edit and names the copies in its diagnosis.
    let snapshot = common::example_repo().join("../snapshot");
    let out = remediator(&[
        "propose",
        "--repo",
        &repo_arg,
        "--snapshot",
        snapshot.to_str().unwrap(),
        "--forge",
        "none",
        "--output",
        "json",
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let diagnosis = report["diagnoses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["finding"]["code"] == "crash-loop-oom")
        .unwrap_or_else(|| panic!("{report}"));
    let reason = diagnosis["reason"].as_str().unwrap();
    assert!(
        reason.contains("declared more than once")
            && reason.contains("apps/api/all-in-one.yaml:3")
            && reason.contains("apps/api/deployment.yaml:2"),
        "{reason}"
    );
    let proposed: Vec<&str> = report["proposals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["target"].as_str().unwrap())
        .collect();
    assert!(!proposed.contains(&"Deployment/shop/api"), "{proposed:?}");

    // A file that does not declare it because it cannot be read says so.
    std::fs::write(repo.path().join("apps/api/all-in-one.yaml"), "kind: [\n").unwrap();
    let out = set(&["--file", "apps/api/all-in-one.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("not declared in this repository; apps/api/all-in-one.yaml:")
            && stderr.contains("YAML syntax error"),
        "{stderr}"
    );
}

/// The crash drills' failpoints come from the `failpoints` feature, which only the tests'
/// dev-dependency turns on: a build without the dev-dependencies (a release, an install)
/// resolves the crate without it, so no environment variable can stop it at a chosen step.
#[test]
fn a_build_without_the_tests_has_no_failpoints() {
    let tree = |edges: &str| {
        let out = std::process::Command::new(env!("CARGO"))
            .args([
                "tree",
                "--locked",
                "--offline",
                "-i",
                "remediator",
                "-e",
                edges,
            ])
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let release = tree("normal,build,features");
    assert!(
        release.contains("remediator feature \"default\""),
        "{release}"
    );
    assert!(!release.contains("failpoints"), "{release}");
    let tests = tree("all,features");
    assert!(
        tests.contains("remediator feature \"failpoints\""),
        "{tests}"
    );
}

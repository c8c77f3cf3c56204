//! remediator's test Kubernetes API server and fake GitHub ([`github::FakeGitHub`]).
//!
//! [`TestCluster::start`] runs a real HTTP server on 127.0.0.1 (a free port, its own thread and
//! runtime) that answers like kube-apiserver v1.36: discovery, get/list/watch, create/update/
//! delete, merge, JSON and strategic merge patches, and server-side apply with managedFields,
//! conflicts, force, dry-run and validation. It hands back a [`kube::Client`] and a kubeconfig
//! file for subprocesses (the CLI, kubectl). Tests can inject faults ([`Fault`]), read the request
//! log, and simulate kubelets and controllers ([`PodState`], [`Rollout`]).
//!
//! Held to the real thing by `tests/conformance.rs`, which replays exchanges recorded from a real
//! kube-apiserver.

pub mod api;
pub mod background;
pub mod defaults;
pub mod faults;
pub mod fieldset;
pub mod github;
pub mod llm;
pub mod managed;
pub mod patch;
pub mod prometheus;
pub mod resources;
pub mod schema;
pub mod select;
pub mod server;
pub mod simulate;
pub mod status;
pub mod store;
pub mod typed;
pub mod validate;
pub mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

pub use faults::{Fault, FaultKind, LoggedRequest};
pub use simulate::{PodState, Rollout};
pub use status::ApiError;

use server::Shared;
use store::Store;

/// A running test API server. Stops when dropped.
pub struct TestCluster {
    shared: Arc<Shared>,
    url: String,
    kubeconfig: PathBuf,
    runtime: tokio::runtime::Handle,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestCluster {
    /// Starts a server on a free port of 127.0.0.1 and writes its kubeconfig.
    ///
    /// # Panics
    /// When no port can be bound or no temporary directory created: the test cannot run.
    pub fn start() -> TestCluster {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let address = listener.local_addr().expect("local address").to_string();
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new()),
            faults: faults::Faults::default(),
            address: address.clone(),
        });
        let (shutdown, stopped) = oneshot::channel();
        let (ready, runtime) = std::sync::mpsc::channel();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("testkit-apiserver".into())
            .spawn(move || {
                let runtime_value = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("server runtime");
                let _ = ready.send(runtime_value.handle().clone());
                runtime_value.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                    server::serve(listener, serving, stopped).await;
                });
            })
            .expect("server thread");
        let runtime = runtime.recv().expect("server runtime handle");
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("http://{address}");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_text(&url)).expect("write kubeconfig");
        TestCluster {
            shared,
            url,
            kubeconfig,
            runtime,
            shutdown: Some(shutdown),
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kubeconfig file (context `testkit`, namespace `default`) for subprocesses.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The kube client configuration for this server (namespace `default`).
    ///
    /// # Panics
    /// When the server's URL does not parse, which cannot happen for `http://127.0.0.1:PORT`.
    pub fn config(&self) -> kube::Config {
        let mut config = kube::Config::new(self.url.parse().expect("server URL"));
        config.default_namespace = "default".into();
        config.read_timeout = Some(Duration::from_secs(30));
        config
    }

    /// A kube client for this server, with kube's default retries; call it inside a tokio
    /// runtime.
    ///
    /// # Panics
    /// When the client cannot be built.
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config()).expect("kube client")
    }

    /// Fault rules: add one to make matching requests fail, wait or drop.
    pub fn faults(&self) -> &faults::Faults {
        &self.shared.faults
    }

    /// Every request the server has seen, in order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.faults.requests()
    }

    /// Stops the kubelets: a pod bound to a node stays Terminating after its delete or
    /// eviction, as on a cluster without kubelets.
    pub fn stop_kubelets(&self) {
        self.store().graceful_pods = true;
    }

    /// Runs the disruption controller: PodDisruptionBudget status follows the pods.
    pub fn run_disruption_controller(&self) {
        self.store().disruption_controller = true;
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.shared.store.lock().expect("store lock")
    }

    /// The stored object of a kind, as the server holds it.
    pub fn object(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let store = self.store();
        let (_, key) = simulate::key_for(&store, kind, namespace, name).ok()?;
        store.get(&key).cloned()
    }

    /// Creates an object as `manager` would with a plain create (an Update operation).
    pub fn create(&self, object: Value, manager: &str) -> Result<Value, ApiError> {
        simulate::create(&mut self.store(), object, manager)
    }

    /// Sets the status of every container of a pod, as its kubelet would.
    pub fn set_pod_state(
        &self,
        namespace: &str,
        name: &str,
        state: &PodState,
    ) -> Result<Value, ApiError> {
        simulate::write_status(
            &mut self.store(),
            "Pod",
            namespace,
            name,
            "kubelet",
            |pod| simulate::pod_status(pod, state),
        )
    }

    /// Replaces an object's status, as its controller would (a create leaves status out, as
    /// the real server does for kinds with a status subresource).
    pub fn set_status(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        status: Value,
    ) -> Result<Value, ApiError> {
        simulate::write_status(
            &mut self.store(),
            kind,
            namespace,
            name,
            "kube-controller-manager",
            |_| status,
        )
    }

    /// Sets the status of one container of a pod, as its kubelet would; the other containers
    /// keep theirs.
    pub fn set_container_state(
        &self,
        namespace: &str,
        name: &str,
        container: &str,
        state: &PodState,
    ) -> Result<Value, ApiError> {
        simulate::write_status(
            &mut self.store(),
            "Pod",
            namespace,
            name,
            "kubelet",
            |pod| {
                let fresh = simulate::pod_status(pod, state);
                let mut status = pod["status"].clone();
                let wanted = |c: &&Value| c["name"] == container;
                let replacement = fresh["containerStatuses"]
                    .as_array()
                    .and_then(|all| all.iter().find(wanted).cloned());
                if let (Some(replacement), Some(all)) =
                    (replacement, status["containerStatuses"].as_array_mut())
                {
                    for slot in all.iter_mut().filter(|c| c["name"] == container) {
                        *slot = replacement.clone();
                    }
                }
                status
            },
        )
    }

    /// Sets what `pods/NAME/log` serves for one container: its current log, or with
    /// `previous` the log of the container before its last restart.
    pub fn set_log(&self, namespace: &str, pod: &str, container: &str, previous: bool, text: &str) {
        self.store().logs.insert(
            (namespace.into(), pod.into(), container.into(), previous),
            text.into(),
        );
    }

    /// Drives the rollout of a Deployment, StatefulSet, DaemonSet, ReplicaSet or Job.
    pub fn set_rollout(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        rollout: Rollout,
    ) -> Result<Value, ApiError> {
        let mut store = self.store();
        if kind == "Deployment" && rollout == Rollout::Observed {
            let (_, key) = simulate::key_for(&store, kind, namespace, name)?;
            if let Some(deployment) = store.get(&key).cloned() {
                simulate::ensure_replica_set(&mut store, &deployment)?;
            }
        }
        simulate::write_status(
            &mut store,
            kind,
            namespace,
            name,
            "kube-controller-manager",
            |object| simulate::workload_status(kind, object, rollout),
        )
    }

    /// Serves metrics.k8s.io's PodMetrics from now on, as a cluster with metrics-server does.
    pub fn serve_metrics(&self) {
        let mut store = self.store();
        if store.types.iter().any(|t| t.kind == "PodMetrics") {
            return;
        }
        store.types.push(resources::ResourceType {
            group: "metrics.k8s.io".into(),
            version: "v1beta1".into(),
            plural: "pods".into(),
            singular: String::new(),
            kind: "PodMetrics".into(),
            namespaced: true,
            status: false,
            scale: false,
            generation: false,
            short_names: vec![],
            schema: schema::Schema::Builtin("PodMetrics".into()),
        });
    }

    /// Sets what metrics-server reports for a pod: each container's `(name, cpu, memory)`
    /// usage, sampled at `timestamp` (RFC 3339). Needs [`TestCluster::serve_metrics`].
    pub fn set_pod_metrics(
        &self,
        namespace: &str,
        name: &str,
        timestamp: &str,
        containers: &[(&str, &str, &str)],
    ) -> Result<Value, ApiError> {
        let mut store = self.store();
        let (_, key) = simulate::key_for(&store, "PodMetrics", namespace, name)?;
        let containers: Vec<Value> = containers
            .iter()
            .map(|(name, cpu, memory)| {
                serde_json::json!({"name": name, "usage": {"cpu": cpu, "memory": memory}})
            })
            .collect();
        let object = serde_json::json!({
            "apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": store::now()},
            "timestamp": timestamp, "window": "30s", "containers": containers,
        });
        Ok(store.put(key, object))
    }

    /// Creates the current ReplicaSet of a Deployment and `count` of its pods in `state`.
    pub fn add_pods(
        &self,
        namespace: &str,
        deployment: &str,
        count: usize,
        state: &PodState,
    ) -> Result<Vec<String>, ApiError> {
        simulate::add_pods(&mut self.store(), namespace, deployment, count, state)
    }

    /// From now on, workload status follows spec `delay` after each change, and new pods run.
    pub fn follow_spec(&self, delay: Duration) {
        self.runtime
            .spawn(simulate::follow_spec(self.shared.clone(), delay));
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn kubeconfig_text(url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: testkit
  cluster:
    server: {url}
users:
- name: testkit
  user:
    token: testkit
contexts:
- name: testkit
  context:
    cluster: testkit
    user: testkit
    namespace: default
current-context: testkit
"
    )
}

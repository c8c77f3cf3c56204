//! Locks against two remediations of one object at once, across processes: one
//! `coordination.k8s.io/v1` Lease per object, taken with optimistic concurrency (create, or
//! replace at the read resourceVersion), renewed by its holder every third of its duration
//! while held, released by clearing the holder, and free again once its duration passes
//! without renewal, so a holder that dies blocks a rerun for one duration at most. A write
//! that failed in a way another try may mend (throttled, a server error, a lost answer) is not
//! sent again blindly: the Lease is read again first, and one the lost write did take is
//! already ours. I/O: the Leases.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};

use super::retry::{RetryPolicy, retriable, with_retry};
use super::{Error, Result};
use crate::model::{ObjectRef, stable_id};

/// This process's name as a holder of the lease and of the object locks: the pod's name
/// (`POD_NAME`, from the downward API), else the host's name, and a random suffix drawn once per
/// process, so that no two processes share one, not even two containers that are both PID 1.
/// The same all the process long; its requests carry it in their `User-Agent`, so that the
/// API server's audit log names the replica too.
pub fn holder_name() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(draw_holder_name).clone()
}

fn draw_holder_name() -> String {
    let name = ["POD_NAME", "HOSTNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "remediator-serve".to_owned());
    let mut bytes = [0u8; 4];
    let random = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    if random.is_err() {
        // No system randomness: the process id and the clock still tell processes apart.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        bytes = (nanos ^ std::process::id()).to_be_bytes();
    }
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{name}-{suffix}")
}

/// How to take locks.
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// Namespace of the Leases.
    pub namespace: String,
    /// Who holds them (shown to whoever waits).
    pub holder: String,
    /// How long a lock lasts without renewal; its holder renews it every third of that.
    pub duration: Duration,
    /// How long to wait for a lock another holder has.
    pub wait: Duration,
    /// How often to look while waiting.
    pub interval: Duration,
    /// Retries of the API calls.
    pub retry: RetryPolicy,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            namespace: "default".to_owned(),
            holder: format!("remediator-{}", std::process::id()),
            duration: Duration::from_secs(60),
            wait: Duration::from_secs(120),
            interval: Duration::from_secs(1),
            retry: RetryPolicy::default(),
        }
    }
}

/// Locks held, renewed until they are given back with [`release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Lease names, in the order taken.
    pub leases: Vec<String>,
    /// The holder.
    pub holder: String,
    namespace: String,
    renewal: Renewal,
}

/// Stops the renewal of a [`Held`] when set; every copy of the `Held` shares it.
#[derive(Debug, Clone, Default)]
struct Renewal(Arc<AtomicBool>);

impl PartialEq for Renewal {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Renewal {}

/// The Lease name of an object's lock.
pub fn lease_name(object: &ObjectRef) -> String {
    format!("remediator-lock-{}", stable_id(&[&object.to_string()]))
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

/// Whether a lease is free for `holder`: no holder, `holder` itself, or not renewed within its
/// duration.
pub(crate) fn free_for(lease: &Lease, holder: &str, at: Timestamp) -> bool {
    let Some(spec) = &lease.spec else { return true };
    match spec.holder_identity.as_deref() {
        None | Some("") => true,
        Some(h) if h == holder => true,
        Some(_) => {
            let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref());
            let duration = i64::from(spec.lease_duration_seconds.unwrap_or(0));
            renewed.is_none_or(|t| t.0.as_millisecond() + duration * 1000 < at.as_millisecond())
        }
    }
}

/// Takes the lock of every object, in a fixed order so two takers cannot deadlock; waits up to
/// `options.wait` for each. On failure the locks already taken are released.
pub async fn acquire(
    client: &kube::Client,
    objects: &[ObjectRef],
    options: &LockOptions,
) -> Result<Held> {
    let api: Api<Lease> = Api::namespaced(client.clone(), &options.namespace);
    let mut wanted: Vec<(String, &ObjectRef)> =
        objects.iter().map(|o| (lease_name(o), o)).collect();
    wanted.sort_by(|a, b| a.0.cmp(&b.0));
    wanted.dedup_by(|a, b| a.0 == b.0);
    let mut held = Held {
        leases: vec![],
        holder: options.holder.clone(),
        namespace: options.namespace.clone(),
        renewal: Renewal::default(),
    };
    for (name, object) in wanted {
        if let Err(error) = acquire_one(&api, &name, object, options).await {
            let _ = release(client, &held).await;
            return Err(error);
        }
        held.leases.push(name);
    }
    if !held.leases.is_empty() {
        tokio::spawn(renew(api, held.clone(), options.duration / 3));
    }
    Ok(held)
}

/// Renews the held Leases every `every` until they are released. A renewal that fails is
/// tried again at the next tick; one that finds a Lease no longer ours (released, or taken
/// after it expired) leaves it.
async fn renew(api: Api<Lease>, held: Held, every: Duration) {
    let every = every.max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        if held.renewal.0.load(Ordering::SeqCst) {
            return;
        }
        for name in &held.leases {
            let Ok(Some(mut lease)) = api.get_opt(name).await else {
                continue;
            };
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if spec.holder_identity.as_deref() != Some(held.holder.as_str())
                || held.renewal.0.load(Ordering::SeqCst)
            {
                continue;
            }
            spec.renew_time = Some(now());
            if let Err(error) = api.replace(name, &PostParams::default(), &lease).await {
                tracing::warn!(lease = %name, %error, "lock renewal failed; trying again");
            }
        }
    }
}

async fn acquire_one(
    api: &Api<Lease>,
    name: &str,
    object: &ObjectRef,
    options: &LockOptions,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + options.wait;
    let api_error = |source| Error::Api {
        object: format!("Lease/{}/{name} (lock of {object})", options.namespace),
        verb: "lock",
        source,
    };
    let seconds = i32::try_from(options.duration.as_secs()).unwrap_or(i32::MAX);
    let (started, mut tries) = (std::time::Instant::now(), 1);
    loop {
        let current = with_retry(&options.retry, || api.get_opt(name))
            .await
            .map_err(api_error)?;
        let attempt = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.to_owned()),
                        annotations: Some(
                            [("remediator.dev/object".to_owned(), object.to_string())].into(),
                        ),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(options.holder.clone()),
                        lease_duration_seconds: Some(seconds),
                        acquire_time: Some(now()),
                        renew_time: Some(now()),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                api.create(&PostParams::default(), &lease).await.map(drop)
            }
            Some(mut lease) if free_for(&lease, &options.holder, Timestamp::now()) => {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                if spec.holder_identity.as_deref() != Some(options.holder.as_str()) {
                    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                    spec.acquire_time = Some(now());
                }
                spec.holder_identity = Some(options.holder.clone());
                spec.lease_duration_seconds = Some(seconds);
                spec.renew_time = Some(now());
                api.replace(name, &PostParams::default(), &lease)
                    .await
                    .map(drop)
            }
            Some(lease) => {
                let holder = lease
                    .spec
                    .and_then(|s| s.holder_identity)
                    .unwrap_or_default();
                if tokio::time::Instant::now() >= deadline {
                    return Err(Error::LockHeld {
                        object: object.to_string(),
                        holder,
                        lease: format!("{}/{name}", options.namespace),
                    });
                }
                tokio::time::sleep(options.interval).await;
                continue;
            }
        };
        match attempt {
            Ok(()) => return Ok(()),
            // Someone else created or changed it between our read and write: read again.
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(error) => match settle(&options.retry, started, &mut tries, &error) {
                // The write is not sent again blindly: the next round reads the Lease first,
                // and one our lost write did take is ours already.
                Some(wait) => tokio::time::sleep(wait).await,
                None => return Err(api_error(error)),
            },
        }
    }
}

/// The wait before reading a Lease again after a write that failed in a way another try may
/// mend (throttled, a server error, a lost answer); `None` when the tries are spent.
fn settle(
    retry: &RetryPolicy,
    started: std::time::Instant,
    tries: &mut u32,
    error: &kube::Error,
) -> Option<Duration> {
    let retry_after = retriable(error)?;
    *tries += 1;
    retry.next_wait(started, *tries, retry_after)
}

/// Gives the locks back: clears the holder of every Lease still held by `held.holder`.
pub async fn release(client: &kube::Client, held: &Held) -> Result<()> {
    held.renewal.0.store(true, Ordering::SeqCst);
    let api: Api<Lease> = Api::namespaced(client.clone(), &held.namespace);
    for name in &held.leases {
        let api_error = |source| Error::Api {
            object: format!("Lease/{}/{name}", held.namespace),
            verb: "unlock",
            source,
        };
        let (retry, started, mut tries) = (RetryPolicy::default(), std::time::Instant::now(), 1);
        loop {
            let Some(mut lease) = with_retry(&retry, || api.get_opt(name))
                .await
                .map_err(api_error)?
            else {
                break;
            };
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if spec.holder_identity.as_deref() != Some(held.holder.as_str()) {
                break;
            }
            spec.holder_identity = None;
            spec.renew_time = Some(now());
            match api.replace(name, &PostParams::default(), &lease).await {
                Ok(_) => break,
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(error) => match settle(&retry, started, &mut tries, &error) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(api_error(error)),
                },
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, renewed: i64, duration: i32) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                renew_time: Some(MicroTime(Timestamp::from_second(renewed).unwrap())),
                lease_duration_seconds: Some(duration),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn a_lease_is_free_when_unheld_ours_or_expired() {
        let at = Timestamp::from_second(1_000).unwrap();
        assert!(free_for(&lease(None, 990, 60), "me", at));
        assert!(free_for(&lease(Some(""), 990, 60), "me", at));
        assert!(free_for(&lease(Some("me"), 990, 60), "me", at));
        assert!(!free_for(&lease(Some("other"), 990, 60), "me", at));
        assert!(free_for(&lease(Some("other"), 900, 60), "me", at));
    }

    #[test]
    fn lease_names_are_stable_and_valid() {
        let object = ObjectRef::new("apps/v1", "Deployment", Some("shop"), "api");
        let name = lease_name(&object);
        assert_eq!(name, lease_name(&object));
        assert!(
            name.len() <= 63
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }
}

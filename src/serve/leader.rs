//! Leader election: one `coordination.k8s.io/v1` Lease (`remediator-serve`) in the service's
//! namespace, taken with optimistic concurrency and renewed at a third of its duration (followers
//! look ten times a duration, so one takes over soon after it lapses). Each renewal must answer
//! within a quarter of the duration. Only the leader detects and works its queue; a replica
//! that cannot renew stops acting before the lease runs out, and the worker checks the lease
//! again before each write, so a leader that cannot prove its lease writes nothing more. On
//! SIGTERM the lease is kept, and renewed, until the job under way is done, then given up. The
//! holder identity is the pod's name and a random suffix per process, with the address the
//! replica is reached at, so followers can forward webhook deliveries to the leader. I/O: the
//! Lease.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};

use super::Shared;
use crate::cluster::lock::free_for;

/// The Lease's name.
pub const LEASE: &str = "remediator-serve";

/// One attempt to take or renew the lease; the holder it has afterwards.
async fn attempt(
    api: &Api<Lease>,
    identity: &str,
    duration: Duration,
) -> Result<String, kube::Error> {
    let seconds = i32::try_from(duration.as_secs()).unwrap_or(i32::MAX);
    let now = || MicroTime(Timestamp::now());
    match api.get_opt(LEASE).await? {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(LEASE.to_owned()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(identity.to_owned()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(now()),
                    renew_time: Some(now()),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(identity.to_owned()),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(String::new()),
                Err(error) => Err(error),
            }
        }
        Some(mut lease) if free_for(&lease, identity, Timestamp::now()) => {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if spec.holder_identity.as_deref() != Some(identity) {
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                spec.acquire_time = Some(now());
            }
            spec.holder_identity = Some(identity.to_owned());
            spec.lease_duration_seconds = Some(seconds);
            spec.renew_time = Some(now());
            match api.replace(LEASE, &PostParams::default(), &lease).await {
                Ok(_) => Ok(identity.to_owned()),
                // Another replica wrote between our read and write: it leads.
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(String::new()),
                Err(error) => Err(error),
            }
        }
        Some(lease) => Ok(lease
            .spec
            .and_then(|s| s.holder_identity)
            .unwrap_or_default()),
    }
}

/// The address in a holder identity (`name@address`).
pub fn address(identity: &str) -> Option<&str> {
    identity
        .rsplit_once('@')
        .map(|(_, a)| a)
        .filter(|a| !a.is_empty())
}

/// Takes part in the election until stopped, then gives the lease up.
pub(super) async fn run(
    client: kube::Client,
    shared: Arc<Shared>,
    identity: String,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let settings = &shared.settings;
    let api: Api<Lease> = Api::namespaced(client, &settings.lease_namespace);
    let duration = settings.lease;
    // A renewal that hangs must not outlast the lease: it is given a quarter of it.
    let limit = (duration / 4).max(Duration::from_millis(200));
    loop {
        let tried = Instant::now();
        let answer = match tokio::time::timeout(limit, attempt(&api, &identity, duration)).await {
            Ok(answer) => answer.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {limit:?}")),
        };
        match answer {
            Ok(holder) => {
                let leads = holder == identity;
                if leads {
                    // The lease runs from when the renewal was sent.
                    shared.renewed(tried);
                }
                shared.set_leader(leads, address(&holder).map(str::to_owned));
            }
            Err(error) => {
                tracing::warn!(%error, "the leader lease cannot be read or renewed");
                // Stop acting before the lease can have passed to another replica: the rule
                // each write checks.
                if shared.proves_lease().is_err() {
                    shared.set_leader(false, None);
                }
            }
        }
        // The leader renews at a third of the duration; a follower looks ten times a duration,
        // so that it takes over soon after the lease lapses.
        let pause = if shared.leading.load(Ordering::SeqCst) {
            duration / 3
        } else {
            (duration / 10).max(Duration::from_millis(100))
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stopped.changed() => break,
        }
    }
    if shared.leading.load(Ordering::SeqCst) {
        shared.set_leader(false, None);
        if let Ok(Some(mut lease)) = api.get_opt(LEASE).await
            && lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                == Some(identity.as_str())
        {
            if let Some(spec) = lease.spec.as_mut() {
                spec.holder_identity = None;
            }
            let _ = api.replace(LEASE, &PostParams::default(), &lease).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::address;

    #[test]
    fn the_address_is_the_part_after_the_last_at() {
        assert_eq!(address("pod-1@10.0.0.7:8080"), Some("10.0.0.7:8080"));
        assert_eq!(address("pod-1"), None);
        assert_eq!(address("a@b@127.0.0.1:1"), Some("127.0.0.1:1"));
    }
}

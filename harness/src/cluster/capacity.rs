//! The real nodes' CPU, shared by every probe on the cluster: the probes of one grading,
//! of a class, of other test processes and of other gradings. A probe reserves what its
//! pods request at their peak ([`CpuDemand`]) in a ledger kept on the cluster itself,
//! the ConfigMap `kube-system/autoscale-conformance-cpu-ledger`, before it applies
//! anything. A pod of one probe left Pending for CPU another probe holds would read as
//! the submission's failure; a per-process gate cannot see the other processes.
//!
//! - **What is free**: the real nodes' allocatable CPU, minus what the pods outside the
//!   holders' namespaces request (a probe's load generator, in a namespace of its own,
//!   is the probe's by its [`PROBE_NAMESPACE_LABEL`]) (the addons, anything else running), minus each
//!   holder's reservation (at least what its namespaces' pods request now, should a
//!   workload outgrow its estimate), minus [`MARGIN`].
//! - **Order**: whoever fits goes first, so that small probes are not held up behind a
//!   large one waiting for room; but a waiter that has queued for [`STARVATION`] blocks
//!   everyone queued after it (a ticket each) until it holds, so that a large probe is
//!   not starved by a stream of small ones. A demand larger than the cluster could ever
//!   give is capped: that probe runs alone.
//! - **Crashes**: holders and waiters renew their entry every [`RENEW`]; an entry not
//!   renewed for [`TTL`] is dropped by the next writer, so a killed process frees its CPU.
//! - **Writes** are compare-and-swap on the ConfigMap's `resourceVersion`.

use super::error::EnvironmentError;
use super::{Cluster, FIELD_MANAGER, PROBE_NAMESPACE_LABEL};
use crate::criteria::demand::CpuDemand;
use crate::submission::quantity::parse_quantity;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::Client;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const LEDGER_NAMESPACE: &str = "kube-system";
pub const LEDGER_CONFIGMAP: &str = "autoscale-conformance-cpu-ledger";
/// An entry not renewed for this long belongs to a process that died.
pub const TTL: Duration = Duration::from_secs(60);
/// How often holders and waiters renew their entries.
pub const RENEW: Duration = Duration::from_secs(15);
/// A waiter queued this long goes before everyone queued after it.
pub const STARVATION: Duration = Duration::from_secs(900);
/// How often a waiter looks again.
const POLL: Duration = Duration::from_secs(5);
/// Left free for what starts outside the ledger while probes run (a test's own pod,
/// a restarted addon), in millicores.
pub const MARGIN: u32 = 100;
const NEXT_TICKET: &str = "next-ticket";
/// Compare-and-swap attempts before a write gives up (each conflict means another
/// writer succeeded).
const WRITE_ATTEMPTS: usize = 50;

/// One probe's line in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its place in the queue.
    pub ticket: u64,
    /// Reserved (or asked for), capped at what the cluster could ever give.
    pub millis: u32,
    /// Holding its CPU; otherwise waiting for it.
    pub holding: bool,
    /// Pods in namespaces whose name contains this one are the entry's (the probe's own
    /// namespace, and its load generator's beside it).
    pub namespace: String,
    /// For people reading the ledger: the submission and criterion.
    pub what: String,
    /// Unix seconds of the last renewal.
    pub renewed: u64,
    /// Unix seconds when it queued.
    #[serde(default)]
    pub queued: u64,
}

impl Entry {
    fn owns(&self, namespace: &str) -> bool {
        !self.namespace.is_empty() && namespace.contains(&self.namespace)
    }
}

/// The ledger as the ConfigMap holds it: one data key per entry, and the next ticket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ledger {
    pub next_ticket: u64,
    pub entries: BTreeMap<String, Entry>,
}

impl Ledger {
    /// Reads the ConfigMap's data; an entry that does not parse (written by another
    /// version of the suite) is left out, and dropped at the next write.
    pub fn from_data(data: &BTreeMap<String, String>) -> Ledger {
        Ledger {
            next_ticket: data
                .get(NEXT_TICKET)
                .and_then(|t| t.parse().ok())
                .unwrap_or(0),
            entries: data
                .iter()
                .filter(|(key, _)| key.as_str() != NEXT_TICKET)
                .filter_map(|(key, value)| Some((key.clone(), serde_json::from_str(value).ok()?)))
                .collect(),
        }
    }

    pub fn to_data(&self) -> BTreeMap<String, String> {
        let mut data: BTreeMap<String, String> = self
            .entries
            .iter()
            .filter_map(|(key, entry)| Some((key.clone(), serde_json::to_string(entry).ok()?)))
            .collect();
        data.insert(NEXT_TICKET.into(), self.next_ticket.to_string());
        data
    }

    /// Queues `id` for `demand`, capped at what the cluster could ever give.
    fn enqueue(
        &mut self,
        id: &str,
        demand: CpuDemand,
        nodes: &NodeCpu,
        namespace: &str,
        what: &str,
    ) {
        let now = unix_now();
        let entry = Entry {
            ticket: self.next_ticket,
            millis: demand
                .as_millis()
                .min(nodes.capacity_outside(&self.entries)),
            holding: false,
            namespace: namespace.to_string(),
            what: what.to_string(),
            renewed: now,
            queued: now,
        };
        self.entries.insert(id.to_string(), entry);
        self.next_ticket += 1;
    }

    /// Drops the entries of processes that stopped renewing them.
    pub fn drop_expired(&mut self, now: u64) {
        self.entries
            .retain(|_, entry| now.saturating_sub(entry.renewed) <= TTL.as_secs());
    }

    /// Whether the waiting entry `id` may start holding at `now`, given what the real
    /// nodes have: nobody queued before it has waited [`STARVATION`], and its demand fits
    /// beside the holders (or nobody holds).
    pub fn may_hold(&self, id: &str, nodes: &NodeCpu, now: u64) -> bool {
        let Some(me) = self.entries.get(id) else {
            return false;
        };
        let starving = |e: &Entry| now.saturating_sub(e.queued) >= STARVATION.as_secs();
        if self
            .entries
            .values()
            .any(|e| !e.holding && e.ticket < me.ticket && starving(e))
        {
            return false;
        }
        let holders: Vec<&Entry> = self.entries.values().filter(|e| e.holding).collect();
        if holders.is_empty() {
            return true;
        }
        let mut in_holders = vec![0u32; holders.len()];
        let mut outside = 0u32;
        for (namespace, millis) in &nodes.pods {
            match holders.iter().position(|h| h.owns(namespace)) {
                Some(i) => in_holders[i] = in_holders[i].saturating_add(*millis),
                None if me.owns(namespace) => {}
                None => outside = outside.saturating_add(*millis),
            }
        }
        let held: u32 = holders
            .iter()
            .zip(&in_holders)
            .map(|(h, pods)| h.millis.max(*pods))
            .fold(0, u32::saturating_add);
        let capacity = nodes.capacity_beside(outside);
        held.saturating_add(me.millis.min(capacity)) <= capacity
    }
}

/// The real nodes' CPU as the scheduler counts it: allocatable, and the requests of the
/// pods on them (not finished), by namespace. Millicores.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeCpu {
    pub allocatable: u32,
    pub pods: Vec<(String, u32)>,
}

impl NodeCpu {
    /// What probes can have when pods requesting `outside` run beside them.
    fn capacity_beside(&self, outside: u32) -> u32 {
        self.allocatable
            .saturating_sub(outside)
            .saturating_sub(MARGIN)
    }

    /// What a probe could ever get: everything but what runs outside any probe now.
    fn capacity_outside(&self, entries: &BTreeMap<String, Entry>) -> u32 {
        let outside = self
            .pods
            .iter()
            .filter(|(namespace, _)| !entries.values().any(|e| e.owns(namespace)))
            .map(|(_, millis)| *millis)
            .fold(0, u32::saturating_add);
        self.capacity_beside(outside).max(1)
    }
}

/// CPU held in the ledger until [`CpuReservation::release`] (or, if the process dies,
/// until its entry expires).
pub struct CpuReservation {
    client: Client,
    id: String,
    renewer: Option<tokio::task::JoinHandle<()>>,
    /// What it holds (the demand, capped at what the cluster could ever give).
    pub granted: CpuDemand,
    /// How long it queued.
    pub waited: Duration,
}

impl CpuReservation {
    /// Gives the CPU back (bounded; if the API server cannot be reached, the entry expires).
    pub async fn release(mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        let id = std::mem::take(&mut self.id);
        let _ = tokio::time::timeout(Duration::from_secs(20), remove(&self.client, &id)).await;
    }
}

impl Drop for CpuReservation {
    fn drop(&mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        if self.id.is_empty() {
            return;
        }
        // Not released (a panic, a cancelled probe): remove it while the runtime lives;
        // otherwise it expires after TTL.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (client, id) = (self.client.clone(), std::mem::take(&mut self.id));
            runtime.spawn(async move { remove(&client, &id).await });
        }
    }
}

impl Cluster {
    /// Reserves `demand` of the real nodes' CPU for the probe in `namespace` (`what`
    /// names it in the ledger), waiting in the ledger's queue until it fits, at most
    /// until `until`. `None` for a probe that needs no CPU: it never waits.
    pub async fn reserve_cpu(
        &self,
        demand: CpuDemand,
        namespace: &str,
        what: &str,
        until: tokio::time::Instant,
    ) -> Result<Option<CpuReservation>, EnvironmentError> {
        if demand == CpuDemand::NONE {
            return Ok(None);
        }
        let started = tokio::time::Instant::now();
        let id = entry_id();
        let nodes = self.node_cpu().await?;
        write(&self.client, |ledger| {
            ledger.drop_expired(unix_now());
            ledger.enqueue(&id, demand, &nodes, namespace, what);
        })
        .await
        .map_err(EnvironmentError::api(format!(
            "queueing in the CPU ledger ConfigMap {LEDGER_NAMESPACE}/{LEDGER_CONFIGMAP}"
        )))?;
        // From here on, dropping it removes the entry (also when waiting is cut short).
        let mut reservation = CpuReservation {
            client: self.client.clone(),
            id,
            renewer: None,
            granted: demand,
            waited: Duration::ZERO,
        };
        let mut renewed = tokio::time::Instant::now();
        loop {
            // Read first: a write per waiter per look would make the waiters conflict.
            let nodes = self.node_cpu().await?;
            let mut seen = read(&self.client)
                .await
                .map_err(EnvironmentError::api(format!(
                    "reading the CPU ledger ConfigMap {LEDGER_NAMESPACE}/{LEDGER_CONFIGMAP}"
                )))?;
            seen.drop_expired(unix_now());
            let id = reservation.id.clone();
            let (may_hold, lost) = (
                seen.may_hold(&id, &nodes, unix_now()),
                !seen.entries.contains_key(&id),
            );
            if may_hold || lost || renewed.elapsed() >= RENEW {
                let granted = write(&self.client, |ledger| {
                    ledger.drop_expired(unix_now());
                    // Dropped as expired (this process stalled past TTL): queue again.
                    if !ledger.entries.contains_key(&id) {
                        ledger.enqueue(&id, demand, &nodes, namespace, what);
                    }
                    let may_hold = ledger.may_hold(&id, &nodes, unix_now());
                    let entry = ledger.entries.get_mut(&id)?;
                    entry.renewed = unix_now();
                    entry.holding = may_hold;
                    may_hold.then_some(entry.millis)
                })
                .await
                .map_err(EnvironmentError::api(format!(
                    "updating the CPU ledger ConfigMap {LEDGER_NAMESPACE}/{LEDGER_CONFIGMAP}"
                )))?;
                renewed = tokio::time::Instant::now();
                if let Some(millis) = granted {
                    reservation.granted = CpuDemand::millis(millis);
                    reservation.waited = started.elapsed();
                    reservation.renewer = Some(tokio::spawn(renew(self.client.clone(), id)));
                    return Ok(Some(reservation));
                }
            }
            if tokio::time::Instant::now() + POLL >= until {
                return Err(EnvironmentError::Timeout {
                    what: format!("{demand} of the cluster's CPU for {what}"),
                    budget: started.elapsed(),
                    last_seen: ledger_summary(&self.client).await,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The real nodes' allocatable CPU and the requests of the pods on them.
    pub async fn node_cpu(&self) -> Result<NodeCpu, EnvironmentError> {
        let node_api: Api<Node> = Api::all(self.client.clone());
        let pod_api: Api<Pod> = Api::all(self.client.clone());
        let mut nodes = NodeCpu::default();
        for node in &self.facts.real_nodes {
            let allocatable = node_api
                .get(node)
                .await
                .map_err(EnvironmentError::api(format!("reading node {node}")))?
                .status
                .and_then(|s| s.allocatable)
                .and_then(|a| a.get("cpu").and_then(|q| parse_quantity(&q.0).ok()))
                .unwrap_or(0.0);
            nodes.allocatable = nodes
                .allocatable
                .saturating_add(CpuDemand::cores(allocatable).as_millis());
            let pods = pod_api
                .list(&ListParams::default().fields(&format!(
                    "spec.nodeName={node},status.phase!=Succeeded,status.phase!=Failed"
                )))
                .await
                .map_err(EnvironmentError::api(format!("listing the pods on {node}")))?;
            nodes.pods.extend(pods.items.iter().map(|pod| {
                let requested: f64 = pod
                    .spec
                    .iter()
                    .flat_map(|s| s.containers.iter())
                    .filter_map(|c| c.resources.as_ref()?.requests.as_ref()?.get("cpu").cloned())
                    .filter_map(|q| parse_quantity(&q.0).ok())
                    .sum();
                // A load generator's pod is its probe's, wherever it runs.
                let serves = pod
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|labels| labels.get(PROBE_NAMESPACE_LABEL))
                    .or(pod.metadata.namespace.as_ref());
                (
                    serves.cloned().unwrap_or_default(),
                    CpuDemand::cores(requested).as_millis(),
                )
            }));
        }
        Ok(nodes)
    }
}

/// Takes the entry `id` out of the ledger (its CPU is free again).
async fn remove(client: &Client, id: &str) {
    let _ = write(client, |ledger| {
        ledger.entries.remove(id);
    })
    .await;
}

/// Renews the entry `id` every [`RENEW`] until aborted.
async fn renew(client: Client, id: String) {
    loop {
        tokio::time::sleep(RENEW).await;
        let _ = write(&client, |ledger| {
            if let Some(entry) = ledger.entries.get_mut(&id) {
                entry.renewed = unix_now();
            }
        })
        .await;
    }
}

/// The ledger now (empty before its first write).
async fn read(client: &Client) -> kube::Result<Ledger> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), LEDGER_NAMESPACE);
    Ok(api
        .get_opt(LEDGER_CONFIGMAP)
        .await?
        .map(|map| Ledger::from_data(&map.data.unwrap_or_default()))
        .unwrap_or_default())
}

/// Reads the ledger, applies `change`, and writes it back if nobody wrote in between
/// (creating the ConfigMap the first time); retried on conflict.
async fn write<T>(client: &Client, mut change: impl FnMut(&mut Ledger) -> T) -> kube::Result<T> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), LEDGER_NAMESPACE);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let written = match api.get_opt(LEDGER_CONFIGMAP).await? {
            Some(mut map) => {
                let mut ledger = Ledger::from_data(&map.data.clone().unwrap_or_default());
                let out = change(&mut ledger);
                map.data = Some(ledger.to_data());
                api.replace(LEDGER_CONFIGMAP, &params, &map)
                    .await
                    .map(|_| out)
            }
            None => {
                let mut ledger = Ledger::default();
                let out = change(&mut ledger);
                let map = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(LEDGER_CONFIGMAP.into()),
                        ..ObjectMeta::default()
                    },
                    data: Some(ledger.to_data()),
                    ..ConfigMap::default()
                };
                api.create(&params, &map).await.map(|_| out)
            }
        };
        match written {
            // 409: another writer came first (a stale resourceVersion, or it created
            // the ConfigMap): read again.
            Err(kube::Error::Api(status)) if status.code == 409 && attempt < WRITE_ATTEMPTS => {
                let jitter = u64::from(std::process::id() % 7) * 15 + attempt as u64 * 10;
                tokio::time::sleep(Duration::from_millis(jitter)).await;
            }
            other => return other,
        }
    }
}

/// Who holds and who waits, for a message.
async fn ledger_summary(client: &Client) -> String {
    match read(client).await {
        Ok(ledger) if ledger.entries.is_empty() => "nobody in the ledger".into(),
        Ok(ledger) => {
            let mut entries: Vec<&Entry> = ledger.entries.values().collect();
            entries.sort_by_key(|e| e.ticket);
            entries
                .iter()
                .map(|e| {
                    format!(
                        "{} {} {}m",
                        e.what,
                        if e.holding { "holds" } else { "waits for" },
                        e.millis
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
        Err(e) => format!("ledger unreadable: {e}"),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Unique across processes and machines sharing a cluster.
fn entry_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{:x}-{:x}-{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_000;

    fn entry(ticket: u64, millis: u32, holding: bool, namespace: &str) -> Entry {
        Entry {
            ticket,
            millis,
            holding,
            namespace: namespace.into(),
            what: namespace.into(),
            renewed: NOW,
            queued: NOW,
        }
    }

    fn ledger(entries: &[Entry]) -> Ledger {
        Ledger {
            next_ticket: entries.len() as u64,
            entries: entries
                .iter()
                .map(|e| (e.namespace.clone(), e.clone()))
                .collect(),
        }
    }

    /// A 2-CPU node with 440m of addons, as the local cluster has.
    fn node(probe_pods: &[(&str, u32)]) -> NodeCpu {
        let mut pods = vec![
            ("kube-system".to_string(), 240),
            ("monitoring".to_string(), 200),
        ];
        pods.extend(probe_pods.iter().map(|(ns, m)| (ns.to_string(), *m)));
        NodeCpu {
            allocatable: 2000,
            pods,
        }
    }

    #[test]
    fn the_first_in_line_holds_alone_whatever_it_asked() {
        let ledger = ledger(&[entry(0, 5000, false, "ac-big")]);
        assert!(ledger.may_hold("ac-big", &node(&[]), NOW));
    }

    #[test]
    fn demands_that_fit_together_hold_together() {
        let ledger = ledger(&[entry(0, 700, true, "ac-a"), entry(1, 700, false, "ac-b")]);
        assert!(ledger.may_hold("ac-b", &node(&[("ac-a", 300)]), NOW));
    }

    #[test]
    fn a_demand_that_does_not_fit_waits() {
        let ledger = ledger(&[entry(0, 1000, true, "ac-a"), entry(1, 600, false, "ac-b")]);
        // 2000 - 440 addons - 100 margin = 1460 for probes; 1000 held.
        assert!(!ledger.may_hold("ac-b", &node(&[]), NOW));
    }

    #[test]
    fn a_holder_counts_its_pods_when_they_outgrow_its_reservation() {
        let ledger = ledger(&[entry(0, 200, true, "ac-a"), entry(1, 500, false, "ac-b")]);
        assert!(ledger.may_hold("ac-b", &node(&[("ac-a", 300)]), NOW));
        assert!(!ledger.may_hold("ac-b", &node(&[("ac-a", 1000)]), NOW));
    }

    #[test]
    fn pods_outside_any_probe_take_capacity_and_the_load_namespace_is_the_probes() {
        let ledger = ledger(&[entry(0, 700, true, "ac-a"), entry(1, 700, false, "ac-b")]);
        // The load generator's namespace contains its probe's name: not outside.
        assert!(ledger.may_hold("ac-b", &node(&[("ac-ac-a-load-1f", 50)]), NOW));
        assert!(!ledger.may_hold("ac-b", &node(&[("ac-other-test", 200)]), NOW));
    }

    #[test]
    fn a_small_demand_goes_past_a_large_one_until_the_large_one_starves() {
        let mut ledger = ledger(&[
            entry(0, 1000, true, "ac-a"),
            entry(1, 1000, false, "ac-b"),
            entry(2, 100, false, "ac-c"),
        ]);
        assert!(!ledger.may_hold("ac-b", &node(&[]), NOW));
        assert!(ledger.may_hold("ac-c", &node(&[]), NOW));
        ledger.entries.get_mut("ac-b").unwrap().queued = NOW - STARVATION.as_secs();
        assert!(
            !ledger.may_hold("ac-c", &node(&[]), NOW),
            "ac-b has waited long enough"
        );
    }

    #[test]
    fn expired_entries_are_dropped_and_free_their_cpu() {
        let mut ledger = ledger(&[
            entry(0, 1400, true, "ac-dead"),
            entry(1, 1000, false, "ac-b"),
        ]);
        assert!(!ledger.may_hold("ac-b", &node(&[]), NOW));
        ledger.entries.get_mut("ac-dead").unwrap().renewed = NOW - TTL.as_secs() - 1;
        ledger.drop_expired(NOW);
        assert!(ledger.may_hold("ac-b", &node(&[]), NOW));
    }

    #[test]
    fn an_unknown_entry_never_holds() {
        assert!(!ledger(&[]).may_hold("nobody", &node(&[]), NOW));
    }

    #[test]
    fn data_that_another_version_wrote_is_left_out_not_a_panic() {
        let data = BTreeMap::from([
            (NEXT_TICKET.to_string(), "x".to_string()),
            ("garbage".to_string(), "{not json".to_string()),
        ]);
        assert_eq!(Ledger::from_data(&data), Ledger::default());
    }

    proptest! {
        /// Whatever the ledger holds, granting every entry that may hold (in ticket order)
        /// never reserves more than the probes' capacity, unless one entry holds alone;
        /// and the first in line always gets in.
        #[test]
        fn holders_never_exceed_the_capacity(demands in proptest::collection::vec(1u32..3000, 1..8)) {
            let nodes = node(&[]);
            let capacity = nodes.capacity_beside(440);
            let mut ledger = ledger(&demands
                .iter()
                .enumerate()
                .map(|(i, m)| entry(i as u64, (*m).min(nodes.capacity_outside(&BTreeMap::new())), false, &format!("ac-{i}")))
                .collect::<Vec<_>>());
            for i in 0..demands.len() {
                let id = format!("ac-{i}");
                if ledger.may_hold(&id, &nodes, NOW) {
                    ledger.entries.get_mut(&id).unwrap().holding = true;
                }
            }
            let holders: Vec<u32> = ledger.entries.values().filter(|e| e.holding).map(|e| e.millis).collect();
            prop_assert!(!holders.is_empty() && ledger.entries["ac-0"].holding);
            prop_assert!(holders.len() == 1 || holders.iter().sum::<u32>() <= capacity);
            roundtrip(&ledger)?;
        }
    }

    fn roundtrip(ledger: &Ledger) -> Result<(), TestCaseError> {
        prop_assert_eq!(&Ledger::from_data(&ledger.to_data()), ledger);
        Ok(())
    }
}

//! The coordinator's Prometheus metrics (served at `/metrics` by the web views, OpenMetrics
//! text), with `prometheus-client`.
//!
//! Events are counted where they happen, in one process-wide [`Metrics`] ([`global`]): lease
//! expiries (the reclaimer), results per outcome (the report path), buildinfos and Packages
//! entries ingested (the ingestion paths). Values that live in the database are read at each
//! scrape: queue depth per architecture and priority, and each finished campaign's time from
//! creation to its last item reaching a final good state. Counters count this process's
//! events (coordinators sharing PostgreSQL are scraped and summed, as Prometheus expects).

use std::sync::LazyLock;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use debcover_core::rebuild::Priority;
use debcover_core::store::{CampaignStore, StoreError, ViewStore};

/// Label sets: `(name, value)` pairs.
type Labels = Vec<(String, String)>;

/// Item states in which a campaign item needs nothing more. A campaign is covered when every
/// item is in one of them (`covered` is the verified state; `removed` items ship nothing).
pub const FINAL_GOOD_STATES: [&str; 2] = ["covered", "removed"];

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    /// Leases ended by the reclaimer because they expired.
    pub lease_expiries: Counter,
    /// Rebuild results by outcome (`reproducible`, `unreproducible`, `failed`, ...).
    pub results: Family<Labels, Counter>,
    /// Buildinfo files ingested, by status (`new`, `known`, `rejected`).
    pub buildinfos: Family<Labels, Counter>,
    /// Packages index entries applied.
    pub packages_entries: Counter,
    /// Queued jobs per architecture and priority (read at scrape).
    queue_depth: Family<Labels, Gauge>,
    /// Seconds from a campaign's creation to its last item's final good state (read at scrape).
    campaign_covered: Family<Labels, Gauge>,
    /// One scrape at a time refreshes the scrape-time gauges.
    scrape: tokio::sync::Mutex<()>,
    /// Scrapes served.
    scrapes: Counter,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("debcover");
        let m = Metrics {
            registry: Registry::default(),
            lease_expiries: Counter::default(),
            results: Family::default(),
            buildinfos: Family::default(),
            packages_entries: Counter::default(),
            queue_depth: Family::default(),
            campaign_covered: Family::default(),
            scrape: tokio::sync::Mutex::new(()),
            scrapes: Counter::default(),
        };
        registry.register("lease_expiries", "Rebuild leases ended because they expired", m.lease_expiries.clone());
        registry.register("rebuild_results", "Rebuild results reported, by outcome", m.results.clone());
        registry.register("buildinfos_ingested", "Buildinfo files ingested, by status", m.buildinfos.clone());
        registry.register("packages_entries_ingested", "Packages index entries applied", m.packages_entries.clone());
        registry.register("queue_depth", "Queued rebuild jobs per architecture and priority", m.queue_depth.clone());
        registry.register(
            "campaign_covered_seconds",
            "Seconds from a campaign's creation to its last item reaching a final good state",
            m.campaign_covered.clone(),
        );
        registry.register("metrics_scrapes", "Scrapes of this endpoint", m.scrapes.clone());
        Metrics { registry, ..m }
    }

    /// Count one batch of buildinfo files.
    pub fn record_buildinfos(&self, new: u64, known: u64, rejected: u64) {
        for (status, n) in [("new", new), ("known", known), ("rejected", rejected)] {
            if n > 0 {
                self.buildinfos.get_or_create(&vec![("status".to_owned(), status.to_owned())]).inc_by(n);
            }
        }
    }

    /// Count one rebuild result.
    pub fn record_result(&self, outcome: &str) {
        self.results.get_or_create(&vec![("outcome".to_owned(), outcome.to_owned())]).inc();
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

/// Read the scrape-time values from the store.
async fn refresh<S: ViewStore + CampaignStore>(store: &S, m: &Metrics) -> Result<(), StoreError> {
    let depth = store.queue_depth().await?;
    let campaigns = store.campaigns().await?;
    m.queue_depth.clear();
    for d in depth {
        let priority = Priority::from_rank(d.priority).map(|p| p.as_str().to_owned()).unwrap_or(d.priority.to_string());
        m.queue_depth
            .get_or_create(&vec![("arch".to_owned(), d.arch), ("priority".to_owned(), priority)])
            .set(i64::try_from(d.count).unwrap_or(i64::MAX));
    }
    m.campaign_covered.clear();
    for (c, counts) in campaigns {
        let done = !counts.is_empty()
            && counts.iter().all(|(state, n)| *n == 0 || FINAL_GOOD_STATES.contains(&state.as_str()));
        if !done {
            continue;
        }
        let items = store.campaign_items(Some(c.id), None).await?;
        let last = items.iter().map(|i| i.updated_at).max().unwrap_or(c.created_at);
        m.campaign_covered
            .get_or_create(&vec![("campaign".to_owned(), c.id.to_string())])
            .set((last - c.created_at).max(0));
    }
    Ok(())
}

/// The metrics as OpenMetrics text, the values that live in the database read now (one scrape
/// at a time).
pub async fn scrape<S: ViewStore + CampaignStore>(store: &S) -> Result<String, StoreError> {
    let m = global();
    let _one = m.scrape.lock().await;
    m.scrapes.inc();
    refresh(store, m).await?;
    let mut out = String::new();
    encode(&mut out, &m.registry).map_err(|e| StoreError::Corrupt(format!("metrics do not encode: {e}")))?;
    Ok(out)
}

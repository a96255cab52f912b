//! The daemon: owns the scan schedule, the HTTP listener and graceful shutdown, and nothing
//! else. A scan is `scan::scan`, the one `--once` runs; what it produces is merged into
//! [`Latest`] (the last good result) and rendered by `export::metrics` and `export::html`.
//!
//! - **Schedule.** A scan at start-up, then one per tick of the cron schedule
//!   (tokio-cron-scheduler). Scans never overlap: a tick that comes while a scan still runs
//!   is skipped and counted (`vpc_auditor_scans_skipped_total`), so a slow account cannot
//!   pile scans up.
//! - **Listener.** `/metrics`, `/healthz`, `/readyz`, `/findings` and `/` (a status page),
//!   over plain HTTP or TLS, with optional basic auth, as the web config file
//!   ([`WebConfig`]) says. `/healthz` and `/readyz` stay open without credentials (they
//!   say only "ok" or "ready", and Kubernetes probes send none); `/findings` and `/` can
//!   be turned off (404).
//! - **Reload.** On a reload request (SIGHUP, see [`reload_signal`]) the config, rule
//!   packs, suppressions and web config are read again. A bad one is logged and counted
//!   (`vpc_auditor_config_reloads_total{result="failure"}`) and the running one stays; a
//!   good one applies from the next scan (packs, scope, regions, suppressions, schedule)
//!   and the next request (auth, endpoints) or connection (TLS certificate). The listen
//!   address and `metrics.per_resource_series` need a restart.
//! - **Shutdown.** When the caller's shutdown future resolves (SIGTERM or SIGINT, see
//!   [`shutdown_signal`]), the listener stops accepting and drains, the schedule stops, an
//!   in-flight scan is cancelled through its [`CancellationToken`], and [`run`] returns;
//!   each wait is bounded, so the process exits within seconds.
//!
//! - **Events.** With `events:` in the config, change events from an SQS queue trigger
//!   re-scans of just the accounts and regions they name (see [`crate::events`]). The
//!   scan loop debounces them per target and still runs one scan at a time: events that
//!   come during a scan make exactly one more. A re-scan merges into [`Latest`] for its
//!   targets only; the messages it covered are deleted once it is published, and left on
//!   the queue (redelivered, then dead-lettered) when it fails. The schedule stays.
//!
//! [`run`] takes its listener and its shutdown future from the caller, so tests inject both.

use std::collections::{BTreeMap, BTreeSet};
use std::future::{Future, IntoFuture};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::future::BoxFuture;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;

use crate::config::{CronSchedule, Settings};
use crate::events::queue::{self, EventQueue, EventSink};
use crate::events::{Coalescer, Ignored, Received, Target};
use crate::export::html;
use crate::export::latest::{Latest, ScanError};
use crate::export::metrics::{self, ConfigLoad, Metrics};
use crate::scan::{self, ScanOutput, SnapshotSource};
use crate::web_config::{AuthCheck, WebConfig};

/// How long shutdown waits for each of: the schedule, the cancelled scan, open connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Ticks waiting for the scan loop; it takes them at once, so a few are plenty.
const TICK_QUEUE: usize = 4;

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections accepted (and, with TLS, past their handshake) waiting for the HTTP server.
const ACCEPT_QUEUE: usize = 64;

/// Reads the settings again (config file, rule packs, suppressions) for a reload; the
/// error names the file, line and field.
pub type Reloader = Arc<dyn Fn() -> Result<Settings, String> + Send + Sync>;

/// What the daemon runs.
#[derive(Clone)]
pub struct DaemonConfig {
    pub settings: Settings,
    /// AWS, or for trying the daemon without an account, the demo or a snapshot file
    /// (read again at every scan).
    pub source: SnapshotSource,
    /// TLS and basic auth for the listener, loaded from `settings.daemon.web_config_file`.
    pub web: WebConfig,
    /// How a reload request re-reads the settings; `None`: reloads are refused.
    pub reload: Option<Reloader>,
}

/// What a scan resolves to: `None` when it was cancelled.
type ScanResult = Option<Result<ScanOutput, ScanError>>;

/// What a scan covers: everything (`None`), or only these (account, region) targets, with
/// `global` for an account's IAM.
type ScanRequest = Option<Arc<BTreeSet<(String, String)>>>;

/// A scan as the daemon runs it: it is handed what to cover and a token that is cancelled
/// at shutdown.
type ScanFn =
    Arc<dyn Fn(ScanRequest, CancellationToken) -> BoxFuture<'static, ScanResult> + Send + Sync>;

/// Messages waiting in the queue: the changes handed over, and where to send the messages
/// to delete once their scan is published.
struct EventChannels {
    changes: mpsc::Receiver<Received>,
    settled: mpsc::Sender<Vec<Received>>,
    debounce: Duration,
}

/// Changes waiting for the scan loop; the queue loop waits when it is full.
const CHANGE_QUEUE: usize = 1024;

/// What the scan loop, the listener and the HTTP handlers share.
struct Shared {
    latest: RwLock<Latest>,
    metrics: Metrics,
    /// The settings in force: a scan takes them when it starts, so a reload applies from
    /// the next scan.
    settings: RwLock<Arc<Settings>>,
    /// The web config in force: the listener takes it per connection, auth per request.
    web: RwLock<Arc<WebConfig>>,
}

impl Shared {
    fn new(settings: Settings, web: WebConfig) -> Result<Shared, String> {
        let metrics = Metrics::new(settings.daemon.metrics.per_resource_series)
            .map_err(|e| format!("cannot register the metrics: {e}"))?;
        metrics.config_loaded(ConfigLoad::AtStart);
        metrics.set_shard(settings.shard);
        Ok(Shared {
            latest: RwLock::new(Latest::default()),
            metrics,
            settings: RwLock::new(Arc::new(settings)),
            web: RwLock::new(Arc::new(web)),
        })
    }

    fn latest(&self) -> RwLockReadGuard<'_, Latest> {
        self.latest.read().unwrap_or_else(|e| e.into_inner())
    }

    fn settings(&self) -> Arc<Settings> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn web(&self) -> Arc<WebConfig> {
        self.web.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Merges a finished scan into the last good result and the metrics, and logs it.
    /// `targets`: the scan covered only those. Returns the targets it refreshed (collected
    /// successfully and now published).
    fn record(
        &self,
        result: Result<&ScanOutput, &ScanError>,
        duration: Duration,
        targets: Option<&BTreeSet<(String, String)>>,
    ) -> BTreeSet<(String, String)> {
        let at = chrono::Utc::now();
        let mut latest = self.latest.write().unwrap_or_else(|e| e.into_inner());
        let (record, refreshed) = match (result, targets) {
            (Ok(output), Some(targets)) => latest.record_targets(output, targets, at),
            (result, _) => {
                let record = latest.record(result, at, duration);
                let refreshed = match result {
                    Ok(output) => output
                        .report
                        .scans
                        .iter()
                        .filter(|s| s.status == crate::export::report::ScanOutcome::Ok)
                        .map(|s| (s.account_id.clone(), s.region.clone()))
                        .collect(),
                    Err(_) => BTreeSet::new(),
                };
                (record, refreshed)
            }
        };
        // Under the same lock, so /findings and /metrics never disagree about the scan.
        self.metrics.record_scan(&latest, &record);
        for error in &record.errors {
            tracing::warn!(
                stage = error.stage(),
                operation = error.operation(),
                account_id = error.account_id(),
                region = error.region(),
                error = error.message(),
                "scan failed; serving the last good findings"
            );
        }
        tracing::info!(
            duration_seconds = duration.as_secs_f64(),
            findings = latest.findings().len(),
            failures = record.errors.len(),
            stale = latest.is_stale(),
            targets = targets.map(|t| t.len()),
            "scan finished"
        );
        refreshed
    }
}

/// The daemon as the events queue loops see it.
impl EventSink for Shared {
    fn ready(&self) -> bool {
        self.latest().is_ready()
    }

    fn audited(&self, target: &Target) -> bool {
        self.latest()
            .audited()
            .any(|(account, region)| *account == target.account_id && *region == target.region)
    }

    fn ignored(&self, ignored: &Ignored) {
        self.metrics.event_received(
            ignored.source().label(),
            ignored.event_name_label(),
            ignored.outcome(),
        );
    }

    fn queue_call(&self, failed: Option<&str>) {
        let name = self
            .settings()
            .daemon
            .events
            .as_ref()
            .map(|e| {
                e.queue_url
                    .0
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
            .unwrap_or_default();
        self.metrics.event_queue(&name, failed);
    }
}

/// Runs the daemon until `shutdown` resolves: scans at start-up and on the schedule, and
/// serves the results on `listener`; each message on `reloads` re-reads the config.
/// Returns an error only when the daemon cannot start or its listener fails.
pub async fn run<F>(
    config: DaemonConfig,
    listener: TcpListener,
    shutdown: F,
    mut reloads: mpsc::Receiver<()>,
) -> Result<(), String>
where
    F: Future<Output = ()> + Send + 'static,
{
    let DaemonConfig {
        settings,
        source,
        web,
        reload,
    } = config;
    let schedule = settings.daemon.schedule.clone();
    let (scheme, auth) = web.describe();
    let shared = Arc::new(Shared::new(settings, web)?);
    let stop = CancellationToken::new();
    let (ticks_tx, ticks_rx) = mpsc::channel(TICK_QUEUE);
    let mut scheduler = start_schedule(&schedule, ticks_tx.clone()).await?;
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let connections = accept_connections(listener, shared.clone(), stop.clone())?;
    let mut server = tokio::spawn(
        axum::serve(connections, router(shared.clone()))
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .into_future(),
    );
    let events = match shared.settings().daemon.events.clone() {
        Some(events) => {
            let queue = EventQueue::connect(&shared.settings().aws, &events).await;
            shared.metrics.events_configured();
            let sink: Arc<dyn EventSink> = shared.clone();
            let (changes_tx, changes) = mpsc::channel(CHANGE_QUEUE);
            let (settled, settled_rx) = mpsc::channel(CHANGE_QUEUE);
            let checked = queue.clone();
            let check_sink = sink.clone();
            let debounce = events.debounce.0;
            let receiving = stop.clone();
            tokio::spawn(async move {
                checked.check(debounce, check_sink.as_ref()).await;
                queue::receive_loop(checked, check_sink, changes_tx, receiving).await;
            });
            tokio::spawn(queue::delete_loop(queue.clone(), sink, settled_rx));
            tracing::info!(queue = %queue.name, debounce = %events.debounce, "event-driven re-scans on");
            Some(EventChannels {
                changes,
                settled,
                debounce,
            })
        }
        None => None,
    };
    let scans = tokio::spawn(scan_loop(
        shared.clone(),
        aws_or_file_scan(shared.clone(), source),
        ticks_rx,
        events,
        stop.clone(),
    ));
    tracing::info!(
        address,
        scheme,
        basic_auth = auth,
        schedule = schedule.0,
        "daemon started"
    );

    tokio::pin!(shutdown);
    let mut reloading = true;
    let outcome = loop {
        tokio::select! {
            () = &mut shutdown => {
                tracing::info!("shutting down");
                break Ok(());
            }
            ended = &mut server => break Err(match ended {
                Ok(Ok(())) => "the HTTP listener stopped".to_string(),
                Ok(Err(err)) => format!("the HTTP listener failed: {err}"),
                Err(err) => format!("the HTTP listener failed: {err}"),
            }),
            request = reloads.recv(), if reloading => match request {
                Some(()) => reload_config(reload.as_ref(), &shared, &mut scheduler, &ticks_tx).await,
                None => reloading = false,
            },
        }
    };
    stop.cancel();
    match tokio::time::timeout(DRAIN_TIMEOUT, scheduler.shutdown()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = ?err, "the schedule did not stop cleanly"),
        Err(_) => tracing::warn!("the schedule did not stop in time"),
    }
    tracing::debug!("schedule stopped");
    if tokio::time::timeout(DRAIN_TIMEOUT, scans).await.is_err() {
        tracing::warn!("the cancelled scan did not stop in time");
    }
    if outcome.is_ok()
        && tokio::time::timeout(DRAIN_TIMEOUT, &mut server)
            .await
            .is_err()
    {
        tracing::warn!("HTTP connections still open after the drain timeout; closing them");
        server.abort();
    }
    tracing::info!("stopped");
    outcome
}

/// Resolves on the first SIGTERM (how Kubernetes and systemd stop a service) or SIGINT
/// (Ctrl-C). The handlers are installed when this is called, not when the future is first
/// polled, so a signal that comes while the daemon starts is not lost.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        let wait = |installed: std::io::Result<tokio::signal::unix::Signal>, name: &'static str| async move {
            match installed {
                Ok(mut signal) => {
                    signal.recv().await;
                    tracing::info!(signal = name, "received");
                }
                Err(err) => {
                    tracing::warn!(signal = name, error = %err, "cannot listen for the signal");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            () = wait(term, "SIGTERM") => {}
            () = wait(int, "SIGINT") => {}
        }
    }
}

/// A reload request per SIGHUP, the signal daemons conventionally re-read their config on.
/// The handler is installed when this is called.
pub fn reload_signal() -> mpsc::Receiver<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = mpsc::channel(1);
    match signal(SignalKind::hangup()) {
        Ok(mut hangups) => {
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    tracing::info!(signal = "SIGHUP", "received");
                    // A reload already waiting will read the newest files anyway.
                    let _ = tx.try_send(());
                }
            });
        }
        Err(err) => tracing::warn!(signal = "SIGHUP", error = %err, "cannot listen for the signal"),
    }
    rx
}

/// Re-reads the settings and the web config. A bad one is logged and counted, and the
/// running one stays; a good one replaces it (and the schedule, when that changed).
async fn reload_config(
    reloader: Option<&Reloader>,
    shared: &Shared,
    scheduler: &mut JobScheduler,
    ticks: &mpsc::Sender<()>,
) {
    let rejected = |error: String| {
        tracing::error!(
            error = %error,
            "config reload failed; still running with the previous config"
        );
        shared.metrics.config_loaded(ConfigLoad::Rejected);
    };
    let Some(reloader) = reloader else {
        return rejected("this daemon cannot reload its config".to_string());
    };
    let loaded = reloader().and_then(|settings| {
        let web = WebConfig::load_or_plain(settings.daemon.web_config_file.as_deref())
            .map_err(|e| e.to_string())?;
        Ok((settings, web))
    });
    let (settings, web) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return rejected(error),
    };
    let old = shared.settings();
    if settings.daemon.listen != old.daemon.listen {
        tracing::warn!(
            listen = %settings.daemon.listen.0,
            "the listen address changes only at a restart; still listening on the old one"
        );
    }
    if settings.daemon.events != old.daemon.events {
        tracing::warn!("events (the queue and its debounce) change only at a restart");
    }
    if settings.daemon.metrics != old.daemon.metrics {
        tracing::warn!("metrics.per_resource_series changes only at a restart");
    }
    if settings.daemon.schedule != old.daemon.schedule {
        match start_schedule(&settings.daemon.schedule, ticks.clone()).await {
            Ok(new) => {
                let mut previous = std::mem::replace(scheduler, new);
                if !matches!(
                    tokio::time::timeout(DRAIN_TIMEOUT, previous.shutdown()).await,
                    Ok(Ok(()))
                ) {
                    tracing::warn!("the previous schedule did not stop cleanly");
                }
            }
            Err(error) => return rejected(error),
        }
    }
    let (scheme, auth) = web.describe();
    tracing::info!(
        schedule = settings.daemon.schedule.0,
        packs = settings.packs.len(),
        regions = settings.regions.len(),
        suppressions = settings.suppressions.len(),
        scheme,
        basic_auth = auth,
        "config reloaded; it applies from the next scan"
    );
    if settings.shard != old.shard {
        tracing::info!(shard = %settings.shard, "the shard changed; it applies from the next scan");
        shared.metrics.set_shard(settings.shard);
    }
    *shared.settings.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(settings);
    *shared.web.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(web);
    shared.metrics.config_loaded(ConfigLoad::Reloaded);
}

/// Starts the cron schedule; each tick is sent to the scan loop, which decides whether it
/// runs or is skipped.
async fn start_schedule(
    schedule: &CronSchedule,
    ticks: mpsc::Sender<()>,
) -> Result<JobScheduler, String> {
    let failed = |what: &str, err: tokio_cron_scheduler::JobSchedulerError| {
        format!("cannot {what} the scan schedule {:?}: {err:?}", schedule.0)
    };
    let scheduler = JobScheduler::new().await.map_err(|e| failed("create", e))?;
    let job = Job::new_async(schedule.0.as_str(), move |_id, _scheduler| {
        let ticks = ticks.clone();
        Box::pin(async move {
            if let Err(mpsc::error::TrySendError::Full(())) = ticks.try_send(()) {
                tracing::warn!("scan tick dropped: the scan loop is behind");
            }
        })
    })
    .map_err(|e| failed("parse", e))?;
    scheduler.add(job).await.map_err(|e| failed("add", e))?;
    scheduler.start().await.map_err(|e| failed("start", e))?;
    Ok(scheduler)
}

/// The real scan: `scan::scan` with the settings in force when it starts and the daemon's
/// source, abandoned (its AWS calls dropped mid-flight) when the token is cancelled. A
/// panic inside it ends its task and is counted by the scan loop as an error.
fn aws_or_file_scan(shared: Arc<Shared>, source: SnapshotSource) -> ScanFn {
    let source = Arc::new(source);
    Arc::new(move |request: ScanRequest, token: CancellationToken| {
        let settings = shared.settings();
        let source = source.clone();
        Box::pin(async move {
            let scan = async {
                match &request {
                    None => scan::scan(&settings, &source).await,
                    Some(targets) => scan::scan_targets(&settings, &source, targets).await,
                }
            };
            tokio::select! {
                biased;
                () = token.cancelled() => None,
                result = scan => {
                    Some(result.map_err(|message| ScanError::Source { message }))
                }
            }
        })
    })
}

/// A scan in flight.
struct Running {
    task: JoinHandle<ScanResult>,
    started: Instant,
    /// `None`: a full scan.
    targets: Option<Arc<BTreeSet<(String, String)>>>,
    /// The messages it covers: received before it started, for a target it scans.
    covers: Vec<Received>,
}

/// Resolves when the scan in flight ends; never, when there is none.
async fn finished(running: &mut Option<Running>) -> Result<ScanResult, tokio::task::JoinError> {
    match running {
        Some(running) => (&mut running.task).await,
        None => std::future::pending().await,
    }
}

/// Resolves at `at`; never, when it is `None`.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Runs a scan now and then one per tick, never two at once, until `stop` is cancelled;
/// then cancels the scan in flight and waits for it to end. With `events`, changes are
/// debounced per target, and a scan of the targets due starts whenever none runs.
async fn scan_loop(
    shared: Arc<Shared>,
    scan: ScanFn,
    mut ticks: mpsc::Receiver<()>,
    events: Option<EventChannels>,
    stop: CancellationToken,
) {
    let start = |scan: &ScanFn, waiting: BTreeMap<Target, Vec<Received>>, full: bool| {
        let targets = (!full).then(|| {
            Arc::new(
                waiting
                    .keys()
                    .map(|t| (t.account_id.clone(), t.region.clone()))
                    .collect::<BTreeSet<_>>(),
            )
        });
        Running {
            task: tokio::spawn(scan(targets.clone(), stop.child_token())),
            started: Instant::now(),
            targets,
            covers: waiting.into_values().flatten().collect(),
        }
    };
    let (mut changes, settled, debounce) = match events {
        Some(e) => (Some(e.changes), Some(e.settled), e.debounce),
        None => (None, None, Duration::from_secs(5)),
    };
    let mut waiting = Coalescer::new(debounce);
    let mut running = Some(start(&scan, BTreeMap::new(), true));
    let mut ticking = true;
    loop {
        let due = match running {
            None => waiting.next_due(),
            Some(_) => None,
        };
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            ended = finished(&mut running) => {
                let Some(done) = running.take() else { continue };
                let duration = done.started.elapsed();
                let targets = done.targets.as_deref();
                let refreshed = match ended {
                    Ok(Some(Ok(output))) => shared.record(Ok(&output), duration, targets),
                    Ok(Some(Err(error))) => shared.record(Err(&error), duration, targets),
                    // Cancelled: only at shutdown, and a cancelled scan has no result.
                    Ok(None) => BTreeSet::new(),
                    Err(err) => shared.record(
                        Err(&ScanError::Panicked { message: err.to_string() }),
                        duration,
                        targets,
                    ),
                };
                settle(&shared, done.covers, &refreshed, settled.as_ref()).await;
                release_freed_memory();
            }
            change = recv(&mut changes) => match change {
                Some(message) => waiting.add(message),
                None => changes = None,
            },
            () = sleep_until(due) => {
                let targets = waiting.take_due(Instant::now());
                if !targets.is_empty() {
                    tracing::info!(targets = ?targets.keys().map(Target::to_string).collect::<Vec<_>>(), "re-scanning for change events");
                    shared.metrics.event_rescan();
                    running = Some(start(&scan, targets, false));
                }
            }
            tick = ticks.recv(), if ticking => match tick {
                Some(()) if running.is_some() => {
                    tracing::warn!("the previous scan is still running; skipping this one");
                    shared.metrics.scan_skipped();
                }
                Some(()) => running = Some(start(&scan, waiting.take_all(), true)),
                None => ticking = false,
            },
        }
    }
    if let Some(running) = running {
        // The scan's token is a child of `stop`: it is cancelled already.
        let _ = running.task.await;
    }
}

/// Hands the memory a finished scan freed (its snapshot and report, dropped by now) back to
/// the OS. glibc's allocator keeps freed pages in its arenas, one per thread that
/// allocated, so without this the daemon stays at its scan's peak until the next scan.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory at the top of glibc's heaps to the OS;
    // it touches no live allocation and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The next change; never, once the queue loop is gone (or there is none).
async fn recv(changes: &mut Option<mpsc::Receiver<Received>>) -> Option<Received> {
    match changes {
        Some(changes) => changes.recv().await,
        None => std::future::pending().await,
    }
}

/// After a scan: the messages it covered whose target it refreshed are counted, timed and
/// sent to be deleted; the others (their target failed) stay on the queue, so SQS delivers
/// them again and, after its `maxReceiveCount`, dead-letters them.
async fn settle(
    shared: &Shared,
    covered: Vec<Received>,
    refreshed: &BTreeSet<(String, String)>,
    settled: Option<&mpsc::Sender<Vec<Received>>>,
) {
    if covered.is_empty() {
        return;
    }
    let now = chrono::Utc::now();
    let (done, failed): (Vec<Received>, Vec<Received>) = covered.into_iter().partition(|m| {
        let t = &m.change.target;
        refreshed.contains(&(t.account_id.clone(), t.region.clone()))
    });
    let timings: Vec<(&str, &str, Option<f64>)> = done
        .iter()
        .map(|m| {
            let seconds = m
                .change
                .time
                .map(|t| (now - t).num_milliseconds() as f64 / 1000.0);
            (m.change.source.label(), m.change.event_name, seconds)
        })
        .collect();
    shared.metrics.events_refreshed(&timings);
    for m in &failed {
        shared
            .metrics
            .event_received(m.change.source.label(), m.change.event_name, "scan_failed");
    }
    if !failed.is_empty() {
        tracing::warn!(
            messages = failed.len(),
            "the scan of these events failed; they stay on the queue and come back"
        );
    }
    if let (Some(settled), false) = (settled, done.is_empty()) {
        let _ = settled.send(done).await;
    }
}

/// A connection the HTTP server reads: plain TCP, or TLS past its handshake.
type Connection = Either<TcpStream, tokio_rustls::server::TlsStream<TcpStream>>;

/// The connections `accept_connections` hands over, as an axum listener.
struct Connections {
    ready: mpsc::Receiver<(Connection, std::net::SocketAddr)>,
    local: std::net::SocketAddr,
}

impl axum::serve::Listener for Connections {
    type Io = Connection;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop stopped: shutdown is under way.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Accepts TCP connections until `stop`; with TLS in the web config in force, each one's
/// handshake runs in its own task (so a slow client holds up nobody) and a failed one (a
/// plain-HTTP client, an unverified client certificate) is dropped.
fn accept_connections(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> Result<Connections, String> {
    let local = listener
        .local_addr()
        .map_err(|e| format!("the listener has no address: {e}"))?;
    let (ready, connections) = mpsc::channel(ACCEPT_QUEUE);
    tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: back off, as axum does.
                        tracing::debug!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            match shared.web().tls.clone() {
                None => {
                    if ready.send((Either::Left(stream), peer)).await.is_err() {
                        return;
                    }
                }
                Some(tls) => {
                    let ready = ready.clone();
                    tokio::spawn(async move {
                        let handshake = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                            Ok(Ok(stream)) => {
                                let _ = ready.send((Either::Right(stream), peer)).await;
                            }
                            Ok(Err(err)) => {
                                tracing::debug!(%peer, error = %err, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    });
                }
            }
        }
    });
    Ok(Connections {
        ready: connections,
        local,
    })
}

fn router(shared: Arc<Shared>) -> Router {
    // Behind basic auth, when the web config has users.
    let guarded = Router::new()
        .route("/", get(status_page))
        .route("/metrics", get(metrics_text))
        .route("/findings", get(findings))
        .route_layer(middleware::from_fn_with_state(
            shared.clone(),
            require_basic_auth,
        ));
    // Open: probes carry no credentials, and these say nothing but "ok" or "ready".
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(guarded)
        .with_state(shared)
}

/// 401 with a `WWW-Authenticate: Basic` challenge unless the request carries the
/// credentials of one of the web config's `basic_auth_users` (or there are none).
async fn require_basic_auth(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let web = shared.web();
    if web.users.is_empty() {
        return next.run(request).await;
    }
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| value.as_bytes().to_vec());
    // bcrypt takes tens of milliseconds: off the async threads.
    let check = tokio::task::spawn_blocking(move || web.users.check(authorization.as_deref()))
        .await
        .unwrap_or(AuthCheck::Denied);
    match check {
        AuthCheck::Allowed => next.run(request).await,
        AuthCheck::Denied => (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Basic realm=\"vpc-auditor\", charset=\"UTF-8\"",
            )],
            "unauthorized\n",
        )
            .into_response(),
    }
}

/// 404, for an endpoint the config turned off.
fn turned_off() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// The metrics as rendered after the last scan; nothing is computed here.
async fn metrics_text(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        shared.metrics.text(),
    )
        .into_response()
}

/// The process is alive and serving.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready once the first scan completed, successfully or not: before it there is nothing
/// to serve, and after it a failing account is reported, not hidden by a restart loop.
async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.latest().is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the first scan has not completed\n",
        )
            .into_response()
    }
}

/// The merged report as JSON, with its staleness.
async fn findings(State(shared): State<Arc<Shared>>) -> Response {
    if !shared.settings().daemon.endpoints.findings {
        return turned_off();
    }
    let document = shared.latest().findings_document();
    match document {
        Some(document) => match serde_json::to_string_pretty(&document) {
            Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
            Err(err) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot serialise the findings: {err}\n"),
            )
                .into_response(),
        },
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"error\": \"no scan has completed yet\"}\n",
        )
            .into_response(),
    }
}

async fn status_page(State(shared): State<Arc<Shared>>) -> Response {
    if !shared.settings().daemon.endpoints.status_page {
        return turned_off();
    }
    Html(html::render(&shared.latest())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use crate::export::metrics::sample;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn demo_settings() -> Settings {
        Settings::resolve(&Overrides::default()).expect("default settings")
    }

    fn shared() -> Arc<Shared> {
        Arc::new(Shared::new(demo_settings(), WebConfig::default()).unwrap())
    }

    /// The demo scan's output, made once.
    async fn demo_output() -> ScanOutput {
        scan::scan(&demo_settings(), &SnapshotSource::Demo)
            .await
            .expect("demo scan")
    }

    /// A scan that takes `seconds` (of tokio time), counts its runs and returns `output`.
    fn slow_scan(seconds: u64, runs: Arc<AtomicUsize>, output: ScanOutput) -> ScanFn {
        Arc::new(move |_request: ScanRequest, token: CancellationToken| {
            let runs = runs.clone();
            let output = output.clone();
            Box::pin(async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::select! {
                    () = token.cancelled() => None,
                    () = tokio::time::sleep(Duration::from_secs(seconds)) => Some(Ok(output)),
                }
            })
        })
    }

    fn counter(shared: &Shared, name: &str) -> f64 {
        sample(&shared.metrics.text(), name).unwrap_or(-1.0)
    }

    #[tokio::test(start_paused = true)]
    async fn a_tick_during_a_scan_is_skipped_and_counted_and_the_next_one_runs() {
        let shared = shared();
        let runs = Arc::new(AtomicUsize::new(0));
        let (ticks, rx) = mpsc::channel(TICK_QUEUE);
        let stop = CancellationToken::new();
        let task = tokio::spawn(scan_loop(
            shared.clone(),
            slow_scan(10, runs.clone(), demo_output().await),
            rx,
            None,
            stop.clone(),
        ));

        // The start-up scan runs for 10 s; two ticks come during it.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        ticks.send(()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        ticks.send(()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "no overlapping scan");
        assert_eq!(counter(&shared, "vpc_auditor_scans_skipped_total"), 2.0);
        assert!(!shared.latest().is_ready());

        // It finishes; the next tick starts a scan.
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(shared.latest().is_ready());
        assert_eq!(counter(&shared, "vpc_auditor_scans_total"), 1.0);
        assert_eq!(
            counter(&shared, "vpc_auditor_last_scan_duration_seconds"),
            10.0
        );
        ticks.send(()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(counter(&shared, "vpc_auditor_scans_skipped_total"), 2.0);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(counter(&shared, "vpc_auditor_scans_total"), 2.0);

        stop.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_cancels_the_scan_in_flight_and_records_nothing() {
        let shared = shared();
        let cancelled = Arc::new(AtomicBool::new(false));
        let seen = cancelled.clone();
        let scan: ScanFn = Arc::new(move |_request: ScanRequest, token: CancellationToken| {
            let seen = seen.clone();
            Box::pin(async move {
                token.cancelled().await;
                seen.store(true, Ordering::SeqCst);
                None
            })
        });
        let (_ticks, rx) = mpsc::channel(TICK_QUEUE);
        let stop = CancellationToken::new();
        let task = tokio::spawn(scan_loop(shared.clone(), scan, rx, None, stop.clone()));
        tokio::time::sleep(Duration::from_secs(3600)).await;
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("the loop ends at once")
            .unwrap();
        assert!(cancelled.load(Ordering::SeqCst), "the scan saw its token");
        assert!(!shared.latest().is_ready());
        assert_eq!(counter(&shared, "vpc_auditor_scans_total"), 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_or_panicking_scan_is_recorded_as_a_failure() {
        let shared = shared();
        let calls = Arc::new(AtomicUsize::new(0));
        let n = calls.clone();
        let scan: ScanFn = Arc::new(move |_request: ScanRequest, _token: CancellationToken| {
            let call = n.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if call == 0 {
                    Some(Err(ScanError::Source {
                        message: "snap.json: No such file or directory".to_string(),
                    }))
                } else {
                    panic!("a bug in a rule")
                }
            })
        });
        let (ticks, rx) = mpsc::channel(TICK_QUEUE);
        let stop = CancellationToken::new();
        let task = tokio::spawn(scan_loop(shared.clone(), scan, rx, None, stop.clone()));
        tokio::time::sleep(Duration::from_secs(1)).await;
        ticks.send(()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let text = shared.metrics.text();
        assert_eq!(
            sample(&text, "vpc_auditor_scan_errors_total{aws_account_id=\"\",aws_region=\"\",operation=\"none\",stage=\"collect\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "vpc_auditor_scan_errors_total{aws_account_id=\"\",aws_region=\"\",operation=\"none\",stage=\"internal\"}"),
            Some(1.0)
        );
        assert_eq!(sample(&text, "vpc_auditor_last_scan_success"), Some(0.0));
        assert!(shared.latest().is_ready());
        stop.cancel();
        task.await.unwrap();
    }

    fn change(id: &str, region: &str) -> Received {
        Received {
            message_id: id.to_string(),
            receipt_handle: format!("receipt-{id}"),
            change: crate::events::Change {
                target: Target::new("123456789012", region),
                source: crate::events::Source::Ec2,
                event_name: "DeleteRoute",
                time: Some(chrono::Utc::now()),
                vpc_id: None,
            },
            received_at: Instant::now(),
        }
    }

    /// A scan of `seconds` that records each request and reports every target it was
    /// asked for as collected, except those in `failing`.
    fn targeted_scan(
        seconds: u64,
        requests: Arc<std::sync::Mutex<Vec<ScanRequest>>>,
        failing: &'static [&'static str],
    ) -> ScanFn {
        Arc::new(move |request: ScanRequest, _token: CancellationToken| {
            requests.lock().unwrap().push(request.clone());
            Box::pin(async move {
                tokio::time::sleep(Duration::from_secs(seconds)).await;
                let regions = match &request {
                    Some(targets) => targets.iter().map(|(_, r)| r.clone()).collect(),
                    None => vec!["us-east-1".to_string(), "eu-west-1".to_string()],
                };
                let snapshot = crate::snapshot::Snapshot {
                    regions: regions
                        .iter()
                        .map(|r| crate::snapshot::RegionSnapshot {
                            account_id: "123456789012".into(),
                            region: r.clone(),
                            error: failing.contains(&r.as_str()).then(|| {
                                crate::snapshot::CollectionError {
                                    operation: Some("ec2:DescribeVpcs".into()),
                                    message: "denied".into(),
                                }
                            }),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                };
                let report = crate::export::Report::build(
                    &snapshot,
                    crate::rules::Evaluation::default(),
                    "2026-12-05T00:00:00Z".into(),
                );
                Some(Ok(ScanOutput {
                    snapshot,
                    report,
                    duration: Duration::from_secs(seconds),
                }))
            })
        })
    }

    #[tokio::test(start_paused = true)]
    async fn events_during_a_scan_make_exactly_one_more_and_only_published_ones_are_settled() {
        let shared = shared();
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (_ticks, rx) = mpsc::channel(TICK_QUEUE);
        let (changes, changes_rx) = mpsc::channel(CHANGE_QUEUE);
        let (settled_tx, mut settled) = mpsc::channel(CHANGE_QUEUE);
        let stop = CancellationToken::new();
        let events = EventChannels {
            changes: changes_rx,
            settled: settled_tx,
            debounce: Duration::from_secs(2),
        };
        let task = tokio::spawn(scan_loop(
            shared.clone(),
            targeted_scan(10, requests.clone(), &["eu-west-1"]),
            rx,
            Some(events),
            stop.clone(),
        ));
        // The start-up scan runs 10 s; 200 events for us-east-1 and one for eu-west-1
        // come during it.
        tokio::time::sleep(Duration::from_secs(1)).await;
        for i in 0..200 {
            changes
                .send(change(&i.to_string(), "us-east-1"))
                .await
                .unwrap();
        }
        changes.send(change("eu", "eu-west-1")).await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        let seen = requests.lock().unwrap().clone();
        assert_eq!(
            seen.len(),
            2,
            "the start-up scan and exactly one more: {seen:?}"
        );
        assert_eq!(seen[0], None);
        let targets: Vec<(String, String)> = seen[1].as_deref().unwrap().iter().cloned().collect();
        assert_eq!(
            targets,
            vec![
                ("123456789012".to_string(), "eu-west-1".to_string()),
                ("123456789012".to_string(), "us-east-1".to_string()),
            ]
        );
        // us-east-1 was published: its 200 messages are settled; eu-west-1 failed: its
        // message is not deleted, so SQS redelivers it.
        let done = settled.try_recv().unwrap();
        assert_eq!(done.len(), 200);
        assert!(done.iter().all(|m| m.change.target.region == "us-east-1"));
        assert!(settled.try_recv().is_err());
        let text = shared.metrics.text();
        assert_eq!(sample(&text, "vpc_auditor_event_rescans_total"), Some(1.0));
        assert_eq!(
            sample(&text, "vpc_auditor_events_received_total{event_name=\"DeleteRoute\",outcome=\"rescanned\",source=\"aws.ec2\"}"),
            Some(200.0)
        );
        assert_eq!(
            sample(&text, "vpc_auditor_events_received_total{event_name=\"DeleteRoute\",outcome=\"scan_failed\",source=\"aws.ec2\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "vpc_auditor_event_to_findings_seconds_count"),
            Some(200.0)
        );
        // The failed region is stale; the other keeps its fresh data.
        let stale: Vec<String> = shared
            .latest()
            .regions()
            .filter(|r| r.is_stale())
            .map(|r| r.region.clone())
            .collect();
        assert_eq!(stale, vec!["eu-west-1".to_string()]);
        stop.cancel();
        task.await.unwrap();
    }

    /// A GET over a plain TCP connection: status code and body.
    async fn get(address: std::net::SocketAddr, path: &str) -> (u16, String, String) {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head.to_ascii_lowercase(), body.to_string())
    }

    async fn serve(shared: Arc<Shared>) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(axum::serve(listener, router(shared)).into_future());
        address
    }

    #[tokio::test]
    async fn handlers_answer_before_and_after_the_first_scan() {
        let shared = shared();
        let address = serve(shared.clone()).await;

        assert_eq!(get(address, "/healthz").await.0, 200);
        assert_eq!(get(address, "/readyz").await.0, 503);
        let (status, _, body) = get(address, "/findings").await;
        assert_eq!(status, 503);
        assert!(body.contains("no scan has completed yet"));
        assert!(get(address, "/").await.2.contains("has not completed yet"));

        let output = demo_output().await;
        shared.record(Ok(&output), Duration::from_millis(10), None);

        assert_eq!(get(address, "/readyz").await.0, 200);
        let (status, head, body) = get(address, "/findings").await;
        assert_eq!(status, 200);
        assert!(head.contains("content-type: application/json"), "{head}");
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["stale"], false);
        assert_eq!(doc["last_success_at"], doc["last_scan_at"]);
        // The same schema as --once --format json: it parses as a Report.
        let report: crate::export::Report = serde_json::from_value(doc).unwrap();
        assert_eq!(report.findings, output.report.findings);
        assert_eq!(report.summary, output.report.summary);

        let (status, head, body) = get(address, "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            head.contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        assert_eq!(sample(&body, "vpc_auditor_last_scan_success"), Some(1.0));
        let (status, head, body) = get(address, "/").await;
        assert_eq!(status, 200);
        assert!(head.contains("content-type: text/html"), "{head}");
        assert!(body.contains("union-data-plane") || body.contains("Findings"));
        assert_eq!(get(address, "/nope").await.0, 404);
    }

    #[tokio::test]
    async fn run_scans_at_start_up_serves_and_returns_when_shut_down() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = DaemonConfig {
            settings: demo_settings(),
            source: SnapshotSource::Demo,
            web: WebConfig::default(),
            reload: None,
        };
        let (_reload, reloads) = mpsc::channel(1);
        let daemon = tokio::spawn(run(
            config,
            listener,
            async {
                let _ = stopped.await;
            },
            reloads,
        ));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while get(address, "/readyz").await.0 != 200 {
            assert!(std::time::Instant::now() < deadline, "never ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (_, _, body) = get(address, "/metrics").await;
        assert_eq!(sample(&body, "vpc_auditor_last_scan_success"), Some(1.0));
        stop.send(()).unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(10), daemon)
            .await
            .expect("run returns within seconds of shutdown");
        assert_eq!(ended.unwrap(), Ok(()));
        assert!(tokio::net::TcpStream::connect(address).await.is_err());
    }
}

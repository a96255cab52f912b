//! The daemon: owns the scan schedule, the HTTP listener and graceful shutdown, and nothing
//! else. A scan is `scan::scan`, the one `--once` runs; what it produces is merged into
//! [`Latest`] (the last good result) and rendered by `export::metrics` and `export::html`.
//!
//! - **Schedule.** A scan at start-up, then one per tick of the cron schedule
//!   (tokio-cron-scheduler). Scans never overlap: a tick that comes while a scan still runs
//!   is skipped and counted (`vpc_auditor_scans_skipped_total`), so a slow account cannot
//!   pile scans up.
//! - **Listener.** `/metrics`, `/healthz`, `/readyz`, `/findings` and `/` (a status page).
//! - **Shutdown.** When the caller's shutdown future resolves (SIGTERM or SIGINT, see
//!   [`shutdown_signal`]), the listener stops accepting and drains, the schedule stops, an
//!   in-flight scan is cancelled through its [`CancellationToken`], and [`run`] returns;
//!   each wait is bounded, so the process exits within seconds.
//!
//! [`run`] takes its listener and its shutdown future from the caller, so tests inject both.

use std::future::{Future, IntoFuture};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

use crate::config::{CronSchedule, MetricsSettings, Settings};
use crate::export::html;
use crate::export::latest::{Latest, ScanError};
use crate::export::metrics::{self, Metrics};
use crate::scan::{self, ScanOutput, SnapshotSource};

/// How long shutdown waits for each of: the schedule, the cancelled scan, open connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Ticks waiting for the scan loop; it takes them at once, so a few are plenty.
const TICK_QUEUE: usize = 4;

/// What the daemon runs.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub settings: Settings,
    /// AWS, or for trying the daemon without an account, the demo or a snapshot file
    /// (read again at every scan).
    pub source: SnapshotSource,
}

/// What a scan resolves to: `None` when it was cancelled.
type ScanResult = Option<Result<ScanOutput, ScanError>>;

/// A scan as the daemon runs it: it is handed a token that is cancelled at shutdown.
type ScanFn = Arc<dyn Fn(CancellationToken) -> BoxFuture<'static, ScanResult> + Send + Sync>;

/// What the scan loop and the HTTP handlers share.
struct Shared {
    latest: RwLock<Latest>,
    metrics: Metrics,
}

impl Shared {
    fn new(settings: &MetricsSettings) -> Result<Shared, String> {
        Ok(Shared {
            latest: RwLock::new(Latest::default()),
            metrics: Metrics::new(settings.per_resource_series)
                .map_err(|e| format!("cannot register the metrics: {e}"))?,
        })
    }

    fn latest(&self) -> RwLockReadGuard<'_, Latest> {
        self.latest.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Merges a finished scan into the last good result and the metrics, and logs it.
    fn record(&self, result: Result<&ScanOutput, &ScanError>, duration: Duration) {
        let at = chrono::Utc::now();
        let mut latest = self.latest.write().unwrap_or_else(|e| e.into_inner());
        let record = latest.record(result, at, duration);
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
            "scan finished"
        );
    }
}

/// Runs the daemon until `shutdown` resolves: scans at start-up and on the schedule, and
/// serves the results on `listener`. Returns an error only when the daemon cannot start or
/// its listener fails.
pub async fn run<F>(config: DaemonConfig, listener: TcpListener, shutdown: F) -> Result<(), String>
where
    F: Future<Output = ()> + Send + 'static,
{
    let shared = Arc::new(Shared::new(&config.settings.daemon.metrics)?);
    let stop = CancellationToken::new();
    let (ticks_tx, ticks_rx) = mpsc::channel(TICK_QUEUE);
    let schedule = config.settings.daemon.schedule.clone();
    let mut scheduler = start_schedule(&schedule, ticks_tx).await?;
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let mut server = tokio::spawn(
        axum::serve(listener, router(shared.clone()))
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .into_future(),
    );
    let scans = tokio::spawn(scan_loop(
        shared,
        aws_or_file_scan(config),
        ticks_rx,
        stop.clone(),
    ));
    tracing::info!(address, schedule = schedule.0, "daemon started");

    let outcome = tokio::select! {
        () = shutdown => {
            tracing::info!("shutting down");
            Ok(())
        }
        ended = &mut server => Err(match ended {
            Ok(Ok(())) => "the HTTP listener stopped".to_string(),
            Ok(Err(err)) => format!("the HTTP listener failed: {err}"),
            Err(err) => format!("the HTTP listener failed: {err}"),
        }),
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

/// The real scan: `scan::scan` with the daemon's settings and source, abandoned (its AWS
/// calls dropped mid-flight) when the token is cancelled. A panic inside it ends its task
/// and is counted by the scan loop as an error.
fn aws_or_file_scan(config: DaemonConfig) -> ScanFn {
    let config = Arc::new(config);
    Arc::new(move |token: CancellationToken| {
        let config = config.clone();
        Box::pin(async move {
            tokio::select! {
                biased;
                () = token.cancelled() => None,
                result = scan::scan(&config.settings, &config.source) => {
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
}

/// Resolves when the scan in flight ends; never, when there is none.
async fn finished(running: &mut Option<Running>) -> Result<ScanResult, tokio::task::JoinError> {
    match running {
        Some(running) => (&mut running.task).await,
        None => std::future::pending().await,
    }
}

/// Runs a scan now and then one per tick, never two at once, until `stop` is cancelled;
/// then cancels the scan in flight and waits for it to end.
async fn scan_loop(
    shared: Arc<Shared>,
    scan: ScanFn,
    mut ticks: mpsc::Receiver<()>,
    stop: CancellationToken,
) {
    let start = |scan: &ScanFn| Running {
        task: tokio::spawn(scan(stop.child_token())),
        started: Instant::now(),
    };
    let mut running = Some(start(&scan));
    let mut ticking = true;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            ended = finished(&mut running) => {
                let duration = running.take().map(|r| r.started.elapsed()).unwrap_or_default();
                match ended {
                    Ok(Some(Ok(output))) => shared.record(Ok(&output), duration),
                    Ok(Some(Err(error))) => shared.record(Err(&error), duration),
                    // Cancelled: only at shutdown, and a cancelled scan has no result.
                    Ok(None) => {}
                    Err(err) => shared.record(
                        Err(&ScanError::Panicked { message: err.to_string() }),
                        duration,
                    ),
                }
            }
            tick = ticks.recv(), if ticking => match tick {
                Some(()) if running.is_some() => {
                    tracing::warn!("the previous scan is still running; skipping this one");
                    shared.metrics.scan_skipped();
                }
                Some(()) => running = Some(start(&scan)),
                None => ticking = false,
            },
        }
    }
    if let Some(running) = running {
        // The scan's token is a child of `stop`: it is cancelled already.
        let _ = running.task.await;
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/findings", get(findings))
        .with_state(shared)
}

/// The metrics as rendered after the last scan; nothing is computed here.
async fn metrics_text(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        shared.metrics.text().to_string(),
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

async fn status_page(State(shared): State<Arc<Shared>>) -> Html<String> {
    Html(html::render(&shared.latest()))
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
        Arc::new(Shared::new(&MetricsSettings::default()).unwrap())
    }

    /// The demo scan's output, made once.
    async fn demo_output() -> ScanOutput {
        scan::scan(&demo_settings(), &SnapshotSource::Demo)
            .await
            .expect("demo scan")
    }

    /// A scan that takes `seconds` (of tokio time), counts its runs and returns `output`.
    fn slow_scan(seconds: u64, runs: Arc<AtomicUsize>, output: ScanOutput) -> ScanFn {
        Arc::new(move |token: CancellationToken| {
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
        let scan: ScanFn = Arc::new(move |token: CancellationToken| {
            let seen = seen.clone();
            Box::pin(async move {
                token.cancelled().await;
                seen.store(true, Ordering::SeqCst);
                None
            })
        });
        let (_ticks, rx) = mpsc::channel(TICK_QUEUE);
        let stop = CancellationToken::new();
        let task = tokio::spawn(scan_loop(shared.clone(), scan, rx, stop.clone()));
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
        let scan: ScanFn = Arc::new(move |_token: CancellationToken| {
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
        let task = tokio::spawn(scan_loop(shared.clone(), scan, rx, stop.clone()));
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
        shared.record(Ok(&output), Duration::from_millis(10));

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
        };
        let daemon = tokio::spawn(run(config, listener, async {
            let _ = stopped.await;
        }));
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

//! Building the application: the same function serves `main` and the tests.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{middleware, web, App, HttpServer};

use crate::config::{Config, Storage};
use crate::service::access::tokens::{self, Bootstrap};
use crate::service::publish::{gc, resign, setup};
use crate::service::{ChannelLocks, Ctx, ServiceError};
use crate::store::{BlobStore, ObjectBlobStore, S3Settings};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot create data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error(transparent)]
    Signing(#[from] crate::signing::SigningError),
    #[error("cannot prepare the database: {0}")]
    Channels(#[from] ServiceError),
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    /// What an operator command needs is not there (wrong flags?).
    #[error("{0}: give the server's --config, --data-dir or --database-url (or FORKLIFT_CONFIG, FORKLIFT_DATA_DIR, FORKLIFT_DATABASE_URL)")]
    Missing(String),
}

/// Memory for small published files per instance (see `repo::HotFiles`).
const HOT_FILES_BUDGET: usize = 64 * 1024 * 1024;

/// Opens storage and database, runs migrations and prepares the channels.
pub fn init(config: Config) -> Result<Ctx, StartupError> {
    init_with_clock(config, Arc::new(crate::service::SystemClock))
}

/// `init` with a chosen clock for promotion logic (tests use a manual one).
pub fn init_with_clock(
    config: Config,
    clock: Arc<dyn crate::service::Clock>,
) -> Result<Ctx, StartupError> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| StartupError::DataDir(config.data_dir.display().to_string(), e))?;
    let store = open_store(&config)?;
    let pool = crate::db::connect(&config.database_url)?;
    // Instances starting together take turns preparing the shared state.
    let startup = crate::db::lock_startup(&pool)?;
    // Twice the connections: work that does not wait for one (file reads)
    // still runs while every connection is busy.
    let slots = pool.max_size() as usize * 2;
    let signer = crate::signing::Signer::load_or_generate(
        config.signing_key.as_deref(),
        config.signing_key_passphrase.clone(),
        &config.data_dir,
    )?;
    let signer = with_next_key(&config, signer)?;
    // Hosts pin these fingerprints; say them where operators look.
    tracing::info!(fingerprints = ?signer.fingerprints(), "repository signing keys");
    let external = crate::service::promotion::external::load(&config, true);
    let ctx = assemble(config, pool, store, signer, clock, slots, external);
    setup::sync_channels(&ctx)?;
    let indexed = crate::service::catalog::deps::backfill(&mut *ctx.conn()?, None)?;
    if indexed > 0 {
        tracing::info!(
            builds = indexed,
            "read the dependencies of builds stored before"
        );
    }
    let resigned = resign::resign_for_keys(&ctx)?;
    if !resigned.is_empty() {
        tracing::info!(channels = ?resigned, "signing keys changed: re-signed");
    }
    crate::service::promotion::policies::apply_config_policies(&ctx)?;
    crate::service::promotion::scheduler::sync(&ctx)?;
    crate::service::webhooks::apply_config(&ctx)?;
    match tokens::bootstrap(&mut *ctx.conn()?, &ctx.config, ctx.clock.now())? {
        Bootstrap::Generated(path) => tracing::warn!(
            file = %path.display(),
            "no admin token existed: created token \"admin\"; its secret is in this file (mode 0600)"
        ),
        Bootstrap::Supplied => tracing::info!("admin token \"admin\" taken from the configuration"),
        Bootstrap::Existing => {}
    }
    drop(startup);
    let swept = gc::sweep(&ctx, gc::TempFiles::All)?;
    if !swept.is_empty() {
        tracing::info!(?swept, "removed leftovers and superseded metadata");
    }
    Ok(ctx)
}

fn with_next_key(
    config: &Config,
    signer: crate::signing::Signer,
) -> Result<crate::signing::Signer, StartupError> {
    Ok(match &config.signing_key_next {
        Some(next) => signer.with_next_key(next, config.signing_key_next_passphrase.clone())?,
        None => signer,
    })
}

fn assemble(
    config: Config,
    pool: crate::db::Pool,
    store: Arc<dyn BlobStore>,
    signer: crate::signing::Signer,
    clock: Arc<dyn crate::service::Clock>,
    slots: usize,
    external: crate::formats::deps::External,
) -> Ctx {
    Ctx {
        config: Arc::new(config),
        pool,
        store,
        locks: Arc::new(ChannelLocks::default()),
        signer: Arc::new(signer),
        clock,
        pieces: Arc::new(crate::service::publish::pieces::PieceCache::default()),
        hot: Arc::new(crate::service::repo::HotFiles::new(HOT_FILES_BUDGET)),
        metrics: Arc::new(crate::metrics::Metrics::new()),
        blocking_slots: Arc::new(tokio::sync::Semaphore::new(slots)),
        file_slots: Arc::new(tokio::sync::Semaphore::new(slots)),
        external: Arc::new(external),
    }
}

/// Opens an existing server's store, database and signing keys for the
/// operator commands (`backup`, `fsck`), beside a server that may be running.
/// Unlike [`init`] it prepares nothing and sweeps nothing: the startup sweep
/// removes every temp file, which would cut off the live server's uploads in
/// flight. Nothing is created: a missing data directory, database or key is
/// an error.
pub fn open_existing(config: Config) -> Result<Ctx, StartupError> {
    if !config.data_dir.is_dir() {
        return Err(StartupError::Missing(format!(
            "no Forklift data directory at {}",
            config.data_dir.display()
        )));
    }
    if let crate::db::DbUrl::Sqlite(path) = crate::db::DbUrl::parse(&config.database_url)? {
        if !std::path::Path::new(&path).exists() {
            return Err(StartupError::Missing(format!(
                "no Forklift database at {path}"
            )));
        }
    }
    let store = open_store(&config)?;
    let pool = crate::db::connect(&config.database_url)?;
    let key = config
        .signing_key
        .clone()
        .unwrap_or_else(|| crate::signing::default_key_path(&config.data_dir));
    let signer = crate::signing::Signer::load(&key, config.signing_key_passphrase.clone())?;
    let signer = with_next_key(&config, signer)?;
    // One command's work at a time: no request pool to admit into.
    let slots = pool.max_size() as usize;
    let clock = Arc::new(crate::service::SystemClock);
    // The operator commands promote nothing: no base repositories fetched.
    let external = crate::service::promotion::external::load(&config, false);
    Ok(assemble(
        config, pool, store, signer, clock, slots, external,
    ))
}

/// The configured blob store: the data directory, or a bucket.
pub fn open_store(config: &Config) -> Result<Arc<dyn BlobStore>, StartupError> {
    Ok(match &config.storage {
        Storage::File => Arc::new(crate::store::open_local(&config.data_dir)?),
        Storage::S3(s) => {
            let settings = S3Settings {
                bucket: s.bucket.clone(),
                prefix: s.prefix.clone(),
                endpoint: s.endpoint.clone(),
                region: s.region.clone(),
            };
            let store = ObjectBlobStore::open_s3(&settings, config.data_dir.join("tmp"))?;
            tracing::info!(storage = %config.storage.url(), "blobs in object storage");
            Arc::new(store)
        }
    })
}

/// The HTTP server on an already bound listener (tests bind port 0).
pub fn server(ctx: Ctx, listener: TcpListener) -> Result<actix_web::dev::Server, StartupError> {
    let ctx_for_tasks = ctx.clone();
    let metrics = ctx.metrics.clone();
    let data = web::Data::new(ctx);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            // Request line and status, never headers (credentials travel only in headers).
            .wrap(middleware::Logger::new("%a \"%r\" %s %b %Dms").exclude("/healthz"))
            // A span per request, so what its blocking work logs names it.
            .wrap_fn(|req, srv| {
                use actix_web::dev::Service as _;
                use tracing::Instrument as _;
                let span = tracing::error_span!(
                    "request",
                    method = %req.method(),
                    path = %req.path()
                );
                srv.call(req).instrument(span)
            })
            .wrap_fn({
                let metrics = metrics.clone();
                move |req, srv| {
                    use actix_web::dev::Service as _;
                    // The route's pattern, never the path: ids stay out of labels.
                    let route = req
                        .match_pattern()
                        .map(|p| crate::metrics::route_label(&p))
                        .unwrap_or_else(|| "unmatched".into());
                    let method = req.method().to_string();
                    let (metrics, start) = (metrics.clone(), std::time::Instant::now());
                    let call = srv.call(req);
                    async move {
                        let res = call.await;
                        if let Ok(r) = &res {
                            count_request(&metrics, route, method, r.status().as_u16(), start);
                        }
                        res
                    }
                }
            })
            .configure(crate::http::routes)
    })
    // Without it, every response after the first on a keep-alive connection
    // (dnf and apt reuse connections) waits ~40 ms for the client's delayed
    // ACK: headers and body go out as separate small writes.
    .tcp_nodelay(true)
    .listen(listener)?
    .run();
    start_background(ctx_for_tasks);
    Ok(server)
}

fn count_request(
    m: &crate::metrics::Metrics,
    route: String,
    method: String,
    status: u16,
    start: std::time::Instant,
) {
    use crate::metrics::{RequestLabels, RouteLabels};
    m.request_seconds
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(start.elapsed().as_secs_f64());
    m.requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status,
        })
        .inc();
}

/// Periodic work inside the server's runtime: webhook delivery, automatic
/// promotions, the sweep, and re-signing apt suites before their Valid-Until
/// lapses. Failures are logged and retried on the next tick.
fn start_background(ctx: Ctx) {
    start_webhooks(ctx.clone());
    start_scheduler(ctx.clone());
    start_sweeper(ctx.clone());
    start_resigning(ctx);
}

/// Runs `work` on a blocking thread every `tick` (none when `tick` is zero),
/// after skipping the first, immediate tick when `skip_first`; hands each
/// result to `report`; logs failures as `what` and tries again next tick.
/// Missed ticks are delayed, never run in a burst.
fn every<T, W, R>(
    ctx: Ctx,
    tick: Duration,
    skip_first: bool,
    what: &'static str,
    work: W,
    report: R,
) where
    T: Send + 'static,
    W: Fn(&Ctx) -> Result<T, ServiceError> + Clone + Send + 'static,
    R: Fn(T) + 'static,
{
    if tick.is_zero() {
        return;
    }
    actix_web::rt::spawn(async move {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if skip_first {
            interval.tick().await;
        }
        loop {
            interval.tick().await;
            let (c, w) = (ctx.clone(), work.clone());
            match web::block(move || w(&c)).await {
                Ok(Ok(t)) => report(t),
                Ok(Err(e)) => tracing::warn!(error = %e, "{what} failed"),
                Err(e) => tracing::warn!(error = %e, "{what} task failed"),
            }
        }
    });
}

/// Leftovers (orphan blobs, stale temp files) and superseded metadata are
/// removed while the server runs, not only at its next start. Startup has
/// just swept, so the first tick is skipped.
fn start_sweeper(ctx: Ctx) {
    let tick = ctx.config.sweep_interval;
    let sweep = |c: &Ctx| gc::sweep(c, gc::TempFiles::Stale);
    every(ctx, tick, true, "sweep", sweep, |s| {
        if !s.is_empty() {
            tracing::info!(swept = ?s, "sweep");
        }
    });
}

/// The delivery worker: one pass per tick over every active subscription.
fn start_webhooks(ctx: Ctx) {
    let tick = ctx.config.webhook_tick;
    let agent = crate::service::webhooks::http_agent(&ctx);
    let deliver = move |c: &Ctx| crate::service::webhooks::deliver_due(c, &agent);
    every(ctx, tick, false, "webhook delivery pass", deliver, |_| {});
}

fn start_scheduler(ctx: Ctx) {
    let tick = ctx.config.scheduler_tick;
    every(
        ctx,
        tick,
        false,
        "scheduler",
        crate::service::promotion::scheduler::run_due,
        |runs| {
            for r in runs {
                match &r.error {
                    Some(e) => {
                        tracing::warn!(channel = %r.run.channel, error = %e, "automatic promotion failed")
                    }
                    None if !r.run.promoted.is_empty() => {
                        tracing::info!(channel = %r.run.channel, promoted = ?r.run.promoted, "automatic promotion")
                    }
                    None => {}
                }
            }
        },
    );
}

fn start_resigning(ctx: Ctx) {
    let Some(valid_for) = ctx.config.apt_valid_for else {
        return;
    };
    let tick = (valid_for / 20).clamp(Duration::from_secs(1), Duration::from_secs(300));
    every(
        ctx,
        tick,
        false,
        "re-signing",
        resign::resign_expiring,
        |n| {
            if n > 0 {
                tracing::info!(channels = n, "re-signed before Valid-Until");
            }
        },
    );
}

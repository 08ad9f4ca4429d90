//! The command line: `serve`, `keys create|list|revoke`, `migrate`,
//! `openapi`, `import`, `export`, `webhooks`, `backup` and `restore`. Every flag can also be set by a `CLIENTELE_*` environment
//! variable. `main` only calls [`run`].

mod backup;
mod bulk;
mod webhooks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use jsonwebtoken::Algorithm;
use tokio::net::TcpListener;

use crate::app::{self, AppSettings, ConnectionSettings};
use crate::core::auth::{
    DEFAULT_JWT_LEEWAY_SECS, DEFAULT_JWT_MAX_LIFETIME_SECS, JwtSettings, Role, WorkspaceId,
    check_name, issue_api_key,
};
use crate::core::ratelimit::{PolicySetting, RateLimits};
use crate::http::Surface;
use crate::http::server;
use crate::store::postgres::PgSettings;
use crate::store::ratelimit::RateLimiter;
use crate::store::redis_limiter::RedisRateLimiter;
use crate::store::{self, SharedStore, redact_url};
use crate::surfaces::clientsuccess::ClientSuccess;
use crate::surfaces::hood::Hood;
use crate::surfaces::lance::Lance;

/// Clientele serves customer records (Lance ICPs, ClientSuccess clients,
/// Ocamba Hood profiles) through each vendor's own API, on one core.
#[derive(Debug, Parser)]
#[command(name = "clientele", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server. On first start with an empty database it creates
    /// the workspace `default` and prints an admin API key once.
    Serve(Box<ServeArgs>),
    /// Create, list and revoke API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Create the database if needed and apply pending migrations, then exit.
    Migrate(DatabaseArgs),
    /// Print the OpenAPI 3.1 document of every route, as JSON.
    Openapi,
    /// Import records from a CSV or NDJSON file, validated as the API
    /// validates them, many rows per transaction; rejected rows go to a
    /// rejects file with their line and errors. Safe to run again: a file
    /// resumes after its last committed batch, and --match upserts.
    Import(Box<bulk::ImportArgs>),
    /// Write every record of a kind as NDJSON or CSV (import reads it back).
    Export(bulk::ExportArgs),
    /// Add, list and remove webhook subscriptions; replay failed deliveries.
    Webhooks {
        #[command(subcommand)]
        command: webhooks::WebhooksCommand,
    },
    /// Copy a SQLite database while the server runs (writes go on): FILE
    /// and FILE.webhooks, one consistent snapshot holding every write
    /// acknowledged before the backup began, checked with PRAGMA
    /// integrity_check. On PostgreSQL it prints the pg_dump command instead.
    Backup(backup::BackupArgs),
    /// Replace a stopped SQLite database with a backup (refused while a
    /// server has the database open, and over an existing database unless
    /// --force). On PostgreSQL it prints the pg_restore command instead.
    Restore(backup::RestoreArgs),
}

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// Where the data lives: `sqlite://PATH` (created if missing) or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (must exist).
    #[arg(
        long,
        env = "CLIENTELE_DATABASE_URL",
        default_value = "sqlite://clientele.db"
    )]
    pub database_url: String,

    /// PostgreSQL: connections this instance may hold. With N instances the
    /// database must allow N times this (see `max_connections`).
    #[arg(long, env = "CLIENTELE_DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,

    /// PostgreSQL: seconds a request waits for a connection before it
    /// answers 503 (keeps requests failing fast while the database is down).
    #[arg(
        long,
        env = "CLIENTELE_DATABASE_ACQUIRE_TIMEOUT_SECS",
        default_value_t = 3
    )]
    pub database_acquire_timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable lines.
    Text,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum JwtAlgorithm {
    #[value(name = "HS256")]
    Hs256,
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "ES256")]
    Es256,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0 picks a free port).
    #[arg(long, env = "CLIENTELE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Address and port of a second listener that serves only `GET /metrics`
    /// (Prometheus text format, no authentication; port 0 picks a free
    /// port). Off unless given. Keep it on an address only your scraper
    /// reaches: it tells route names and traffic, never records or keys.
    #[arg(long, env = "CLIENTELE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Log line format (logs go to standard error).
    #[arg(long, env = "CLIENTELE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Log filter in tracing's syntax, e.g. `info` or `clientele=debug`.
    #[arg(long, env = "CLIENTELE_LOG", default_value = "info")]
    pub log: String,

    /// Seconds a request may take before the server answers 503.
    #[arg(long, env = "CLIENTELE_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// Milliseconds an API key lookup is reused before the database is asked
    /// again; a revoked key stops working within this time (0: always ask).
    #[arg(long, env = "CLIENTELE_KEY_CACHE_MS", default_value_t = 2000)]
    pub key_cache_ms: u64,

    /// Seconds a client may take to send a request body before it gets 408
    /// (keep it below --request-timeout-secs).
    #[arg(long, env = "CLIENTELE_BODY_TIMEOUT_SECS", default_value_t = 10)]
    pub body_timeout_secs: u64,

    /// Seconds a client may take to send a request's line and headers,
    /// counted from the connection's start or from the first byte of a
    /// later request; then the connection is closed.
    #[arg(long, env = "CLIENTELE_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,

    /// Seconds a kept-alive connection may wait for its next request (or
    /// for the client to read a response) before it is closed.
    #[arg(long, env = "CLIENTELE_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,

    /// Connections served at once; one more is answered 503 and closed.
    /// Default: 10000, or fewer when the open-files limit (raised to the
    /// hard limit at start) is low: three quarters of it, keeping at least
    /// 128 descriptors for the database and the rest.
    #[arg(
        long,
        env = "CLIENTELE_MAX_CONNECTIONS",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_connections: Option<u32>,

    /// Accept JWTs signed with this algorithm (API keys keep working).
    #[arg(
        long,
        env = "CLIENTELE_JWT_ALGORITHM",
        value_enum,
        requires = "jwt_key"
    )]
    pub jwt_algorithm: Option<JwtAlgorithm>,

    /// HS256: the shared secret (at least 32 bytes). RS256/ES256: path of
    /// the PEM public key (RSA; P-256 for ES256).
    #[arg(
        long,
        env = "CLIENTELE_JWT_KEY",
        requires = "jwt_algorithm",
        hide_env_values = true
    )]
    pub jwt_key: Option<String>,

    /// JWT claim (dotted path) that names the workspace, e.g. Clerk's `org_id` or `o.id`.
    #[arg(long, env = "CLIENTELE_JWT_WORKSPACE_CLAIM", default_value = "org_id")]
    pub jwt_workspace_claim: String,

    /// JWT claim (dotted path) that carries the caller's role.
    #[arg(long, env = "CLIENTELE_JWT_ROLE_CLAIM", default_value = "org_role")]
    pub jwt_role_claim: String,

    /// Role claim values that make a caller an admin (comma-separated).
    #[arg(
        long,
        env = "CLIENTELE_JWT_ADMIN_ROLES",
        value_delimiter = ',',
        default_value = "admin,org:admin"
    )]
    pub jwt_admin_roles: Vec<String>,

    /// Required `iss` of JWTs, if set.
    #[arg(long, env = "CLIENTELE_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Required `aud` of JWTs, if set.
    #[arg(long, env = "CLIENTELE_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Seconds of clock difference with the JWT issuer forgiven when
    /// checking `exp`, `nbf` and `iat`.
    #[arg(long, env = "CLIENTELE_JWT_LEEWAY_SECS", default_value_t = DEFAULT_JWT_LEEWAY_SECS)]
    pub jwt_leeway_secs: u64,

    /// Longest JWT lifetime (`exp` − `iat`) accepted, in seconds; JWTs must
    /// then carry `iat`. 0: no maximum, and `iat` is optional.
    #[arg(
        long,
        env = "CLIENTELE_JWT_MAX_LIFETIME_SECS",
        default_value_t = DEFAULT_JWT_MAX_LIFETIME_SECS
    )]
    pub jwt_max_lifetime_secs: u64,

    /// Redis for rate-limit counters shared by every instance, e.g.
    /// `redis://127.0.0.1:6379`. Without it each instance counts alone.
    #[arg(long, env = "CLIENTELE_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Rate limit of the Hood surface per workspace: `off`, or fixed windows
    /// as comma-separated LIMIT/LENGTH (LENGTH in ms, s, m or h).
    #[arg(
        long,
        env = "CLIENTELE_HOOD_RATE_LIMIT",
        default_value_t = default_policy::<Hood>()
    )]
    pub hood_rate_limit: PolicySetting,

    /// Rate limit of the Lance ICP surface per workspace (same syntax).
    #[arg(
        long,
        env = "CLIENTELE_LANCE_RATE_LIMIT",
        default_value_t = default_policy::<Lance>()
    )]
    pub lance_rate_limit: PolicySetting,

    /// Rate limit of the ClientSuccess surface per workspace (same syntax).
    #[arg(
        long,
        env = "CLIENTELE_CLIENTSUCCESS_RATE_LIMIT",
        default_value_t = default_policy::<ClientSuccess>()
    )]
    pub clientsuccess_rate_limit: PolicySetting,

    /// How long a write's response is kept for retries that send the same
    /// Idempotency-Key (ms, s, m or h); expired keys are purged.
    #[arg(
        long,
        env = "CLIENTELE_IDEMPOTENCY_TTL",
        default_value = "24h",
        value_parser = parse_ttl
    )]
    pub idempotency_ttl: Duration,

    #[command(flatten)]
    pub webhook: webhooks::WebhookArgs,
}

/// A rate-limit flag's default: the surface's own.
fn default_policy<S: Surface>() -> PolicySetting {
    PolicySetting(S::default_rate_policy())
}

impl ServeArgs {
    fn rate_limits(&self) -> RateLimits {
        let mut limits = RateLimits::default();
        limits.set(Hood::NAME, self.hood_rate_limit.clone());
        limits.set(Lance::NAME, self.lance_rate_limit.clone());
        limits.set(ClientSuccess::NAME, self.clientsuccess_rate_limit.clone());
        limits
    }
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key and print its token once (only a hash is stored).
    Create {
        /// Workspace the key acts in (created if new).
        #[arg(long)]
        workspace: String,
        /// User id the key acts as, e.g. `user_abc123`.
        #[arg(long)]
        user: String,
        /// Give the key access to every record of the workspace.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List API keys (ids, owners and state; never tokens).
    List {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Revoke an API key by id; requests with it get 401 from then on.
    Revoke {
        /// The key's id, as `keys list` shows it (`key_…`).
        id: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// Parses the command line and runs the command.
pub async fn run() -> Result<(), String> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Keys { command } => keys(command).await,
        Command::Migrate(database) => {
            open_store(&database).await?;
            println!(
                "database {} is migrated",
                redact_url(&database.database_url)
            );
            Ok(())
        }
        Command::Import(args) => bulk::import(*args).await,
        Command::Export(args) => bulk::export(args).await,
        Command::Webhooks { command } => webhooks::run(command).await,
        Command::Backup(args) => backup::backup(args).await,
        Command::Restore(args) => backup::restore(args).await,
        Command::Openapi => {
            let json = app::openapi()
                .to_pretty_json()
                .map_err(|error| format!("cannot render the OpenAPI document: {error}"))?;
            println!("{json}");
            Ok(())
        }
    }
}

async fn open_store(database: &DatabaseArgs) -> Result<SharedStore, String> {
    let pg = PgSettings {
        max_connections: database.database_max_connections.max(1),
        acquire_timeout: Duration::from_secs(database.database_acquire_timeout_secs.max(1)),
    };
    store::connect_with(&database.database_url, pg)
        .await
        .map_err(|error| {
            format!(
                "cannot open database {}: {error}",
                redact_url(&database.database_url)
            )
        })
}

fn init_logging(format: LogFormat, filter: &str) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|error| format!("invalid --log filter '{filter}': {error}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|error| format!("cannot set up logging: {error}"))
}

fn jwt_settings(args: &ServeArgs) -> Result<Option<JwtSettings>, String> {
    let (Some(algorithm), Some(key)) = (args.jwt_algorithm, &args.jwt_key) else {
        return Ok(None);
    };
    let (algorithm, key_bytes) = match algorithm {
        JwtAlgorithm::Hs256 => (Algorithm::HS256, key.as_bytes().to_vec()),
        JwtAlgorithm::Rs256 | JwtAlgorithm::Es256 => {
            let bytes = std::fs::read(PathBuf::from(key))
                .map_err(|error| format!("cannot read --jwt-key file '{key}': {error}"))?;
            let algorithm = if matches!(algorithm, JwtAlgorithm::Rs256) {
                Algorithm::RS256
            } else {
                Algorithm::ES256
            };
            (algorithm, bytes)
        }
    };
    Ok(Some(JwtSettings {
        algorithm,
        key: JwtSettings::decoding_key(algorithm, &key_bytes)
            .map_err(|error| format!("--jwt-key: {error}"))?,
        workspace_claim: args.jwt_workspace_claim.clone(),
        role_claim: args.jwt_role_claim.clone(),
        admin_roles: args.jwt_admin_roles.clone(),
        issuer: args.jwt_issuer.clone(),
        audience: args.jwt_audience.clone(),
        leeway_secs: args.jwt_leeway_secs,
        max_lifetime_secs: (args.jwt_max_lifetime_secs > 0).then_some(args.jwt_max_lifetime_secs),
    }))
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    init_logging(args.log_format, &args.log)?;
    let jwt = jwt_settings(&args)?;
    let connections = connection_settings(&args);
    let store = open_store(&args.database).await?;
    bootstrap(&store).await?;
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", args.listen))?;
    let address = listener
        .local_addr()
        .map_err(|error| format!("cannot read the listening address: {error}"))?;
    let limiter: Option<Arc<dyn RateLimiter>> = match &args.redis_url {
        Some(url) => {
            Some(Arc::new(RedisRateLimiter::connect(url).await.map_err(
                |error| format!("--redis-url {}: {error}", redact_url(url)),
            )?))
        }
        None => None,
    };
    let settings = AppSettings {
        jwt,
        request_timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
        body_timeout: Duration::from_secs(args.body_timeout_secs.max(1)),
        key_cache_ttl: Duration::from_millis(args.key_cache_ms),
        rate_limits: args.rate_limits(),
        limiter,
        idempotency_ttl: args.idempotency_ttl,
        webhooks: args.webhook.settings(&args.database.database_url)?,
        delivery: Some(args.webhook.delivery()),
    };
    let app = match args.metrics_listen {
        None => app::build(store, settings),
        Some(metrics_address) => {
            let (app, metrics) = app::build_with_metrics(store, settings);
            let metrics_listener = TcpListener::bind(metrics_address)
                .await
                .map_err(|error| format!("cannot listen on {metrics_address}: {error}"))?;
            let metrics_address = metrics_listener
                .local_addr()
                .map_err(|error| format!("cannot read the metrics address: {error}"))?;
            tracing::info!(%metrics_address, "metrics listening");
            println!("clientele metrics on http://{metrics_address}/metrics");
            // The same connection timeouts and cap as the API's listener;
            // it stops with the process (scrapes hold no state to finish).
            tokio::spawn(async move {
                if let Err(error) =
                    app::serve(metrics_listener, metrics, connections, shutdown_signal()).await
                {
                    tracing::error!(%error, "the metrics listener failed");
                }
            });
            app
        }
    };
    tracing::info!(%address, database = %redact_url(&args.database.database_url), "listening");
    println!("clientele listening on http://{address}");
    app::serve(listener, app, connections, shutdown_signal())
        .await
        .map_err(|error| format!("server failed: {error}"))?;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// A duration flag that must be above zero.
fn parse_ttl(text: &str) -> Result<Duration, String> {
    match crate::core::ratelimit::parse_duration(text)? {
        zero if zero.is_zero() => Err("must be above zero".to_owned()),
        duration => Ok(duration),
    }
}

/// The connection timeouts and cap. Raises the open-files limit first, so
/// the default cap can be as large as the machine allows, and warns when
/// a configured cap leaves the process short of descriptors.
fn connection_settings(args: &ServeArgs) -> ConnectionSettings {
    let open_files = match server::raise_open_files_limit() {
        Ok(limit) => limit,
        Err(error) => {
            tracing::warn!(%error, "keeping the current open-files limit");
            server::open_files_limit()
        }
    };
    let room = server::default_max_connections(open_files);
    let max_connections = match args.max_connections {
        Some(configured) => {
            if configured > room {
                tracing::warn!(
                    max_connections = configured,
                    open_files,
                    "--max-connections leaves few descriptors for the database; \
                     accepting may fail with 'too many open files' (then retried)"
                );
            }
            configured
        }
        None => room,
    };
    tracing::info!(max_connections, open_files, "connection limit");
    ConnectionSettings {
        header_read_timeout: Duration::from_secs(args.header_read_timeout_secs.max(1)),
        idle_timeout: Duration::from_secs(args.idle_timeout_secs.max(1)),
        max_connections,
    }
}

/// On an empty database, creates the `default` workspace with an admin key
/// and prints the key, so one command gives a working server.
async fn bootstrap(store: &SharedStore) -> Result<(), String> {
    let count = store
        .workspace_count()
        .await
        .map_err(|error| format!("cannot read workspaces: {error}"))?;
    if count > 0 {
        return Ok(());
    }
    let issued = issue_api_key(store, &WorkspaceId::new("default"), "admin", Role::Admin)
        .await
        .map_err(|error| format!("cannot create the first API key: {error}"))?;
    println!(
        "New database: created workspace 'default' and an admin API key ({}, user 'admin').\n\
         It is shown only this once; keep it safe:\n\n    {}\n",
        issued.record.id, issued.token
    );
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing requests in flight");
}

async fn keys(command: KeysCommand) -> Result<(), String> {
    match command {
        KeysCommand::Create {
            workspace,
            user,
            admin,
            database,
        } => {
            check_name("--workspace", &workspace)?;
            check_name("--user", &user)?;
            let store = open_store(&database).await?;
            let role = if admin { Role::Admin } else { Role::Member };
            let issued = issue_api_key(&store, &WorkspaceId::new(workspace), &user, role)
                .await
                .map_err(|error| format!("cannot create the key: {error}"))?;
            eprintln!(
                "Created key {} for user '{}' in workspace '{}' ({}). The token is shown only once:",
                issued.record.id,
                issued.record.user_id,
                issued.record.workspace,
                issued.record.role.as_str()
            );
            println!("{}", issued.token);
            Ok(())
        }
        KeysCommand::List { database } => {
            let store = open_store(&database).await?;
            let keys = store
                .list_api_keys()
                .await
                .map_err(|error| format!("cannot list keys: {error}"))?;
            println!(
                "{:<22} {:<20} {:<24} {:<7} {:<14} {:<25} STATE",
                "ID", "WORKSPACE", "USER", "ROLE", "TOKEN", "CREATED"
            );
            for key in keys {
                let state = match key.revoked_at {
                    Some(at) => format!("revoked {}", at.to_rfc3339()),
                    None => "active".to_owned(),
                };
                println!(
                    "{:<22} {:<20} {:<24} {:<7} {:<14} {:<25} {}",
                    key.id,
                    key.workspace,
                    key.user_id,
                    key.role.as_str(),
                    format!("{}…", key.token_prefix),
                    key.created_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    state
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { id, database } => {
            let store = open_store(&database).await?;
            let revoked = store
                .revoke_api_key(&id)
                .await
                .map_err(|error| format!("cannot revoke the key: {error}"))?;
            if revoked {
                println!("revoked {id}");
                Ok(())
            } else {
                Err(format!("no active key with id '{id}'"))
            }
        }
    }
}

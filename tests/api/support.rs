//! Test harness: `TestApp::spawn()` runs the server in-process on
//! 127.0.0.1:0 over a fresh database — a SQLite file in a temporary
//! directory, or, in the `api_postgres` test binary, a PostgreSQL database
//! created for the test and dropped after it — and offers typed helpers for
//! keys and requests.

use std::sync::mpsc;
use std::time::Duration;

use clientele::app::{self, AppSettings, ConnectionSettings};
use clientele::core::auth::{Role, WorkspaceId, issue_api_key};
use clientele::core::ratelimit::RateLimits;
use clientele::store::{self, SharedStore};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// An HTTP client for tests. reqwest is built with rustls for webhook
/// delivery, so a client needs the process's TLS provider chosen first.
pub fn http_client() -> reqwest::Client {
    http_client_builder().build().expect("HTTP client")
}

pub fn http_client_builder() -> reqwest::ClientBuilder {
    clientele::delivery::install_tls_provider();
    reqwest::Client::builder()
}

pub struct TestApp {
    pub base_url: String,
    /// `http://ADDR/metrics` of the metrics listener, when the server was
    /// started with one ([`TestApp::spawn_with_metrics`]).
    pub metrics_url: Option<String>,
    pub client: reqwest::Client,
    pub store: SharedStore,
    _shutdown: oneshot::Sender<()>,
    // Dropped last: the database outlives the server that uses it.
    _database: TestDatabase,
}

/// Which backend a test binary runs its suite on (each binary names one).
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The server the PostgreSQL suite creates its databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("CLIENTELE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database for one test: a SQLite file in a temporary directory, or a
/// PostgreSQL database named `clientele_test_<uuid>`, dropped on drop.
pub enum TestDatabase {
    Sqlite { url: String, _directory: TempDir },
    Postgres { url: String, name: String },
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        match crate::BACKEND {
            Backend::Sqlite => {
                let directory = tempfile::tempdir().expect("temporary directory");
                let url = format!(
                    "sqlite://{}",
                    directory.path().join("clientele.db").display()
                );
                TestDatabase::Sqlite {
                    url,
                    _directory: directory,
                }
            }
            Backend::Postgres => {
                use sqlx::Connection;
                let admin = postgres_admin_url();
                let mut connection = match tokio::time::timeout(
                    Duration::from_secs(5),
                    sqlx::PgConnection::connect(&admin),
                )
                .await
                {
                    Ok(Ok(connection)) => connection,
                    Ok(Err(error)) => skip_postgres_suite(&admin, &error.to_string()),
                    Err(_) => skip_postgres_suite(&admin, "connection timed out"),
                };
                let name = format!("clientele_test_{}", uuid::Uuid::new_v4().simple());
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut connection)
                    .await
                    .expect("create the test database");
                let _ = connection.close().await;
                let base = admin
                    .rsplit_once('/')
                    .map_or(admin.as_str(), |(base, _)| base);
                TestDatabase::Postgres {
                    url: format!("{base}/{name}"),
                    name,
                }
            }
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDatabase::Sqlite { url, .. } | TestDatabase::Postgres { url, .. } => url,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let TestDatabase::Postgres { name, .. } = self else {
            return;
        };
        let name = name.clone();
        // Drop runs inside the test's runtime; the cleanup gets its own.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut connection) = sqlx::PgConnection::connect(&postgres_admin_url()).await
                {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut connection)
                    .await;
                    let _ = connection.close().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// No PostgreSQL here: unless the run requires it (`.ci/run` sets
/// `CLIENTELE_TEST_REQUIRE_POSTGRES=1`), say so loudly and end this test
/// binary successfully; the SQLite suite still ran in its own binary.
fn skip_postgres_suite(url: &str, reason: &str) -> ! {
    let required = std::env::var("CLIENTELE_TEST_REQUIRE_POSTGRES").is_ok_and(|value| value == "1");
    if required {
        panic!(
            "PostgreSQL at {url} is required (CLIENTELE_TEST_REQUIRE_POSTGRES=1) but unreachable: {reason}"
        );
    }
    use std::io::Write;
    let line = "!".repeat(78);
    let banner = format!(
        "\n{line}\n!!! POSTGRESQL SUITE SKIPPED: no PostgreSQL at {url} ({reason}).\n!!! Only the SQLite suite ran. Set CLIENTELE_TEST_POSTGRES_URL to run it,\n!!! or CLIENTELE_TEST_REQUIRE_POSTGRES=1 to make this a failure.\n{line}\n"
    );
    // Straight to the process's stderr: the test harness captures eprintln!.
    let _ = std::io::stderr().write_all(banner.as_bytes());
    std::process::exit(0);
}

/// What a request returned: status, headers and the body parsed as JSON
/// (`Value::Null` when empty or not JSON; `text` keeps it raw).
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    }
}

impl TestApp {
    /// A server without rate limits, so that tests may send requests as
    /// fast as they like; the rate-limit tests turn them on.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(AppSettings {
            rate_limits: RateLimits {
                by_surface: Default::default(),
            },
            ..AppSettings::default()
        })
        .await
    }

    pub async fn spawn_with(settings: AppSettings) -> TestApp {
        let database = TestDatabase::create().await;
        let store = store::connect(database.url())
            .await
            .expect("open the store");
        Self::spawn_with_store(store, database, settings).await
    }

    /// Serves `store` (opened on `database`, perhaps through a proxy).
    pub async fn spawn_with_store(
        store: SharedStore,
        database: TestDatabase,
        settings: AppSettings,
    ) -> TestApp {
        let router = app::build(store.clone(), settings);
        Self::serve(store, database, router, None).await
    }

    /// Like [`TestApp::spawn_with`], with a metrics listener of its own on
    /// another free port, as `serve --metrics-listen` starts it.
    pub async fn spawn_with_metrics(settings: AppSettings) -> TestApp {
        let database = TestDatabase::create().await;
        let store = store::connect(database.url())
            .await
            .expect("open the store");
        let (router, metrics) = app::build_with_metrics(store.clone(), settings);
        Self::serve(store, database, router, Some(metrics)).await
    }

    async fn serve(
        store: SharedStore,
        database: TestDatabase,
        router: axum::Router,
        metrics: Option<axum::Router>,
    ) -> TestApp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local address");
        let (shutdown, stop) = oneshot::channel::<()>();
        let (metrics_shutdown, metrics_stop) = oneshot::channel::<()>();
        let mut metrics_url = None;
        if let Some(metrics) = metrics {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let address = listener.local_addr().expect("local address");
            metrics_url = Some(format!("http://{address}/metrics"));
            tokio::spawn(async move {
                let _ = app::serve(listener, metrics, ConnectionSettings::default(), async {
                    let _ = metrics_stop.await;
                })
                .await;
            });
        }
        tokio::spawn(async move {
            let _ = app::serve(listener, router, ConnectionSettings::default(), async {
                let _ = stop.await;
                drop(metrics_shutdown);
            })
            .await;
        });
        TestApp {
            base_url: format!("http://{address}"),
            metrics_url,
            client: http_client_builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("HTTP client"),
            store,
            _shutdown: shutdown,
            _database: database,
        }
    }

    /// A new API key's token.
    pub async fn key(&self, workspace: &str, user: &str, role: Role) -> String {
        issue_api_key(&self.store, &WorkspaceId::new(workspace), user, role)
            .await
            .expect("issue a key")
            .token
    }

    pub async fn member(&self, workspace: &str, user: &str) -> String {
        self.key(workspace, user, Role::Member).await
    }

    pub async fn admin(&self, workspace: &str, user: &str) -> String {
        self.key(workspace, user, Role::Admin).await
    }

    /// Sends `body` (if any) as JSON with `Authorization: Bearer token`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        self.send_with(method, path, token, body, &[]).await
    }

    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            let overrides_type = headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
            if !overrides_type {
                request = request.header("content-type", "application/json");
            }
            request = request.body(body.to_string());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::reply(request.send().await.expect("request sent")).await
    }

    pub async fn reply(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.send(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.send(Method::DELETE, path, Some(token), None).await
    }
}

/// The request example of the Lance seed (`001_…`).
pub fn seed_icp_patch() -> Value {
    serde_json::json!({
        "name": "Updated ICP Name",
        "leadsPerList": 50,
        "customFilterCriteria": [{"type": "maxPeoplePerCompany", "value": 5}]
    })
}

/// An ICP as the seed's 200 example shows it before the PATCH was applied.
pub fn seed_icp_create() -> Value {
    serde_json::json!({
        "name": "Enterprise Tech Leaders",
        "description": "C-level and VP-level technology leaders at enterprise companies",
        "userIds": ["user_abc123", "user_def456"],
        "leadsPerList": 10,
        "activeUntil": "2024-12-31T23:59:59.000Z",
        "leadProviderCriteria": [{
            "provider": "baseProvider",
            "type": "person",
            "filters": {
                "job_titles": ["CTO", "VP Engineering"],
                "company_size": ["501-1000", "1001-5000"]
            }
        }]
    })
}

/// A minimal valid ICP.
pub fn minimal_icp(name: &str) -> Value {
    serde_json::json!({
        "name": name,
        "leadProviderCriteria": [{"provider": "baseProvider", "filters": {}}]
    })
}

pub const ICPS: &str = "/api/v1/entities/icps";

pub fn icp_path(id: &str) -> String {
    format!("{ICPS}/{id}")
}

/// Creates `body` as an ICP with `token` and returns its id.
pub async fn create_icp(app: &TestApp, token: &str, body: &Value) -> String {
    let reply = app.post(ICPS, token, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.body["id"].as_str().expect("an id").to_owned()
}

/// A `clientele serve` child process over a given database, for the tests
/// that must kill the server for real.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub base_url: String,
}

/// Runs the `clientele` binary with `args` and returns its standard output,
/// failing the test if it exits unsuccessfully.
/// A member key of `workspace` (user `user_abc123`), made with the CLI.
pub fn member_token(database_url: &str, workspace: &str) -> String {
    run_cli(&[
        "keys",
        "create",
        "--workspace",
        workspace,
        "--user",
        "user_abc123",
        "--database-url",
        database_url,
    ])
    .trim()
    .to_owned()
}

pub fn run_cli(args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_clientele"))
        .args(args)
        .env_remove("CLIENTELE_DATABASE_URL")
        .output()
        .expect("run clientele");
    assert!(
        output.status.success(),
        "clientele {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

impl ServerProcess {
    /// Creates a minimal ICP named `name` over HTTP as `token` and returns
    /// its id (201 required).
    pub async fn create_icp(&self, client: &reqwest::Client, token: &str, name: &str) -> String {
        let created = client
            .post(format!("{}{ICPS}", self.base_url))
            .bearer_auth(token)
            .json(&minimal_icp(name))
            .send()
            .await
            .expect("sent");
        assert_eq!(created.status(), StatusCode::CREATED);
        created.json::<Value>().await.expect("json")["id"]
            .as_str()
            .expect("an id")
            .to_owned()
    }

    /// Starts `clientele serve` on a free port and waits for its
    /// "listening" line.
    pub fn start(database_url: &str) -> ServerProcess {
        Self::start_with(database_url, &[])
    }

    /// Like [`ServerProcess::start`], with more `serve` flags.
    pub fn start_with(database_url: &str, extra_args: &[&str]) -> ServerProcess {
        Self::spawn(&[], database_url, extra_args, None, &[]).0
    }

    /// Like [`ServerProcess::start_with`], with environment variables.
    pub fn start_with_env(
        database_url: &str,
        extra_args: &[&str],
        environment: &[(&str, &str)],
    ) -> ServerProcess {
        Self::spawn(&[], database_url, extra_args, None, environment).0
    }

    /// Like [`ServerProcess::start_with`], run by `wrapper` (a program and
    /// its arguments that then executes the server, such as `prlimit`).
    #[allow(dead_code)] // used by the tests/dos binary only
    pub fn start_under(wrapper: &[&str], database_url: &str, extra_args: &[&str]) -> ServerProcess {
        Self::spawn(wrapper, database_url, extra_args, None, &[]).0
    }

    /// Like [`ServerProcess::start`], logging every request as JSON (at
    /// `info`); the log lines arrive on the returned channel.
    pub fn start_with_json_logs(database_url: &str) -> (ServerProcess, mpsc::Receiver<String>) {
        let (server, logs) = Self::spawn(
            &[],
            database_url,
            &["--log-format", "json"],
            Some("info"),
            &[],
        );
        (server, logs.expect("the log lines"))
    }

    /// Starts the server (run by `wrapper`, if any); with `log_level`, its
    /// standard error (the log) is read line by line into a channel, else
    /// discarded and only warnings are logged.
    fn spawn(
        wrapper: &[&str],
        database_url: &str,
        extra_args: &[&str],
        log_level: Option<&str>,
        environment: &[(&str, &str)],
    ) -> (ServerProcess, Option<mpsc::Receiver<String>>) {
        use std::io::BufRead;
        use std::process::Stdio;
        let server = env!("CARGO_BIN_EXE_clientele");
        let mut command = match wrapper.split_first() {
            Some((program, arguments)) => {
                let mut command = std::process::Command::new(program);
                command.args(arguments).arg(server);
                command
            }
            None => std::process::Command::new(server),
        };
        let mut child = command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                database_url,
            ])
            .args(extra_args)
            .envs(environment.iter().copied())
            .env("CLIENTELE_LOG", log_level.unwrap_or("warn"))
            .stdout(Stdio::piped())
            .stderr(if log_level.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("spawn clientele serve");
        let logs = child.stderr.take().map(|stderr| {
            let (sender, receiver) = mpsc::channel();
            // Read until the child exits, so it never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let _ = sender.send(line);
                }
            });
            receiver
        });
        let stdout = child.stdout.take().expect("child stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let base_url = loop {
            let line = lines
                .next()
                .expect("server printed its listening line")
                .expect("read server output");
            if let Some(url) = line.strip_prefix("clientele listening on ") {
                break url.trim().to_owned();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        (ServerProcess { child, base_url }, logs)
    }

    /// SIGKILL: no shutdown hooks, no flush; only what is on disk survives.
    pub fn kill_hard(mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `ci/<script>` with `python` (an outside tool's interpreter), `input`
/// on its stdin; returns its stdout, or panics with `what` and its stderr
/// if it fails.
pub fn run_ci_python(python: &str, script: &str, input: &[u8], what: &str) -> Vec<u8> {
    use std::io::Write;
    let script = format!("{}/ci/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = std::process::Command::new(python)
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {script} with {python}: {error}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write to the script");
    let output = child.wait_with_output().expect("the script's answer");
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

//! The connection layer against a `clientele serve` child process: idle
//! and half-sent connections are closed by the server on time (header-read
//! and idle timeouts) while another client keeps being served fast, and
//! connections beyond `--max-connections` are refused at once instead of
//! queueing; and a server out of descriptors pauses between accept
//! attempts instead of spinning. (Before these limits such connections
//! stayed open for good, and enough of them exhausted the process's
//! descriptors.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{
    ICPS, ServerProcess, TestDatabase, icp_path, run_cli, seed_icp_create, seed_icp_patch,
};

const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(2);
const IDLE_TIMEOUT: Duration = Duration::from_secs(3);
/// How late after its deadline the server may close a connection (2,000
/// of them expire together, on a machine shared with other tests).
const CLOSING_SLACK: Duration = Duration::from_secs(1);
/// What the second client's requests must stay under, every one of them.
const FAST: Duration = Duration::from_millis(100);

/// The test opens thousands of sockets (and its server child inherits the
/// limit): take the hard limit, as the server does.
fn enough_descriptors(needed: u64) {
    let limit = clientele::http::server::raise_open_files_limit().expect("raise RLIMIT_NOFILE");
    assert!(
        limit.is_none_or(|limit| limit >= needed),
        "this test needs an open-files limit of {needed}; the hard limit is {limit:?}"
    );
}

/// A server started with `args`, a member's token and an ICP of theirs.
async fn server_with_an_icp(args: &[&str]) -> (TestDatabase, ServerProcess, String, String) {
    let database = TestDatabase::create().await;
    let token = run_cli(&[
        "keys",
        "create",
        "--workspace",
        "acme",
        "--user",
        "user_abc123",
        "--database-url",
        database.url(),
    ])
    .trim()
    .to_owned();
    let server = ServerProcess::start_with(database.url(), args);
    let created = crate::support::http_client()
        .post(format!("{}{ICPS}", server.base_url))
        .bearer_auth(&token)
        .json(&seed_icp_create())
        .send()
        .await
        .expect("create an ICP");
    assert_eq!(created.status(), StatusCode::CREATED);
    let body: serde_json::Value = created.json().await.expect("json");
    let id = body["id"].as_str().expect("an id").to_owned();
    (database, server, token, id)
}

/// What one hostile connection does before it waits to be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Connects and sends nothing.
    Silent,
    /// Half a request line.
    HalfLine,
    /// A request line and half the headers.
    HalfHeaders,
    /// Half the headers, then one more byte every 300 ms (a slowloris).
    Trickle,
    /// One complete request, its response read, then nothing: kept alive.
    KeptAlive,
}

impl Kind {
    fn of(index: usize) -> Kind {
        match index % 20 {
            0 => Kind::Trickle,
            1 => Kind::KeptAlive,
            2..=7 => Kind::Silent,
            8..=13 => Kind::HalfLine,
            _ => Kind::HalfHeaders,
        }
    }

    /// The deadline the server must close it by, from when it went quiet.
    fn timeout(self) -> Duration {
        match self {
            Kind::KeptAlive => IDLE_TIMEOUT,
            _ => HEADER_READ_TIMEOUT,
        }
    }
}

/// How long after it went quiet (connected, or got its response) the
/// server closed the connection; `None`: still open after 10 s.
async fn hostile_connection(
    mut stream: TcpStream,
    connected: Instant,
    kind: Kind,
) -> (Kind, Option<Duration>) {
    let mut quiet_since = connected;
    let mut buffer = [0u8; 1024];
    match kind {
        Kind::Silent => {}
        Kind::HalfLine => stream
            .write_all(b"PATCH /api/v1/enti")
            .await
            .expect("write"),
        Kind::HalfHeaders | Kind::Trickle => stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Padding: aaaa")
            .await
            .expect("write"),
        Kind::KeptAlive => {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
                .await
                .expect("write");
            let mut response = Vec::new();
            while !response.ends_with(b"\r\n\r\nok") {
                let read = stream.read(&mut buffer).await.expect("response");
                assert!(read > 0, "closed before the response");
                response.extend_from_slice(&buffer[..read]);
            }
            quiet_since = Instant::now();
        }
    }
    let give_up = quiet_since + Duration::from_secs(10);
    loop {
        let next_byte = tokio::time::sleep(Duration::from_millis(300));
        tokio::select! {
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return (kind, Some(quiet_since.elapsed())),
                Ok(_) => panic!("{kind:?}: the server answered instead of closing"),
            },
            () = next_byte, if kind == Kind::Trickle => {
                if stream.write_all(b"a").await.is_err() {
                    return (kind, Some(quiet_since.elapsed()));
                }
            }
            () = tokio::time::sleep_until(give_up.into()) => return (kind, None),
        }
    }
}

/// Latencies of `/healthz` and of the seed's ICP PATCH, alternately, from
/// a client of its own, until `stop`.
async fn probe(
    base_url: String,
    token: String,
    id: String,
    stop: Arc<AtomicBool>,
) -> (Vec<Duration>, Vec<Duration>) {
    let client = crate::support::http_client_builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let (mut health, mut patch) = (Vec::new(), Vec::new());
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let reply = client
            .get(format!("{base_url}/healthz"))
            .send()
            .await
            .expect("healthz answered");
        assert_eq!(reply.status(), StatusCode::OK);
        let _ = reply.bytes().await;
        health.push(started.elapsed());
        let started = Instant::now();
        let reply = client
            .patch(format!("{base_url}{}", icp_path(&id)))
            .bearer_auth(&token)
            .json(&seed_icp_patch())
            .send()
            .await
            .expect("PATCH answered");
        assert_eq!(reply.status(), StatusCode::OK);
        let _ = reply.bytes().await;
        patch.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (health, patch)
}

fn percentile(latencies: &mut [Duration], fraction: f64) -> Duration {
    latencies.sort();
    latencies[((latencies.len() - 1) as f64 * fraction) as usize]
}

fn summary(latencies: &mut [Duration]) -> String {
    format!(
        "{} requests, p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        percentile(latencies, 1.0)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_and_half_sent_connections_are_closed_on_time_while_others_are_served() {
    let _turn = crate::one_at_a_time().await;
    const CONNECTIONS: usize = 2_000;
    enough_descriptors(3 * CONNECTIONS as u64);
    let header = HEADER_READ_TIMEOUT.as_secs().to_string();
    let idle = IDLE_TIMEOUT.as_secs().to_string();
    let (_database, server, token, id) = server_with_an_icp(&[
        "--header-read-timeout-secs",
        &header,
        "--idle-timeout-secs",
        &idle,
    ])
    .await;
    let address = server.base_url.trim_start_matches("http://").to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let prober = tokio::spawn(probe(server.base_url.clone(), token, id, stop.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let opening = Instant::now();
    let mut hostile = Vec::with_capacity(CONNECTIONS);
    for index in 0..CONNECTIONS {
        // One after another, so the listen backlog never overflows.
        let stream = TcpStream::connect(&address).await.expect("connect");
        hostile.push(tokio::spawn(hostile_connection(
            stream,
            Instant::now(),
            Kind::of(index),
        )));
    }
    let opened = opening.elapsed();
    let mut closings = Vec::with_capacity(CONNECTIONS);
    for connection in hostile {
        closings.push(connection.await.expect("connection task"));
    }
    let all_closed = opening.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (mut health, mut patch) = prober.await.expect("the second client");

    let still_open = closings
        .iter()
        .filter(|(_, closed)| closed.is_none())
        .count();
    println!(
        "{CONNECTIONS} hostile connections opened in {opened:?}, all closed {all_closed:?} \
         after the first opened; healthz: {}; PATCH: {}",
        summary(&mut health),
        summary(&mut patch)
    );
    assert_eq!(still_open, 0, "connections the server never closed");
    for (kind, closed) in closings {
        let closed = closed.unwrap_or_default();
        // Not before its deadline (a kept-alive connection is not cut at
        // the shorter header timeout), and not much after it.
        let timeout = kind.timeout();
        assert!(
            closed >= timeout - Duration::from_millis(100) && closed <= timeout + CLOSING_SLACK,
            "{kind:?}: closed {closed:?} after it went quiet; its timeout is {timeout:?}"
        );
    }
    // The second client was served throughout, and fast: every /healthz;
    // the PATCHes but for one in a hundred, which may meet a slow fsync on
    // a disk shared with other tests (that is no connection's doing).
    assert!(health.len() >= 10, "healthz ran: {}", health.len());
    assert!(
        health.iter().all(|latency| *latency < FAST),
        "healthz: {}",
        summary(&mut health)
    );
    assert!(
        percentile(&mut patch, 0.99) < FAST,
        "PATCH: {}",
        summary(&mut patch)
    );
}

/// Reads what the server says on `stream` until it closes it.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 256];
    let outcome = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => answer.extend_from_slice(&buffer[..read]),
            }
        }
    })
    .await;
    outcome.ok().map(|()| answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_refused_at_once_and_served_again_below_it() {
    let _turn = crate::one_at_a_time().await;
    const CAP: usize = 20;
    enough_descriptors(256);
    // No request before the test's own connections: a client's connection
    // closing late would free a slot in the middle of the test.
    let database = TestDatabase::create().await;
    let server = ServerProcess::start_with(
        database.url(),
        &["--max-connections", "20", "--header-read-timeout-secs", "2"],
    );
    let address = server.base_url.trim_start_matches("http://").to_owned();
    let healthz = format!("{}/healthz", server.base_url);

    // Fill every slot with connections that send nothing.
    let filled = Instant::now();
    let mut held = Vec::new();
    for _ in 0..CAP {
        held.push(TcpStream::connect(&address).await.expect("connect"));
    }
    // Give the server time to take them all from the backlog.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Every further connection is answered 503 (or just closed, if the
    // answer is lost to the reset) at once.
    for _ in 0..10 {
        let started = Instant::now();
        let mut excess = TcpStream::connect(&address).await.expect("connect");
        // Well before the 2 s an admitted connection would stay open.
        let answer = read_to_close(&mut excess, Duration::from_secs(1))
            .await
            .expect("an excess connection is closed at once");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 503 "),
            "{answer}"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    let started = Instant::now();
    // reqwest sees the 503, or a connection closed under its request.
    if let Ok(reply) = crate::support::http_client().get(&healthz).send().await {
        assert_eq!(reply.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    assert!(started.elapsed() < Duration::from_secs(1));

    // The held connections were admitted: open until their header timeout.
    for mut connection in held {
        read_to_close(&mut connection, HEADER_READ_TIMEOUT + CLOSING_SLACK)
            .await
            .expect("closed by the header timeout");
    }
    assert!(filled.elapsed() >= HEADER_READ_TIMEOUT - Duration::from_millis(100));

    // Below the cap again: served as usual.
    let started = Instant::now();
    let reply = crate::support::http_client()
        .get(&healthz)
        .send()
        .await
        .expect("healthz");
    assert_eq!(reply.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_millis(500));
}

/// CPU time the process `pid` has used so far, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the command name (which may hold spaces): state is the
    // first, utime and stime the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |index: usize| -> u64 {
        fields
            .get(index)
            .and_then(|value| value.parse().ok())
            .expect("utime and stime")
    };
    field(11) + field(12)
}

/// A server whose open-files limit is 64 (hard, so it cannot raise it) and
/// whose cap is set far above that: connections exhaust its descriptors
/// and `accept` fails with EMFILE. It must pause between attempts rather
/// than spin, and accept again soon after descriptors free up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_accept_loop_pauses_and_recovers_promptly() {
    let _turn = crate::one_at_a_time().await;
    enough_descriptors(256);
    let database = TestDatabase::create().await;
    let server = ServerProcess::start_under(
        &["prlimit", "--nofile=64:64", "--"],
        database.url(),
        &[
            "--max-connections",
            "1000",
            "--header-read-timeout-secs",
            "30",
        ],
    );
    let address = server.base_url.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..100 {
        held.push(TcpStream::connect(&address).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = server.child.id();
    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spent = cpu_ticks(pid) - before;
    // Spinning on EMFILE costs a whole core: about 100 ticks a second.
    assert!(
        spent <= 20,
        "{spent} ticks of CPU in 1 s out of descriptors"
    );

    // The clients go away; the server closes their connections and takes
    // the next from the backlog within its longest pause (100 ms).
    drop(held);
    let started = Instant::now();
    let reply = crate::support::http_client()
        .get(format!("{}/healthz", server.base_url))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("healthz once descriptors are free");
    assert_eq!(reply.status(), StatusCode::OK);
    let recovered = started.elapsed();
    println!(
        "out of descriptors: {spent} CPU ticks in 1 s; healthz {recovered:?} after the clients left"
    );
    assert!(recovered < Duration::from_millis(500), "{recovered:?}");
}

/// SIGTERM with a PATCH half received, a kept-alive connection, a silent
/// one and one halfway through its head, under the default timeouts (10 s
/// and 60 s): the PATCH finishes with 200, the other three are closed at
/// once rather than waited for, and the process exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sigterm_requests_in_flight_finish_and_idle_connections_do_not_delay_the_exit() {
    let _turn = crate::one_at_a_time().await;
    let (_database, mut server, token, id) = server_with_an_icp(&[]).await;
    let address = server.base_url.trim_start_matches("http://").to_owned();
    let silent = TcpStream::connect(&address).await.expect("connect");
    let mut half = TcpStream::connect(&address).await.expect("connect");
    half.write_all(b"GET /heal").await.expect("write");
    let mut kept = TcpStream::connect(&address).await.expect("connect");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("write");
    let mut buffer = [0u8; 1024];
    let read = kept.read(&mut buffer).await.expect("response");
    assert!(buffer[..read].starts_with(b"HTTP/1.1 200"));

    let body = seed_icp_patch().to_string();
    let (first, rest) = body.as_bytes().split_at(10);
    let mut patch = TcpStream::connect(&address).await.expect("connect");
    let head = format!(
        "PATCH {} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        icp_path(&id),
        body.len()
    );
    patch.write_all(head.as_bytes()).await.expect("head");
    patch.write_all(first).await.expect("start of the body");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let signalled = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    for (name, mut connection) in [
        ("silent", silent),
        ("half a head", half),
        ("kept alive", kept),
    ] {
        read_to_close(&mut connection, Duration::from_secs(1))
            .await
            .unwrap_or_else(|| panic!("the {name} connection is closed at once on shutdown"));
    }

    // The request in flight is served to the end.
    tokio::time::sleep(Duration::from_millis(200)).await;
    patch.write_all(rest).await.expect("rest of the body");
    let answer = read_to_close(&mut patch, Duration::from_secs(5))
        .await
        .expect("the PATCH is answered, then the connection closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.contains("\"Updated ICP Name\""), "{answer}");

    let exited = loop {
        if let Some(status) = server.child.try_wait().expect("wait for the server") {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(5),
            "the server is still running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exited.success(), "{exited:?}");
}

//! The processes under load: `clientele serve`, or the ceiling, started as
//! children that announce the address they listen on, and the server's peak
//! memory read before it is stopped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A child HTTP server, `clientele serve` or the ceiling, and the URL it
/// announced. Stopped explicitly, after its peak memory is read: /proc
/// forgets a process once it has been reaped.
pub struct Server {
    child: Child,
    pub url: String,
}

impl Server {
    /// Starts a child that prints `… listening on http://ADDR` and keeps
    /// that URL.
    pub fn start(command: Command) -> Result<Self, String> {
        Self::start_with_stderr(command, Stdio::null())
    }

    /// [`Server::start`], sending the child's standard error (its log) to
    /// `stderr`.
    pub fn start_with_stderr(mut command: Command, stderr: Stdio) -> Result<Self, String> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|error| format!("spawn: {error}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines
                .next()
                .ok_or("the process exited before listening")?
                .map_err(|error| error.to_string())?;
            if let Some((_, url)) = line.split_once("listening on ") {
                break url.trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Ok(Self { child, url })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn peak_memory_mib(&self) -> f64 {
        peak_memory_of(self.child.id())
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The peak resident memory of process `pid` so far, in MiB (0 once it
/// has exited).
pub fn peak_memory_of(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.split_whitespace().next())
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Starts `clientele serve` on `database_url` (rate limits off).
pub fn start_server(binary: &Path, database_url: &str) -> Result<Server, String> {
    Server::start(serve_command(binary, database_url))
}

/// `clientele serve` on a free loopback port over `database_url`, without
/// the Hood rate limit (the load would hit it), logging warnings only.
pub fn serve_command(binary: &Path, database_url: &str) -> Command {
    let mut server = Command::new(binary);
    server
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            database_url,
        ])
        .args(["--hood-rate-limit", "off", "--log", "warn"]);
    server
}

/// The `clientele` binary to benchmark: `explicit`, or the one beside this.
pub fn server_binary(explicit: Option<&PathBuf>) -> Result<PathBuf, String> {
    match explicit {
        Some(path) => Ok(path.clone()),
        None => std::env::current_exe()
            .map(|exe| exe.with_file_name("clientele"))
            .map_err(|error| error.to_string()),
    }
}

//! The reports, RESULTS.md and SCALE.md: the machine they were measured on,
//! and printing and writing them with the date and the command that
//! produced them.

use std::process::Command;

pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|name| name.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .next()
                .map(|line| line.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {memory:.0} GiB RAM; {rustc}")
}

/// Prints `report` and, unless `results` is empty, writes it there under
/// `title` with the date and the command that produced it.
pub fn publish(results: &str, title: &str, harness: &str, report: &str) -> Result<(), String> {
    println!("{report}");
    if results.is_empty() {
        return Ok(());
    }
    let command: Vec<String> = std::env::args().collect();
    let document = format!(
        "# {title}\n\nWritten by the harness (`{harness}`), not by hand, on {}.\n\nCommand: `{}`\n\n{report}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        command.join(" ")
    );
    std::fs::write(results, document).map_err(|error| format!("write {results}: {error}"))?;
    eprintln!("wrote {results}");
    Ok(())
}

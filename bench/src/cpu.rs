//! CPU time, read from /proc: of one process, of every process with a
//! given name (PostgreSQL's backends), and of the whole machine, so that a
//! figure measured on shared cores can say who used them.

/// The CPU time process `pid` used so far, s (0 if unreadable): utime and
/// stime of /proc/PID/stat, in ticks of 1/100 s (Linux's USER_HZ).
pub fn cpu_seconds(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the command name, from the state (field 3) on.
            let (_, rest) = stat.rsplit_once(')')?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some((user + system) / 100.0)
        })
        .unwrap_or(0.0)
}

/// The CPU time, s, of every running process whose command is `name`, by
/// pid: compare two readings per pid, since processes come and go.
pub fn cpu_by_name(name: &str) -> Vec<(String, f64)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid = entry.ok()?.file_name().to_str()?.to_owned();
            pid.bytes().all(|byte| byte.is_ascii_digit()).then_some(pid)
        })
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == name)
        })
        .map(|pid| {
            let seconds = cpu_seconds(&pid);
            (pid, seconds)
        })
        .collect()
}

/// CPU seconds `after` shows beyond `before`, per pid (a pid absent
/// before started during the span).
pub fn used_between(before: &[(String, f64)], after: &[(String, f64)]) -> f64 {
    after
        .iter()
        .map(|(pid, seconds)| {
            let earlier = before
                .iter()
                .find(|(old, _)| old == pid)
                .map_or(0.0, |(_, seconds)| *seconds);
            (seconds - earlier).max(0.0)
        })
        .sum()
}

/// The machine's busy and total CPU time so far, s, over every core: the
/// first line of /proc/stat (idle and iowait count as not busy).
pub fn machine_seconds() -> (f64, f64) {
    let Some(line) = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| stat.lines().next().map(str::to_owned))
    else {
        return (0.0, 0.0);
    };
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    let total: f64 = ticks.iter().sum();
    let idle = ticks.get(3).copied().unwrap_or(0.0) + ticks.get(4).copied().unwrap_or(0.0);
    ((total - idle) / 100.0, total / 100.0)
}

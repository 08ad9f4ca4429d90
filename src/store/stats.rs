//! What the store measures about itself, for whoever reports it: group
//! commit batches (how many write sessions one `COMMIT` carried, how long
//! the `COMMIT` took), how long writes waited for a write connection, and
//! the use of each connection pool. Plain atomics, updated on the write
//! path without a lock, and read as a [`StoreStats`] snapshot; no wire
//! format here (the HTTP layer renders it as Prometheus text).

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency buckets, in seconds: 50 µs to 10 s. A
/// SQLite `COMMIT` with its fsync is ~0.1–10 ms on a local disk; a wait for
/// the writer under load is up to the request timeout.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// Upper bounds of the batch-size buckets (write sessions per `COMMIT`; a
/// batch holds at most [`super::group_commit::MAX_BATCH`]).
pub const BATCH_SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// A histogram with fixed buckets whose observations are atomic adds, so
/// that concurrent writers never wait for each other to record.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One counter per bound, and the last for values above every bound.
    counts: Box<[AtomicU64]>,
    /// The sum of the observations, as `f64` bits (updated by CAS).
    sum_bits: AtomicU64,
}

/// A histogram as read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound, observations in this bucket alone)`, the last bound
    /// being `+∞`.
    pub buckets: Vec<(f64, u64)>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_bits: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub fn observe(&self, value: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        if let Some(count) = self.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        // A CAS loop rather than a lock: a retry happens only when another
        // observation landed in between.
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut buckets = Vec::with_capacity(self.counts.len());
        let mut count = 0;
        for (position, counter) in self.counts.iter().enumerate() {
            let observed = counter.load(Ordering::Relaxed);
            count += observed;
            let bound = self.bounds.get(position).copied().unwrap_or(f64::INFINITY);
            buckets.push((bound, observed));
        }
        HistogramSnapshot {
            buckets,
            sum: f64::from_bits(self.sum_bits.load(Ordering::Relaxed)),
            count,
        }
    }
}

/// The measurements of one writer: SQLite's group-commit writer of one
/// file, or PostgreSQL's write transactions.
#[derive(Debug)]
pub struct WriterStats {
    /// Write sessions per committed batch (always 1 on PostgreSQL, where
    /// each write is its own transaction).
    pub batch_size: Histogram,
    /// How long each `COMMIT` took. With `synchronous = FULL` (SQLite) and
    /// PostgreSQL's `synchronous_commit = on` it includes the WAL flush
    /// (fsync) that the commit waits for; neither database reports the
    /// flush apart from the rest of the commit to its client.
    pub commit_seconds: Histogram,
    /// How long a write waited for the write connection: SQLite's single
    /// writer, or a connection from PostgreSQL's pool.
    pub wait_seconds: Histogram,
    /// Sessions waiting for the write connection right now.
    pub waiting: AtomicU64,
}

impl Default for WriterStats {
    fn default() -> Self {
        Self {
            batch_size: Histogram::new(BATCH_SIZE_BUCKETS),
            commit_seconds: Histogram::new(SECONDS_BUCKETS),
            wait_seconds: Histogram::new(SECONDS_BUCKETS),
            waiting: AtomicU64::new(0),
        }
    }
}

/// One writer's measurements as read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct WriterReport {
    /// Which writer: `records` or `webhooks` (SQLite's two files), or
    /// `records` on PostgreSQL.
    pub writer: &'static str,
    pub batch_size: HistogramSnapshot,
    pub commit_seconds: HistogramSnapshot,
    pub wait_seconds: HistogramSnapshot,
    pub waiting: u64,
}

impl WriterStats {
    pub fn report(&self, writer: &'static str) -> WriterReport {
        WriterReport {
            writer,
            batch_size: self.batch_size.snapshot(),
            commit_seconds: self.commit_seconds.snapshot(),
            wait_seconds: self.wait_seconds.snapshot(),
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }
}

/// A connection pool's use at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolReport {
    /// `postgres`, or SQLite's `records_readers` / `webhooks_readers`.
    pub pool: &'static str,
    /// Connections open and idle.
    pub idle: u64,
    /// Connections open and in use.
    pub in_use: u64,
    /// The most the pool opens (`None`: no fixed maximum; SQLite opens a
    /// reader per concurrent read and keeps a few idle).
    pub max: Option<u64>,
}

/// Everything the store reports about itself.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoreStats {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    pub writers: Vec<WriterReport>,
    pub pools: Vec<PoolReport>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_each_value_in_its_bucket_and_sums_them() {
        let histogram = Histogram::new(&[1.0, 10.0]);
        for value in [0.5, 1.0, 3.0, 50.0] {
            histogram.observe(value);
        }
        let snapshot = histogram.snapshot();
        assert_eq!(
            snapshot.buckets,
            vec![(1.0, 2), (10.0, 1), (f64::INFINITY, 1)]
        );
        assert_eq!(snapshot.count, 4);
        assert!((snapshot.sum - 54.5).abs() < 1e-9);
    }
}

//! Latencies, percentiles and status counts of one phase.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// What one phase did: every request's latency and status, and the phase's wall time.
#[derive(Default)]
pub struct Phase {
    /// The phase's name (`signup`, `second step`, …).
    pub name: String,
    /// Wall time from the first request sent to the last answer.
    pub wall: Duration,
    latencies: Vec<Duration>,
    /// Requests per status code (0 = no answer: refused, reset or timed out).
    pub statuses: BTreeMap<u16, u32>,
}

impl Phase {
    /// An empty phase.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }

    /// Records one request.
    pub fn record(&mut self, status: u16, latency: Duration) {
        self.latencies.push(latency);
        *self.statuses.entry(status).or_default() += 1;
    }

    /// How many requests.
    pub fn count(&self) -> usize {
        self.latencies.len()
    }

    /// How many answered `status`.
    pub fn with_status(&self, status: u16) -> u32 {
        self.statuses.get(&status).copied().unwrap_or(0)
    }

    /// Requests per second over the wall time.
    pub fn throughput(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs > 0.0 {
            self.count() as f64 / secs
        } else {
            0.0
        }
    }

    /// The `p`-th percentile latency (nearest rank), zero when empty.
    pub fn percentile(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }
}

/// The `p`-th percentile (0–100, nearest rank) of `samples`; zero when empty.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds with one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(s, n)| {
                if *s == 0 {
                    format!("no-answer×{n}")
                } else {
                    format!("{s}×{n}")
                }
            })
            .collect();
        write!(
            f,
            "{:<14} {:>5} req {:>8.1} req/s   p50 {:>7} ms   p99 {:>7} ms   [{}]",
            self.name,
            self.count(),
            self.throughput(),
            ms(self.percentile(50.0)),
            ms(self.percentile(99.0)),
            statuses.join(" ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&samples, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&samples, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
        let one = [Duration::from_millis(7)];
        assert_eq!(percentile(&one, 1.0), Duration::from_millis(7));
    }
}

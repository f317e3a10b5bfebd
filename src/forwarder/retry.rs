//! Exponential backoff with full jitter.

use std::time::Duration;

/// Delays for repeated attempts: a random time in `[0, min(max, base · 2^attempt)]`
/// ("full jitter"), so that many shards or workers retrying together spread out.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max,
            attempt: 0,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let cap = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        // Never zero: a floor of base/4 keeps a tight loop from hammering the service.
        let floor = u64::try_from(self.base.as_nanos() / 4).unwrap_or(0);
        Duration::from_nanos(fastrand::u64(floor.min(nanos)..=nanos))
    }

    /// The largest delay the next attempt can get.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_stay_within_it() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let caps: Vec<_> = (0..8)
            .map(|_| {
                let cap = b.ceiling();
                let d = b.next_delay();
                assert!(
                    d <= cap && d >= Duration::from_millis(25),
                    "{d:?} vs {cap:?}"
                );
                cap.as_millis()
            })
            .collect();
        assert_eq!(caps, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(100));
    }
}

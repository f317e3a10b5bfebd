//! The dead-letter breaker: tells a record the server refuses from a server that refuses
//! every record. Pure.
//!
//! A refused record is alone once the batch has been split down to it. Bad data is rare
//! and scattered: the records next to a bad one are accepted. A server that refuses
//! everything with a data code (a view that throws for every row after an `ALTER`, a
//! constraint added by mistake) refuses the neighbours too. So a refused record is
//! *held* until the server accepts another insert, which shows the record itself is the
//! problem; only then does it go to the errors table. When `threshold` records in a row
//! are refused with the same code and nothing is accepted in between, the breaker opens:
//! nothing is dead-lettered, the held records are retried without end, no checkpoint
//! moves, and the breaker closes at the first accepted insert.

use std::time::{Duration, Instant};

/// How often an open breaker is logged again.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    /// Refused records in a row with `code`, none accepted since.
    run: u32,
    code: Option<u32>,
    open: Option<Open>,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    since: Instant,
    code: u32,
    logged: Option<Instant>,
}

/// What to do with a record that was refused alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Keep it until the server accepts something else (then it is dead-lettered).
    Hold,
    /// The breaker has just opened: the held records are the server's fault.
    Opened,
}

impl Breaker {
    /// `threshold`: refused records in a row, with one code, that open the breaker (≥ 1).
    pub(crate) fn new(threshold: u32) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            run: 0,
            code: None,
            open: None,
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// The code the open breaker is about.
    pub(crate) fn open_code(&self) -> Option<u32> {
        self.open.map(|o| o.code)
    }

    /// A record refused alone, with `code`.
    pub(crate) fn refused(&mut self, code: u32, now: Instant) -> Refusal {
        if self.code == Some(code) {
            self.run += 1;
        } else {
            self.code = Some(code);
            self.run = 1;
        }
        if self.open.is_none() && self.run >= self.threshold {
            self.open = Some(Open {
                since: now,
                code,
                logged: None,
            });
            return Refusal::Opened;
        }
        Refusal::Hold
    }

    /// The server accepted an insert: the run ends, and an open breaker closes. Returns how
    /// long it was open.
    pub(crate) fn accepted(&mut self, now: Instant) -> Option<Duration> {
        self.run = 0;
        self.code = None;
        self.open.take().map(|o| now.duration_since(o.since))
    }

    /// Whether to log the open breaker now (at most once per [`LOG_EVERY`]); returns how
    /// long it has been open.
    pub(crate) fn log_due(&mut self, now: Instant) -> Option<Duration> {
        let open = self.open.as_mut()?;
        if open
            .logged
            .is_some_and(|t| now.duration_since(t) < LOG_EVERY)
        {
            return None;
        }
        open.logged = Some(now);
        Some(now.duration_since(open.since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scattered_refusals_never_open_it() {
        let t = Instant::now();
        let mut b = Breaker::new(3);
        for _ in 0..10 {
            assert_eq!(b.refused(395, t), Refusal::Hold);
            assert_eq!(b.refused(395, t), Refusal::Hold);
            assert_eq!(b.accepted(t), None);
        }
        assert!(!b.is_open());
    }

    #[test]
    fn a_run_with_one_code_opens_it_until_an_insert_is_accepted() {
        let t = Instant::now();
        let mut b = Breaker::new(3);
        assert_eq!(b.refused(53, t), Refusal::Hold);
        // Another code starts a new run.
        assert_eq!(b.refused(395, t), Refusal::Hold);
        assert_eq!(b.refused(395, t), Refusal::Hold);
        assert_eq!(b.refused(395, t), Refusal::Opened);
        assert!(b.is_open());
        assert_eq!(b.open_code(), Some(395));
        // Still open: further refusals do not open it again.
        assert_eq!(b.refused(395, t), Refusal::Hold);
        let later = t + Duration::from_secs(90);
        assert_eq!(b.accepted(later), Some(Duration::from_secs(90)));
        assert!(!b.is_open());
        assert_eq!(b.refused(395, later), Refusal::Hold);
    }

    #[test]
    fn an_open_breaker_is_logged_once_a_minute() {
        let t = Instant::now();
        let mut b = Breaker::new(1);
        assert_eq!(b.log_due(t), None);
        assert_eq!(b.refused(6, t), Refusal::Opened);
        assert_eq!(b.log_due(t), Some(Duration::ZERO));
        assert_eq!(b.log_due(t + Duration::from_secs(59)), None);
        assert_eq!(
            b.log_due(t + Duration::from_secs(61)),
            Some(Duration::from_secs(61))
        );
        assert_eq!(b.log_due(t + Duration::from_secs(62)), None);
    }
}

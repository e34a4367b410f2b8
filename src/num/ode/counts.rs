//! The step counters of the dynamic-size adaptive steppers ([`crate::num::rk::DynDopri`],
//! [`crate::num::rkc::DynRkc`]): one struct, reset by `start`, advanced by the same three calls.

use super::check_attempts;
use crate::Result;

/// What a stepper has done since its last `start`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepCounts {
    /// Right-hand-side evaluations (every call of `f`, the start's included).
    pub evaluations: usize,
    /// Accepted steps.
    pub accepted: usize,
    /// Rejected attempts (error estimate above 1, or a non-finite stage).
    pub rejected: usize,
    /// Attempted steps, held against `OdeOptions::max_steps`.
    attempts: usize,
    /// The last attempt was rejected (the controllers allow no growth right after one).
    last_rejected: bool,
}

impl StepCounts {
    /// Count one more attempt at time `t`; beyond `max_steps` attempts it is an `Error::Ode`.
    pub(crate) fn attempt(&mut self, max_steps: usize, t: f64) -> Result<()> {
        self.attempts += 1;
        check_attempts(self.attempts, max_steps, t)
    }

    /// Count an accepted step.
    pub(crate) fn accept(&mut self) {
        self.accepted += 1;
        self.last_rejected = false;
    }

    /// Count a rejected attempt.
    pub(crate) fn reject(&mut self) {
        self.rejected += 1;
        self.last_rejected = true;
    }

    /// Whether the last attempt was rejected.
    pub(crate) fn last_rejected(&self) -> bool {
        self.last_rejected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn counts_attempts_and_the_last_outcome() {
        let mut c = StepCounts::default();
        c.attempt(2, 0.0).unwrap();
        c.reject();
        assert!(c.last_rejected());
        c.attempt(2, 0.5).unwrap();
        c.accept();
        assert!(!c.last_rejected());
        assert_eq!((c.accepted, c.rejected), (1, 1));
        // the third attempt is beyond a cap of two
        match c.attempt(2, 0.75) {
            Err(Error::Ode { t, reason }) => {
                assert_eq!(t, 0.75);
                assert!(reason.contains("step cap 2"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}

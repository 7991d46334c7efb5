use std::{fmt, future::Future, pin::Pin, task::Context};

use tokio::time::{sleep_until, Instant, Sleep};
use tracing::trace;

#[derive(Debug)]
pub(super) enum TimerState {
    Disabled,
    /// Not running. `spare` keeps the last timer (its allocation, and its entry in the
    /// runtime's timer wheel) for the next [`set`](Self::set), which moves its deadline
    /// instead of allocating and registering a new one: every keep-alive request sets and
    /// clears two timers. A spare may still fire at its old deadline; that wakes the
    /// connection once, and an inactive timer is never polled, so nothing else happens.
    Inactive { spare: Option<Pin<Box<Sleep>>> },
    Active { timer: Pin<Box<Sleep>> },
}

impl TimerState {
    pub(super) fn new(enabled: bool) -> Self {
        if enabled {
            Self::Inactive { spare: None }
        } else {
            Self::Disabled
        }
    }

    pub(super) fn is_enabled(&self) -> bool {
        matches!(self, Self::Active { .. } | Self::Inactive { .. })
    }

    pub(super) fn set(&mut self, deadline: Instant, line: u32) {
        if matches!(self, Self::Disabled) {
            trace!("setting disabled timer from line {}", line);
        }

        let timer = match std::mem::replace(self, Self::Disabled) {
            Self::Active { mut timer }
            | Self::Inactive {
                spare: Some(mut timer),
            } => {
                // A later deadline than the wheel's entry only moves the entry's expiry.
                timer.as_mut().reset(deadline);
                timer
            }
            Self::Inactive { spare: None } | Self::Disabled => Box::pin(sleep_until(deadline)),
        };
        *self = Self::Active { timer };
    }

    pub(super) fn set_and_init(&mut self, cx: &mut Context<'_>, deadline: Instant, line: u32) {
        self.set(deadline, line);
        self.init(cx);
    }

    pub(super) fn clear(&mut self, line: u32) {
        if matches!(self, Self::Disabled) {
            trace!("trying to clear a disabled timer from line {}", line);
        }

        if matches!(self, Self::Inactive { .. }) {
            trace!("trying to clear an inactive timer from line {}", line);
        }

        let spare = match std::mem::replace(self, Self::Disabled) {
            Self::Active { timer } => Some(timer),
            Self::Inactive { spare } => spare,
            Self::Disabled => None,
        };
        *self = Self::Inactive { spare };
    }

    pub(super) fn init(&mut self, cx: &mut Context<'_>) {
        if let TimerState::Active { timer } = self {
            let _ = timer.as_mut().poll(cx);
        }
    }
}

impl fmt::Display for TimerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimerState::Disabled => f.write_str("timer is disabled"),
            TimerState::Inactive { .. } => f.write_str("timer is inactive"),
            TimerState::Active { timer } => {
                let deadline = timer.deadline();
                let now = Instant::now();

                if deadline < now {
                    f.write_str("timer is active and has reached deadline")
                } else {
                    write!(
                        f,
                        "timer is active and due to expire in {} milliseconds",
                        ((deadline - now).as_secs_f32() * 1000.0)
                    )
                }
            }
        }
    }
}

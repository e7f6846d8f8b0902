//! Strategies: which children of a plan or phase may work now (serial, parallel, canary).
//!
//! Pure: given each child's status, interrupt flag and whether another plan holds its pod
//! instance, return the indexes that may be worked on. A canary strategy counts the operator's
//! `continue`s: none lets nothing start, the first releases the first child, the second the rest.

use serde::{Deserialize, Serialize};

use crate::plan::Status;
use crate::spec::StrategyKind;

/// What a strategy needs to know about one child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildView {
    /// The child's status.
    pub status: Status,
    /// Whether the child itself is interrupted.
    pub interrupted: bool,
    /// Whether the child's pod instance is being worked on by another plan.
    pub blocked: bool,
}

impl ChildView {
    fn eligible(&self) -> bool {
        !self.interrupted
            && !self.blocked
            && matches!(
                self.status,
                Status::Pending
                    | Status::Prepared
                    | Status::Starting
                    | Status::Started
                    | Status::InProgress
                    | Status::Waiting
            )
    }
}

/// A strategy and its canary progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strategy {
    /// Serial, parallel or a canary variant.
    pub kind: StrategyKind,
    /// Operator `continue`s received (canary only).
    pub canary_releases: u32,
}

impl Strategy {
    /// A fresh strategy of `kind`.
    pub fn new(kind: StrategyKind) -> Self {
        Strategy {
            kind,
            canary_releases: 0,
        }
    }

    /// The SDK's name for the strategy (`serial`, `parallel`, `serial-canary`, …).
    pub fn name(&self) -> &'static str {
        match self.kind {
            StrategyKind::Serial => "serial",
            StrategyKind::Parallel => "parallel",
            StrategyKind::SerialCanary => "serial-canary",
            StrategyKind::ParallelCanary => "parallel-canary",
        }
    }

    /// Whether the strategy waits for an operator before starting more children.
    pub fn awaiting_operator(&self, children: &[ChildView]) -> bool {
        match (self.kind, self.canary_releases) {
            (StrategyKind::SerialCanary | StrategyKind::ParallelCanary, 0) => {
                children.iter().any(|c| c.status != Status::Complete)
            }
            (StrategyKind::SerialCanary | StrategyKind::ParallelCanary, 1) => {
                children
                    .iter()
                    .skip(1)
                    .any(|c| c.status != Status::Complete)
                    && children
                        .first()
                        .is_none_or(|c| c.status == Status::Complete)
            }
            _ => false,
        }
    }

    /// Records an operator's `continue`; only canaries count them.
    pub fn release(&mut self) {
        if matches!(
            self.kind,
            StrategyKind::SerialCanary | StrategyKind::ParallelCanary
        ) {
            self.canary_releases = self.canary_releases.saturating_add(1);
        }
    }

    /// The children that may work now, in order.
    pub fn candidates(&self, children: &[ChildView]) -> Vec<usize> {
        match self.kind {
            StrategyKind::Serial => serial(children, 0),
            StrategyKind::Parallel => parallel(children, 0),
            StrategyKind::SerialCanary | StrategyKind::ParallelCanary => {
                match self.canary_releases {
                    0 => Vec::new(),
                    1 => serial(&children[..children.len().min(1)], 0),
                    _ if self.kind == StrategyKind::SerialCanary => serial(children, 0),
                    _ => parallel(children, 0),
                }
            }
        }
    }
}

fn serial(children: &[ChildView], offset: usize) -> Vec<usize> {
    match children
        .iter()
        .position(|child| child.status != Status::Complete)
    {
        Some(index) if children[index].eligible() => vec![index + offset],
        _ => Vec::new(),
    }
}

fn parallel(children: &[ChildView], offset: usize) -> Vec<usize> {
    children
        .iter()
        .enumerate()
        .filter(|(_, child)| child.eligible())
        .map(|(index, _)| index + offset)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn views(statuses: &[Status]) -> Vec<ChildView> {
        statuses
            .iter()
            .map(|&status| ChildView {
                status,
                interrupted: false,
                blocked: false,
            })
            .collect()
    }

    use Status::*;

    #[test]
    fn serial_works_on_the_first_unfinished_child_only() {
        let strategy = Strategy::new(StrategyKind::Serial);
        assert_eq!(
            strategy.candidates(&views(&[Complete, Pending, Pending])),
            [1]
        );
        assert_eq!(
            strategy.candidates(&views(&[Complete, Starting, Pending])),
            [1]
        );
        assert!(strategy
            .candidates(&views(&[Complete, Error, Pending]))
            .is_empty());
        assert!(strategy.candidates(&views(&[Delayed, Pending])).is_empty());
        assert!(strategy
            .candidates(&views(&[Complete, Complete]))
            .is_empty());
        let mut blocked = views(&[Pending, Pending]);
        blocked[0].blocked = true;
        assert!(
            strategy.candidates(&blocked).is_empty(),
            "serial never skips ahead"
        );
    }

    #[test]
    fn parallel_works_on_every_eligible_child() {
        let strategy = Strategy::new(StrategyKind::Parallel);
        let mut children = views(&[Pending, Complete, Started, Pending, Error]);
        children[3].interrupted = true;
        assert_eq!(strategy.candidates(&children), [0, 2]);
    }

    #[test]
    fn canaries_wait_for_two_continues() {
        for kind in [StrategyKind::SerialCanary, StrategyKind::ParallelCanary] {
            let mut strategy = Strategy::new(kind);
            let children = views(&[Pending, Pending, Pending]);
            assert!(strategy.candidates(&children).is_empty());
            assert!(strategy.awaiting_operator(&children));
            strategy.release();
            assert_eq!(strategy.candidates(&children), [0]);
            assert!(!strategy.awaiting_operator(&children));
            let first_done = views(&[Complete, Pending, Pending]);
            assert!(strategy.candidates(&first_done).is_empty());
            assert!(strategy.awaiting_operator(&first_done));
            strategy.release();
            let expected: &[usize] = if kind == StrategyKind::SerialCanary {
                &[1]
            } else {
                &[1, 2]
            };
            assert_eq!(strategy.candidates(&first_done), expected);
        }
    }

    #[test]
    fn continue_does_not_count_for_plain_strategies() {
        let mut strategy = Strategy::new(StrategyKind::Serial);
        strategy.release();
        assert_eq!(strategy.canary_releases, 0);
    }
}

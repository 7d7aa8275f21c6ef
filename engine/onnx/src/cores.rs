//! The process's CPU cores as a budget that ONNX Runtime runs on the CPU take turns with: a run holds as many
//! cores as its session has intra-op threads, so sessions of several steps running side by side do not put
//! more of their threads on the cores than there are (two 2-thread runs on 2 cores cost each other more
//! than they gain), while the steps' own processing around their runs still overlaps.
//!
//! Waiters are served in arrival order, so a run wanting more cores is not passed over by smaller ones.

use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};

/// A first-come, first-served counting budget.
pub struct CoreBudget {
    total: usize,
    state: Mutex<Queue>,
    turn: Condvar,
}

struct Queue {
    free: usize,
    /// The ticket the next arrival takes, and the ticket whose holder may take cores now.
    next: u64,
    serving: u64,
}

/// Cores held by one run, handed back when dropped.
pub struct Held<'a> {
    budget: &'a CoreBudget,
    cores: usize,
}

impl CoreBudget {
    /// A budget of `total` cores (at least 1).
    pub fn new(total: usize) -> CoreBudget {
        let total = total.max(1);
        CoreBudget {
            total,
            state: Mutex::new(Queue {
                free: total,
                next: 0,
                serving: 0,
            }),
            turn: Condvar::new(),
        }
    }

    pub fn total(&self) -> usize {
        self.total
    }

    /// Waits for this caller's turn and for `cores` free cores (more than the budget counts as all of it).
    pub fn acquire(&self, cores: usize) -> Held<'_> {
        let cores = cores.clamp(1, self.total);
        let mut queue = self.lock();
        let ticket = queue.next;
        queue.next += 1;
        while queue.serving != ticket || queue.free < cores {
            queue = self
                .turn
                .wait(queue)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        queue.free -= cores;
        queue.serving += 1;
        drop(queue);
        // The next ticket may fit in what is left.
        self.turn.notify_all();
        Held {
            budget: self,
            cores,
        }
    }

    /// Cores not held now.
    pub fn free(&self) -> usize {
        self.lock().free
    }

    // The queue holds plain counters, valid whatever a panicking holder was doing: a poisoned lock is used.
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.lock().free += self.cores;
        self.budget.turn.notify_all();
    }
}

static PROCESS_BUDGET: OnceLock<CoreBudget> = OnceLock::new();

/// Sets the cores ONNX runs share in this process (the site's `--onnx-cores`); only before the first run:
/// afterwards the budget in use stays, and its size is the error.
pub fn configure_process_cores(total: usize) -> Result<(), usize> {
    PROCESS_BUDGET
        .set(CoreBudget::new(total))
        .map_err(|_| process_budget().total())
}

/// The process's budget: as configured, else the cores this process may use (its affinity and cgroup
/// quota, as the standard library counts them).
pub fn process_budget() -> &'static CoreBudget {
    PROCESS_BUDGET.get_or_init(|| {
        CoreBudget::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn runs_never_hold_more_cores_than_the_budget() {
        let budget = Arc::new(CoreBudget::new(4));
        let holding = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (budget, holding, most) = (budget.clone(), holding.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let want = 1 + i % 3;
                        let _held = budget.acquire(want);
                        let now = holding.fetch_add(want, Ordering::SeqCst) + want;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_micros(200));
                        holding.fetch_sub(want, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(most.load(Ordering::SeqCst) <= 4);
        assert!(
            most.load(Ordering::SeqCst) > 1,
            "runs that fit together should overlap"
        );
        assert_eq!(budget.free(), 4);
    }

    #[test]
    fn a_run_wanting_more_than_the_budget_takes_all_of_it_and_a_large_run_is_not_passed_over() {
        let budget = Arc::new(CoreBudget::new(2));
        let all = budget.acquire(16);
        assert_eq!(budget.free(), 0);
        drop(all);
        // One core held; a 2-core run queues first, a 1-core run after it: the 1-core run must wait for
        // the 2-core one although a core is free for it.
        let first = budget.acquire(1);
        let order = Arc::new(Mutex::new(Vec::new()));
        let large = {
            let (budget, order) = (budget.clone(), order.clone());
            std::thread::spawn(move || {
                let _held = budget.acquire(2);
                order.lock().unwrap().push("large");
            })
        };
        // Tickets 0 and 1 went to the two runs above: wait until the large run holds ticket 2.
        while budget.lock().next < 3 {
            std::thread::yield_now();
        }
        let small = {
            let (budget, order) = (budget.clone(), order.clone());
            std::thread::spawn(move || {
                let _held = budget.acquire(1);
                order.lock().unwrap().push("small");
            })
        };
        while budget.lock().next < 4 {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            order.lock().unwrap().is_empty(),
            "the small run went ahead of the large one"
        );
        drop(first);
        large.join().unwrap();
        small.join().unwrap();
        assert_eq!(*order.lock().unwrap(), vec!["large", "small"]);
        assert_eq!(budget.free(), 2);
    }
}

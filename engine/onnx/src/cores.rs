//! The process's CPU cores as a budget that ONNX Runtime runs on the CPU take turns with: a run holds as many
//! cores as its session has intra-op threads, so sessions of several steps running side by side do not put
//! more of their threads on the cores than there are (two 2-thread runs on 2 cores cost each other more
//! than they gain), while the steps' own processing around their runs still overlaps.
//!
//! Waiters are served in arrival order, so a run wanting more cores is not passed over by smaller ones; a
//! waiter whose step was stopped leaves the queue.

use std::collections::BTreeSet;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};

use crate::stop::POLL;

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
    /// Tickets whose holders gave up before their turn came: passed over when it does.
    withdrawn: BTreeSet<u64>,
}

impl Queue {
    /// The turn goes to the next ticket still waiting.
    fn advance(&mut self) {
        self.serving += 1;
        while self.withdrawn.remove(&self.serving) {
            self.serving += 1;
        }
    }

    fn withdraw(&mut self, ticket: u64) {
        if self.serving == ticket {
            self.advance();
        } else {
            self.withdrawn.insert(ticket);
        }
    }
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
                withdrawn: BTreeSet::new(),
            }),
            turn: Condvar::new(),
        }
    }

    pub fn total(&self) -> usize {
        self.total
    }

    /// Waits for this caller's turn and for `cores` free cores (more than the budget counts as all of it);
    /// `None`, having left the queue, once `give_up()` says so (asked every [`POLL`] while waiting).
    pub fn acquire(&self, cores: usize, give_up: &dyn Fn() -> bool) -> Option<Held<'_>> {
        let cores = cores.clamp(1, self.total);
        let mut queue = self.lock();
        let ticket = queue.next;
        queue.next += 1;
        while queue.serving != ticket || queue.free < cores {
            if give_up() {
                queue.withdraw(ticket);
                drop(queue);
                // The turn may have passed to a waiter behind this one.
                self.turn.notify_all();
                return None;
            }
            queue = match self.turn.wait_timeout(queue, POLL) {
                Ok((queue, _)) => queue,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        queue.free -= cores;
        queue.advance();
        drop(queue);
        // The next ticket may fit in what is left.
        self.turn.notify_all();
        Some(Held {
            budget: self,
            cores,
        })
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
                        let _held = budget.acquire(want, &|| false).unwrap();
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
        let all = budget.acquire(16, &|| false).unwrap();
        assert_eq!(budget.free(), 0);
        drop(all);
        // One core held; a 2-core run queues first, a 1-core run after it: the 1-core run must wait for
        // the 2-core one although a core is free for it.
        let first = budget.acquire(1, &|| false).unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let large = {
            let (budget, order) = (budget.clone(), order.clone());
            std::thread::spawn(move || {
                let _held = budget.acquire(2, &|| false).unwrap();
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
                let _held = budget.acquire(1, &|| false).unwrap();
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

    /// Waits until `n` tickets have been taken (the waiters started are queued).
    fn queued(budget: &CoreBudget, n: u64) {
        while budget.lock().next < n {
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_waiter_that_gives_up_leaves_the_queue_to_those_behind_it() {
        use std::sync::atomic::AtomicBool;
        use std::sync::mpsc::channel;
        let budget = Arc::new(CoreBudget::new(1));
        let patient = |budget: &Arc<CoreBudget>, name: &'static str| {
            let (budget, (served, told)) = (budget.clone(), channel());
            let thread = std::thread::spawn(move || {
                let _held = budget.acquire(1, &|| false).unwrap();
                served.send(name).unwrap();
            });
            (thread, told)
        };
        let quitter = |budget: &Arc<CoreBudget>, give_up: &Arc<AtomicBool>| {
            let (budget, give_up) = (budget.clone(), give_up.clone());
            std::thread::spawn(move || {
                budget
                    .acquire(1, &|| give_up.load(Ordering::SeqCst))
                    .is_some()
            })
        };
        // Behind the holder: a patient waiter, one that gives up, another patient one.
        let held = budget.acquire(1, &|| false).unwrap();
        let (first, first_served) = patient(&budget, "first");
        queued(&budget, 2);
        let gives_up = Arc::new(AtomicBool::new(true));
        assert!(!quitter(&budget, &gives_up).join().unwrap());
        let (last, last_served) = patient(&budget, "last");
        queued(&budget, 4);
        drop(held);
        // Without the withdrawal the turn would stop at the ticket that left, and `last` wait for ever.
        let within = Duration::from_secs(60);
        assert_eq!(first_served.recv_timeout(within), Ok("first"));
        assert_eq!(last_served.recv_timeout(within), Ok("last"));
        first.join().unwrap();
        last.join().unwrap();
        // The one whose turn it is gives up: the turn passes on at once.
        let held = budget.acquire(1, &|| false).unwrap();
        let gives_up = Arc::new(AtomicBool::new(false));
        let waiting = quitter(&budget, &gives_up);
        queued(&budget, 6);
        let (after, after_served) = patient(&budget, "after");
        queued(&budget, 7);
        gives_up.store(true, Ordering::SeqCst);
        assert!(
            !waiting.join().unwrap(),
            "the waiter that gave up was served"
        );
        drop(held);
        assert_eq!(after_served.recv_timeout(within), Ok("after"));
        after.join().unwrap();
        assert_eq!(budget.free(), 1);
    }
}

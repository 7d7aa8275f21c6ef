//! A map over a slice on scoped threads, one per core: how the readers decode many files at once. A panic
//! inside `f` (some decoders index past the end of damaged data) becomes that item's `Err`, with the
//! panic's message, instead of ending the process.

use std::sync::atomic::{AtomicUsize, Ordering};

/// `f` applied to every item, results in item order; `Err(message)` where `f` panicked.
pub(crate) fn map_catching<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
) -> Vec<Result<R, String>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let run = || {
        let mut done = Vec::new();
        loop {
            let n = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(n) else { break };
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(item)))
                .map_err(|panic| {
                    panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".to_string())
                });
            done.push((n, result));
        }
        done
    };
    let mut indexed: Vec<(usize, Result<R, String>)> = if workers == 1 {
        run()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers).map(|_| scope.spawn(run)).collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        })
    };
    indexed.sort_by_key(|(n, _)| *n);
    indexed.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_turns_panics_into_errors() {
        let items: Vec<u32> = (0..50).collect();
        let out = map_catching(&items, |&i| {
            if i == 7 {
                panic!("seven is damaged");
            }
            i * 2
        });
        assert_eq!(out.len(), 50);
        assert_eq!(out[3], Ok(6));
        assert_eq!(out[7], Err("seven is damaged".to_string()));
        assert_eq!(out[49], Ok(98));
    }
}

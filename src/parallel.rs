//! Work spread over the cores: the same function over each item of a slice, on scoped threads
//! that each take the next item from a shared counter, so that a core slowed by other work on the
//! host does not hold back the rest. Results come back in the items' order. Pure.

use std::sync::atomic::{AtomicUsize, Ordering};

/// `f` of each item, in order, on up to `threads` threads (0: one per core). A panic in `f`
/// is raised again here.
pub fn map<T, R>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R>
where
    T: Sync,
    R: Send,
{
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    }
    .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let at = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(at) else {
                            return done;
                        };
                        done.push((at, f(item)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| match worker.join() {
                Ok(done) => done,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    done.sort_unstable_by_key(|(at, _)| *at);
    done.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_the_items_order_on_any_number_of_threads() {
        let items: Vec<u64> = (0..1000).collect();
        for threads in [0, 1, 2, 7, 5000] {
            let squares = map(&items, threads, |n| {
                // Uneven work, so that workers finish out of order.
                if n % 97 == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                n * n
            });
            assert_eq!(squares, items.iter().map(|n| n * n).collect::<Vec<_>>());
        }
        assert!(map(&[] as &[u8], 4, |b| *b).is_empty());
    }

    #[test]
    #[should_panic(expected = "item 3")]
    fn a_panic_in_a_worker_is_raised_again() {
        map(&[1, 2, 3, 4], 2, |n| {
            assert_ne!(*n, 3, "item 3");
            *n
        });
    }
}

//! Lookups by key that arrive together, coalesced into one batched AWS call.
//!
//! Many reconciles of one kind start at once (a restart, a resync, a Deployment that backs
//! ten bindings) and each asks for one thing an AWS call can return for many: a target
//! group by ARN, an instance's security groups. The first caller waits a short window, then
//! loads every key asked for meanwhile (up to the call's batch size) in one call and hands
//! each caller its answer; callers that arrive while a batch is loading go into the next.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;

type Reply<V, E> = oneshot::Sender<Result<Option<V>, E>>;

struct State<K, V, E> {
    waiting: Vec<(K, Reply<V, E>)>,
    /// A caller is collecting and loading batches.
    leading: bool,
}

pub(crate) struct Coalescer<K, V, E> {
    window: Duration,
    max: usize,
    state: Mutex<State<K, V, E>>,
}

impl<K, V, E> Coalescer<K, V, E>
where
    K: Clone + Eq + Hash + Send,
    V: Clone + Send,
    E: Clone + Send,
{
    /// Batches of at most `max` keys, collected for `window` after the first.
    pub(crate) fn new(window: Duration, max: usize) -> Self {
        Coalescer {
            window,
            max: max.max(1),
            state: Mutex::new(State {
                waiting: Vec::new(),
                leading: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K, V, E>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value for `key` (`None`: the load did not return it), loaded with the keys of
    /// the callers around it. `load` gets distinct keys and returns what it found; its error
    /// goes to every caller of that batch.
    pub(crate) async fn get<F, Fut>(&self, key: K, load: F) -> Result<Option<V>, E>
    where
        F: Fn(Vec<K>) -> Fut,
        Fut: Future<Output = Result<HashMap<K, V>, E>>,
    {
        loop {
            let (tx, rx) = oneshot::channel();
            let lead = {
                let mut st = self.lock();
                st.waiting.push((key.clone(), tx));
                !std::mem::replace(&mut st.leading, true)
            };
            if lead {
                let mut guard = Leading {
                    coalescer: self,
                    armed: true,
                };
                tokio::time::sleep(self.window).await;
                loop {
                    let batch: Vec<(K, Reply<V, E>)> = {
                        let mut st = self.lock();
                        if st.waiting.is_empty() {
                            st.leading = false;
                            break;
                        }
                        let n = st.waiting.len().min(self.max);
                        st.waiting.drain(..n).collect()
                    };
                    let mut keys: Vec<K> = Vec::with_capacity(batch.len());
                    for (k, _) in &batch {
                        if !keys.contains(k) {
                            keys.push(k.clone());
                        }
                    }
                    let loaded = load(keys).await;
                    for (k, reply) in batch {
                        let _ = reply.send(loaded.clone().map(|found| found.get(&k).cloned()));
                    }
                }
                guard.armed = false;
            }
            match rx.await {
                Ok(r) => return r,
                // The leader was cancelled before answering: ask again (one of us leads).
                Err(_) => continue,
            }
        }
    }
}

/// A leader cancelled mid-way (its reconcile dropped) must not leave the others waiting:
/// their replies are dropped, which sends each back to ask again.
struct Leading<'a, K, V, E> {
    coalescer: &'a Coalescer<K, V, E>,
    armed: bool,
}

impl<K, V, E> Drop for Leading<'_, K, V, E> {
    fn drop(&mut self) {
        if self.armed {
            let mut st = self
                .coalescer
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            st.leading = false;
            st.waiting.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    type Calls = Arc<Mutex<Vec<Vec<u32>>>>;

    fn loader(
        calls: Calls,
    ) -> impl Fn(Vec<u32>) -> std::future::Ready<Result<HashMap<u32, u32>, String>> {
        move |keys: Vec<u32>| {
            calls.lock().unwrap().push(keys.clone());
            // Odd keys exist, with their double as the value.
            std::future::ready(Ok(keys
                .into_iter()
                .filter(|k| k % 2 == 1)
                .map(|k| (k, k * 2))
                .collect()))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn callers_arriving_together_share_one_call() {
        let c = Arc::new(Coalescer::<u32, u32, String>::new(
            Duration::from_millis(10),
            20,
        ));
        let calls: Calls = Arc::default();
        let all = (1..=7u32).chain([3, 3]).map(|k| {
            let (c, calls) = (c.clone(), calls.clone());
            tokio::spawn(async move { c.get(k, loader(calls)).await })
        });
        let got: Vec<_> = futures::future::join_all(all)
            .await
            .into_iter()
            .map(|r| r.unwrap().unwrap())
            .collect();
        assert_eq!(
            got,
            [
                Some(2),
                None,
                Some(6),
                None,
                Some(10),
                None,
                Some(14),
                Some(6),
                Some(6)
            ]
        );
        // One call, each key once.
        assert_eq!(calls.lock().unwrap().len(), 1);
        assert_eq!(calls.lock().unwrap()[0].len(), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn batches_are_cut_at_the_maximum() {
        let c = Arc::new(Coalescer::<u32, u32, String>::new(
            Duration::from_millis(10),
            3,
        ));
        let calls: Calls = Arc::default();
        let all = (1..=8u32).map(|k| {
            let (c, calls) = (c.clone(), calls.clone());
            tokio::spawn(async move { c.get(k, loader(calls)).await })
        });
        for r in futures::future::join_all(all).await {
            r.unwrap().unwrap();
        }
        let sizes: Vec<usize> = calls.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [3, 3, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_reaches_every_caller_of_its_batch_and_the_next_batch_is_fresh() {
        let c = Arc::new(Coalescer::<u32, u32, String>::new(
            Duration::from_millis(10),
            20,
        ));
        let n = Arc::new(AtomicUsize::new(0));
        let load = |n: Arc<AtomicUsize>| {
            move |_keys: Vec<u32>| {
                let first = n.fetch_add(1, Ordering::SeqCst) == 0;
                std::future::ready(match first {
                    true => Err("Throttling".to_string()),
                    false => Ok(HashMap::from([(1, 10)])),
                })
            }
        };
        let all = [1u32, 1].map(|k| {
            let (c, n) = (c.clone(), n.clone());
            tokio::spawn(async move { c.get(k, load(n)).await })
        });
        for r in futures::future::join_all(all).await {
            assert_eq!(r.unwrap(), Err("Throttling".to_string()));
        }
        assert_eq!(c.get(1, load(n.clone())).await, Ok(Some(10)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_leader_does_not_strand_the_others() {
        let c = Arc::new(Coalescer::<u32, u32, String>::new(
            Duration::from_millis(10),
            20,
        ));
        let calls: Calls = Arc::default();
        // The leader's load never finishes; it is cancelled while loading.
        let leader = {
            let c = c.clone();
            tokio::spawn(async move {
                c.get(1, |_| {
                    std::future::pending::<Result<HashMap<u32, u32>, String>>()
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        let follower = {
            let (c, calls) = (c.clone(), calls.clone());
            tokio::spawn(async move { c.get(3, loader(calls)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        leader.abort();
        let got = tokio::time::timeout(Duration::from_secs(1), follower)
            .await
            .expect("the follower asked again")
            .unwrap();
        assert_eq!(got, Ok(Some(6)));
    }
}

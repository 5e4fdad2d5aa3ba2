//! How many long-lived answers (the switchboard's streams) each person holds open.

/// Streams one person (or API token) may hold open at once: a few tabs and consoles.
pub const STREAMS_PER_PERSON: usize = 8;

/// Open long-lived answers (the switchboard's streams) per person
/// ([`Principal::key`](super::Principal::key)).
#[derive(Debug, Default)]
pub struct Streams(std::sync::Mutex<std::collections::HashMap<String, usize>>);

/// One open stream, counted until it is dropped.
pub struct OpenStream {
    streams: std::sync::Arc<Streams>,
    key: String,
}

impl Streams {
    /// Counts one more stream for `key`; `None` when it holds the most already.
    pub fn open(streams: &std::sync::Arc<Streams>, key: String) -> Option<OpenStream> {
        let mut open = streams.0.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(key.clone()).or_default();
        if *count >= STREAMS_PER_PERSON {
            return None;
        }
        *count += 1;
        Some(OpenStream {
            streams: streams.clone(),
            key,
        })
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        let mut open = self.streams.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

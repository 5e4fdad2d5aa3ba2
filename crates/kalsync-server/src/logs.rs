//! The log's defences against what comes from outside: every event stays one line
//! whatever its fields carry ([`LineSafe`]), and what anyone can cause in bulk is counted
//! into a summary now and then ([`Tally`]) instead of a line each.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A log writer that escapes every control character of an event (a newline, a carriage
/// return, ESC, a Unicode line or paragraph separator) but the one newline that ends
/// it. A subscription id, an e-mail address or an error body from a hostile server can
/// then neither start a line of its own nor colour or move the cursor on a terminal.
///
/// tracing-subscriber's formatter writes each event with one `write_all`, so one call
/// here is one event. Written by hand: no logging crate escapes `Display` fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineSafe<M>(pub M);

impl<'a, M: tracing_subscriber::fmt::MakeWriter<'a>> tracing_subscriber::fmt::MakeWriter<'a>
    for LineSafe<M>
{
    type Writer = LineSafeWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        LineSafeWriter(self.0.make_writer())
    }
}

/// The writer [`LineSafe`] makes.
#[derive(Debug)]
pub struct LineSafeWriter<W>(W);

impl<W: Write> Write for LineSafeWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(one_line(buf).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// `event` as one line: its control characters escaped (`\n`, `\r`, `\t`, `\u{1b}`), a
/// final newline kept.
pub fn one_line(event: &[u8]) -> String {
    let text = String::from_utf8_lossy(event);
    let (body, newline) = match text.strip_suffix('\n') {
        Some(body) => (body, "\n"),
        None => (text.as_ref(), ""),
    };
    let mut out = String::with_capacity(body.len() + 1);
    for c in body.chars() {
        if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push_str(newline);
    out
}

/// Counts something anyone can cause in bulk (refused notification items) and logs one
/// warning for all of them at most every ten seconds.
#[derive(Debug)]
pub struct Tally {
    what: &'static str,
    state: Mutex<TallyState>,
}

#[derive(Debug, Default)]
struct TallyState {
    count: u64,
    last: Option<Instant>,
}

/// How often a [`Tally`] writes.
const TALLY_EVERY: Duration = Duration::from_secs(10);

impl Tally {
    /// A tally whose log line says `what`.
    pub fn new(what: &'static str) -> Tally {
        Tally {
            what,
            state: Mutex::new(TallyState::default()),
        }
    }

    /// Counts `n` more; `example` (one of them, escaped by the log) goes into the line
    /// when one is due. Returns whether a line was written.
    pub fn count(&self, n: usize, example: &str) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.count += n as u64;
        let now = Instant::now();
        if state
            .last
            .is_some_and(|t| now.duration_since(t) < TALLY_EVERY)
        {
            return false;
        }
        let count = std::mem::take(&mut state.count);
        state.last = Some(now);
        drop(state);
        // At most 200 characters of the example: it comes from outside.
        let example: String = example.chars().take(200).collect();
        tracing::warn!(count, example = ?example, "{}", self.what);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_stays_one_line_whatever_its_fields_carry() {
        assert_eq!(one_line(b"plain event\n"), "plain event\n");
        assert_eq!(
            one_line("id=x\nWARN forged\r\u{1b}[31mred\u{2028}\n".as_bytes()),
            "id=x\\nWARN forged\\r\\u{1b}[31mred\\u{2028}\n"
        );
        assert_eq!(one_line(b"no newline"), "no newline");
        assert_eq!(one_line("å ä ö\n".as_bytes()), "å ä ö\n");
        let mut out = Vec::new();
        LineSafeWriter(&mut out)
            .write_all(b"a\nb\n")
            .expect("written");
        assert_eq!(out, b"a\\nb\n");
    }

    #[test]
    fn a_tally_writes_one_line_per_period() {
        let tally = Tally::new("things were refused");
        assert!(tally.count(3, "first"));
        assert!(
            !tally.count(15_000, "second"),
            "within ten seconds: counted only"
        );
        assert_eq!(tally.state.lock().expect("lock").count, 15_000);
    }
}

//! `Retry-After` as every outbound answer gives it (Graph, webhooks): seconds, with
//! fractions as Graph sends them (`2.128`), or an HTTP date. One reading for every
//! client; what to do with it is each caller's retry policy.

use std::time::Duration;

use jiff::Timestamp;

/// The longest wait a `Retry-After` is believed for (a day): a broken or hostile
/// server cannot park a caller for longer.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// A `Retry-After` value as a wait from `now`; `None` when it is neither seconds nor a
/// date. A date already past is no wait.
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(MAX_RETRY_AFTER.as_secs_f64())));
    }
    let date = jiff::fmt::rfc2822::parse(value).ok()?;
    let wait = date.timestamp().duration_since(now);
    Some(
        Duration::try_from(wait)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// The `Retry-After` of an answer's headers, as a wait from `now`.
pub fn retry_after(headers: &reqwest::header::HeaderMap, now: Timestamp) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_with_fractions_and_dates_are_waits() {
        let now: Timestamp = "2015-10-21T07:27:00Z".parse().expect("now");
        assert_eq!(
            parse_retry_after("2.128", now),
            Some(Duration::from_millis(2128))
        );
        assert_eq!(
            parse_retry_after(" 10 ", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:26:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("1e9", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2099 07:28:00 GMT", now),
            Some(MAX_RETRY_AFTER)
        );
        for bad in ["soon", "-1", "NaN", "inf", ""] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }
}

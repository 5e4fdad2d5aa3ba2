//! A rules file (the instance settings) over arbitrary text; when one parses, a timeline
//! is built with it, so odd settings are exercised too, and its error is located.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match kalsync_core::InstanceSettings::from_toml(text) {
        Ok(settings) => {
            let _ = settings.to_toml();
            let now =
                jiff::Timestamp::from_second(1_795_000_000).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            let window = kalsync_core::Window::sync(now, settings.days_ahead.min(60));
            let _ = kalsync_core::build_timeline(&[], &settings, window);
        }
        Err(e) => {
            let _ = e.located("rules.toml", text);
        }
    }
});

//! `.ics` import (what `kalsync preview` and the rules editor read) over arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = jiff::Timestamp::from_second(1_795_000_000).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let options = kalsync_ics::ImportOptions {
        default_zone: "Europe/Stockholm".into(),
        window: kalsync_core::Window::sync(now, 60),
        owner: Some("anna@example.se".into()),
    };
    let _ = kalsync_ics::import(text, &options);
});

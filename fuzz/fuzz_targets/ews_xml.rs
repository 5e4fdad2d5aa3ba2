//! Every EWS answer parser over arbitrary text: an error is fine, a panic or a hang is
//! not.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    use kalsync_ews::response;
    let _ = response::calendar_view(text);
    let _ = response::items(text);
    let _ = response::sync_page(text);
    let _ = response::subscribed(text);
    let _ = response::unsubscribed(text);
    let _ = response::pulled(text);
    let _ = response::stream_part(text);
    let _ = response::notification_result(text);
    let _ = response::outcome(text);
});

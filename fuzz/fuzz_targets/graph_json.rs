//! Graph's answers over arbitrary bytes: a calendarView page read into bookings (the
//! typed pass, then event by event), `$batch` answers, mailbox settings and errors.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let zone = kalsync_core::Zone::stockholm();
    let mut read = kalsync_graph::client::CalendarRead::default();
    let _ = read.read_page(text, &zone);
    let _ = serde_json::from_str::<kalsync_graph::model::BatchResponse>(text);
    if let Ok(settings) = serde_json::from_str::<kalsync_graph::model::MailboxSettingsJson>(text) {
        let _ = settings.read();
    }
    let _ = serde_json::from_str::<kalsync_graph::model::ErrorBody>(text);
});

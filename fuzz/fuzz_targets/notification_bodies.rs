//! What the notification endpoints receive from anyone on the network: Graph change
//! and lifecycle notifications (with and without a validation token) and EWS pushes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kalsync_graph::notifications::parse(data);
    let _ = kalsync_graph::notifications::receive(None, data, |id| {
        (id.len() % 2 == 0).then(|| "client-state".to_owned())
    });
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = kalsync_graph::notifications::receive(Some(text), b"", |_| None);
        let _ = kalsync_graph::notifications::mailbox_of(text);
        let _ = kalsync_ews::response::pushed(text);
    }
});

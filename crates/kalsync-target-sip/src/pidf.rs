//! The presence document Kalsync publishes: PIDF (RFC 3863) with the data model's
//! person (RFC 4479), RPID activities (RFC 4480) — the generic activity first — and
//! notes carrying the reason and the return time in Swedish and English.

use kalsync_core::Mode;
use kalsync_engine::AbsenceStatus;

/// The RPID activities for a reason, generic first (SPEC §5).
pub fn activities(reason: &str, mode: Mode) -> Vec<&'static str> {
    match reason {
        "lunch" => vec!["away", "meal"],
        "meeting" => vec!["busy", "meeting"],
        "vacation" => vec!["away", "vacation"],
        "busy" => vec!["busy"],
        "out_of_office" => vec!["away", "appointment"],
        "gone_for_the_day" => vec!["away"],
        "sick" => vec!["away", "other"],
        "working_from_home" => vec!["busy", "working"],
        _ => match mode {
            Mode::Divert => vec!["away", "other"],
            Mode::Info => vec!["busy", "other"],
        },
    }
}

/// XML text or attribute content.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && !matches!(c, '\n' | '\t') => {}
            c => out.push(c),
        }
    }
    out
}

/// The document for `entity` (`sip:<ext>@<domain>`) while `absence` is in force.
pub fn document(entity: &str, absence: &AbsenceStatus) -> String {
    let acts: String = activities(&absence.reason, absence.mode)
        .into_iter()
        .map(|a| {
            if a == "other" {
                format!("<rpid:other>{}</rpid:other>", escape(&absence.reason))
            } else {
                format!("<rpid:{a}/>")
            }
        })
        .collect();
    let sv = escape(&absence.message_sv);
    let en = escape(&absence.message_en);
    format!(
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" ",
            "xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" ",
            "xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"{entity}\">\n",
            "  <tuple id=\"kalsync\">\n",
            "    <status><basic>open</basic></status>\n",
            "    <note xml:lang=\"sv\">{sv}</note>\n",
            "    <note xml:lang=\"en\">{en}</note>\n",
            "  </tuple>\n",
            "  <dm:person id=\"kalsync-person\">\n",
            "    <rpid:activities from=\"{from}\" until=\"{until}\">{acts}</rpid:activities>\n",
            "    <dm:note xml:lang=\"sv\">{sv}</dm:note>\n",
            "    <dm:note xml:lang=\"en\">{en}</dm:note>\n",
            "  </dm:person>\n",
            "</presence>\n"
        ),
        entity = escape(entity),
        from = absence.since,
        until = absence.until,
        acts = acts,
        sv = sv,
        en = en,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_activity_first() {
        assert_eq!(activities("lunch", Mode::Divert), ["away", "meal"]);
        assert_eq!(activities("meeting", Mode::Info), ["busy", "meeting"]);
        assert_eq!(activities("vacation", Mode::Divert), ["away", "vacation"]);
        assert_eq!(activities("dentist", Mode::Divert), ["away", "other"]);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a<b & \"c\"\u{7}"), "a&lt;b &amp; &quot;c&quot;");
    }
}

//! The audit chapter: entries per company and for the whole installation, newest first.

use kalsync_store::NewAuditEntry;

use super::Cast;

/// Audit: entries per company and for the whole installation, newest first.
pub(crate) async fn audit(c: &Cast<'_>) {
    let Cast { s, acme, anna, .. } = c;
    s.audit(NewAuditEntry {
        company: Some(acme.id),
        actor: "admin".into(),
        action: "user.added".into(),
        detail: serde_json::json!({"user": anna.id.to_string()}),
    })
    .await
    .expect("audit");
    s.audit(NewAuditEntry {
        company: None,
        actor: "system".into(),
        action: "node.started".into(),
        detail: serde_json::json!({}),
    })
    .await
    .expect("audit");
    assert_eq!(s.audit_log(Some(acme.id), 10).await.expect("log").len(), 1);
    assert_eq!(
        s.audit_log(None, 10).await.expect("log")[0].action,
        "node.started"
    );
}

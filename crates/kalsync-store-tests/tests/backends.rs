//! The conformance story against each backend: SQLite in a fresh file, PostgreSQL in a
//! fresh database (when `KALSYNC_TEST_POSTGRES_URL` names a server).

use kalsync_store_tests::{postgres, sqlite, story};

#[tokio::test]
async fn sqlite_passes_the_story() {
    let fixture = sqlite().await;
    story(&fixture).await;
    fixture.finish().await;
}

#[tokio::test]
async fn postgres_passes_the_story() {
    let Some(fixture) = postgres().await else {
        eprintln!(
            "skipped: KALSYNC_TEST_POSTGRES_URL is not set (CI sets it; e.g. postgres://postgres@127.0.0.1:5432/test)"
        );
        return;
    };
    story(&fixture).await;
    fixture.finish().await;
}

#[tokio::test]
async fn a_restarted_sqlite_store_keeps_everything() {
    let fixture = sqlite().await;
    kalsync_store_tests::survives_a_restart(&fixture).await;
    fixture.finish().await;
}

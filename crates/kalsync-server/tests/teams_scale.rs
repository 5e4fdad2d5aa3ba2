//! Teams at scale, alone in its binary so no other test shares the two cores: 10,000
//! people whose absences begin at the same instant get their Teams status messages
//! within a minute, Graph seeing at most 1,500 presence requests in any 30 seconds and
//! no undocumented presence pair.

#[path = "../benches/teams/scenario.rs"]
mod scenario;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_people_get_their_messages_within_a_minute_within_graph_s_limit() {
    let top = scenario::top_of_the_hour(10_000, 0, None, Duration::from_secs(90)).await;
    println!(
        "{} messages in {:?}, {} presence requests, at most {} in 30 s",
        top.shown, top.last, top.requests, top.peak_per_30s
    );
    assert_eq!(top.shown, top.users, "{top:?}");
    assert!(top.last < Duration::from_secs(60), "{top:?}");
    assert!(top.peak_per_30s <= 1_500, "{top:?}");
    assert_eq!(top.refused_pairs, 0);
}

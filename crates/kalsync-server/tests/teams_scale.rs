//! Teams at scale, alone in its binary so no other test shares the two cores: 2,000
//! people whose absences begin at the same instant get their Teams status messages as
//! fast as Microsoft's budget lets them (each request inside a `$batch` counted, as
//! Graph does), Graph seeing at most 1,500 presence requests in any 30 seconds and no
//! undocumented presence pair. (10,000 take about four times as long: the benchmark.)

#[path = "../benches/teams/scenario.rs"]
mod scenario;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_top_of_the_hour_is_served_at_the_full_budget_and_never_past_it() {
    let people = 2_000;
    let top = scenario::top_of_the_hour(people, 0, None, Duration::from_secs(150)).await;
    println!(
        "{} messages in {:?}, {} presence requests, at most {} in 30 s",
        top.shown, top.last, top.requests, top.peak_per_30s
    );
    assert_eq!(top.shown, top.users, "{top:?}");
    assert!(top.peak_per_30s <= 1_500, "{top:?}");
    // One write a person and one read per twenty, at the budget's pace (1,500 / 33 a
    // second) with a margin for starting up.
    let requests = people + people / 20;
    let at_pace = Duration::from_secs_f64(requests as f64 / (1_500.0 / 33.0));
    assert!(
        top.last < at_pace + Duration::from_secs(25),
        "{top:?}, at pace {at_pace:?}"
    );
    assert_eq!(top.refused_pairs, 0);
}

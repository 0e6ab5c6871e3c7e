//! Fault injection over HTTP, as the README shows it with a bare `curl -d`.

use pushfs::emulator::Emulators;

#[tokio::test]
async fn a_plain_post_sets_the_plan_and_the_next_requests_fail() {
    let emulators = Emulators::start([0, 0, 0]).await.unwrap();
    let http = reqwest::Client::new();
    let url = &emulators.bytenite.url;
    let set = http
        .post(format!("{url}/_emulator/faults"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(r#"{"fail_next":2,"status":503}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 204);
    for _ in 0..2 {
        let r = http
            .post(format!("{url}/v1/dev/apps"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
    }
    let r = http
        .post(format!("{url}/v1/dev/apps"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "the plan ran out: the real rules answer again"
    );

    let bad = http
        .post(format!("{url}/_emulator/faults"))
        .body("fail everything")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

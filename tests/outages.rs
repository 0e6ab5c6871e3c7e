//! Outages on a real mount: retries run until a deadline, not a count;
//! `Retry-After` is honoured; a retrying deploy survives a remount and
//! `ctl deploy` cuts its wait short; a recorded outcome is never repeated.
//! The issue's own cases at full length too: a 40 s outage, `Retry-After: 3`.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::scripted::{scripted_set, Answer};
use common::{eventually, status, status_json, wait, wait_within, TestMount};
use pushfs::backend::DeployError;
use pushfs::config::{Config, RetryPolicy};
use pushfs::emulator::FaultPlan;
use pushfs::env::Env;

/// Retries limited by a deadline only, with short backoffs.
fn outage_policy(config: &mut Config) {
    config.retry.attempts = None;
    config.retry.initial_backoff = Duration::from_millis(100);
    config.retry.max_backoff = Duration::from_millis(400);
    config.retry.deadline = Duration::from_secs(60);
}

fn spec(app: &Path) {
    fs::write(app.join("spec.json"), r#"{"guid":"g-1"}"#).unwrap();
}

#[test]
fn an_outage_longer_than_a_retry_count_ends_deployed_without_help() {
    let t = TestMount::with_emulators_and(|config, emulators| {
        outage_policy(config);
        emulators.cf.faults.set(FaultPlan {
            fail_for_ms: 3000,
            ..FaultPlan::default()
        });
    });
    let app = t.copy_example("cf");
    eventually("the deploy to be retrying", || {
        status(&app, "state") == "retrying"
    });
    let json = status_json(&app);
    assert!(json["next_attempt_at"].as_str().is_some(), "{json}");
    assert!(
        json["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("HTTP 503"),
        "{json}"
    );
    let error = status(&app, "error");
    assert!(error.starts_with("retrying at "), "{error}");
    assert!(
        error.contains(" after: the server failed (HTTP 503)"),
        "{error}"
    );

    assert_eq!(wait(&app), "deployed");
    let failures = t.emulators().cf.faults.failures().len();
    assert!(
        failures > 6,
        "more failures ({failures}) than the old 6 attempts"
    );
    let json = status_json(&app);
    assert!(json["next_attempt_at"].is_null(), "{json}");
    assert_eq!(status(&app, "error"), "");
}

#[test]
fn retry_after_is_waited() {
    let t = TestMount::with_emulators_and(|config, emulators| {
        outage_policy(config);
        config.retry.max_backoff = Duration::from_secs(10);
        emulators.cf.faults.set(FaultPlan {
            fail_next: 2,
            retry_after_secs: Some(2),
            ..FaultPlan::default()
        });
    });
    let app = t.copy_example("cf");
    assert_eq!(wait(&app), "deployed");
    let failures = t.emulators().cf.faults.failures();
    assert_eq!(failures.len(), 2);
    let spacing = failures[1] - failures[0];
    assert!(
        spacing >= Duration::from_millis(1900),
        "the second attempt came {spacing:?} after the first"
    );
    assert!(status(&app, "log").contains("as the server asked"));
}

#[test]
fn ctl_deploy_retries_at_once() {
    let t = TestMount::with_emulators_and(|config, emulators| {
        outage_policy(config);
        config.retry.max_backoff = Duration::from_secs(600);
        config.retry.deadline = Duration::from_secs(3600);
        emulators.cf.faults.set(FaultPlan {
            fail_next: 1,
            retry_after_secs: Some(300),
            ..FaultPlan::default()
        });
    });
    let app = t.copy_example("cf");
    eventually("the deploy to wait 300 s to retry", || {
        status(&app, "state") == "retrying"
    });
    fs::write(app.join(".pushfs/ctl"), "deploy\n").unwrap();
    assert_eq!(wait(&app), "deployed");
    assert!(status(&app, "log").contains("retrying now"));
}

#[test]
fn a_retrying_deploy_resumes_after_a_remount() {
    let (backend, all) = scripted_set();
    for _ in 0..3 {
        backend.push(Answer::Fail(DeployError::from_status(503, "down")));
    }
    let mut t = TestMount::with_backends_and(all, |config| {
        outage_policy(config);
        config.retry.initial_backoff = Duration::from_millis(1500);
        config.retry.max_backoff = Duration::from_millis(1500);
    });
    let app = t.app("cf", "outage");
    fs::create_dir(&app).unwrap();
    spec(&app);
    eventually("the deploy to be retrying", || {
        status(&app, "state") == "retrying"
    });
    t.remount();
    assert_eq!(
        status(&app, "state"),
        "retrying",
        "still retrying after the remount"
    );
    assert!(status_json(&app)["next_attempt_at"].as_str().is_some());
    assert_eq!(wait(&app), "deployed");
    assert_eq!(backend.deploys(), 4, "three failures, then the success");
    assert!(status(&app, "log").contains("resuming the retries"));
}

#[test]
fn a_final_failure_is_not_uploaded_again_at_remount() {
    let (backend, all) = scripted_set();
    backend.push(Answer::Fail(DeployError::from_status(422, "name taken")));
    let mut t = TestMount::with_backends(all);
    let app = t.app("cf", "refused");
    fs::create_dir(&app).unwrap();
    spec(&app);
    assert_eq!(wait(&app), "failed");
    assert_eq!(backend.deploys(), 1);
    t.remount();
    assert_eq!(status(&app, "state"), "failed");
    assert_eq!(wait(&app), "failed");
    assert_eq!(
        backend.deploys(),
        1,
        "the refused content is not sent again"
    );
    assert!(status(&app, "error").contains("name taken"));

    // The same bytes written again are the same content: still refused.
    fs::write(app.join("spec.json"), r#"{"guid":"g-1"}"#).unwrap();
    assert_eq!(wait(&app), "failed");
    assert_eq!(backend.deploys(), 1);

    // `ctl deploy` (or a real change) tries again.
    fs::write(app.join(".pushfs/ctl"), "deploy\n").unwrap();
    assert_eq!(wait(&app), "deployed");
    assert_eq!(backend.deploys(), 2);
}

#[test]
fn a_deployed_app_reads_deployed_right_after_a_remount() {
    let (backend, all) = scripted_set();
    let mut t = TestMount::with_backends(all);
    let app = t.app("cf", "steady");
    fs::create_dir(&app).unwrap();
    spec(&app);
    assert_eq!(wait(&app), "deployed");
    for _ in 0..2 {
        t.remount();
        assert_eq!(status(&app, "state"), "deployed", "no pending flash");
        assert_eq!(status_json(&app)["state"], "deployed");
        assert_eq!(wait(&app), "deployed");
        assert_eq!(status(&app, "state"), "deployed");
    }
    assert_eq!(backend.deploys(), 1);
}

#[test]
fn a_failure_with_a_local_cause_is_tried_again_at_remount() {
    let (backend, all) = scripted_set();
    backend.push(Answer::Fail(DeployError::NotConfigured {
        backend: "cf",
        missing: "[cf] token".into(),
    }));
    let mut t = TestMount::with_backends(all);
    let app = t.app("cf", "unconfigured");
    fs::create_dir(&app).unwrap();
    spec(&app);
    assert_eq!(wait(&app), "failed");
    t.remount();
    assert_eq!(wait(&app), "deployed");
    assert_eq!(backend.deploys(), 2);
}

/// The issue's outage, literally: 503 for 40 s. The deploy rides it out
/// with no user action, under the default `[retry]` settings (backoff
/// from 0.5 s doubling to a 5 min cap, a 24 h deadline): the attempt after
/// the outage comes about a minute in.
#[test]
fn a_40_s_outage_ends_deployed_with_the_default_retry_settings() {
    let t = TestMount::with_emulators_and(|config, emulators| {
        config.retry = RetryPolicy::default();
        emulators.cf.faults.set(FaultPlan {
            fail_for_ms: 40_000,
            ..FaultPlan::default()
        });
    });
    assert_eq!(t.config.retry.max_backoff, Duration::from_secs(300));
    assert_eq!(t.config.retry.deadline, Duration::from_secs(24 * 3600));
    assert_eq!(t.config.retry.attempts, None);
    let app = t.copy_example("cf");
    eventually("the deploy to be retrying", || {
        status(&app, "state") == "retrying"
    });
    assert_eq!(wait_within(&app, Duration::from_secs(120)), "deployed");
    assert!(t.emulators().cf.faults.failures().len() > 1);
    assert_eq!(status(&app, "error"), "");
    assert!(status_json(&app)["next_attempt_at"].is_null());
    assert_eq!(t.emulators().cf.api.uploads().len(), 1, "uploaded once");
}

/// The same outage with `[retry]` tuned in the config file, as a user who
/// wants a quicker recovery writes it: waits of at most 5 s.
#[test]
fn a_40_s_outage_ends_deployed_with_retry_set_in_the_config_file() {
    let t = TestMount::with_emulators_and(|config, emulators| {
        let dir = tempfile::tempdir().unwrap();
        let file = emulators.write_client_config(dir.path()).unwrap();
        let mut text = fs::read_to_string(&file).unwrap();
        text.push_str("\n[retry]\nmax_ms = 5000\ndeadline = \"2h\"\n");
        fs::write(&file, text).unwrap();
        let loaded = Config::load(Some(&file), &Env::default()).unwrap();
        assert_eq!(loaded.retry.max_backoff, Duration::from_secs(5));
        assert_eq!(loaded.retry.deadline, Duration::from_secs(2 * 3600));
        config.retry = loaded.retry;
        emulators.cf.faults.set(FaultPlan {
            fail_for_ms: 40_000,
            ..FaultPlan::default()
        });
    });
    let app = t.copy_example("cf");
    eventually("the deploy to be retrying", || {
        status(&app, "state") == "retrying"
    });
    assert_eq!(wait_within(&app, Duration::from_secs(120)), "deployed");
    let failures = t.emulators().cf.faults.failures().len();
    assert!(failures > 8, "capped at 5 s, it kept trying: {failures}");
    assert_eq!(status(&app, "error"), "");
    assert_eq!(t.emulators().cf.api.uploads().len(), 1, "uploaded once");
}

/// `Retry-After: 3` on a 429, then on a 503: the next request comes no
/// sooner than 3 s after the answer that carried it (the default backoff
/// would have tried again after 0.5 s), and the deploy then succeeds.
#[test]
fn retry_after_3_is_waited_after_a_429_and_after_a_503() {
    let t = TestMount::with_emulators_and(|config, _| {
        config.retry = RetryPolicy::default();
    });
    let faults = &t.emulators().cf.faults;
    let app = t.copy_example("cf");
    assert_eq!(wait(&app), "deployed");
    for (round, code) in [429u16, 503].into_iter().enumerate() {
        faults.set(FaultPlan {
            fail_next: 1,
            status: Some(code),
            retry_after_secs: Some(3),
            ..FaultPlan::default()
        });
        fs::write(app.join(".pushfs/ctl"), "deploy\n").unwrap();
        eventually("the deploy to wait as asked", || {
            status(&app, "state") == "retrying"
        });
        let json = status_json(&app);
        assert!(
            json["last_error"]
                .as_str()
                .is_some_and(|e| e.contains(&format!("HTTP {code}"))),
            "{json}"
        );
        assert!(json["next_attempt_at"].as_str().is_some(), "{json}");
        assert_eq!(wait(&app), "deployed", "{}", status(&app, "error"));

        let failures = faults.failures();
        assert_eq!(failures.len(), round + 1, "one injected {code}");
        let failed_at = failures[round];
        let next = faults
            .requests()
            .into_iter()
            .find(|r| r.at > failed_at)
            .expect("a request after the failure");
        let gap = next.at - failed_at;
        assert!(
            gap >= Duration::from_millis(2900),
            "after the {code} with Retry-After: 3, {} came {gap:?} later",
            next.line
        );
        let log = status(&app, "log");
        let asked = log
            .lines()
            .filter(|l| l.contains(&format!("HTTP {code}")) && l.contains("as the server asked"))
            .count();
        assert_eq!(asked, 1, "{log}");
        assert!(log.contains("retrying in 3000 ms at "), "{log}");
    }
}

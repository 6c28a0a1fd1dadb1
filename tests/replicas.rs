//! Many replicas, one truth: three real gateway processes on one real `redis-server`, and
//! what must hold across them (codes redeemed once, sign-ins finished anywhere, revocations
//! everywhere within about a second, one rate limit, refresh-token rotation), what happens
//! while Redis is down, and the memory store's own atomicity under four threads.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::oauth::{http, key_code, redeem, register, token};
use common::redis::Redis;
use common::{Gateway, Upstream};
use serde_json::Value;

const SEAL_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// `/a`: a passthrough route; `/limited`: the same with a rate limit of 60 a minute.
fn routes(up: &Upstream) -> String {
    format!(
        "  - prefix: /a\n    upstream: {u}\n    auth: {{ passthrough: {{ prompt: Key }} }}\n\
         \x20 - prefix: /limited\n    upstream: {u}\n    auth: {{ passthrough: {{ prompt: Key }}, rate_limit: 60/min }}\n",
        u = up.url()
    )
}

fn replicas(redis: &Redis, up: &Upstream, extra: &str) -> Vec<Gateway> {
    let top = format!(
        "seal_key: {SEAL_KEY}\nstate: {{ redis: {{ url: \"{}\", key_prefix: t, timeout: 2s }} }}\n{extra}",
        redis.url()
    );
    (0..3)
        .map(|_| {
            let gw = Gateway::start_with(&top, &routes(up));
            gw.wait_ready();
            gw
        })
        .collect()
}

/// A grant on `route`: the tokens of a sign-in through the given replicas.
fn tokens(page: &Gateway, post: &Gateway, redeem_on: &Gateway, route: &str) -> (String, Value) {
    let client = register(page, route);
    let code = key_code(page, post, route, &client, "sk-1");
    let r = redeem(redeem_on, route, &client, &code);
    assert_eq!(r.status(), 200);
    (client, r.json().unwrap())
}

fn get(gw: &Gateway, path: &str, token: &str) -> u16 {
    http()
        .get(gw.url(path))
        .bearer_auth(token)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// Runs `f(i)` on `n` threads released at once; their results.
fn at_once<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (f, barrier) = (f.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Twenty redemptions of one code, released at once over the given gateways: how many got
/// tokens.
fn redemptions(gateways: Vec<Gateway>) -> (usize, Vec<Gateway>) {
    let client = register(&gateways[0], "/a");
    let code = key_code(&gateways[0], &gateways[0], "/a", &client, "sk-1");
    let gateways = Arc::new(gateways);
    let g = gateways.clone();
    let statuses = at_once(20, move |i| {
        redeem(&g[i % g.len()], "/a", &client, &code)
            .status()
            .as_u16()
    });
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 400),
        "{statuses:?}"
    );
    (ok, Arc::try_unwrap(gateways).ok().unwrap())
}

#[test]
fn a_code_is_redeemed_once_across_replicas_and_a_sign_in_finishes_anywhere() {
    let redis = Redis::start();
    let up = Upstream::start();
    let (ok, gw) = redemptions(replicas(&redis, &up, ""));
    assert_eq!(ok, 1, "twenty redemptions over three replicas");

    // The key page from A, the key posted to B, the code redeemed on C: the grant works on
    // every replica.
    let (_, t) = tokens(&gw[0], &gw[1], &gw[2], "/a");
    let access = t["access_token"].as_str().unwrap();
    for g in &gw {
        assert_eq!(get(g, "/a/x", access), 200);
    }
}

#[test]
fn the_memory_store_redeems_a_code_once_under_four_threads() {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics) = (common::free_port(), common::free_port());
    let config = dir.path().join("mcpgate.yaml");
    let text = format!(
        "listen: 127.0.0.1:{port}\nmetrics: 127.0.0.1:{metrics}\nseal_key: {SEAL_KEY}\n\
         server: {{ threads: 4, pid_file: {d}/pid, upgrade_sock: {d}/sock }}\nroutes:\n{}",
        routes(&up),
        d = dir.path().display()
    );
    std::fs::write(&config, text).unwrap();
    let gw = Gateway::start_file(&config, dir.path(), &[], port, metrics);
    let (ok, _gw) = redemptions(vec![gw]);
    assert_eq!(ok, 1, "twenty redemptions on four threads");
}

#[test]
fn a_revocation_on_one_replica_holds_on_the_others_within_a_second() {
    let redis = Redis::start();
    let up = Upstream::start();
    let gw = replicas(&redis, &up, "");
    let (client, t) = tokens(&gw[0], &gw[0], &gw[0], "/a");
    let access = t["access_token"].as_str().unwrap();
    for g in &gw {
        assert_eq!(get(g, "/a/x", access), 200);
    }
    let r = http()
        .post(gw[0].url("/a/oauth/revoke"))
        .form(&[("token", access), ("client_id", client.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let revoked = Instant::now();
    assert_eq!(
        get(&gw[0], "/a/x", access),
        401,
        "at once where it was revoked"
    );
    for (i, g) in gw.iter().enumerate().skip(1) {
        while get(g, "/a/x", access) != 401 {
            assert!(
                revoked.elapsed() < Duration::from_secs(2),
                "replica {i} still lets it in"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!(
            "replica {i}: refused {:?} after the revocation",
            revoked.elapsed()
        );
    }
}

#[test]
fn one_rate_limit_holds_across_replicas() {
    let redis = Redis::start();
    let up = Upstream::start();
    let gw = Arc::new(replicas(&redis, &up, ""));
    let (_, t) = tokens(&gw[0], &gw[0], &gw[0], "/limited");
    let access = t["access_token"].as_str().unwrap().to_string();
    // 120 requests over three replicas in a moment: a 60/min limit (a burst of 60) lets
    // through 60, and about one more a second.
    let g = gw.clone();
    let started = Instant::now();
    let statuses = at_once(12, move |i| {
        (0..10)
            .map(|_| get(&g[i % 3], "/limited/x", &access))
            .collect::<Vec<_>>()
    });
    let elapsed = started.elapsed().as_secs();
    let allowed = statuses.iter().flatten().filter(|&&s| s == 200).count();
    let limited = statuses.iter().flatten().filter(|&&s| s == 429).count();
    assert_eq!(allowed + limited, 120, "{statuses:?}");
    eprintln!("{allowed} of 120 allowed over three replicas in {elapsed}s");
    let most = 60 + 6 + elapsed as usize;
    assert!(
        (54..=most).contains(&allowed),
        "{allowed} allowed in {elapsed}s"
    );
}

#[test]
fn a_refresh_retried_within_the_grace_gets_the_same_answer_and_a_replay_ends_the_grant() {
    let redis = Redis::start();
    let up = Upstream::start();
    let gw = Arc::new(replicas(&redis, &up, "refresh_grace: 2s\n"));
    let (client, t) = tokens(&gw[0], &gw[0], &gw[0], "/a");
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    let (g, c, r) = (gw.clone(), client.clone(), refresh.clone());
    let answers = at_once(3, move |i| {
        let r = token(
            &g[i],
            "/a",
            &c,
            &[("grant_type", "refresh_token"), ("refresh_token", &r)],
        );
        (r.status().as_u16(), r.json::<Value>().unwrap())
    });
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    assert!(
        answers.windows(2).all(|w| w[0].1 == w[1].1),
        "one answer for one refresh: {answers:?}"
    );
    let renewed = &answers[0].1;
    let access = renewed["access_token"].as_str().unwrap();
    assert_eq!(get(&gw[1], "/a/x", access), 200);

    std::thread::sleep(Duration::from_millis(3100));
    let r = token(
        &gw[2],
        "/a",
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    );
    assert_eq!(r.status(), 400, "a replay after the grace");
    let replayed = Instant::now();
    for g in gw.iter() {
        while get(g, "/a/x", access) != 401 {
            assert!(
                replayed.elapsed() < Duration::from_secs(5),
                "the grant lives on"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let next = renewed["refresh_token"].as_str().unwrap();
    let r = token(
        &gw[0],
        "/a",
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", next)],
    );
    assert_eq!(
        r.status(),
        400,
        "the grant's newest refresh token ended with it"
    );
}

#[test]
fn without_redis_issued_tokens_keep_working_and_one_time_things_wait() {
    let mut redis = Redis::start();
    let up = Upstream::start();
    let gw = replicas(&redis, &up, "");
    let (client, t) = tokens(&gw[0], &gw[1], &gw[2], "/a");
    let access = t["access_token"].as_str().unwrap();
    let (_, limited) = tokens(&gw[0], &gw[0], &gw[0], "/limited");
    let limited = limited["access_token"].as_str().unwrap();
    let code = key_code(&gw[0], &gw[0], "/a", &client, "sk-2");

    redis.stop();
    for g in &gw {
        assert_eq!(get(g, "/a/x", access), 200, "an issued token without redis");
        assert_eq!(
            get(g, "/limited/x", limited),
            200,
            "the replica's own limit"
        );
    }
    let r = redeem(&gw[1], "/a", &client, &code);
    assert_eq!(r.status(), 503, "a code is not redeemed on a guess");
    assert_eq!(
        r.json::<Value>().unwrap()["error"],
        "temporarily_unavailable"
    );
    let ready: Value = http()
        .get(gw[0].url("/readyz"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(ready["state_reachable"], false, "{ready}");
    assert!(gw[0].metric(r#"mcpgate_state_fallbacks_total{kind="rate_limit"}"#) >= 1.0);

    redis.resume();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = redeem(&gw[2], "/a", &client, &code);
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 503);
        assert!(Instant::now() < deadline, "redemptions never resumed");
        std::thread::sleep(Duration::from_millis(200));
    }
    for g in &gw {
        let log = g.log();
        assert!(!log.contains(" 500 "), "{log}");
    }
}

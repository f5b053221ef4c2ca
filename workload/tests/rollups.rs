//! PostgreSQL stats from the per-minute rollups: the answers against the exact
//! `percentile_cont` over the same rows (counts and sums exact, percentiles within the
//! sketch's relative error), duplicates not counted twice, and the upgrade of a database
//! holding events while replicas of the previous version keep inserting.
//! Needs TEST_DATABASE_URL (skipped with a printed reason otherwise; a failure when CI=true).

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use common::*;
use keel_workload::api::app;
use keel_workload::sketch::{RELATIVE_ERROR, Sketch};
use keel_workload::stats::{GroupBy, GroupStats, Stats, StatsQuery};
use keel_workload::store::postgres::{FOLD_LOCK, PoolSizes, migrator};
use keel_workload::store::{PgStore, Store};
use serde_json::{Value, json};
use sqlx::{PgPool, Row};

/// A deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n
    }

    /// Latencies with a long tail, exact zeros, sub-microsecond values and the maximum.
    fn latency(&mut self) -> f64 {
        match self.below(50) {
            0 => 0.0,
            1 => self.unit() * 1e-6,
            2 => 86_400_000.0,
            _ => (3.0 + 1.5 * (self.unit() + self.unit() + self.unit() - 1.5) * 2.0).exp(),
        }
    }
}

/// The exact figures, as the store computed them before the rollups: one entry per group
/// (key `None` for the whole window).
async fn exact(pool: &PgPool, s: &Stats) -> Vec<GroupStats> {
    let (key, grouping) = match s.group_by {
        None => ("NULL::text", ""),
        Some(GroupBy::Model) => ("model", "GROUP BY GROUPING SETS ((), (model))"),
        Some(GroupBy::Service) => ("service", "GROUP BY GROUPING SETS ((), (service))"),
    };
    let sql = format!(
        "SELECT {key} AS key, count(*)::int8 AS count,
                count(*) FILTER (WHERE status = 'error')::int8 AS errors,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95,
                percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99,
                coalesce(sum(prompt_tokens), 0)::int8 AS prompt,
                coalesce(sum(completion_tokens), 0)::int8 AS completion,
                coalesce(sum(cost_usd), 0)::float8 AS cost
         FROM traces WHERE ts >= $1 AND ts < $2 {grouping}"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(s.from)
        .bind(s.to)
        .fetch_all(pool)
        .await
        .expect("exact stats");
    rows.iter()
        .map(|r| {
            let count: i64 = r.get("count");
            let (prompt, completion): (i64, i64) = (r.get("prompt"), r.get("completion"));
            GroupStats {
                key: r.get("key"),
                count: count as u64,
                errors: r.get::<i64, _>("errors") as u64,
                error_rate: 0.0,
                latency_ms: keel_workload::stats::Percentiles {
                    p50: r.get("p50"),
                    p95: r.get("p95"),
                    p99: r.get("p99"),
                },
                prompt_tokens: prompt,
                completion_tokens: completion,
                total_tokens: prompt + completion,
                cost_usd: r.get("cost"),
            }
        })
        .collect()
}

/// Checks `got` against the exact figures; returns the largest relative percentile error.
fn compare(label: &str, got: &GroupStats, want: &GroupStats) -> f64 {
    assert_eq!(
        (
            &got.key,
            got.count,
            got.errors,
            got.prompt_tokens,
            got.completion_tokens
        ),
        (
            &want.key,
            want.count,
            want.errors,
            want.prompt_tokens,
            want.completion_tokens
        ),
        "{label}: counts and sums are exact"
    );
    assert!(
        (got.cost_usd - want.cost_usd).abs() <= 1e-9 * want.cost_usd.max(1.0),
        "{label}: cost {} vs {}",
        got.cost_usd,
        want.cost_usd
    );
    let mut worst: f64 = 0.0;
    for (name, g, w) in [
        ("p50", got.latency_ms.p50, want.latency_ms.p50),
        ("p95", got.latency_ms.p95, want.latency_ms.p95),
        ("p99", got.latency_ms.p99, want.latency_ms.p99),
    ] {
        let (g, w) = match (g, w) {
            (None, None) => continue,
            (Some(g), Some(w)) => (g, w),
            other => panic!("{label} {name}: {other:?}"),
        };
        let err = (g - w).abs();
        assert!(
            err <= RELATIVE_ERROR * w + 1e-12,
            "{label} {name}: {g} is not within {RELATIVE_ERROR} of the exact {w}"
        );
        if w > 0.0 {
            worst = worst.max(err / w);
        }
    }
    worst
}

/// Every query of `windows` × groupings through the store, against the exact figures.
async fn check_all(store: &PgStore, windows: &[&str], min_events: u64) -> f64 {
    let mut worst: f64 = 0.0;
    let mut checked = 0;
    for window in windows {
        for group in ["", "model", "service"] {
            let mut params = vec![("window".to_owned(), (*window).to_owned())];
            if !group.is_empty() {
                params.push(("group_by".to_owned(), group.to_owned()));
            }
            let q = StatsQuery::parse(&params, Utc::now()).expect("query");
            let got = store.stats(&q).await.expect("stats");
            let want = exact(store.pool(), &got).await;
            let label = format!("window={window} group_by={group}");
            let want_total = want.iter().find(|g| g.key.is_none()).expect("total row");
            worst = worst.max(compare(&label, &got.total, want_total));
            assert_eq!(got.groups.len(), want.len() - 1, "{label}");
            for g in &got.groups {
                let w = want.iter().find(|w| w.key == g.key).expect("group");
                worst = worst.max(compare(&label, g, w));
            }
            checked += got.total.count;
        }
    }
    assert!(checked >= min_events, "only {checked} events checked");
    worst
}

fn events_json(rng: &mut Rng, prefix: &str, n: usize, spread_secs: i64) -> Vec<Value> {
    let now = Utc::now();
    (0..n)
        .map(|i| {
            let ago = (rng.unit() * spread_secs as f64) as i64;
            let ts: DateTime<Utc> = now - chrono::Duration::seconds(ago)
                + chrono::Duration::milliseconds(rng.below(1000) as i64);
            let service = ["chat", "search", "summarize"][rng.below(3)];
            let model = ["gpt-4o", "gpt-4o-mini", "claude", "llama", "m\u{e9}"][rng.below(5)];
            json!({
                "trace_id": format!("{prefix}-{i}"),
                "timestamp": ts.min(now).to_rfc3339(),
                "service": service,
                "model": model,
                "latency_ms": rng.latency(),
                "prompt_tokens": rng.below(4000),
                "completion_tokens": rng.below(1000),
                "cost_usd": rng.below(1000) as f64 / 10_000.0,
                "status": if rng.below(17) == 0 { "error" } else { "ok" },
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollup_stats_match_percentile_cont_within_the_sketch_error() {
    let Some(admin) = require_env("TEST_DATABASE_URL") else {
        return;
    };
    let db = TestDb::create(&admin).await;
    let store = connect(&db).await;
    let api = app(state_with(Store::Postgres(store.clone())));
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    // Events over the last 45 minutes; half folded into the rollups, half left as deltas.
    let events = events_json(&mut rng, "r", 24_000, 45 * 60);
    for (i, chunk) in events.chunks(1000).enumerate() {
        let r = send(&api, post_events(chunk.to_vec())).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        if i == 11 {
            fold_at_least(&store, 12_000).await;
        }
    }
    // Sent again (in part, and mixed with new ones): the repeats are not counted twice.
    let mut again = events[..600].to_vec();
    again.extend(events_json(&mut rng, "r2", 400, 10));
    let r = send(&api, post_events(again)).await;
    assert_eq!(r.body, json!({"stored": 400, "duplicates": 600}));

    let folded: i64 = sqlx::query_scalar("SELECT coalesce(sum(count), 0)::int8 FROM trace_rollups")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(folded >= 12_000, "the explicit fold moved deltas: {folded}");
    let worst = check_all(&store, &["30s", "15m", "1h", "90d"], 24_400).await;
    // Everything folded: the same answers from the rollups alone.
    fold_everything(&store).await;
    let deltas: i64 = sqlx::query_scalar("SELECT count(*) FROM trace_rollup_deltas")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(deltas, 0);
    let worst = worst.max(check_all(&store, &["1h", "90d"], 24_400).await);
    eprintln!(
        "largest relative percentile error: {worst:.6} (bound {RELATIVE_ERROR}) over 24,400 events"
    );
    assert!(worst > 0.0, "the comparison saw estimates, not copies");
    store.close().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrading_a_live_database_backfills_and_misses_no_concurrent_insert() {
    let Some(admin) = require_env("TEST_DATABASE_URL") else {
        return;
    };
    let db = TestDb::create(&admin).await;
    let pool = PgPool::connect(&db.url).await.expect("connect");
    // The previous version: only the first migration, and its insert.
    let first = migrator().iter().next().expect("a migration").clone();
    let previous = sqlx::migrate::Migrator::with_migrations(vec![first]);
    previous.run(&pool).await.expect("previous migrations");
    const OLD_INSERT: &str = "\
INSERT INTO traces (trace_id, ts, service, model, latency_ms, prompt_tokens, completion_tokens, cost_usd, status)
SELECT $1 || g, now() - (g % 1800) * interval '1 second', 's' || (g % 3), 'm' || (g % 4),
       (g * 37 % 2000) + 0.5, g % 500, g % 300, (g % 9) / 1000.0, CASE WHEN g % 20 = 0 THEN 'error' ELSE 'ok' END
FROM generate_series($2::int, $3::int) g
ON CONFLICT (trace_id) DO NOTHING";
    sqlx::query(OLD_INSERT)
        .bind("seed-")
        .bind(1)
        .bind(20_000)
        .execute(&pool)
        .await
        .expect("events stored by the previous version");

    // A replica of the previous version keeps inserting while the new one migrates.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (pool, stop, written) = (pool.clone(), stop.clone(), written.clone());
        tokio::spawn(async move {
            let mut batch = 0;
            while !stop.load(Ordering::SeqCst) {
                let r = sqlx::query(OLD_INSERT)
                    .bind(format!("old-{batch}-"))
                    .bind(1)
                    .bind(50)
                    .execute(&pool)
                    .await
                    .expect("the previous version's insert works during the upgrade");
                written.fetch_add(r.rows_affected(), Ordering::SeqCst);
                batch += 1;
            }
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let before = written.load(Ordering::SeqCst);
    let store = PgStore::connect(db.url.parse().expect("url"), PoolSizes { max: 4, min: 1 })
        .await
        .expect("the new version migrates");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer");
    let total = written.load(Ordering::SeqCst);
    assert!(
        before > 0 && total > before,
        "the old replica inserted before ({before}) and after ({total}) the upgrade"
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM traces")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored as u64, 20_000 + total);
    // Migration 5 too: each grouping of the daily rollups, with the grouped deltas not
    // folded yet, counts every event once (one statement, so one snapshot).
    let per_grouping: (i64, i64, i64) = sqlx::query_as(
        "WITH d AS (SELECT coalesce(sum(count), 0)::int8 AS n FROM trace_rollup_grouped_deltas)
         SELECT (SELECT coalesce(sum(count), 0)::int8 FROM trace_rollups_day_grouped WHERE model = '' AND service = '') + d.n,
                (SELECT coalesce(sum(count), 0)::int8 FROM trace_rollups_day_grouped WHERE model <> '' AND service = '') + d.n,
                (SELECT coalesce(sum(count), 0)::int8 FROM trace_rollups_day_grouped WHERE model = '' AND service <> '') + d.n
         FROM d",
    )
    .fetch_one(&pool)
    .await
    .expect("grouped counts");
    assert_eq!(per_grouping, (stored, stored, stored));
    let worst = check_all(&store, &["1h", "90d"], 2 * stored as u64).await;
    eprintln!(
        "upgrade: {stored} events ({total} inserted by the previous version during it), largest relative percentile error {worst:.6}"
    );
    // After a rollback from a later version, this binary starts on a database holding a
    // migration it does not know.
    let mut later: Vec<_> = migrator().iter().cloned().collect();
    later.push(sqlx::migrate::Migration::new(
        99,
        "a later version's".into(),
        sqlx::migrate::MigrationType::Simple,
        sqlx::SqlStr::from_static("SELECT 1"),
        false,
    ));
    sqlx::migrate::Migrator::with_migrations(later)
        .run(&pool)
        .await
        .expect("a later version migrates");
    PgStore::connect(db.url.parse().expect("url"), PoolSizes { max: 2, min: 0 })
        .await
        .expect("this version still starts")
        .close()
        .await;
    store.close().await;
    pool.close().await;
    db.drop_db().await;
}

/// Inserts `n` events through SQL (the trigger sees them as it sees the API's), one every
/// `step_secs` back from now, over `pairs` model/service pairs, ids prefixed `prefix`.
async fn insert_spread(pool: &PgPool, prefix: &str, n: i32, step_secs: i32, pairs: i32) {
    sqlx::query(
        "INSERT INTO traces (trace_id, ts, service, model, latency_ms, prompt_tokens, completion_tokens, cost_usd, status)
         SELECT $1 || g, now() - g * $3 * interval '1 second', 's' || (g % $4), 'm' || (g % $4 % 3),
                exp(2 + (g * 7919 % 1000) / 200.0), g % 500, g % 300, (g % 9) / 1000.0,
                CASE WHEN g % 20 = 0 THEN 'error' ELSE 'ok' END
         FROM generate_series(1, $2) g",
    )
    .bind(prefix)
    .bind(n)
    .bind(step_secs)
    .bind(pairs)
    .execute(pool)
    .await
    .expect("events inserted");
}

/// Issue 24, bug 1: long windows merge hourly and daily rollups (a few rows per pair and
/// day) instead of one row per pair and minute, with the same exact counts and the same
/// percentile bound, whether the events are folded or still deltas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_24_long_windows_read_hourly_and_daily_rollups() {
    let Some(admin) = require_env("TEST_DATABASE_URL") else {
        return;
    };
    let db = TestDb::create(&admin).await;
    let store = connect(&db).await;
    // Ten days of events for 6 pairs, one every 7 minutes and 3 seconds; half folded.
    insert_spread(store.pool(), "a", 1_000, 2 * 423, 6).await;
    fold_everything(&store).await;
    insert_spread(store.pool(), "b", 1_000, 2 * 423 + 1, 6).await;
    let windows = ["2h", "36h", "3d", "90d"];
    let worst = check_all(&store, &windows, 4 * 2_000).await;
    fold_everything(&store).await;
    let worst = worst.max(check_all(&store, &windows, 4 * 2_000).await);
    eprintln!("coarse rollups: largest relative percentile error {worst:.6}");
    for (table, unit) in [("trace_rollups_hour", "hour"), ("trace_rollups_day", "day")] {
        let (rows, keys, events): (i64, i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT (SELECT count(*) FROM {table}),
                    (SELECT count(DISTINCT (date_trunc('{unit}', ts AT TIME ZONE 'UTC'), model, service)) FROM traces),
                    (SELECT sum(count)::int8 FROM {table})"
        )))
        .fetch_one(store.pool())
        .await
        .expect("level rows");
        assert_eq!(
            (rows, events),
            (keys, 2_000),
            "{table}: one row per {unit} and pair"
        );
    }
    store.close().await;
    db.drop_db().await;
}

/// Sketches of the hourly and daily rollups: rows, rows still in the legacy encoding, bytes.
async fn coarse_sketches(pool: &PgPool) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE substr(sketch, 1, 1) <> '\x01'::bytea),
                coalesce(sum(octet_length(sketch)), 0)::int8
         FROM (SELECT sketch FROM trace_rollups_day UNION ALL SELECT sketch FROM trace_rollups_hour) t",
    )
    .fetch_one(pool)
    .await
    .expect("coarse sketches")
}

/// Issue 24, bug 1: the hourly and daily rollups that migration 3 backfilled (SQL writes
/// 12-byte pairs) stay readable, and the service re-encodes them compactly, under the fold
/// lock, in batches bounded in rows and bytes; the answers are the same before and after,
/// and the sketches take at most a quarter of the bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_24_legacy_sketches_are_reencoded_compactly_in_bounded_batches() {
    let Some(admin) = require_env("TEST_DATABASE_URL") else {
        return;
    };
    let db = TestDb::create(&admin).await;
    let store = connect(&db).await;
    insert_spread(store.pool(), "a", 3_000, 173, 4).await;
    fold_everything(&store).await;
    // Another session holds the fold lock: the store's own loop neither folds nor
    // re-encodes meanwhile.
    let other = PgPool::connect(&db.url).await.expect("other session");
    let mut lock = other.acquire().await.expect("connection");
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(FOLD_LOCK)
        .execute(&mut *lock)
        .await
        .expect("fold lock");
    let mut tx = store.pool().begin().await.expect("begin");
    sqlx::raw_sql(include_str!("../migrations/0003_coarse_rollups.sql"))
        .execute(&mut *tx)
        .await
        .expect("coarse rollups rebuilt as migration 3 does");
    tx.commit().await.expect("commit");
    let (rows, legacy, legacy_bytes) = coarse_sketches(store.pool()).await;
    assert!(rows > 100 && legacy == rows, "{legacy} legacy of {rows}");
    let indexed: bool = sqlx::query_scalar(
        "SELECT to_regclass('trace_rollups_day_legacy_sketch') IS NOT NULL
            AND to_regclass('trace_rollups_hour_legacy_sketch') IS NOT NULL",
    )
    .fetch_one(store.pool())
    .await
    .expect("indexes");
    assert!(indexed, "migration 4 indexes the legacy sketches");

    let mut queries = Vec::new();
    for window in ["90d", "3d", "20h"] {
        for group in [None, Some("service")] {
            let mut params = vec![("window".to_owned(), window.to_owned())];
            params.extend(group.map(|g| ("group_by".to_owned(), g.to_owned())));
            queries.push(StatsQuery::parse(&params, Utc::now()).expect("query"));
        }
    }
    // Costs are float sums, in whatever order the rows come: compared by `check_all`.
    let answers = async |store: &PgStore| {
        let mut all = Vec::new();
        for q in &queries {
            let mut s = store.stats(q).await.expect("stats");
            for g in s.groups.iter_mut().chain([&mut s.total]) {
                g.cost_usd = 0.0;
            }
            all.push(s);
        }
        all
    };
    let before = answers(&store).await;
    check_all(&store, &["90d", "3d"], 3 * 4_000).await;
    assert_eq!(
        store.reencode_legacy(10, 1 << 20).await.expect("re-encode"),
        0,
        "nothing re-encoded while another session holds the fold lock"
    );
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(FOLD_LOCK)
        .execute(&mut *lock)
        .await
        .expect("unlock");
    drop(lock);

    // Three tables: the grouped daily rollups (migration 5), the daily and hourly ones.
    let one_each = store.reencode_legacy(100, 1).await.expect("re-encode");
    assert!(
        one_each <= 3,
        "{one_each} rows: one per table within 1 byte"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let n = store.reencode_legacy(3, 1 << 20).await.expect("re-encode");
        assert!(n <= 9, "{n} rows: at most 3 per table");
        if coarse_sketches(store.pool()).await.1 == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "legacy sketches left");
    }
    let (rows_after, _, compact_bytes) = coarse_sketches(store.pool()).await;
    assert_eq!(rows_after, rows);
    assert!(
        compact_bytes * 4 <= legacy_bytes,
        "{compact_bytes} bytes compact vs {legacy_bytes} legacy"
    );
    assert_eq!(answers(&store).await, before);
    check_all(&store, &["90d", "3d"], 3 * 4_000).await;
    other.close().await;
    store.close().await;
    db.drop_db().await;
}

/// Issue 24: a replica frozen in the middle of a fold (its transaction holding the fold
/// lock) loses its session after the idle bound, so another replica folds the deltas instead
/// of leaving them to pile up behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_24_a_frozen_fold_is_cut_and_another_replica_folds() {
    let Some(admin) = require_env("TEST_DATABASE_URL") else {
        return;
    };
    let db = TestDb::create(&admin).await;
    let store = connect(&db).await;
    fold_everything(&store).await;
    // The frozen replica: its fold transaction began, took the lock, and then nothing.
    let frozen = PgPool::connect(&db.url).await.expect("connect");
    let mut tx = frozen.begin().await.unwrap();
    sqlx::raw_sql(keel_workload::store::postgres::FOLD_TRANSACTION_BOUNDS)
        .execute(&mut *tx)
        .await
        .unwrap();
    // The store's own fold loop may hold the lock for a moment: try until it is free.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(keel_workload::store::postgres::FOLD_LOCK)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        if locked {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the fold lock stayed taken for 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    insert_spread(store.pool(), "f", 100, 60, 2).await;
    assert_eq!(
        store.fold().await.expect("fold"),
        0,
        "the frozen replica holds the lock"
    );
    // This replica's fold loop (every second), or this call, folds once the lock is free.
    let start = std::time::Instant::now();
    let left = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM trace_rollup_deltas")
            .fetch_one(store.pool())
            .await
            .unwrap()
    };
    while left().await > 0 && start.elapsed() < std::time::Duration::from_secs(20) {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        store.fold().await.expect("fold");
    }
    assert_eq!(
        left().await,
        0,
        "still not folded after {:?}",
        start.elapsed()
    );
    assert!(
        start.elapsed() < std::time::Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    drop(tx);
    frozen.close().await;
    store.close().await;
    db.drop_db().await;
}

/// Issue 19, point 23: retention deletes raw events and rollups (every level, and deltas)
/// older than the cutoff, in batches of bounded size, and keeps the rest exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_19_retention_deletes_old_events_and_rollups_in_batches() {
    let Some(admin) = require_env("TEST_DATABASE_URL") else {
        return;
    };
    let db = TestDb::create(&admin).await;
    let store = connect(&db).await;
    // 400 events over 40 days (one every 2.4 h), 4 pairs: 300 of them older than 10 days.
    insert_spread(store.pool(), "old", 400, 8640, 4).await;
    fold_everything(&store).await;
    insert_spread(store.pool(), "new", 20, 60, 4).await; // left as deltas
    let cutoff = Utc::now() - chrono::Duration::days(10);
    let count = |sql: &'static str| {
        let pool = store.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(cutoff)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let kept = count("SELECT count(*) FROM traces WHERE ts >= $1").await;
    let purged = store.purge_before(cutoff, 7).await.expect("purge");
    assert_eq!(purged.events, 400 + 20 - kept as u64);
    assert!(purged.batches >= purged.events.div_ceil(7), "{purged:?}");
    assert_eq!(count("SELECT count(*) FROM traces WHERE ts < $1").await, 0);
    for sql in [
        "SELECT count(*) FROM trace_rollups WHERE minute < date_trunc('minute', $1::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
        "SELECT count(*) FROM trace_rollups_hour WHERE minute < date_trunc('hour', $1::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
        "SELECT count(*) FROM trace_rollups_day WHERE minute < date_trunc('day', $1::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
        "SELECT count(*) FROM trace_rollups_day_grouped WHERE minute < date_trunc('day', $1::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
    ] {
        assert_eq!(count(sql).await, 0, "{sql}");
    }
    assert!(purged.rollups > 0);
    // What is kept is still counted exactly: the 10-day window holds every kept event.
    let q = StatsQuery::parse(&[("window".into(), "9d".into())], Utc::now()).unwrap();
    let stats = store.stats(&q).await.expect("stats");
    let exact: i64 = sqlx::query_scalar("SELECT count(*) FROM traces WHERE ts >= $1 AND ts < $2")
        .bind(stats.from)
        .bind(stats.to)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(stats.total.count, exact as u64);
    // Nothing left to purge.
    assert_eq!(
        store.purge_before(cutoff, 7).await.expect("purge").events,
        0
    );
    store.close().await;
    db.drop_db().await;
}

/// Folds until no delta is left. `fold` answers 0 both when nothing is left and when the
/// store's own fold loop holds the lock for a moment, so the deltas table is what decides.
/// Folds until the minute rollups hold at least `events`: the store's own fold loop may hold
/// the fold lock when the test folds (the test's fold then does nothing).
async fn fold_at_least(store: &PgStore, events: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        store.fold().await.expect("fold");
        let folded: i64 =
            sqlx::query_scalar("SELECT coalesce(sum(count), 0)::int8 FROM trace_rollups")
                .fetch_one(store.pool())
                .await
                .expect("rollups");
        if folded >= events {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{folded} events folded after 10 s, expected {events}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn fold_everything(store: &PgStore) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        store.fold().await.expect("fold");
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM trace_rollup_deltas")
            .fetch_one(store.pool())
            .await
            .expect("deltas");
        if left == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{left} deltas still unfolded after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The store of `db`, migrated, with a small pool (every PostgreSQL test here uses one).
async fn connect(db: &TestDb) -> PgStore {
    PgStore::connect(db.url.parse().expect("url"), PoolSizes { max: 4, min: 1 })
        .await
        .expect("connect + migrate")
}

/// The figures of one rollup row, or of several merged.
#[derive(Debug, Default)]
struct Merged {
    count: i64,
    errors: i64,
    tokens: (i64, i64),
    cost_usd: f64,
    latency: Sketch,
}

/// The rows of `table` merged per (day, model or '', service or ''), keeping the names that
/// `keep` says ("both", "model", "service" or "neither").
async fn merged_days(
    pool: &PgPool,
    table: &str,
    keep: &str,
) -> BTreeMap<(DateTime<Utc>, String, String), Merged> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT minute, model, service, count, errors, prompt_tokens, completion_tokens, cost_usd,
                latency_min, latency_max, sketch FROM {table} ORDER BY minute, model, service"
    )))
    .fetch_all(pool)
    .await
    .expect("rollup rows");
    let mut merged: BTreeMap<_, Merged> = BTreeMap::new();
    for row in rows {
        let name = |column: &str, kept: bool| if kept { row.get(column) } else { String::new() };
        let key = (
            row.get("minute"),
            name("model", keep == "both" || keep == "model"),
            name("service", keep == "both" || keep == "service"),
        );
        let m = merged.entry(key).or_default();
        m.count += row.get::<i64, _>("count");
        m.errors += row.get::<i64, _>("errors");
        m.tokens.0 += row.get::<i64, _>("prompt_tokens");
        m.tokens.1 += row.get::<i64, _>("completion_tokens");
        m.cost_usd += row.get::<f64, _>("cost_usd");
        m.latency
            .merge_encoded(
                row.get("sketch"),
                row.get("latency_min"),
                row.get("latency_max"),
            )
            .expect("a well-formed sketch");
    }
    merged
}

/// Asserts that the grouped daily rollups hold, for each grouping, the merge of the daily
/// rollups per pair: counts, sums and sketches (costs within float rounding).
async fn assert_grouped_days_merge_the_daily_ones(pool: &PgPool) {
    let grouped = merged_days(pool, "trace_rollups_day_grouped", "both").await;
    let mut expected = BTreeMap::new();
    for keep in ["neither", "model", "service"] {
        expected.extend(merged_days(pool, "trace_rollups_day", keep).await);
    }
    assert!(expected.len() > 10, "{} grouped rows", expected.len());
    assert_eq!(
        grouped.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (key, want) in &expected {
        let got = &grouped[key];
        assert_eq!(
            (got.count, got.errors, got.tokens, &got.latency),
            (want.count, want.errors, want.tokens, &want.latency),
            "{key:?}"
        );
        assert!(
            (got.cost_usd - want.cost_usd).abs() <= 1e-9 * want.cost_usd.abs(),
            "{key:?}: cost {} vs {}",
            got.cost_usd,
            want.cost_usd
        );
    }
}

/// Issue 24, bug 1: daily rollups merged per grouping (migration 5), so a 90-day query reads
/// one row per day and group. Upgrading a database that the previous version filled
/// backfills them from the events; then, with later events folded or still deltas, stats
/// over long windows keep exact counts and the percentile bound, and every grouped row
/// equals the merge of the daily rollups per pair of its day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_24_grouped_daily_rollups_equal_the_merge_of_the_daily_ones() {
    let Some(admin) = require_env("TEST_DATABASE_URL") else {
        return;
    };
    let db = TestDb::create(&admin).await;
    let pool = PgPool::connect(&db.url).await.expect("connect");
    // The previous version: migrations 1 to 4, and events over five days through its
    // trigger (no fold running).
    let previous =
        sqlx::migrate::Migrator::with_migrations(migrator().iter().take(4).cloned().collect());
    previous.run(&pool).await.expect("previous migrations");
    insert_spread(&pool, "old", 1_500, 281, 8).await;
    let store = connect(&db).await;
    let backfilled: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(count), 0)::int8 FROM trace_rollups_day_grouped")
            .fetch_one(&pool)
            .await
            .expect("grouped rows");
    assert_eq!(backfilled, 3 * 1_500, "each event once per grouping");
    // Later events through this version's trigger: half folded, half still deltas.
    insert_spread(&pool, "new", 1_000, 433, 8).await;
    fold_everything(&store).await;
    insert_spread(&pool, "later", 1_000, 431, 8).await;
    let windows = ["36h", "3d", "90d"];
    let worst = check_all(&store, &windows, 2 * 3_500).await;
    fold_everything(&store).await;
    let worst = worst.max(check_all(&store, &windows, 2 * 3_500).await);
    eprintln!("grouped daily rollups: largest relative percentile error {worst:.6}");
    assert_grouped_days_merge_the_daily_ones(&pool).await;
    store.close().await;
    pool.close().await;
    db.drop_db().await;
}

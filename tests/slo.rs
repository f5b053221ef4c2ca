//! Typed SLOs as rendered: every PromQL expression keel writes (rules and canary analysis)
//! parses, alerts read only the series their own rules record, and the ECS alarms keep
//! CloudWatch's limits.

use crate::common;

use std::collections::BTreeSet;

use serde_json::Value;

/// Every rule of every rendered `PrometheusRule`, as (env/stack, group, rule).
fn rules() -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for o in common::outputs() {
        for (path, body) in &o.files {
            if !path.starts_with("k8s") || !body.contains("kind: PrometheusRule") {
                continue;
            }
            let doc: Value = serde_saphyr::from_str(body).expect("rendered YAML parses");
            assert_eq!(doc["apiVersion"], "monitoring.coreos.com/v1");
            for g in doc["spec"]["groups"].as_array().expect("groups") {
                for r in g["rules"].as_array().expect("rules") {
                    out.push((
                        format!("{}/{}", o.env, o.stack),
                        g["name"].as_str().expect("group name").to_owned(),
                        r.clone(),
                    ));
                }
            }
        }
    }
    out
}

/// Every Prometheus query of every rendered Argo Rollouts `AnalysisTemplate`, as
/// (env/stack, metric name, query).
fn analysis_queries() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for o in common::outputs() {
        for (path, body) in &o.files {
            if !path.starts_with("k8s") || !body.contains("kind: AnalysisTemplate") {
                continue;
            }
            let doc: Value = serde_saphyr::from_str(body).expect("rendered YAML parses");
            for m in doc["spec"]["metrics"].as_array().expect("metrics") {
                if let Some(q) = m["provider"]["prometheus"]["query"].as_str() {
                    out.push((
                        format!("{}/{}", o.env, o.stack),
                        m["name"].as_str().unwrap_or_default().to_owned(),
                        q.to_owned(),
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn every_promql_expression_keel_writes_parses() {
    let mut per_stack = std::collections::BTreeMap::<String, usize>::new();
    let rules = rules();
    for (at, group, rule) in &rules {
        let expr = rule["expr"].as_str().expect("expr is a string");
        if let Err(e) = promql_parser::parser::parse(expr) {
            panic!("{at} {group}: {expr}\n{e}");
        }
        *per_stack.entry(at.clone()).or_default() += 1;
    }
    let queries = analysis_queries();
    for (at, metric, query) in &queries {
        if let Err(e) = promql_parser::parser::parse(query) {
            panic!("{at} analysis {metric}: {query}\n{e}");
        }
    }
    // analytics-api: 2 objectives x (9 records + 4 alerts); aegistickets: 3 x 13 + 6 seed
    // rules + 3 database saturation rules; in each of the three environments.
    for env in ["dev", "staging", "prod"] {
        assert_eq!(per_stack[&format!("{env}/analytics-api")], 2 * 13, "{env}");
        assert_eq!(
            per_stack[&format!("{env}/aegistickets")],
            3 * 13 + 6 + 3,
            "{env}"
        );
    }
    assert!(
        !queries.is_empty(),
        "the canaries' analysis queries were found"
    );
    eprintln!(
        "{} PrometheusRule expressions and {} analysis queries parsed",
        rules.len(),
        queries.len()
    );
}

#[test]
fn alerts_read_series_their_own_rules_record_and_carry_severity_and_budget() {
    let rules = rules();
    let recorded: BTreeSet<(String, String)> = rules
        .iter()
        .filter_map(|(at, _, r)| r["record"].as_str().map(|n| (at.clone(), n.to_owned())))
        .collect();
    let mut alerts = 0;
    for (at, group, r) in &rules {
        let Some(alert) = r["alert"].as_str() else {
            continue;
        };
        // Burn-rate alerts only (they carry their objective's name); the database
        // saturation alert is tested in tests/issue19_data.rs.
        if r["labels"]["slo"].is_null() {
            continue;
        }
        alerts += 1;
        let expr = r["expr"].as_str().unwrap_or_default();
        let ast = promql_parser::parser::parse(expr).expect("parses");
        let mut names = Vec::new();
        collect_names(&ast, &mut names);
        assert_eq!(names.len(), 2, "{at} {alert}: two windows in {expr}");
        for n in names {
            assert!(
                recorded.contains(&(at.clone(), n.clone())),
                "{at} {group} {alert} reads {n}, which no rule of the stack records"
            );
        }
        let severity = r["labels"]["severity"].as_str().unwrap_or_default();
        assert!(["page", "ticket"].contains(&severity), "{at} {alert}");
        let summary = r["annotations"]["summary"].as_str().unwrap_or_default();
        assert!(
            summary.contains("of the 30-day error budget in"),
            "{at} {alert}: {summary}"
        );
    }
    assert!(alerts >= 3 * 4 * 5, "{alerts} alerts");
}

fn collect_names(e: &promql_parser::parser::Expr, out: &mut Vec<String>) {
    use promql_parser::parser::Expr;
    match e {
        Expr::Binary(b) => {
            collect_names(&b.lhs, out);
            collect_names(&b.rhs, out);
        }
        Expr::Paren(p) => collect_names(&p.expr, out),
        Expr::VectorSelector(v) => out.extend(v.name.clone()),
        _ => {}
    }
}

#[test]
fn ecs_burn_rate_alarms_are_composites_of_windows_within_cloudwatch_limits() {
    for env in ["dev", "staging", "prod"] {
        let o = common::output(env, "langgraph-platform");
        let composites = common::of_type(&o, "aws_cloudwatch_composite_alarm");
        assert_eq!(composites.len(), 4, "{env}");
        for c in &composites {
            let rule = c["alarm_rule"].as_str().expect("rule");
            assert_eq!(rule.matches("ALARM(").count(), 2, "{rule}");
            assert!(rule.contains(" AND "), "{rule}");
            assert_eq!(c["alarm_actions"][0], "${aws_sns_topic.alarms.arn}");
        }
        let windows: Vec<Value> = common::of_type(&o, "aws_cloudwatch_metric_alarm")
            .into_iter()
            .filter(|a| {
                a["alarm_name"]
                    .as_str()
                    .is_some_and(|n| n.contains("-slo-"))
            })
            .collect();
        assert_eq!(windows.len(), 8, "{env}");
        for a in &windows {
            assert!(a.get("alarm_actions").is_none(), "only composites notify");
            let q = a["metric_query"].as_array().expect("metric math");
            let period = q[0]["metric"][0]["period"].as_u64().expect("period");
            let total = period * a["evaluation_periods"].as_u64().expect("periods");
            let limit = if period < 3_600 { 86_400 } else { 604_800 };
            assert!(period % 60 == 0 && total <= limit, "{a}");
            assert!(
                q.iter().all(|m| m.get("metric").is_none()
                    || m["metric"][0]["period"].as_u64() == Some(period))
            );
        }
    }
}

#[test]
fn one_objective_gives_the_same_thresholds_on_both_platforms() {
    // 99.9% over 30 days on both langgraph-platform (ECS) and analytics-api (Kubernetes):
    // factor x (1 - objective) for 14.4, 6, 3 and 1.
    let expected = [0.0144, 0.006, 0.003, 0.001];
    let o = common::output("prod", "langgraph-platform");
    let mut alarms: Vec<f64> = common::of_type(&o, "aws_cloudwatch_metric_alarm")
        .iter()
        .filter(|a| {
            a["alarm_name"]
                .as_str()
                .is_some_and(|n| n.contains("-slo-"))
        })
        .map(|a| a["threshold"].as_f64().expect("threshold"))
        .collect();
    assert_eq!(alarms.len(), 8, "two windows per alert: {alarms:?}");
    alarms.sort_by(|a, b| b.total_cmp(a));
    alarms.dedup();
    assert_eq!(alarms, expected);
    let rules = rules();
    for (factor, threshold) in ["14.4", "6", "3", "1"].iter().zip(expected) {
        let written = format!("> ({factor} * 0.001)");
        assert!(
            rules.iter().any(|(at, _, r)| at == "prod/analytics-api"
                && r["labels"]["slo"] == "availability"
                && r["expr"].as_str().is_some_and(|e| e.contains(&written))),
            "no analytics-api alert compares with {written} ({threshold})"
        );
    }
}

//! PromQL of a submission's rules and panels, as the live probe needs it: its vector
//! selectors, the same expression with the submission's namespaces rewritten to the
//! probe's, and Grafana template variables filled. Parsed with `promql-parser`, never
//! edited as text: a selector is what the parser says it is.

use super::checks::{GRAFANA_RANGE_VARIABLE, GRAFANA_VARIABLE};
use promql_parser::label::{MatchOp, Matcher, Matchers};
use promql_parser::parser::{self, Expr, VectorSelector};
use std::collections::BTreeSet;

/// Stands for a Grafana template variable until the expression is parsed: a valid
/// label value and identifier, which no real label value is.
const VARIABLE: &str = "__grafana_variable__";

/// Expressions longer than this are not parsed (a rule is a few hundred characters).
const MAX_EXPR: usize = 20_000;

/// One vector selector of an expression.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Selector {
    /// As the submission wrote it (offset and `@` dropped).
    pub written: String,
    /// As the probe asks Prometheus for it: namespaces rewritten, variables filled.
    pub asked: String,
    /// Its metric name, when it names one.
    pub metric: Option<String>,
}

/// An expression rewritten for the probe's namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Rewritten {
    /// The whole expression, to load (a rule) or to query (a panel).
    pub expr: String,
    pub selectors: Vec<Selector>,
    /// Each matcher rewritten, once: `namespace="ml-platform" → namespace="ac-…"`.
    pub rewrites: BTreeSet<String>,
}

/// Parses `expr` and rewrites every `namespace` matcher that names one of `from` (the
/// submission's namespaces; equal, or a regex that matches one of them) or a Grafana
/// variable to `namespace="<to>"`. A matcher on another label whose value is a Grafana
/// variable becomes `=~".+"`: the panel is judged for any real value of that label.
/// Negative matchers are left alone. Errors: the parser's first line.
pub fn rewrite(expr: &str, from: &BTreeSet<String>, to: &str) -> Result<Rewritten, String> {
    if expr.len() > MAX_EXPR {
        return Err(format!("expression longer than {MAX_EXPR} characters"));
    }
    let mut ast = parser::parse(expr).map_err(first_line)?;
    let mut selectors = Vec::new();
    let mut rewrites = BTreeSet::new();
    visit_mut(&mut ast, &mut |selector| {
        let written = plain(selector).to_string();
        for matcher in all_matchers(&mut selector.matchers) {
            if let Some(rewrite) = rewrite_matcher(matcher, from, to) {
                rewrites.insert(rewrite);
            }
        }
        selectors.push(Selector {
            written,
            asked: plain(selector).to_string(),
            metric: metric_name(selector),
        });
    });
    selectors.sort();
    selectors.dedup();
    Ok(Rewritten {
        expr: ast.to_string(),
        selectors,
        rewrites,
    })
}

/// Fills a panel query's Grafana template variables before parsing: range variables
/// (`$__rate_interval`, `[$interval]`) become `5m`, every other variable a placeholder
/// that [`rewrite`] turns into the probe's namespace (for `namespace`) or any value.
pub fn fill_grafana_variables(expr: &str) -> String {
    let ranged = GRAFANA_RANGE_VARIABLE.replace_all(expr, |c: &regex::Captures<'_>| {
        if c[0].starts_with('[') {
            "[5m]".to_string()
        } else {
            "5m".to_string()
        }
    });
    GRAFANA_VARIABLE.replace_all(&ranged, VARIABLE).to_string()
}

/// The metric names an expression selects (for the recording rules a rule builds on).
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    if expr.len() > MAX_EXPR {
        return names;
    }
    if let Ok(mut ast) = parser::parse(expr) {
        visit_mut(&mut ast, &mut |selector| {
            names.extend(metric_name(selector));
        });
    }
    names
}

fn first_line(error: String) -> String {
    error
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

/// The selector without offset and `@`: what `/api/v1/series` takes.
fn plain(selector: &VectorSelector) -> VectorSelector {
    VectorSelector {
        offset: None,
        at: None,
        ..selector.clone()
    }
}

fn metric_name(selector: &VectorSelector) -> Option<String> {
    selector.name.clone().or_else(|| {
        selector
            .matchers
            .matchers
            .iter()
            .find(|m| m.name == "__name__" && m.op == MatchOp::Equal)
            .map(|m| m.value.clone())
    })
}

fn all_matchers(matchers: &mut Matchers) -> impl Iterator<Item = &mut Matcher> {
    matchers
        .matchers
        .iter_mut()
        .chain(matchers.or_matchers.iter_mut().flatten())
}

/// Rewrites one matcher (see [`rewrite`]); returns what it did, if anything.
fn rewrite_matcher(matcher: &mut Matcher, from: &BTreeSet<String>, to: &str) -> Option<String> {
    let before = matcher.to_string();
    let variable = matcher.value.contains(VARIABLE);
    if matcher.name == "namespace" {
        let names_one = match &matcher.op {
            MatchOp::Equal => variable || from.contains(&matcher.value),
            MatchOp::Re(_) => {
                variable
                    || regex::Regex::new(&format!("^(?:{})$", matcher.value))
                        .is_ok_and(|re| from.iter().any(|n| re.is_match(n)))
            }
            MatchOp::NotEqual | MatchOp::NotRe(_) => false,
        };
        if !names_one {
            return None;
        }
        *matcher = Matcher::new(MatchOp::Equal, "namespace", to);
    } else if variable {
        *matcher = any_value(&matcher.name)?;
    } else {
        return None;
    }
    Some(format!("{before} → {matcher}"))
}

/// `<name>=~".+"`, built by the parser (its regexes are anchored its own way).
fn any_value(name: &str) -> Option<Matcher> {
    let Ok(Expr::VectorSelector(selector)) = parser::parse(&format!("x{{{name}=~\".+\"}}")) else {
        return None;
    };
    selector
        .matchers
        .matchers
        .into_iter()
        .find(|m| m.name == name)
}

/// Calls `f` on every vector selector of `expr`, those of range selectors included.
fn visit_mut(expr: &mut Expr, f: &mut dyn FnMut(&mut VectorSelector)) {
    match expr {
        Expr::Aggregate(a) => {
            visit_mut(&mut a.expr, f);
            if let Some(param) = &mut a.param {
                visit_mut(param, f);
            }
        }
        Expr::Unary(u) => visit_mut(&mut u.expr, f),
        Expr::Binary(b) => {
            visit_mut(&mut b.lhs, f);
            visit_mut(&mut b.rhs, f);
        }
        Expr::Paren(p) => visit_mut(&mut p.expr, f),
        Expr::Subquery(s) => visit_mut(&mut s.expr, f),
        Expr::VectorSelector(v) => f(v),
        Expr::MatrixSelector(m) => f(&mut m.vs),
        Expr::Call(c) => {
            for arg in &mut c.args.args {
                visit_mut(arg, f);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn ns() -> BTreeSet<String> {
        ["ml-platform".to_string(), "ml-training".to_string()].into()
    }

    #[test]
    fn selectors_of_a_rule_are_found_and_namespaces_rewritten() {
        let expr = r#"kube_horizontalpodautoscaler_status_current_replicas{namespace="ml-platform"}
            >= on (namespace, horizontalpodautoscaler)
          kube_horizontalpodautoscaler_spec_max_replicas{namespace="ml-platform"}"#;
        let r = rewrite(expr, &ns(), "ac-t-1").unwrap();
        let asked: Vec<&str> = r.selectors.iter().map(|s| s.asked.as_str()).collect();
        assert_eq!(
            asked,
            [
                r#"kube_horizontalpodautoscaler_spec_max_replicas{namespace="ac-t-1"}"#,
                r#"kube_horizontalpodautoscaler_status_current_replicas{namespace="ac-t-1"}"#,
            ]
        );
        assert_eq!(
            r.selectors[0].written,
            r#"kube_horizontalpodautoscaler_spec_max_replicas{namespace="ml-platform"}"#
        );
        assert!(!r.expr.contains("ml-platform"), "{}", r.expr);
        assert!(
            r.expr.contains("on (namespace, horizontalpodautoscaler)"),
            "{}",
            r.expr
        );
        assert!(parser::parse(&r.expr).is_ok());
        assert_eq!(
            r.rewrites.iter().collect::<Vec<_>>(),
            [r#"namespace="ml-platform" → namespace="ac-t-1""#]
        );
    }

    #[rstest]
    #[case(
        r#"histogram_quantile(0.95, sum by (le) (rate(inference_latency_seconds_bucket{namespace="ml-platform", app="x"}[5m] offset 1m)))"#,
        &[r#"inference_latency_seconds_bucket{app="x",namespace="ac"}"#]
    )]
    #[case(r#"up{namespace=~"ml-.*"}"#, &[r#"up{namespace="ac"}"#])]
    #[case(r#"up{namespace!="ml-platform"}"#, &[r#"up{namespace!="ml-platform"}"#])]
    #[case(r#"up{namespace="kube-system"}"#, &[r#"up{namespace="kube-system"}"#])]
    #[case("sum(rate(keda_scaler_errors_total[5m])) > 0", &["keda_scaler_errors_total"])]
    #[case(r#"{__name__="up", namespace="ml-training"}"#, &[r#"{__name__="up",namespace="ac"}"#])]
    #[case("max_over_time(up[10m:1m]) - scalar(vector(1))", &["up"])]
    fn rewrites_selectors(#[case] expr: &str, #[case] asked: &[&str]) {
        let r = rewrite(expr, &ns(), "ac").unwrap();
        let got: Vec<String> = r
            .selectors
            .iter()
            .map(|s| s.asked.replace(", ", ","))
            .collect();
        assert_eq!(got, asked, "{expr}");
        assert!(parser::parse(&r.expr).is_ok(), "{}", r.expr);
    }

    #[test]
    fn grafana_variables_become_the_namespace_or_any_value() {
        let filled = fill_grafana_variables(
            r#"sum by (pod) (rate(http_requests_total{namespace="$namespace", app=~"${app}"}[$__rate_interval]))"#,
        );
        let r = rewrite(&filled, &ns(), "ac").unwrap();
        assert_eq!(
            r.selectors[0].asked.replace(", ", ","),
            r#"http_requests_total{app=~".+",namespace="ac"}"#
        );
        assert!(r.expr.contains("[5m]"), "{}", r.expr);
    }

    #[test]
    fn metric_names_of_an_expression() {
        assert_eq!(
            metric_names("ml:p95 > 0.2 and on() vector(1) and rate(x_total[1m]) > 0"),
            ["ml:p95".to_string(), "x_total".to_string()].into()
        );
        assert!(metric_names("up{").is_empty());
    }

    #[rstest]
    #[case("up{")]
    #[case("")]
    #[case("sum(")]
    #[case("{}")]
    #[case("\u{0}\u{ffff}")]
    #[case("((((((((((((((((((((up))))))))))))))))))))")]
    #[case(r#"up{namespace=~"("}"#)]
    fn hostile_input_is_an_error_or_a_rewrite_never_a_panic(#[case] expr: &str) {
        let _ = rewrite(expr, &ns(), "ac");
        let _ = rewrite(&fill_grafana_variables(expr), &ns(), "ac");
        let _ = metric_names(expr);
    }

    #[test]
    fn an_oversized_expression_is_refused() {
        let expr = "up + ".repeat(10_000) + "up";
        assert!(rewrite(&expr, &ns(), "ac").is_err());
    }
}

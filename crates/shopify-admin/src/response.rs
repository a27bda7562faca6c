//! Classification of raw GraphQL responses into data or a [`ShopifyError`].
//!
//! No network access: [`classify`] is a pure function of (status,
//! `Retry-After` header, body bytes), so every rule is unit-tested on
//! fixtures. The client (`exec.rs`) adds what only it knows — whether the
//! document it sent may be retried and whether a failure leaves the outcome
//! unknown.

use std::time::Duration;

use serde_json::Value;

use super::bucket::{MAX_SINGLE_QUERY_COST, MIN_THROTTLE_WAIT, QueryCost};
use super::error::ShopifyError;

/// Wait used for a throttled response that says neither `Retry-After` nor a
/// usable `throttleStatus`.
pub const DEFAULT_THROTTLE_WAIT: Duration = Duration::from_secs(1);

/// One entry of a GraphQL `errors` array.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphqlError {
    /// `message`.
    pub message: String,
    /// `extensions.code`, when present.
    pub code: Option<String>,
    /// `path`, with indices as strings.
    pub path: Vec<String>,
}

/// A 2xx response with `data`: possibly partial, with `errors` alongside
/// (e.g. one alias of a mutation document failed).
#[derive(Debug, Clone, PartialEq)]
pub struct GraphqlOk {
    /// The `data` object.
    pub data: Value,
    /// Errors reported next to the data.
    pub errors: Vec<GraphqlError>,
}

/// What [`classify`] found: the outcome plus the cost report, which is
/// present on throttled responses too and feeds the bucket either way.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    /// Data or a classified error.
    pub result: Result<GraphqlOk, ShopifyError>,
    /// `extensions.cost`, when the body had one.
    pub cost: Option<QueryCost>,
}

const MAX_MESSAGE: usize = 300;
const MAX_MESSAGES: usize = 5;

fn truncate(s: &str) -> String {
    if s.len() <= MAX_MESSAGE {
        return s.to_owned();
    }
    let mut end = MAX_MESSAGE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Reads `errors` in any of the shapes Shopify uses: a string
/// (`{"errors":"Not Found"}`), an array of `{message, extensions, path}`,
/// or an object of field → messages (REST style).
pub fn parse_errors(errors: &Value) -> Vec<GraphqlError> {
    let plain = |m: String| GraphqlError {
        message: m,
        code: None,
        path: vec![],
    };
    match errors {
        Value::Null => vec![],
        Value::String(s) => vec![plain(s.clone())],
        Value::Array(items) => items
            .iter()
            .map(|e| match e {
                Value::String(s) => plain(s.clone()),
                Value::Object(o) => GraphqlError {
                    message: o
                        .get("message")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .unwrap_or_else(|| e.to_string()),
                    code: o
                        .get("extensions")
                        .and_then(|x| x.get("code"))
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    path: o
                        .get("path")
                        .and_then(Value::as_array)
                        .map(|p| {
                            p.iter()
                                .map(|s| match s {
                                    Value::String(s) => s.clone(),
                                    other => other.to_string(),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                },
                other => plain(other.to_string()),
            })
            .collect(),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| {
                plain(format!(
                    "{k}: {}",
                    v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())
                ))
            })
            .collect(),
        other => vec![plain(other.to_string())],
    }
}

/// Joins error messages for an error string: at most a few, each truncated.
pub fn join_messages(errors: &[GraphqlError]) -> String {
    let mut out: Vec<String> = errors
        .iter()
        .take(MAX_MESSAGES)
        .map(|e| match &e.code {
            Some(c) => format!("{} [{c}]", truncate(&e.message)),
            None => truncate(&e.message),
        })
        .collect();
    if errors.len() > MAX_MESSAGES {
        out.push(format!("and {} more", errors.len() - MAX_MESSAGES));
    }
    out.join("; ")
}

/// Parses a `Retry-After` value in seconds (`"2"`, `"2.0"`); HTTP dates and
/// garbage give `None`.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| super::bucket::ceil_duration(secs).max(MIN_THROTTLE_WAIT))
}

fn throttled(retry_after: Option<&str>, cost: Option<&QueryCost>) -> ShopifyError {
    let wait = retry_after
        .and_then(parse_retry_after)
        .or_else(|| cost.and_then(QueryCost::throttle_wait))
        .unwrap_or(DEFAULT_THROTTLE_WAIT);
    ShopifyError::Throttled { retry_after: wait }
}

fn body_message(v: Option<&Value>, raw: &[u8]) -> String {
    match v.and_then(|v| v.get("errors")) {
        Some(e) => join_messages(&parse_errors(e)),
        None => truncate(String::from_utf8_lossy(raw).trim()),
    }
}

/// Classifies one HTTP response of the GraphQL endpoint.
///
/// Status first (401/402/403/404/423/429/5xx have fixed meanings, 3xx is a
/// protocol error because the client never follows redirects with the token
/// attached), then the body: `errors[].extensions.code` `THROTTLED`,
/// `ACCESS_DENIED`, `SHOP_INACTIVE`, `INTERNAL_SERVER_ERROR` and
/// `MAX_COST_EXCEEDED` map to their classes even under HTTP 200; other
/// errors without `data` are `Protocol`; errors next to `data` are returned
/// with it for the caller to map. Never panics, whatever the bytes.
pub fn classify(status: u16, retry_after: Option<&str>, body: &[u8]) -> Classified {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let cost = parsed.as_ref().and_then(QueryCost::from_response);
    let err = |e| Classified { result: Err(e), cost };
    match status {
        200..=299 => {}
        401 => return err(ShopifyError::Unauthorized),
        402 => return err(ShopifyError::PaymentRequired),
        403 => {
            return err(ShopifyError::Forbidden {
                message: body_message(parsed.as_ref(), body),
            });
        }
        404 => return err(ShopifyError::NotFound),
        423 => return err(ShopifyError::Locked),
        429 => return err(throttled(retry_after, cost.as_ref())),
        500..=599 => {
            return err(ShopifyError::Transient {
                message: format!("HTTP {status}: {}", body_message(parsed.as_ref(), body)),
                outcome_unknown: false,
            });
        }
        300..=399 => {
            return err(ShopifyError::Protocol(format!(
                "unexpected redirect (HTTP {status}); redirects are not followed"
            )));
        }
        _ => {
            return err(ShopifyError::Protocol(format!(
                "HTTP {status}: {}",
                body_message(parsed.as_ref(), body)
            )));
        }
    }
    let Some(Value::Object(mut obj)) = parsed else {
        return err(ShopifyError::Protocol(format!(
            "HTTP {status} with a body that is not a JSON object ({} bytes)",
            body.len()
        )));
    };
    let errors = obj.get("errors").map(parse_errors).unwrap_or_default();
    let has_code = |c: &str| errors.iter().any(|e| e.code.as_deref() == Some(c));
    if has_code("THROTTLED") {
        return err(throttled(retry_after, cost.as_ref()));
    }
    if has_code("ACCESS_DENIED") {
        return err(ShopifyError::Forbidden {
            message: join_messages(&errors),
        });
    }
    if has_code("SHOP_INACTIVE") {
        return err(ShopifyError::Locked);
    }
    if has_code("INTERNAL_SERVER_ERROR") {
        return err(ShopifyError::Transient {
            message: join_messages(&errors),
            outcome_unknown: false,
        });
    }
    if has_code("MAX_COST_EXCEEDED") {
        let requested = cost.and_then(|c| c.requested).unwrap_or(f64::INFINITY);
        let maximum = cost.and_then(|c| c.throttle).map_or(MAX_SINGLE_QUERY_COST, |t| {
            t.maximum_available.min(MAX_SINGLE_QUERY_COST)
        });
        return err(ShopifyError::QueryTooExpensive { requested, maximum });
    }
    match obj.remove("data") {
        Some(data @ Value::Object(_)) => Classified {
            result: Ok(GraphqlOk { data, errors }),
            cost,
        },
        _ if !errors.is_empty() => err(ShopifyError::Protocol(join_messages(&errors))),
        _ => err(ShopifyError::Protocol(
            "response has neither data nor errors".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn c(status: u16, body: Value) -> Result<GraphqlOk, ShopifyError> {
        classify(status, None, body.to_string().as_bytes()).result
    }

    #[test]
    fn statuses() {
        let revoked =
            json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"});
        assert_eq!(c(401, revoked), Err(ShopifyError::Unauthorized));
        assert_eq!(
            c(402, json!({"errors": "Unavailable Shop"})),
            Err(ShopifyError::PaymentRequired)
        );
        let e = c(
            403,
            json!({"errors": "This action requires merchant approval for read_orders scope."}),
        )
        .unwrap_err();
        assert!(
            matches!(&e, ShopifyError::Forbidden { message } if message.contains("read_orders")),
            "{e:?}"
        );
        assert_eq!(
            c(404, json!({"errors": "Not Found"})),
            Err(ShopifyError::NotFound)
        );
        assert_eq!(c(423, json!({})), Err(ShopifyError::Locked));
        let e = c(503, json!({"errors": "unavailable"})).unwrap_err();
        assert!(
            matches!(&e, ShopifyError::Transient { message, outcome_unknown: false } if message.contains("503")),
            "{e:?}"
        );
        assert!(matches!(
            classify(502, None, b"<html>bad gateway</html>").result,
            Err(ShopifyError::Transient { .. })
        ));
        assert!(
            matches!(classify(301, None, b"").result, Err(ShopifyError::Protocol(m)) if m.contains("redirect"))
        );
        assert!(
            matches!(c(400, json!({"errors": "bad"})), Err(ShopifyError::Protocol(m)) if m.contains("400") && m.contains("bad"))
        );
    }

    #[test]
    fn http_429_uses_retry_after_then_cost_then_default() {
        let r = classify(429, Some("2.0"), b"{}").result;
        assert_eq!(
            r,
            Err(ShopifyError::Throttled {
                retry_after: Duration::from_secs(2)
            })
        );
        let body = json!({"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            "extensions": {"cost": {"requestedQueryCost": 150, "throttleStatus": {"maximumAvailable": 1000, "currentlyAvailable": 50, "restoreRate": 50}}}});
        assert_eq!(
            c(429, body),
            Err(ShopifyError::Throttled {
                retry_after: Duration::from_secs(2)
            })
        );
        assert_eq!(
            classify(429, Some("Wed, 21 Oct 2015 07:28:00 GMT"), b"").result,
            Err(ShopifyError::Throttled {
                retry_after: DEFAULT_THROTTLE_WAIT
            })
        );
    }

    #[test]
    fn throttled_under_200_computes_wait_from_throttle_status() {
        let body = json!({"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": "x"}}],
            "extensions": {"cost": {"requestedQueryCost": 752, "actualQueryCost": null,
            "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 2, "restoreRate": 100.0}}}});
        let cl = classify(200, None, body.to_string().as_bytes());
        assert_eq!(
            cl.result,
            Err(ShopifyError::Throttled {
                retry_after: Duration::from_millis(7500)
            })
        );
        assert_eq!(cl.cost.unwrap().throttle.unwrap().currently_available, 2.0);
    }

    #[test]
    fn graphql_error_codes_under_200() {
        let err = |code: &str| json!({"errors": [{"message": "m", "extensions": {"code": code}}]});
        assert!(matches!(
            c(200, err("ACCESS_DENIED")),
            Err(ShopifyError::Forbidden { .. })
        ));
        assert_eq!(c(200, err("SHOP_INACTIVE")), Err(ShopifyError::Locked));
        assert!(matches!(
            c(200, err("INTERNAL_SERVER_ERROR")),
            Err(ShopifyError::Transient { .. })
        ));
        assert!(matches!(
            c(200, err("MAX_COST_EXCEEDED")),
            Err(ShopifyError::QueryTooExpensive { .. })
        ));
        let e = c(200, json!({"errors": [{"message": "Field 'nope' doesn't exist on type 'Shop'", "locations": [{"line":1,"column":9}]}]})).unwrap_err();
        assert!(
            matches!(&e, ShopifyError::Protocol(m) if m.contains("nope")),
            "{e:?}"
        );
    }

    #[test]
    fn unparseable_and_empty_bodies_are_protocol_errors() {
        assert!(matches!(
            classify(200, None, b"not json").result,
            Err(ShopifyError::Protocol(_))
        ));
        assert!(matches!(
            classify(200, None, b"[1,2]").result,
            Err(ShopifyError::Protocol(_))
        ));
        assert!(matches!(c(200, json!({})), Err(ShopifyError::Protocol(_))));
        assert!(matches!(
            c(200, json!({"data": null})),
            Err(ShopifyError::Protocol(_))
        ));
    }

    #[test]
    fn partial_data_comes_back_with_its_errors() {
        let body = json!({"data": {"c0": {"userErrors": []}, "c1": null},
            "errors": [{"message": "boom", "path": ["c1"]}]});
        let ok = c(200, body).unwrap();
        assert_eq!(ok.errors.len(), 1);
        assert_eq!(ok.errors[0].path, vec!["c1".to_string()]);
        assert!(ok.data.get("c0").is_some());
    }

    #[test]
    fn messages_are_truncated_and_counted() {
        let long = "x".repeat(1000);
        let errs: Vec<GraphqlError> = (0..8)
            .map(|_| GraphqlError {
                message: long.clone(),
                code: None,
                path: vec![],
            })
            .collect();
        let m = join_messages(&errs);
        assert!(m.len() < 2000, "{}", m.len());
        assert!(m.ends_with("and 3 more"));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(status in 100u16..600, body in proptest::collection::vec(any::<u8>(), 0..512), ra in proptest::option::of("[0-9a-z. ]{0,8}")) {
            let cl = classify(status, ra.as_deref(), &body);
            if !(200..300).contains(&status) {
                prop_assert!(cl.result.is_err());
            }
            if let Err(e) = cl.result { let _ = (e.reason(), e.to_string()); }
        }

        #[test]
        fn random_json_never_panics(status in prop_oneof![Just(200u16), Just(429), Just(503)], v in arb_json()) {
            let cl = classify(status, None, v.to_string().as_bytes());
            if let Err(e) = cl.result { let _ = (e.reason(), e.to_string()); }
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or(Value::Null)),
            prop_oneof![
                Just("THROTTLED".to_string()),
                Just("errors".to_string()),
                Just("data".to_string()),
                ".{0,6}"
            ]
            .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            let key = prop_oneof![
                Just("data"),
                Just("errors"),
                Just("extensions"),
                Just("cost"),
                Just("code"),
                Just("message"),
                Just("throttleStatus"),
                Just("requestedQueryCost"),
                Just("currentlyAvailable"),
                Just("restoreRate"),
                Just("path")
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec((key, inner), 0..5).prop_map(|kv| {
                    Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                }),
            ]
        })
    }
}

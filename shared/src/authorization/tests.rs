use serde_json::json;

use super::*;

/// The approval as the call would repeat it (without `type`).
fn call_of(approved: &Value) -> Value {
    let mut call = approved.clone();
    if let Some(o) = call.as_object_mut() {
        o.remove("type");
    }
    call
}

/// A value that differs from `v` in a way no rule accepts.
fn changed(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap_or(0.0) + 1.0),
        Value::String(s) => json!(format!("{s}-x")),
        Value::Bool(b) => json!(!b),
        Value::Array(items) => {
            let mut items = items.clone();
            items.push(json!("x"));
            Value::Array(items)
        }
        other => json!({"changed": other.clone()}),
    }
}

/// Every field of every approval constrains the call: omitted, changed or added fields
/// are refused naming the field; the approval repeated verbatim passes.
fn complete(m: &dyn ActionMatcher, approvals: &[Value]) {
    for approved in approvals {
        let call = call_of(approved);
        assert_eq!(m.check(approved, &call), Ok(()), "{approved}");
        for (name, value) in call.as_object().unwrap() {
            let mut omitted = call.clone();
            omitted.as_object_mut().unwrap().remove(name);
            assert_eq!(
                m.check(approved, &omitted).map_err(|e| e.field),
                Err(name.clone()),
                "omitting {name} from {approved}"
            );
            let mut altered = call.clone();
            altered[name.as_str()] = changed(value);
            assert_eq!(
                m.check(approved, &altered).map_err(|e| e.field),
                Err(name.clone()),
                "changing {name} of {approved}"
            );
        }
        let mut added = call.clone();
        added["unapproved"] = json!(true);
        assert_eq!(
            m.check(approved, &added).map_err(|e| e.field),
            Err("unapproved".to_owned()),
            "adding a field to {approved}"
        );
        let mut retyped = call.clone();
        retyped["type"] = json!("something_else");
        assert!(m.check(approved, &retyped).is_err(), "retyping {approved}");
        assert!(m.check(approved, &json!("call")).is_err());
        assert!(m.check(approved, &json!(null)).is_err());
    }
}

#[test]
fn purchase_order_is_matched_on_every_field() {
    complete(
        &PurchaseOrderMatcher::default(),
        &[
            json!({"type": "purchase_order", "vendor": "Acme", "amount": 1200, "currency": "USD"}),
            json!({"type": "purchase_order", "vendor": "Acme", "amount": 1200, "currency": "USD",
                   "quantity": 3, "ship_to": {"city": "Berlin"}, "items": ["desk", "chair"]}),
            json!({"type": "purchase_order", "vendor": "Acme", "amount": 0.5, "currency": "EUR",
                   "locations": ["https://erp.example/orders"]}),
        ],
    );
}

#[test]
fn purchase_order_allows_less_never_more_or_elsewhere() {
    let approved =
        json!({"type": "purchase_order", "vendor": "Acme", "amount": 1200, "currency": "USD"});
    let m = PurchaseOrderMatcher::default();
    let check = |call: Value| m.check(&approved, &call).map_err(|e| e.field);
    assert_eq!(
        check(json!({"vendor": "Acme", "amount": 1200, "currency": "USD"})),
        Ok(())
    );
    assert_eq!(
        check(json!({"vendor": "Acme", "amount": 99.5, "currency": "USD"})),
        Ok(())
    );
    assert_eq!(
        check(json!({"type": "purchase_order", "vendor": "Acme", "amount": 0, "currency": "USD"})),
        Ok(())
    );
    for (call, field) in [
        (
            json!({"vendor": "Acme", "amount": 1500, "currency": "USD"}),
            "amount",
        ),
        (
            json!({"vendor": "Acme", "amount": -5, "currency": "USD"}),
            "amount",
        ),
        (
            json!({"vendor": "Acme", "amount": "1200", "currency": "USD"}),
            "amount",
        ),
        (
            json!({"vendor": "Evil", "amount": 1, "currency": "USD"}),
            "vendor",
        ),
        (
            json!({"vendor": "Acme", "amount": 1, "currency": "EUR"}),
            "currency",
        ),
        (json!({"vendor": "Acme", "currency": "USD"}), "amount"),
        (json!({"amount": 1, "currency": "USD"}), "vendor"),
        (
            json!({"vendor": "Acme", "amount": 1, "currency": "USD", "quantity": 9}),
            "quantity",
        ),
    ] {
        assert_eq!(check(call.clone()), Err(field.to_owned()), "{call}");
    }
    // A quantity is bounded like an amount when the approval has one.
    let with_quantity = json!({"type": "purchase_order", "vendor": "Acme", "amount": 10,
                               "currency": "USD", "quantity": 3});
    let q = |n: i64| {
        m.check(
            &with_quantity,
            &json!({"vendor": "Acme", "amount": 10, "currency": "USD", "quantity": n}),
        )
        .map_err(|e| e.field)
    };
    assert_eq!(q(2), Ok(()));
    assert_eq!(q(4), Err("quantity".to_owned()));
}

#[test]
fn exact_types_are_matched_on_every_field() {
    complete(
        &ExactMatcher::new("deploy"),
        &[
            json!({"type": "deploy", "service": "api", "environment": "staging"}),
            json!({"type": "deploy", "service": "api", "replicas": 3, "canary": true,
                   "regions": ["eu-west-1"], "limits": {"cpu": "2"}}),
        ],
    );
    complete(
        &ExactMatcher::new("send_email"),
        &[json!({"type": "send_email", "to": "bob@example.com", "subject": "Q3"})],
    );
}

#[test]
fn exact_matcher_refuses_omitted_changed_or_added_fields() {
    let approved = json!({"type": "deploy", "service": "api", "environment": "staging"});
    let m = ExactMatcher::new("deploy");
    let check = |call: Value| m.check(&approved, &call).map_err(|e| e.field);
    assert_eq!(
        check(json!({"service": "api", "environment": "staging"})),
        Ok(())
    );
    // Before matching was complete, this omitted environment and passed.
    assert_eq!(
        check(json!({"service": "api"})),
        Err("environment".to_owned())
    );
    assert_eq!(
        check(json!({"service": "api", "environment": "production"})),
        Err("environment".to_owned())
    );
    assert_eq!(
        check(json!({"service": "api", "environment": "staging", "force": true})),
        Err("force".to_owned())
    );
    assert!(m.check(&approved, &json!("api")).is_err());
}

#[test]
fn a_configured_field_matcher_applies_its_rules() {
    let m = FieldMatcher::new("provision_servers").rule("quantity", FieldRule::AtMost);
    complete(
        &m,
        &[json!({"type": "provision_servers", "quantity": 4, "size": "large"})],
    );
    let approved = json!({"type": "provision_servers", "quantity": 4, "size": "large"});
    assert_eq!(
        m.check(&approved, &json!({"quantity": 2, "size": "large"})),
        Ok(())
    );
}

//! The daemon's answers against its OpenAPI document (used by the test files that start it).

use serde_json::{Value, json};

/// The body must have the documented shape: it is checked against the schema `name` of the
/// daemon's OpenAPI document both ways — every field it has is documented there with its type
/// (the answers' schemas are closed, `additionalProperties: false`), and every field the schema
/// requires is there.
pub fn conforms(name: &str, body: &Value) {
    let document = nami_httpd::openapi::document();
    let schema = json!({"$ref": format!("#/components/schemas/{name}")});
    if let Err(error) = check_schema(&document, &schema, body, "") {
        panic!("{body} does not match {name}: {error}");
    }
}

fn check_schema(document: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let at = if at.is_empty() { "the body" } else { at };
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/components/schemas/");
        let target = &document["components"]["schemas"][name];
        if target.is_null() {
            return Err(format!("{at}: {reference} is not in the document"));
        }
        return check_schema(document, target, value, at);
    }
    for (key, exactly_one) in [("oneOf", true), ("anyOf", false)] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            let errors: Vec<String> =
                options.iter().filter_map(|option| check_schema(document, option, value, at).err()).collect();
            let matched = options.len() - errors.len();
            if matched == 0 || (exactly_one && matched > 1) {
                return Err(format!("{at}: {matched} of its {key} match ({})", errors.join("; ")));
            }
        }
    }
    for part in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        check_schema(document, part, value, at)?;
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let is = |kind: &str| match kind {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        _ => false,
    };
    if !types.is_empty() && !types.iter().any(|kind| is(kind)) {
        return Err(format!("{at}: {value} is not of type {types:?}"));
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && !values.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {values:?}"));
    }
    if let Some(number) = value.as_f64() {
        if schema.get("minimum").and_then(Value::as_f64).is_some_and(|min| number < min) {
            return Err(format!("{at}: {value} is below its minimum"));
        }
        if schema.get("maximum").and_then(Value::as_f64).is_some_and(|max| number > max) {
            return Err(format!("{at}: {value} is above its maximum"));
        }
    }
    if let Value::Object(fields) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        for (field, inner) in fields {
            let here = format!("{at}.{field}");
            match (properties.and_then(|p| p.get(field)), schema.get("additionalProperties")) {
                (Some(property), _) => check_schema(document, property, inner, &here)?,
                (None, Some(Value::Bool(false))) => return Err(format!("{here} is not documented")),
                (None, Some(extra @ Value::Object(_))) => check_schema(document, extra, inner, &here)?,
                (None, _) => {}
            }
        }
        for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let required = required.as_str().unwrap_or_default();
            if !fields.contains_key(required) {
                return Err(format!("{at}.{required} is required and missing"));
            }
        }
    }
    if let (Value::Array(items), Some(item)) = (value, schema.get("items")) {
        for (index, inner) in items.iter().enumerate() {
            check_schema(document, item, inner, &format!("{at}[{index}]"))?;
        }
    }
    Ok(())
}

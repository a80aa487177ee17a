//! `GET /openapi.json`: the OpenAPI document of the Mux-compatible API, made from the routes
//! themselves (each handler's `#[utoipa::path]` is registered with it by `routes!`), and the
//! README's table of that API, generated from the document.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use super::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "openvod",
        description = "The Mux Video API as openvod serves it: an app written against Mux changes only its base URL. Authenticate with an access token's id and secret as HTTP Basic credentials."
    ),
    modifiers(&BasicAuth),
    // The body of `Refused`, which every operation names (response types do not register it).
    components(schemas(crate::http::error::ErrorBody)),
    security(("basic" = [])),
    tags(
        (name = "uploads", description = "Direct uploads: a URL the browser sends the file to"),
        (name = "assets", description = "Videos, their settings and what they were made from"),
        (name = "playback-ids", description = "Public or signed ids that play an asset"),
        (name = "static-renditions", description = "Downloadable MP4 and M4A files"),
        (name = "tracks", description = "Subtitle tracks"),
        (name = "playback-restrictions", description = "Referrer and user-agent rules for signed playback"),
        (name = "signing-keys", description = "Keys that sign playback tokens")
    )
)]
struct ApiDoc;

/// Every operation takes HTTP Basic credentials (an access token).
struct BasicAuth;

impl Modify for BasicAuth {
    fn modify(&self, openapi: &mut Document) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "basic",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
            );
    }
}

/// The values and bounds the request types check by hand (`wire::ENUMERATED_FIELDS`,
/// `wire::BOUNDED_FIELDS`), written into their schemas, so that the document says what is accepted.
struct Constraints;

/// The schema of `property` of the component `schema`, when both are there.
fn property_mut<'a>(
    openapi: &'a mut Document,
    schema: &str,
    property: &str,
) -> Option<&'a mut utoipa::openapi::schema::Object> {
    use utoipa::openapi::{RefOr, Schema};
    let components = openapi.components.as_mut()?;
    let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) else {
        return None;
    };
    match object.properties.get_mut(property)? {
        RefOr::T(Schema::Object(field)) => Some(field),
        _ => None,
    }
}

impl Modify for Constraints {
    fn modify(&self, openapi: &mut Document) {
        use crate::compat::mux::wire::{BOUNDED_FIELDS, ENUMERATED_FIELDS};
        use utoipa::openapi::schema::{SchemaType, Type};
        for (schema, property, values) in ENUMERATED_FIELDS {
            if let Some(field) = property_mut(openapi, schema, property) {
                let mut values: Vec<serde_json::Value> =
                    values.iter().map(|v| serde_json::json!(v)).collect();
                // An optional field may also be null.
                if matches!(&field.schema_type, SchemaType::Array(types) if types.contains(&Type::Null))
                {
                    values.push(serde_json::Value::Null);
                }
                field.enum_values = Some(values);
            }
        }
        for (schema, property, minimum, maximum) in BOUNDED_FIELDS {
            if let Some(field) = property_mut(openapi, schema, property) {
                field.minimum = minimum.map(utoipa::Number::Float);
                field.maximum = maximum.map(utoipa::Number::Float);
            }
        }
    }
}

/// OpenAPI links from each `201` of a create to the operations on what it created (`POST
/// /video/v1/assets` to `GET /video/v1/assets/{id}`, `POST .../{id}/tracks` to `DELETE
/// .../{id}/tracks/{tid}`, ...): the new object's id is `data.id` of the answer, the other path
/// parameters are the create's own. Clients and testers (schemathesis' stateful phase) follow
/// them to real objects.
struct Links;

/// The names of the `{parameters}` in a path template.
fn path_parameters(path: &str) -> Vec<&str> {
    path.split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name))
        .collect()
}

impl Modify for Links {
    fn modify(&self, openapi: &mut Document) {
        use utoipa::openapi::link::LinkBuilder;
        use utoipa::openapi::RefOr;
        let targets: Vec<(String, String)> = openapi
            .paths
            .paths
            .iter()
            .flat_map(|(path, item)| {
                [&item.get, &item.put, &item.patch, &item.delete, &item.post]
                    .into_iter()
                    .flatten()
                    .filter_map(|operation| operation.operation_id.clone())
                    .map(move |id| (path.clone(), id))
            })
            .collect();
        for (path, item) in openapi.paths.paths.iter_mut() {
            let Some(RefOr::T(created)) = item
                .post
                .as_mut()
                .and_then(|post| post.responses.responses.get_mut("201"))
            else {
                continue;
            };
            for (target, operation_id) in &targets {
                // The target is `{path}/{new}` or `{path}/{new}/...` with no other new parameter.
                let Some((new, rest)) = target
                    .strip_prefix(path.as_str())
                    .and_then(|rest| rest.strip_prefix("/{"))
                    .and_then(|rest| rest.split_once('}'))
                else {
                    continue;
                };
                if rest.contains('{') {
                    continue;
                }
                let mut link = LinkBuilder::new()
                    .operation_id(operation_id)
                    .parameter(new, "$response.body#/data/id");
                for known in path_parameters(path) {
                    link = link.parameter(known, format!("$request.path.{known}"));
                }
                created
                    .links
                    .insert(operation_id.clone(), RefOr::T(link.build()));
            }
        }
    }
}

/// The documented routes, as a router and the document that describes exactly them.
pub fn documented_routes() -> (axum::Router<AppState>, Document) {
    let (router, mut document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::compat::mux::routes())
        .split_for_parts();
    // After the merge: the request schemas and paths come with the routes.
    Constraints.modify(&mut document);
    Links.modify(&mut document);
    (router, document)
}

/// The document as served and printed. utoipa 5 writes a Link's fields in snake case
/// (`operation_id`); OpenAPI spells them in camel case, so they are renamed here.
pub fn to_json(document: &Document) -> serde_json::Value {
    let mut json = serde_json::to_value(document).expect("the OpenAPI document serializes");
    let operations = json["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut());
    for operation in operations {
        // Path items hold operations and a few other keys (`parameters`, ...): only operations
        // have responses.
        let responses = operation
            .get_mut("responses")
            .and_then(|r| r.as_object_mut())
            .into_iter()
            .flatten();
        for (_, response) in responses {
            let links = response.get_mut("links").and_then(|l| l.as_object_mut());
            for link in links.into_iter().flat_map(|l| l.values_mut()) {
                let Some(link) = link.as_object_mut() else {
                    continue;
                };
                for (snake, camel) in [
                    ("operation_id", "operationId"),
                    ("operation_ref", "operationRef"),
                    ("request_body", "requestBody"),
                ] {
                    if let Some(value) = link.remove(snake) {
                        link.insert(camel.to_owned(), value);
                    }
                }
            }
        }
    }
    json
}

/// The document alone (`openvod openapi` prints it).
pub fn document() -> Document {
    documented_routes().1
}

/// The README's table of the Mux API: one row per documented operation, in path order.
pub fn readme_table(document: &Document) -> String {
    let mut rows = Vec::new();
    for (path, item) in &document.paths.paths {
        let operations = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, operation) in operations {
            if let Some(operation) = operation {
                let summary = operation.summary.as_deref().unwrap_or_default();
                rows.push(format!("| `{method} {path}` | {summary} | supported |"));
            }
        }
    }
    format!(
        "| Operation | What it does | State |\n|---|---|---|\n{}\n",
        rows.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_table_is_the_documents() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .expect("README.md");
        let start = "<!-- mux-api-table: generated by `openvod openapi --readme-table` -->\n";
        let begin = readme
            .find(start)
            .expect("README has the generated table's marker")
            + start.len();
        let end = begin
            + readme[begin..]
                .find("<!-- end -->")
                .expect("the table's end marker");
        assert_eq!(
            &readme[begin..end],
            readme_table(&document()),
            "README's Mux API table is out of date: regenerate it with `openvod openapi --readme-table`"
        );
    }

    #[test]
    fn every_checked_value_and_bound_is_in_the_document() {
        use crate::compat::mux::wire::{BOUNDED_FIELDS, ENUMERATED_FIELDS};
        let mut document = document();
        for (schema, property, values) in ENUMERATED_FIELDS {
            let field = property_mut(&mut document, schema, property)
                .unwrap_or_else(|| panic!("{schema}.{property} is documented"));
            let listed = field.enum_values.as_ref().expect("an enum");
            for value in *values {
                assert!(
                    listed.contains(&serde_json::json!(value)),
                    "{schema}.{property}: {value}"
                );
            }
        }
        for (schema, property, minimum, _) in BOUNDED_FIELDS {
            let field = property_mut(&mut document, schema, property)
                .unwrap_or_else(|| panic!("{schema}.{property} is documented"));
            let documented = serde_json::to_value(&field.minimum).unwrap();
            assert_eq!(
                documented,
                serde_json::to_value(minimum).unwrap(),
                "{schema}.{property}"
            );
        }
        let json = serde_json::to_value(document).unwrap();
        assert_eq!(
            json["components"]["schemas"]["CreateUploadRequest"]["properties"]["timeout"]
                ["maximum"]
                .as_f64(),
            Some(crate::ingest::MAX_TIMEOUT_SECS as f64)
        );
    }

    #[test]
    fn creates_link_to_the_operations_on_what_they_create() {
        let json = to_json(&document());
        let links = |path: &str| {
            json["paths"][path]["post"]["responses"]["201"]["links"]
                .as_object()
                .cloned()
                .unwrap_or_default()
        };
        let assets = links("/video/v1/assets");
        assert_eq!(assets["get_asset"]["operationId"], "get_asset");
        assert_eq!(
            assets["get_asset"]["parameters"],
            serde_json::json!({"id": "$response.body#/data/id"})
        );
        for operation in [
            "delete_asset",
            "update_asset",
            "create_track",
            "get_input_info",
        ] {
            assert!(assets.contains_key(operation), "{operation}: {assets:?}");
        }
        assert!(!assets.contains_key("delete_track"), "needs a track id");
        let tracks = links("/video/v1/assets/{id}/tracks");
        assert_eq!(
            tracks["delete_track"]["parameters"],
            serde_json::json!({"id": "$request.path.id", "tid": "$response.body#/data/id"})
        );
        assert!(links("/system/v1/signing-keys").contains_key("delete_signing_key"));
    }

    #[test]
    fn every_operation_is_described() {
        let document = document();
        let mut count = 0;
        for (path, item) in &document.paths.paths {
            for operation in [&item.get, &item.post, &item.put, &item.patch, &item.delete]
                .into_iter()
                .flatten()
            {
                count += 1;
                assert!(operation.summary.is_some(), "{path} has a summary");
                assert!(
                    operation.responses.responses.contains_key("4XX"),
                    "{path} documents its errors"
                );
            }
        }
        assert!(count >= 30, "{count} operations");
    }
}

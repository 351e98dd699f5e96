//! `GET /api/openapi.json`: the OpenAPI 3.1 document of this API, generated from the code that
//! serves it. Each handler carries its operation (`#[utoipa::path]`: method, path, parameters,
//! body and answers), the bodies are the types the handlers read and write (`ToSchema`), and
//! [`api_routes!`](super) lists every routed handler in the document, so a route cannot be
//! served undocumented. What belongs to the whole API is written here: its description, tags,
//! security schemes, the shared error answers, and the CSRF header every cookie-authenticated
//! write needs (added to every write, as the middleware demands it of every write).
//!
//! `tests/api_openapi.rs` keeps it true: it is valid OpenAPI 3.1, every routed method and path is
//! documented and every documented one routed, and real responses validate against it;
//! `scripts/schemathesis.sh` fuzzes a running server against it.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use checkgate_protocol::json::ErrorBody;
use serde_json::Value;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, ObjectBuilder, SchemaType, Type,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, Required, Response};
use utoipa::openapi::{ResponseBuilder, Schema};
use utoipa::{IntoResponses, Modify, OpenApi, ToResponse};

/// The API as a whole; the operations come from [`super::Routed`] and the health routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Checkgate control plane",
        description = include_str!("openapi.md"),
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    servers((url = "/")),
    security(("session" = []), ("apiToken" = [])),
    tags(
        (name = "auth", description = "First-run setup and sessions."),
        (name = "projects", description = "Projects and their environments."),
        (name = "keys", description = "SDK keys, for SDKs and edges."),
        (name = "tokens", description = "API tokens, for scripts."),
        (name = "edges", description = "Edge relays and their feed credentials."),
        (name = "members", description = "Project roles: viewers read, editors also write flags \
            and segments, admins also manage the project."),
        (name = "users", description = "Workspace users."),
        (name = "flags", description = "Flags of an environment."),
        (name = "segments", description = "Segments of an environment."),
        (name = "schedules", description = "Flag changes scheduled for later: applied when \
            due, exactly once."),
        (name = "audit", description = "The audit log."),
        (name = "impressions", description = "Impressions SDKs report, their stats, and \
            evaluation insights (last evaluated, stale flags)."),
        (name = "webhooks", description = "Webhooks of an environment and their deliveries."),
        (name = "meta", description = "This document."),
        (name = "operations", description = "Health, readiness and metrics."),
    ),
    paths(
        checkgate_ops::health::live,
        checkgate_ops::health::ready,
        checkgate_ops::metrics::render,
    ),
    components(
        schemas(ErrorBody),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            Conflict,
            PreconditionFailed,
            PayloadTooLarge,
            UnsupportedMediaType,
            UnsupportedFeedType,
            Unprocessable,
            TooManyRequests,
        ),
    ),
    modifiers(&SecuritySchemes),
)]
struct Document;

/// The document, made once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let mut whole = Document::openapi();
    let mut routed = super::Routed::openapi();
    // The API's operations first, then the health routes.
    routed.paths.merge(std::mem::take(&mut whole.paths));
    whole.merge(routed);
    CsrfHeader.modify(&mut whole);
    Flattened.modify(&mut whole);
    DocumentAnswers.modify(&mut whole);
    whole
        .to_json()
        .expect("an OpenAPI document always serializes")
});

/// This document
#[utoipa::path(get, path = "/api/openapi.json", operation_id = "getOpenApi", tag = "meta",
    security(()),
    responses((status = 200, description = "OpenAPI 3.1.", body = Object)))]
pub(super) async fn document() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], DOCUMENT.as_str())
}

/// Ways to authenticate: the dashboard's session cookie and project API tokens.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::session::COOKIE_NAME,
                "The session cookie set by setup and login (HttpOnly, SameSite=Lax). \
                 Cookie-authenticated writes also need `X-Checkgate-Request: 1`.",
            ))),
        );
        components.add_security_scheme(
            "edgeToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("cge_ followed by 64 hex digits")
                    .description(Some(
                        "An edge token (`POST /api/edge-tokens`), on the feed route only.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "sdkKey",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("cg_srv_… or cg_cli_…")
                    .description(Some(
                        "An SDK key (server or client) of the environment, on impression \
                         ingest only.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "apiToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("cgt_ followed by 64 hex digits")
                    .description(Some(
                        "A project API token (`POST /api/projects/{id}/tokens`): \
                         `Authorization: Bearer cgt_…`. It acts in its project with its role.",
                    ))
                    .build(),
            ),
        );
    }
}

/// `X-Checkgate-Request` on every write: `csrf::guard` refuses a cookie-authenticated write
/// without it, whatever the route.
struct CsrfHeader;

impl Modify for CsrfHeader {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let writes = [
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in writes.into_iter().flatten() {
                add_csrf_header(operation);
            }
        }
    }
}

fn add_csrf_header(operation: &mut Operation) {
    let header = ParameterBuilder::new()
        .name("X-Checkgate-Request")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Required (any non-empty value, e.g. `1`) on writes authenticated by the session \
             cookie, and on setup and login; without it they are 403. Not needed with a bearer \
             token.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1)),
        ))
        .example(Some("1".into()))
        .build();
    operation
        .parameters
        .get_or_insert_with(Vec::new)
        .push(RefOr::T(header));
}

/// An error answer: the `Error` schema with its `code` narrowed to `codes`.
fn error_response(codes: &[&str], description: &str) -> ResponseBuilder {
    let narrowed = ObjectBuilder::new().property(
        "error",
        ObjectBuilder::new().property(
            "code",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(codes.iter().copied())),
        ),
    );
    let schema: Schema = AllOfBuilder::new()
        .item(Ref::from_schema_name("Error"))
        .item(narrowed)
        .into();
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new().schema(Some(schema)).build(),
    )
}

/// The shared error answers, each a component operations refer to by status.
macro_rules! error_responses {
    ($($name:ident($($code:literal),+) = $description:expr;)*) => {$(
        pub(super) struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                let codes = [$($code),+];
                (stringify!($name), error_response(&codes, $description).build().into())
            }
        }
    )*};
}

error_responses! {
    BadRequest("bad_request") = "The request is malformed: an id that is not a UUID, a bad \
        query parameter or header, or a body that is not JSON of the expected shape.";
    Unauthorized("unauthorized", "invalid_credentials") = "No live session (or the request carries an \
        `Authorization` header that is not a valid API token); for login and password checks, \
        wrong credentials (`invalid_credentials`).";
    Forbidden("forbidden") = "The caller lacks the role this needs, or a cookie-authenticated \
        write lacks the `X-Checkgate-Request` header or comes from another origin.";
    NotFound("not_found") = "No such resource, or one the caller cannot see (a project they \
        are not a member of does not exist for them).";
    Conflict("conflict") = "The request conflicts with the current state (a duplicate, or a \
        rule of the model such as the last admin or the default environment).";
    PreconditionFailed("precondition_failed") = "`If-Match` names a version that is no longer \
        current; nothing changed.";
    PayloadTooLarge("payload_too_large") = "The body is larger than 1 MiB (impression ingest: \
        256 KiB, or more than 500 impressions).";
    UnsupportedMediaType("unsupported_media_type") = "The body is not declared as \
        `application/json`.";
    UnsupportedFeedType("unsupported_media_type") = "The body is not declared as \
        `application/vnd.checkgate.feed`.";
    Unprocessable("invalid") = "A well-formed document that cannot be accepted (it does not \
        compile — a regex past one of the limits on what a flag's or segment's regexes may cost \
        counts as not compiling —, refers to a missing segment or prerequisite, or its regexes \
        would take the environment's automata past their cap, …); the message names the path \
        of the problem, as in `rules[0].values[3]: regex needs more than 512 KiB of automaton \
        (the limit per regex)` or `rules[0].values: this environment's regexes would take \
        33000 KiB of automaton, over its cap of 32768 KiB`.";
}

/// 429, with the `Retry-After` header.
pub(super) struct TooManyRequests;

impl<'r> ToResponse<'r> for TooManyRequests {
    fn response() -> (&'r str, RefOr<Response>) {
        let retry_after = HeaderBuilder::new()
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[0-9]+$")),
            ))
            .description(Some("Seconds until another attempt is admitted."))
            .build();
        let response = error_response(
            &["too_many_requests"],
            "Too many failed password checks (sign-in, or the current password of a password \
             change) for this account, address or device; retry after `Retry-After` seconds.",
        )
        .header("Retry-After", retry_after)
        .build();
        ("TooManyRequests", response.into())
    }
}

/// What the [`Json`](super::Json) extractor answers before a handler sees the body: 413 for a
/// body over 1 MiB, 415 for one not declared as JSON. Every operation with a request body lists
/// it in its `responses` (and `tests/api_openapi.rs` holds them to that).
pub(super) struct JsonBodyRefused;

impl IntoResponses for JsonBodyRefused {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        [
            ("413", PayloadTooLarge::response().0),
            ("415", UnsupportedMediaType::response().0),
        ]
        .into_iter()
        .map(|(status, name)| (status.to_owned(), Ref::from_response_name(name).into()))
        .collect()
    }
}

/// What the feed route answers before it reads its body: 413 for a body over the server's
/// limit, 415 for one not declared as a feed frame.
pub(super) struct UnsupportedFeedBody;

impl IntoResponses for UnsupportedFeedBody {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        [
            ("413", PayloadTooLarge::response().0),
            ("415", UnsupportedFeedType::response().0),
        ]
        .into_iter()
        .map(|(status, name)| (status.to_owned(), Ref::from_response_name(name).into()))
        .collect()
    }
}

/// A string that is one of `values`, or null.
pub(super) fn nullable_string_enum(values: &[&str]) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(
            values
                .iter()
                .map(|v| serde_json::Value::from(*v))
                .chain([serde_json::Value::Null]),
        ))
}

/// A view flattened into a bigger answer (`#[serde(flatten)]`: `SdkKeyCreated` is `SdkKey` and
/// `key`, `Flag` is the flag document and `version`, `updated_at`) comes out of utoipa as an
/// `allOf` of the view's `$ref` and the added fields. Under a closed view
/// (`additionalProperties: false`) no answer could satisfy that, so each such `allOf` becomes
/// one object with the properties and requirements of its parts, closed when a part is.
struct Flattened;

impl Modify for Flattened {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let mut merged = Vec::new();
        for (name, schema) in &components.schemas {
            let RefOr::T(Schema::AllOf(all_of)) = schema else {
                continue;
            };
            let mut object = ObjectBuilder::new().build();
            object.description = all_of.description.clone();
            for part in &all_of.items {
                let part = match part {
                    RefOr::Ref(r) => r
                        .ref_location
                        .strip_prefix("#/components/schemas/")
                        .and_then(|name| components.schemas.get(name)),
                    inline => Some(inline),
                };
                let Some(RefOr::T(Schema::Object(part))) = part else {
                    // Not a flattened object (say, a union): leave it as it is.
                    object.properties.clear();
                    break;
                };
                object.properties.extend(part.properties.clone());
                object.required.extend(part.required.iter().cloned());
                if part.additional_properties.is_some() {
                    object.additional_properties = part.additional_properties.clone();
                }
            }
            if !object.properties.is_empty() {
                merged.push((name.clone(), object));
            }
        }
        for (name, object) in merged {
            components
                .schemas
                .insert(name, RefOr::T(Schema::Object(object)));
        }
    }
}

/// The answers that show a stored flag or segment (`Flag`, `Segment`) carry every field the
/// document writes even when empty, and nothing else, but the document's schema is the
/// input's, where defaulted fields are optional and unknown ones ignored. This makes each
/// answer (flattened by [`Flattened`] first) a closed object that requires those fields. Which
/// fields they are is read off the document's own serialization of a minimal document, not
/// listed here.
struct DocumentAnswers;

impl Modify for DocumentAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let answers = [
            (
                "Flag",
                always_written::<checkgate_core::FlagDoc>(
                    serde_json::json!({ "key": "k", "is_enabled": false }),
                ),
            ),
            (
                "Segment",
                always_written::<checkgate_core::SegmentDoc>(serde_json::json!({ "key": "k" })),
            ),
        ];
        for (answer, written) in answers {
            let Some(RefOr::T(Schema::Object(answer))) = components.schemas.get_mut(answer) else {
                continue;
            };
            answer.required.extend(written);
            answer.required.sort();
            answer.required.dedup();
            answer.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        }
    }
}

/// The fields a document of type `D` writes whatever it holds: those of `minimal` (the least
/// document that parses) read and written again.
fn always_written<D: serde::Serialize + serde::de::DeserializeOwned>(
    minimal: Value,
) -> Vec<String> {
    serde_json::from_value::<D>(minimal)
        .and_then(serde_json::to_value)
        .ok()
        .and_then(|written| written.as_object().map(|o| o.keys().cloned().collect()))
        .unwrap_or_default()
}

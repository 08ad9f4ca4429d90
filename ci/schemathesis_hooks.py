"""Schemathesis hooks for ci/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

Two checks stand in for built-in ones and fail exactly where those do, but for
the cases named here; docs/testing.md lists them with the reasons.

- `positive_data_acceptance_except_state` replaces `positive_data_acceptance`:
  it excuses rejections that no request schema can rule out because they depend
  on data the server holds or on rules JSON Schema cannot state. Each exemption
  names the operation, the status, and the field and message the server
  reports, so any other rejection of schema-valid data still fails the run.
- `negative_data_rejection_unless_valid` replaces `negative_data_rejection`:
  it excuses a "negative" body that in fact validates against the operation's
  schema. Schemathesis 4's coverage phase turns `minProperties: 1` (our "at
  least one field" rule for PATCH bodies) into a required property and then
  reports `{"color": …}` as a body missing `name`.
"""

import json
import re
import uuid

import schemathesis
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    _get_openapi_schema,
    _has_other_negated_location,
    make_validator,
    negative_data_rejection,
    positive_data_acceptance,
)

# (method, path template) -> [(field pattern, message pattern)], matched against
# the 400's per-field errors. A 400 is excused only when *every* field error it
# lists matches one of its operation's pairs.
STATE_DEPENDENT_400 = {
    # A parent must be an existing client of the workspace, not a descendant.
    ("POST", "/v2/client"): [
        (r"/parentClientId", r".*"),
        # A time zone must be in the tz database (a string, not a 600-name enum).
        (r"/timezone", r"not a tz database time zone name"),
        (r"/custom", r"this update would make"),
    ],
    ("PATCH", "/v2/client/{uuid}"): [
        (r"/parentClientId", r".*"),
        # A time zone must be in the tz database (a string, not a 600-name enum).
        (r"/timezone", r"not a tz database time zone name"),
        (r"/custom", r"this update would make"),
    ],
    # Lists must exist; phone numbers must exist in their country's numbering
    # plan; unsubscribed contacts cannot start a new profile; a PATCH may not
    # leave a profile without a contact or with too many merged properties.
    ("POST", "/v1/hood/profiles"): [
        # One of email and number is required: the description says so, as
        # generators misread it stated as allOf + anyOf.
        (r"email", r"^Required: a profile needs an email or a mobile_phone_number"),
        (r"lists\[\d+\]", r"does not exist"),
        (r"mobile_phone_number", r"valid phone number"),
        (r"email|mobile_phone_number", r"has unsubscribed"),
        (r"custom_properties", r"at most \d+ custom properties"),
    ],
    ("PATCH", "/v1/hood/profiles/{id}"): [
        (r"lists\[\d+\]", r"does not exist"),
        (r"mobile_phone_number", r"valid phone number"),
        (r"email", r"both would be empty"),
        (r"custom_properties", r"this update would make"),
    ],
    # A regex must compile in Rust's syntax, which no JSON Schema format names.
    ("POST", "/api/v1/entities/icps"): [
        (r"customFilterCriteria/\d+/regex", r".*"),
    ],
    ("PATCH", "/api/v1/entities/icps/{id}"): [
        (r"customFilterCriteria/\d+/regex", r".*"),
    ],
    # Hood imports: an upload's bytes must be a UTF-8 CSV file with a header
    # (no schema describes a file's content); a bulk update names profiles
    # that must exist, each once, with values of the type they state.
    ("POST", "/v1/hood/profiles/imports"): [
        (r"^file$", r".*"),
    ],
    # A mapping names the uploaded file's columns (state), maps email or
    # phone, each property once; an import is committed once, within 7 days.
    ("POST", "/v1/hood/profiles/imports/{id}/commit"): [
        (r"(?s)mapping.*", r".*"),
        (r"\(body\)", r"already; upload the file again|expired at"),
    ],
    # A webhook's host must resolve, to public addresses (the run has no
    # --webhook-allow-private, and generated hosts do not exist); plain
    # http needs that flag too; and the URL must parse by the WHATWG rules
    # (IPv4 numbers, IDNA), which no JSON Schema pattern states whole.
    ("POST", "/clientele/v1/webhooks"): [
        (r"^/url$", r"resolve|loopback, private|must use https|^not a URL"),
    ],
    ("PATCH", "/clientele/v1/webhooks/{id}"): [
        (r"^/url$", r"resolve|loopback, private|must use https|^not a URL"),
    ],
    # Lance lead records: ids must name records of the workspace (an ICP the
    # caller can see, persons, companies); a list's type decides which ids
    # it holds and cannot change; dates in order; lists of at most 10,000.
    ("POST", "/api/v1/entities/leadlists"): [
        (r"icpId|personIds/\d+|companyIds/\d+", r"not found"),
        (r"personIds|companyIds", r"^Only (company|person) lists hold"),
        (r"endDate", r"Must not be before startDate"),
    ],
    ("PATCH", "/api/v1/entities/leadlists/{id}"): [
        (r"icpId|personIds/\d+|companyIds/\d+", r"not found"),
        (r"personIds|companyIds", r"^Only (company|person) lists hold"),
        (r"endDate", r"Must not be before startDate"),
        (r"type", r"cannot be changed"),
    ],
    ("POST", "/api/v1/entities/leadlists/{id}/add-prospects"): [
        (r"prospects/\d+/companyId", r"not found"),
        (r"", r"can only be added to person lists"),
        (r"prospects", r"a list holds at most"),
    ],
    ("POST", "/api/v1/entities/leadlists/{id}/add-companies"): [
        (r"companyIds/\d+", r"not found"),
        (r"", r"can only be added to company lists"),
        (r"companyIds", r"a list holds at most"),
    ],
    ("POST", "/api/v1/entities/persons"): [
        (r"companyId", r"not found"),
    ],
    ("PATCH", "/api/v1/entities/persons/{id}"): [
        (r"companyId", r"not found"),
    ],
    ("POST", "/v1/hood/profiles/import"): [
        (r"^profiles\[\d+\]\.id$", r"does not exist|appears more than once"),
        (r"(?s)profiles\[\d+\]\.custom_properties(\..*)?", r"^value must be|^Property names have|at most \d+ custom properties"),
    ],
}


# The If-Match pattern the document states (src/core/records.rs).
_IF_MATCH = re.compile(r'(\*|(W/)?"[!#-~]*"( *, *(W/)?"[!#-~]*")*)')

_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7E](?:[\x20-\x7E]*[\x21-\x7E])?")


@schemathesis.hook
def map_headers(context, headers):
    """A valid generated Idempotency-Key becomes one no other case has sent.

    A key repeated across generated cases is answered with the first case's
    response (that is the header's point): a stateful run would then see a
    "created" record that a later step deleted. Reuse is tested by the suite
    (tests/api/idempotency.rs); here each case is its own request. Invalid
    keys are left as generated, so their rejection is still checked.
    """
    if headers:
        key = headers.get("Idempotency-Key")
        if isinstance(key, str) and len(key) <= 255 and _IDEMPOTENCY_KEY.fullmatch(key):
            headers["Idempotency-Key"] = str(uuid.uuid4())
    return headers


def _field_errors(body):
    """(field, message) of every per-field error, in any surface's envelope."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("error"), dict):  # Lance
        details = body["error"].get("details") or []
        return [("/".join(str(part) for part in d.get("path", [])), d.get("message", "")) for d in details]
    if "errors" in body and "code" in body:  # Hood
        return [(e.get("field", ""), e.get("message", "")) for e in body.get("errors") or []]
    if "errors" in body and "status" in body:  # ClientSuccess
        return [(e.get("pointer") or e.get("parameter") or "", e.get("detail", "")) for e in body.get("errors") or []]
    return None


# Operations whose 422 depends on the record they name: a lead list is
# generated from an ICP whose criteria Clientele must be able to apply.
STATE_DEPENDENT_422 = {
    ("POST", "/api/v1/entities/icps/{id}/lead-lists"),
}


def _excused(response, case):
    if response.status_code in (409, 422) and "Idempotency-Key" in (case.headers or {}):
        # A generated key may repeat one sent before with another request
        # (422) or while it runs (409): the documented answers to a reused key.
        return True
    if_match = (case.headers or {}).get("If-Match")
    if (
        response.status_code == 400
        and if_match is not None
        and not _IF_MATCH.fullmatch(if_match.strip(" \t"))
        and "If-Match" in response.text
    ):
        # The coverage phase sends header values such as `0` without the
        # parameter's pattern (entity tags): not schema-valid after all,
        # and refused as the document says.
        return True
    if response.status_code == 412 and "If-Match" in (case.headers or {}):
        # A generated If-Match rarely names the current version; 412 is the
        # documented answer to a stale one.
        return True
    if response.status_code == 422 and (
        case.operation.method.upper(),
        case.operation.path,
    ) in STATE_DEPENDENT_422:
        return True
    if response.status_code != 400:
        return False
    rules = STATE_DEPENDENT_400.get((case.operation.method.upper(), case.operation.path))
    if not rules:
        return False
    try:
        errors = _field_errors(json.loads(response.content))
    except ValueError:
        return False
    if not errors:
        return False
    return all(
        any(re.fullmatch(field, path) and re.search(message, text) for field, message in rules)
        for path, text in errors
    )


@schemathesis.check
def positive_data_acceptance_except_state(ctx, response, case):
    """Schema-valid requests are accepted, but for the state-dependent rejections above."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except AssertionError:
        if _excused(response, case):
            return None
        raise


def _body_is_valid(case):
    """Whether the case's body, its only negated part, satisfies its schema."""
    meta = case.meta
    if meta is None or not meta.is_negative_at(ParameterLocation.BODY):
        return False
    if _has_other_negated_location(case, ParameterLocation.BODY) or case.media_type is None:
        return False
    body = case.operation.get_body_for_media_type(case.media_type)
    if body is None:
        return False
    validator = make_validator(body.optimized_schema, _get_openapi_schema(case).adapter.jsonschema_validator_cls)
    return validator.is_valid(case.body)


@schemathesis.check
def negative_data_rejection_unless_valid(ctx, response, case):
    """Schema-violating requests are rejected, judging the body by the schema itself."""
    try:
        return negative_data_rejection(ctx, response, case)
    except AssertionError:
        if _body_is_valid(case):
            return None
        raise

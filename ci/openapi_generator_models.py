"""Models of openapi-generator's Python client, generated from Clientele's
document by ci/generated-client.sh, take and give back the values the
server does (issue 15).

    python ci/openapi_generator_models.py DIR   # DIR: the generated client

ClientSuccess `custom` values are the case that failed before: with `oneOf`
branches of several types and a `null` branch, `null` matched "multiple"
branches and was refused. Free-form values (Lance filters, ClientSuccess
region and teaming roles) nest arrays and objects. Arrays of custom values
are not checked here: openapi-generator's Python models refuse any list
whose items are a union (a generator limitation, docs/testing.md).
"""

import json
import sys

sys.path.insert(0, sys.argv[1])

from openapi_client.models.client_success_patch_request import (  # noqa: E402
    ClientSuccessPatchRequest,
)
from openapi_client.models.create_icp_request import CreateIcpRequest  # noqa: E402

failures = 0


def round_trip(model, body):
    global failures
    try:
        # `from_dict` sets every field, so `to_dict` prints each nullable one
        # as null; the fields sent are what must come back.
        whole = model.from_dict(body).to_dict()
        back = {key: whole.get(key) for key in body}
    except Exception as error:  # a refusal is the failure being checked for
        back = f"refused: {str(error).splitlines()[0]}"
    ok = back == body
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {model.__name__} {json.dumps(body)} -> {json.dumps(back, default=str)}")


for value in ["gold", "", 12, 2.5, True, False, None]:
    round_trip(ClientSuccessPatchRequest, {"custom": {"tier": value}})
round_trip(ClientSuccessPatchRequest, {"custom": {"a": None, "b": "x", "c": 3}})
round_trip(
    CreateIcpRequest,
    {
        "name": "Seed ICP",
        "leadsPerList": 50,
        "leadProviderCriteria": [
            {"provider": "baseProvider", "filters": {"titles": ["CTO"], "nested": {"deep": [1, {"k": None}]}}}
        ],
    },
)
round_trip(
    ClientSuccessPatchRequest,
    {"region": {"emea": {"countries": ["DE", "FR"], "lead": {"name": "Ana", "since": 2021}}}},
)
if failures:
    sys.exit(f"{failures} model round trip(s) failed")
print("openapi-generator's Python models round-trip every value")

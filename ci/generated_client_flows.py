"""The seeds' flows, run through a client that openapi-python-client generated
from the server's own /openapi.json with its default settings (see
ci/generated-client.sh). Each surface: create, the seed's PATCH, get, and an
invalid PATCH whose error body must parse into the generated error model.

    python ci/generated_client_flows.py BASE_URL TOKEN

Exits non-zero with the step that failed. Nothing here builds a request by
hand: every body is a generated model (`from_dict` of the seed's JSON, so an
unknown key or a wrong type would fail in the model, not on the server) and
every answer is parsed by the generated client.
"""

import sys

from clientele_client import AuthenticatedClient
from clientele_client.api.client_success_clients import create_client, get_client, update_client
from clientele_client.api.lance_ic_ps import create_icp, get_icp, update_icp
from clientele_client.api.ocamba_hood_profile_lists import create_profile_list
from clientele_client.api.ocamba_hood_profiles import create_profile, get_profile, update_profile
from clientele_client.models import (
    ClientSuccessClient,
    ClientSuccessCreateRequest,
    ClientSuccessPatchRequest,
    ClientSuccessProblem,
    CreateHoodProfileRequest,
    CreateIcpRequest,
    HoodError,
    HoodProfileListRequest,
    HoodProfileListView,
    HoodProfileView,
    IcpView,
    LanceError,
    UpdateHoodProfileRequest,
    UpdateIcpRequest,
)

CHECKS = []


def check(step, condition, detail=""):
    CHECKS.append(step)
    if not condition:
        raise SystemExit(f"FAILED: {step} {detail}")


def lance(client):
    # The seed's ICP, then the seed's PATCH and its 200 example's values.
    body = CreateIcpRequest.from_dict(
        {
            "name": "Enterprise Tech Leaders",
            "description": "C-level and VP-level technology leaders at enterprise companies",
            "userIds": ["user_abc123", "user_def456"],
            "leadsPerList": 10,
            "activeUntil": "2024-12-31T23:59:59.000Z",
            "leadProviderCriteria": [
                {
                    "provider": "baseProvider",
                    "type": "person",
                    "filters": {
                        "job_titles": ["CTO", "VP Engineering"],
                        "company_size": ["501-1000", "1001-5000"],
                    },
                }
            ],
        }
    )
    created = create_icp.sync_detailed(client=client, body=body)
    check("lance create answers 201 with an IcpView", created.status_code == 201 and isinstance(created.parsed, IcpView), created.content)
    icp = created.parsed
    patch = UpdateIcpRequest.from_dict(
        {
            "name": "Updated ICP Name",
            "leadsPerList": 50,
            "customFilterCriteria": [{"type": "maxPeoplePerCompany", "value": 5}],
        }
    )
    patched = update_icp.sync_detailed(icp.id, client=client, body=patch)
    check("lance seed PATCH answers 200", patched.status_code == 200 and isinstance(patched.parsed, IcpView), patched.content)
    view = patched.parsed
    check("lance PATCH applied", view.name == "Updated ICP Name" and view.leads_per_list == 50, view.to_dict())
    check(
        "lance PATCH kept the untouched fields",
        view.description == "C-level and VP-level technology leaders at enterprise companies",
        view.to_dict(),
    )
    fetched = get_icp.sync_detailed(icp.id, client=client)
    check("lance get shows the PATCH", fetched.status_code == 200 and fetched.parsed.to_dict() == view.to_dict(), fetched.content)
    # The seed's 400 example: a string where a number belongs. Sent through
    # the generated model's dict, since the model itself would refuse it.
    invalid = client.get_httpx_client().patch(
        f"/api/v1/entities/icps/{icp.id}", json={"leadsPerList": "fifty"}
    )
    error = update_icp._build_response(client=client, response=invalid).parsed
    check("lance invalid PATCH parses into LanceError", invalid.status_code == 400 and isinstance(error, LanceError), invalid.content)
    paths = [detail.path for detail in error.error.details]
    check("lance error names the field", paths == [["leadsPerList"]], paths)


def clientsuccess(client):
    body = ClientSuccessCreateRequest.from_dict(
        {
            "name": "Acme Corporation",
            "status": "ACTIVE",
            "active": True,
            "timezone": "America/Denver",
            "custom": {"tier": "gold"},
        }
    )
    created = create_client.sync_detailed(client=client, body=body)
    check("clientsuccess create answers 201", created.status_code == 201 and isinstance(created.parsed, ClientSuccessClient), created.content)
    account = created.parsed
    patch = ClientSuccessPatchRequest.from_dict({"npsScore": -7, "city": "Boulder"})
    patched = update_client.sync_detailed(account.uuid, client=client, body=patch)
    check("clientsuccess PATCH answers 200", patched.status_code == 200 and isinstance(patched.parsed, ClientSuccessClient), patched.content)
    check("clientsuccess PATCH applied", patched.parsed.nps_score == -7 and patched.parsed.city == "Boulder", patched.parsed.to_dict())
    check("clientsuccess PATCH kept the time zone", patched.parsed.timezone == "America/Denver", patched.parsed.to_dict())
    # Every kind of custom value the document states, through the
    # generated model: `null` removes a key, the others are stored.
    custom_patch = ClientSuccessPatchRequest.from_dict(
        {"custom": {"tier": None, "seats": 12, "renewing": True, "tags": ["a", 1, False], "plan": "pro"}}
    )
    customised = update_client.sync_detailed(account.uuid, client=client, body=custom_patch)
    check("clientsuccess custom PATCH answers 200", customised.status_code == 200, customised.content)
    check(
        "clientsuccess custom values merged, null removed the key",
        customised.parsed.custom.to_dict() == {"seats": 12, "renewing": True, "tags": ["a", 1, False], "plan": "pro"},
        customised.parsed.to_dict(),
    )
    patched = customised
    fetched = get_client.sync_detailed(account.uuid, client=client)
    check("clientsuccess get shows the PATCH", fetched.status_code == 200 and fetched.parsed.to_dict() == patched.parsed.to_dict(), fetched.content)
    invalid = client.get_httpx_client().patch(
        f"/v2/client/{account.uuid}", json={"npsScore": "high", "timezone": "Mars/Olympus"}
    )
    problem = update_client._build_response(client=client, response=invalid).parsed
    check(
        "clientsuccess invalid PATCH parses into ClientSuccessProblem",
        invalid.status_code == 400 and isinstance(problem, ClientSuccessProblem),
        invalid.content,
    )
    fields = sorted(error.pointer for error in problem.errors)
    check("clientsuccess problem lists both fields", fields == ["/npsScore", "/timezone"], fields)


def hood(client):
    made = create_profile_list.sync_detailed(client=client, body=HoodProfileListRequest.from_dict({"name": "Newsletter"}))
    check("hood list create answers 201", made.status_code == 201 and isinstance(made.parsed, HoodProfileListView), made.content)
    list_id = made.parsed.id
    created = create_profile.sync_detailed(client=client, body=CreateHoodProfileRequest.from_dict({"email": "old@example.com"}))
    check("hood create answers 201", created.status_code == 201 and isinstance(created.parsed, HoodProfileView), created.content)
    profile = created.parsed
    # The seed's request, with a real address for the page's scraper guard.
    seed = UpdateHoodProfileRequest.from_dict(
        {
            "full_name": "John Doe",
            "mobile_phone_number": "+49658245684",
            "email": "john.doe@example.com",
            "organization_id": "1000",
            "lists": [list_id],
            "custom_properties": {"clicker": "1"},
            "comment": "New comment for profile",
        }
    )
    patched = update_profile.sync_detailed(profile.id, client=client, body=seed)
    check("hood seed PATCH answers 204", patched.status_code == 204, patched.content)
    fetched = get_profile.sync_detailed(profile.id, client=client)
    check("hood get answers 200", fetched.status_code == 200 and isinstance(fetched.parsed, HoodProfileView), fetched.content)
    view = fetched.parsed
    check(
        "hood get shows the seed's values",
        view.full_name == "John Doe"
        and view.email == "john.doe@example.com"
        and view.country_code == "DE"
        and view.lists == [list_id]
        and view.custom_properties.to_dict() == {"clicker": "1"},
        view.to_dict(),
    )
    invalid = client.get_httpx_client().patch(
        f"/v1/hood/profiles/{profile.id}", json={"email": "not an address", "organization_id": 7}
    )
    error = update_profile._build_response(client=client, response=invalid).parsed
    check("hood invalid PATCH parses into HoodError", invalid.status_code == 400 and isinstance(error, HoodError), invalid.content)
    fields = sorted(item.field for item in error.errors)
    check("hood error lists both fields", fields == ["email", "organization_id"], fields)


def main():
    base, token = sys.argv[1], sys.argv[2]
    client = AuthenticatedClient(base_url=base, token=token, raise_on_unexpected_status=True)
    with client as client:
        lance(client)
        clientsuccess(client)
        hood(client)
    print(f"generated client: {len(CHECKS)} checks passed on the three surfaces")


if __name__ == "__main__":
    main()

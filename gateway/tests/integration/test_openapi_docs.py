"""API.md: the OpenAPI 3 document at /api/v1/openapi.json and the browsable /docs, served locally."""
import re

import pytest

PATHS = {
    "/api/v1/auth/token": {"post"},
    "/api/v1/me": {"get"},
    "/api/v1/users": {"get", "post"},
    "/api/v1/api-keys": {"get", "post"},
    "/api/v1/customers": {"get", "post"},
    "/api/v1/customers/{customer_id}": {"get", "patch"},
    "/api/v1/customers/{customer_id}/credit": {"get"},
    "/api/v1/users/{staff_id}": {"patch"},
    "/api/v1/staff": {"get"},
    "/api/v1/territories/{code}": {"put"},
    "/api/v1/customers/pool": {"get"},
    "/api/v1/customers/pool/suggestion": {"get"},
    "/api/v1/customers/{customer_id}/owner": {"post"},
    "/api/v1/customers/{customer_id}/owner-history": {"get"},
    "/api/v1/customers/{customer_id}/classification": {"post"},
    "/api/v1/customers/{customer_id}/contacts": {"get", "post"},
    "/api/v1/customers/{customer_id}/follow-ups": {"get", "post"},
    "/api/v1/customers/{customer_id}/purchases": {"get"},
    "/api/v1/customers/{customer_id}/reviews": {"get", "post"},
    "/api/v1/customers/{customer_id}/reviews/{review_id}/approve": {"post"},
    "/api/v1/customers/{customer_id}/reviews/{review_id}/reject": {"post"},
    "/api/v1/visits": {"get", "post"},
    "/api/v1/visits/weekly": {"get"},
    "/api/v1/visits/{visit_id}/approve": {"post"},
    "/api/v1/visits/{visit_id}/log": {"post"},
    "/api/v1/opportunities": {"get", "post"},
    "/api/v1/opportunities/{opportunity_id}": {"get", "patch"},
    "/api/v1/opportunities/{opportunity_id}/close": {"post"},
}


@pytest.fixture
def document(gateway):
    answer = gateway.get("api/v1/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    return answer.json()


def test_api_openapi_lists_every_endpoint_and_is_openapi_3(document):
    assert document["openapi"].startswith("3.")
    assert {"title", "version"} <= set(document["info"])
    served = {path: set(ops) - {"parameters"} for path, ops in document["paths"].items()}
    assert {path: served.get(path, set()) & methods for path, methods in PATHS.items()} == PATHS
    components = document["components"]
    assert components["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": components["securitySchemes"]["bearerAuth"]["description"]}
    assert {"Problem", "CustomerCreate", "CustomerOut", "UserCreate", "TokenRequest"} <= set(components["schemas"])
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            assert operation["responses"], (path, method)
            assert operation["operationId"]


def test_api_openapi_bodies_have_examples_and_public_paths_need_no_security(document):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                content = operation["requestBody"]["content"]["application/json"]
                assert content["example"], (path, method)
    assert document["paths"]["/api/v1/auth/token"]["post"]["security"] == []
    assert "security" not in document["paths"]["/api/v1/customers"]["post"]  # the global bearerAuth
    create = document["paths"]["/api/v1/customers"]["post"]
    assert {"$ref": "#/components/parameters/IdempotencyKey"} in create["parameters"]
    assert create["responses"]["409"] == {"$ref": "#/components/responses/Conflict"}
    problem = document["components"]["responses"]["Conflict"]["content"]["application/problem+json"]
    assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}


def test_api_openapi_schemas_refuse_unknown_fields_like_the_gateway_does(document):
    assert document["components"]["schemas"]["CustomerCreate"]["additionalProperties"] is False


def test_api_docs_page_loads_its_assets_from_the_gateway(gateway):
    page = gateway.get("docs")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/docs/") for a in assets), assets  # no CDN
    for asset in assets:
        answer = gateway.get(asset.lstrip("/"))
        assert answer.status_code == 200, asset
        assert len(answer.content) > 0
    initializer = gateway.get("docs/swagger-initializer.js").text
    assert '"/api/v1/openapi.json"' in initializer
    assert gateway.get("docs/../config.yaml").status_code == 404
    assert gateway.get("docs/index.j2").status_code == 404

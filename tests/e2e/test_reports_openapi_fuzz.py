"""Issue 8: a property-based test of the whole HTTP API against its own OpenAPI document. Schemathesis
reads the document the real gateway serves and, for every operation, sends requests it generates
from the schemas (valid ones and invalid ones) to the real gateway in front of the five real
services, as an admin; every answer must not be a server error and must fit the schema documented
for its status. Every GET is also called once with the ids of a small data set seeded first, so
the documented answer schemas are held to real, non-empty answers. Bounded: a few examples per
operation, no shrinking (a failure is reported as found), no example database."""
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from shared import workdays
from tests.e2e.osb import Org
from tests.e2e.reports_data import collected, invoiced, logged_visit

pytestmark = pytest.mark.slow

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
EXAMPLES = {GenerationMode.POSITIVE: 3, GenerationMode.NEGATIVE: 1}


def seed(platform):
    """A small business to give the API's answers some content: ids by path parameter name."""
    org = Org(platform)
    rep, suffix = org.rep, org.suffix
    customer_id = org.customer["id"]
    order, delivery = org.delivered(3)
    invoice = invoiced(org, delivery)
    receipt = collected(org, invoice, "100.00", f"TT-{suffix}")
    visit = logged_visit(rep, org.manager, customer_id)
    opportunity = rep.post("opportunities", {"customer_id": customer_id, "title": "second line",
                                             "expected_amount": "5000.00", "probability": 40}, expect=201)
    rep.patch(f"opportunities/{opportunity['id']}", {"stage": "qualified", "priority": "high"}, expect=200)
    proposal = rep.post("proposals", {"opportunity_id": opportunity["id"], "title": "second line",
                                      "content": "scope and price"}, expect=201)
    escalation = rep.post(f"customers/{customer_id}/escalations", {"reason": "tender committee"}, expect=201)
    collection = rep.post("collections", {}, expect=201)
    intelligence = rep.post("intelligence", {"kind": "problem", "summary": "late deliveries"}, expect=201)
    quote = rep.post("quotes", {"customer_id": customer_id, "valid_until": str(date.today() + timedelta(days=30)),
                                "lines": [{"sku": "PUMP-200", "quantity": 1}]}, expect=201)
    ret = rep.post("returns", {"delivery_id": delivery["id"], "lines": [{"sku": "PUMP-200", "quantity": 1}],
                               "reason": "scratched"}, expect=201)
    loan = rep.post("loans", {"customer_id": customer_id, "lines": [{"sku": "PUMP-200", "quantity": 1}],
                              "due_date": str(date.today() + timedelta(days=14))}, expect=201)
    request = rep.post("service-requests", {"customer_id": customer_id, "sku": "PUMP-200",
                                            "delivery_id": delivery["id"], "type": "repair", "priority": "normal",
                                            "description": "leaks at the flange"}, expect=201)
    [movement] = org.warehouse.get("stock/movements?kind=receipt", expect=200)["items"][:1]
    me = rep.get("me", expect=200)
    month = workdays.local_date(datetime.now(timezone.utc)).strftime("%Y-%m")
    return {"customer_id": customer_id, "order_id": order["id"], "delivery_id": delivery["id"],
            "invoice_id": invoice["id"], "receipt_id": receipt["id"], "visit_id": visit["id"],
            "opportunity_id": opportunity["id"], "quote_id": quote["id"], "return_id": ret["id"],
            "loan_id": loan["id"], "service_request_id": request["id"], "proposal_id": proposal["id"],
            "escalation_id": escalation["id"], "collection_id": collection["id"],
            "report_id": intelligence["id"], "document_id": movement["document_id"],
            "staff_id": me["staff_id"], "sku": "PUMP-200", "month": month, "code": "EAST",
            "review_id": str(uuid.uuid4()), "contract_id": str(uuid.uuid4()), "target_id": str(uuid.uuid4()),
            "allocation_id": str(uuid.uuid4())}


def test_issue8_the_api_answers_fit_the_served_openapi_document_and_never_fail(start_platform):
    platform = start_platform("customer", "order", "inventory", "billing", "aftersales",
                              env={"gateway": {"GATEWAY_RATE_LIMIT_RATE": "0"}})  # the fuzzer is not throttled
    ids = seed(platform)
    base = platform.procs["gateway"].url("")
    document = requests.get(platform.api("openapi.json"), timeout=10).json()
    headers = platform.admin().headers
    schema = schemathesis.openapi.from_dict(document)
    failures = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 100

    for operation in operations:
        if operation.method.upper() == "GET":  # once with real ids: a real, non-empty answer
            names = [p.name for p in operation.path_parameters]
            case = operation.Case(path_parameters={name: ids[name] for name in names})
            try:
                case.call_and_validate(base_url=base, headers=headers, checks=CHECKS)
            except BaseException as exc:  # collect them all, then fail once naming each
                failures.append(f"{operation.label} (seeded ids): {exc}")

        for mode, examples in EXAMPLES.items():
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def generated(case):
                case.call_and_validate(base_url=base, headers=headers, checks=CHECKS, timeout=30)

            try:
                generated()
            except BaseException as exc:  # hypothesis raises a group when it finds several
                failures.append(f"{operation.label} ({mode.value}): {exc}")

    assert not failures, f"{len(failures)} failing operation(s):\n\n" + "\n\n".join(failures)

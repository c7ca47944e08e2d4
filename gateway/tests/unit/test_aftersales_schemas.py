"""The after-sales request schemas of the gateway without I/O: examples pass, unknown fields are
refused, report periods become business dates."""
from datetime import date

import pytest
from marshmallow import ValidationError

from gateway.api import aftersales

REQUEST_SCHEMAS = [aftersales.ServiceRequestCreate, aftersales.NoteIn, aftersales.AssignIn, aftersales.RepairStepIn,
                   aftersales.ResolveIn, aftersales.FeedbackIn]


@pytest.mark.parametrize("schema", REQUEST_SCHEMAS)
def test_api_after_sales_examples_pass_their_own_schema_and_unknown_fields_are_refused(schema):
    schema().load(schema.example)
    with pytest.raises(ValidationError) as refused:
        schema().load(dict(schema.example, colour="red"))
    assert "colour" in refused.value.messages


@pytest.mark.parametrize("query,expected", [
    ({}, (date(2026, 11, 1), date(2026, 11, 30))),
    ({"period": "2026"}, (date(2026, 1, 1), date(2026, 12, 31))),
    ({"period": "2026-Q1"}, (date(2026, 1, 1), date(2026, 3, 31))),
    ({"period": "2024-02"}, (date(2024, 2, 1), date(2024, 2, 29))),
    ({"date_from": date(2026, 1, 1), "date_to": date(2026, 1, 5)}, (date(2026, 1, 1), date(2026, 1, 5))),
])
def test_api_reports_service_sla_periods_are_whole_business_months(query, expected):
    assert aftersales.period_dates(query, today=date(2026, 11, 25)) == expected

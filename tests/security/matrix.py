"""Who may call what: the role × endpoint table of API.md, as data.

Every operation of the gateway's OpenAPI document has an entry here (tests/security/test_access.py
fails for one without): the roles API.md lets through; every other role gets 403 FORBIDDEN. Where
API.md names the roles of an endpoint the entry quotes it; where it only says "directors, order
desk, finance, warehouse and service engineers see what their work needs" (API.md "Row-level
access") the group below says which work that is. `integration` is an API key for another system
(API.md "Roles"): an ERP that records customers, quotes, orders and delivery notes and reads them
back, and never approves, certifies or moves goods.
"""

ROLES = ("admin", "general_manager", "sales_director", "marketing_director", "sales_manager", "sales_rep",
         "order_desk", "product_manager", "warehouse", "finance", "service_engineer", "integration")  # API.md "Roles"

ANYONE = frozenset(ROLES)
ADMIN = frozenset({"admin"})  # API.md "Org, users, targets": POST /users, GET /users (admin)
FINANCE = frozenset({"finance"})  # API.md "Billing": PUT credit, POST /credit/recompute, issue, confirm (finance)
WAREHOUSE = frozenset({"warehouse"})  # API.md "Returns and loans": receive, issue (warehouse)
STOCK_KEEPERS = frozenset({"admin", "warehouse"})  # API.md "Catalog and stock": POST /stock/receipts (warehouse)
PRODUCT_MANAGER = frozenset({"product_manager"})  # API.md "Customers": reviews approve|reject (product_manager)
CATALOG_KEEPERS = frozenset({"admin", "product_manager"})  # the price list is HQ's (FR-43)
DIRECTORS = frozenset({"admin", "general_manager", "sales_director", "marketing_director"})
MANAGERS = frozenset({"admin", "general_manager", "sales_director", "sales_manager"})  # API.md: owner (managers)
SALES_LINE = MANAGERS | {"sales_rep"}  # who owns customers and works them (API.md "Row-level access")
VISITORS = frozenset({"sales_director", "sales_manager", "sales_rep"})  # API.md "Customers": visits
VISIT_APPROVERS = frozenset({"general_manager", "sales_director", "sales_manager"})  # approve (manager)
# who records customers and sales documents: the sales line, marketing, the order desk, an ERP
SELLERS = SALES_LINE | {"marketing_director", "order_desk", "integration"}
CUSTOMER_READERS = SELLERS | {"finance", "product_manager", "service_engineer"}  # everyone but the warehouse
QUOTE_READERS = SELLERS | {"finance", "product_manager"}
BILLING_READERS = SELLERS | {"finance"}
APPROVERS = DIRECTORS | {"sales_manager", "product_manager"}  # API.md: approve|reject "by the role whose turn it is"
TARGET_WRITERS = DIRECTORS | {"sales_manager"}  # API.md "Org": POST /targets (directors, managers for their team)
PLANNERS = TARGET_WRITERS | {"sales_rep", "order_desk"}
LOAN_WRITERS = DIRECTORS | {"sales_manager", "sales_rep", "order_desk"}
LOAN_READERS = LOAN_WRITERS | {"warehouse", "finance"}
DELIVERY_WRITERS = SALES_LINE | {"order_desk", "integration"}  # API.md "Deliveries": POST (order desk, rep)
SERVICE_OPENERS = SALES_LINE | {"order_desk", "integration"}
SERVICE_READERS = SERVICE_OPENERS | {"marketing_director", "product_manager", "service_engineer"}
REPORT_READERS = BILLING_READERS | {"warehouse"}

ACCESS = {
    # API.md "Org, users, targets"
    "GET /me": ANYONE,
    # the approvals inbox (issue 12): whoever decides some kind of document
    "GET /me/approvals": APPROVERS | VISIT_APPROVERS | {"finance"},
    "POST /users": ADMIN,
    "GET /users": ADMIN,
    "PATCH /users/{staff_id}": ADMIN,
    "POST /api-keys": ADMIN,  # API.md "Conventions": API keys "created by an admin with a role"
    "GET /api-keys": ADMIN,
    "GET /staff": ANYONE,
    "GET /staff/{staff_id}": ANYONE,
    "GET /territories": ANYONE,
    "PUT /territories/{code}": ADMIN,
    "POST /targets": TARGET_WRITERS,
    "GET /targets": PLANNERS,
    "POST /targets/{target_id}/publish": TARGET_WRITERS,
    "POST /quotas": DIRECTORS,
    "GET /quotas": PLANNERS,
    # API.md "Customers (CRM)"
    "POST /customers": SELLERS,
    "GET /customers": CUSTOMER_READERS,
    "GET /customers/{customer_id}": CUSTOMER_READERS,
    "PATCH /customers/{customer_id}": SELLERS,
    "POST /customers/{customer_id}/owner": MANAGERS,
    "GET /customers/{customer_id}/owner-history": CUSTOMER_READERS,
    "POST /customers/{customer_id}/classification": SALES_LINE,
    "GET /customers/{customer_id}/classification-history": CUSTOMER_READERS,
    "GET /customers/pool": DIRECTORS | {"sales_manager"},
    "GET /customers/pool/suggestion": MANAGERS,
    "POST /customers/{customer_id}/contacts": SELLERS,
    "GET /customers/{customer_id}/contacts": CUSTOMER_READERS,
    # the shipping sheet (FR-18; API.md is silent): kept by the sales secretary group and the sales line
    "PUT /customers/{customer_id}/logistics": SALES_LINE | {"order_desk"},
    "GET /customers/{customer_id}/logistics": SALES_LINE | {"order_desk"},
    "GET /logistics/due": SALES_LINE | {"order_desk"},
    "POST /customers/{customer_id}/follow-ups": SALES_LINE | {"order_desk"},
    "GET /customers/{customer_id}/follow-ups": CUSTOMER_READERS,
    "GET /customers/{customer_id}/purchases": CUSTOMER_READERS,
    "POST /customers/{customer_id}/reviews": SALES_LINE,  # API.md: (owner)
    "GET /customers/{customer_id}/reviews": CUSTOMER_READERS,
    "POST /customers/{customer_id}/reviews/{review_id}/approve": PRODUCT_MANAGER,
    "POST /customers/{customer_id}/reviews/{review_id}/reject": PRODUCT_MANAGER,
    "GET /customers/{customer_id}/overview": CUSTOMER_READERS,
    "POST /visits": VISITORS,
    "GET /visits": SALES_LINE,
    "GET /visits/weekly": SALES_LINE,
    "GET /visits/{visit_id}": SALES_LINE,
    "POST /visits/{visit_id}/approve": VISIT_APPROVERS,
    "POST /visits/{visit_id}/reject": VISIT_APPROVERS,
    "POST /visits/{visit_id}/cancel": VISITORS,
    "POST /visits/{visit_id}/check-out": VISITORS,
    "POST /visits/{visit_id}/check-in": VISITORS,
    "POST /visits/{visit_id}/delay": VISITORS,
    "POST /visits/{visit_id}/log": VISITORS,
    "POST /opportunities": SALES_LINE,
    "GET /opportunities": SALES_LINE | {"marketing_director", "order_desk"},
    "GET /opportunities/{opportunity_id}": SALES_LINE | {"marketing_director", "order_desk"},
    "PATCH /opportunities/{opportunity_id}": SALES_LINE,
    "POST /opportunities/{opportunity_id}/close": SALES_LINE,
    # proposals and tenders (FR-40, FR-41; API.md is silent): worked like opportunities, reviewed
    # like visit plans (the owner's manager or a director)
    "POST /proposals": SALES_LINE,
    "GET /proposals": SALES_LINE | {"marketing_director", "order_desk"},
    "GET /proposals/{proposal_id}": SALES_LINE | {"marketing_director", "order_desk"},
    "PATCH /proposals/{proposal_id}": SALES_LINE,
    "POST /proposals/{proposal_id}/submit": SALES_LINE,
    "POST /proposals/{proposal_id}/approve": VISIT_APPROVERS,
    "POST /proposals/{proposal_id}/reject": VISIT_APPROVERS,
    "POST /proposals/{proposal_id}/send": SALES_LINE,
    "POST /proposals/{proposal_id}/response": SALES_LINE,
    # escalations of hard customers and the manager's guidance (FR-28, FR-30; API.md is silent)
    "POST /customers/{customer_id}/escalations": SALES_LINE,
    "GET /escalations": SALES_LINE,
    "GET /escalations/{escalation_id}": SALES_LINE,
    "POST /escalations/{escalation_id}/notes": SALES_LINE,
    "POST /escalations/{escalation_id}/close": SALES_LINE,
    # the weekly check of collected records (FR-05; API.md is silent): the rep submits, the manager checks
    "POST /collections": SALES_LINE,
    "GET /collections": SALES_LINE,
    "GET /collections/{collection_id}": SALES_LINE,
    "POST /collections/{collection_id}/check": VISIT_APPROVERS,
    # market intelligence from the field (FR-33; API.md is silent): the sales line and marketing
    "POST /intelligence": SALES_LINE | {"marketing_director"},
    "GET /intelligence": SALES_LINE | {"marketing_director"},
    "GET /intelligence/{report_id}": SALES_LINE | {"marketing_director"},
    "POST /intelligence/{report_id}/acknowledge": VISIT_APPROVERS | {"marketing_director"},
    # API.md "Catalog and stock"
    "POST /products": CATALOG_KEEPERS,
    "GET /products": ANYONE,
    "GET /products/{sku}": ANYONE,
    "PATCH /products/{sku}": CATALOG_KEEPERS,
    "POST /warehouses": STOCK_KEEPERS,
    "GET /warehouses": ANYONE,
    "GET /stock": ANYONE,
    "POST /stock/receipts": STOCK_KEEPERS,
    "POST /stock/adjustments": STOCK_KEEPERS,
    "GET /stock/movements": STOCK_KEEPERS | {"product_manager", "finance", "general_manager"},
    "GET /stock/documents/{document_id}": STOCK_KEEPERS | {"product_manager", "finance", "general_manager"},
    "POST /stock/documents/{document_id}/reverse": STOCK_KEEPERS,
    # API.md "Quotes, contracts, orders"
    "POST /quotes": SELLERS,
    "GET /quotes": QUOTE_READERS,
    "GET /quotes/{quote_id}": QUOTE_READERS,
    "PATCH /quotes/{quote_id}": SELLERS,
    "POST /quotes/{quote_id}/submit": SELLERS,
    "POST /quotes/{quote_id}/approve": APPROVERS,
    "POST /quotes/{quote_id}/reject": APPROVERS,
    "POST /quotes/{quote_id}/send": SELLERS,
    "POST /quotes/{quote_id}/accept": SELLERS,
    "POST /quotes/{quote_id}/decline": SELLERS,
    "POST /quotes/{quote_id}/cancel": SELLERS,
    "GET /contracts": QUOTE_READERS,
    "GET /contracts/{contract_id}": QUOTE_READERS,
    "PATCH /contracts/{contract_id}": SELLERS,
    "POST /contracts/{contract_id}/submit": SELLERS,
    "POST /contracts/{contract_id}/approve": APPROVERS,
    "POST /contracts/{contract_id}/reject": APPROVERS,
    "POST /contracts/{contract_id}/sign": (SELLERS - {"integration"}),  # signed by people (FR-58)
    "POST /contracts/{contract_id}/register": frozenset({"admin", "order_desk", "sales_director", "general_manager"}),
    "POST /contracts/{contract_id}/terminate": DIRECTORS,
    "POST /orders": SELLERS,
    "GET /orders": ANYONE,
    "GET /orders/{order_id}": ANYONE,
    "GET /orders/{order_id}/timeline": ANYONE,
    "POST /orders/{order_id}/confirm": SELLERS,
    "POST /orders/{order_id}/release-credit-hold": frozenset({"finance", "sales_director"}),  # API.md, verbatim
    "POST /orders/{order_id}/cancel": SELLERS,
    # API.md "Deliveries"
    "POST /deliveries": DELIVERY_WRITERS,
    "POST /deliveries/{delivery_id}/issue": STOCK_KEEPERS,  # (warehouse)
    "POST /deliveries/{delivery_id}/cancel": DELIVERY_WRITERS | {"warehouse"},
    "GET /deliveries/{delivery_id}": ANYONE,
    "GET /deliveries": ANYONE,
    # API.md "Billing"
    "POST /invoices": SALES_LINE - {"admin", "general_manager"} | {"order_desk", "finance"},
    "GET /invoices": BILLING_READERS,
    "GET /invoices/{invoice_id}": BILLING_READERS,
    "POST /invoices/{invoice_id}/certify": frozenset({"sales_manager"}),  # API.md (sales_manager), FR-82
    "POST /invoices/{invoice_id}/issue": FINANCE,  # API.md (finance)
    "POST /invoices/{invoice_id}/cancel": frozenset({"sales_manager", "finance"}),
    "POST /invoices/{invoice_id}/reverse": FINANCE,
    "POST /receipts": frozenset({"sales_rep", "order_desk", "finance"}),  # API.md (rep, order desk, finance)
    "GET /receipts": BILLING_READERS,
    "GET /receipts/{receipt_id}": BILLING_READERS,
    "POST /receipts/{receipt_id}/confirm": FINANCE,  # API.md (finance)
    "POST /receipts/{receipt_id}/allocations": frozenset({"sales_rep", "order_desk", "finance"}),  # FR-86
    "POST /receipts/{receipt_id}/allocations/{allocation_id}/reverse": FINANCE,
    "GET /customers/{customer_id}/credit": CUSTOMER_READERS,
    "PUT /customers/{customer_id}/credit": FINANCE,  # API.md (finance)
    "POST /credit/recompute": FINANCE,  # API.md (finance)
    "GET /customers/{customer_id}/statements/{month}": BILLING_READERS,
    "POST /customers/{customer_id}/statements/{month}/confirm": frozenset({"sales_rep", "sales_manager", "order_desk",
                                                                             "finance"}),  # FR-87
    "GET /statements/campaigns/{month}": BILLING_READERS,
    "GET /reports/receivables-aging": BILLING_READERS,
    # API.md "Returns and loans"
    "POST /returns": SELLERS | {"service_engineer"},  # after-sales starts a return (DESIGN.md "After-sales")
    "GET /returns": ANYONE,
    "GET /returns/{return_id}": ANYONE,
    "POST /returns/{return_id}/approve": PRODUCT_MANAGER,  # FR-94
    "POST /returns/{return_id}/reject": PRODUCT_MANAGER,
    "POST /returns/{return_id}/receive": WAREHOUSE,  # API.md (warehouse)
    "POST /loans": LOAN_WRITERS,
    "GET /loans": LOAN_READERS,
    "GET /loans/{loan_id}": LOAN_READERS,
    "POST /loans/{loan_id}/approve": MANAGERS,  # FR-98: direct supervisor and division head
    "POST /loans/{loan_id}/reject": MANAGERS,
    "POST /loans/{loan_id}/issue": WAREHOUSE,  # API.md (warehouse)
    "POST /loans/{loan_id}/returns": WAREHOUSE,  # FR-100: approver = warehouse
    "POST /loans/{loan_id}/convert": LOAN_WRITERS,
    # API.md "After-sales"
    "POST /service-requests": SERVICE_OPENERS,
    "GET /service-requests": SERVICE_READERS,
    "GET /service-requests/{service_request_id}": SERVICE_READERS,
    "POST /service-requests/{service_request_id}/confirm": frozenset({"sales_manager"}),  # FR-102
    "POST /service-requests/{service_request_id}/assign": frozenset({"sales_manager", "service_engineer"}),
    "POST /service-requests/{service_request_id}/start": frozenset({"service_engineer"}),  # FR-103
    "POST /service-requests/{service_request_id}/repair-steps": VISITORS | {"service_engineer"},
    "POST /service-requests/{service_request_id}/resolve": frozenset({"service_engineer"}),
    "POST /service-requests/{service_request_id}/feedback": SERVICE_OPENERS,
    # API.md "Reports"
    "GET /reports/sales-performance": BILLING_READERS,
    "GET /reports/pipeline": SELLERS,
    "GET /reports/osb-cycle": REPORT_READERS,
    "GET /reports/service-sla": SALES_LINE - {"admin"} | {"admin", "marketing_director", "product_manager",
                                                          "service_engineer"},
}

# API.md "Conventions": every path but these needs a credential.
PUBLIC = ("/health", "/ready", "/metrics", "/docs", "/api/v1/openapi.json")
PUBLIC_OPERATIONS = {"POST /auth/token"}  # logging in needs no credential, by nature

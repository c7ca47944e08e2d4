"""Customer rules, free of any framework (FR-01, FR-02, FR-06, FR-07, FR-10, FR-12, FR-13)."""
import re
import unicodedata
from datetime import timedelta

SOURCES = (  # FR-02 acquisition channels
    "trade_fair", "trade_press", "internet", "industry_association",
    "mall_listing", "partner_referral", "company_data", "competitor_media",
)
SIZES = ("micro", "small", "medium", "large", "enterprise")  # FR-12
STATUSES = ("potential", "tracking", "progressing", "key", "loi_signed", "signed")  # FR-13
# Roles whose people collect customers themselves and so own what they record (FR-06).
COLLECTING_ROLES = ("sales_rep", "sales_manager", "sales_director")
CONTACT_WINDOW = timedelta(days=7)  # FR-10: a new customer is contacted within one week

# Legal-form words that do not tell two companies apart.
_LEGAL_FORMS = (
    "股份有限公司", "有限责任公司", "有限公司", "集团公司", "公司",
    "company limited", "co ltd", "limited", "ltd", "incorporated", "inc",
    "corporation", "corp", "company", "co", "llc", "gmbh",
)
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def name_key(name):
    """The key two records of one company share: width, case, spacing, punctuation and the legal
    form do not matter (`ACME Co., Ltd.` = `acme` = `ＡＣＭＥ有限公司`)."""
    text = unicodedata.normalize("NFKC", name).casefold()
    text = _NOT_WORD.sub(" ", text).strip()
    changed = True
    while changed and text:
        changed = False
        for form in _LEGAL_FORMS:
            # a Latin legal form must be a word of its own ("taco" keeps its "co")
            suffix = form if not form.isascii() else " " + form
            if text.endswith(suffix) and len(text) > len(suffix):
                text = text[: -len(suffix)].strip()
                changed = True
    return text.replace(" ", "")


def tax_key(tax_id):
    """Unified social credit codes compare without spaces, dashes or case."""
    if not tax_id:
        return None
    return re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", tax_id)).upper() or None


def initial_owner(actor):
    """The recorder owns what they collected (FR-06); others' records go to the pool (FR-09, FR-11)."""
    if actor.get("role") in COLLECTING_ROLES:
        return actor["staff_id"]
    return None


def contact_due_by(assigned_at):
    return assigned_at + CONTACT_WINDOW


def visible_owner_filter(actor):
    """Row-level access: a sales rep sees only the customers they own (API.md); None = no limit."""
    if actor.get("role") == "sales_rep":
        return actor["staff_id"]
    return None


def can_see(actor, owner_id):
    restrict = visible_owner_filter(actor)
    return restrict is None or (owner_id is not None and str(owner_id) == str(restrict))

"""ChartMogul API, `GET /v1/customers` and `GET /v1/activities`
(https://dev.chartmogul.com/reference/list-customers, /list-activities):
HTTP Basic with the API key as the user name. Customers page by `page` and
`per_page` (the body also carries `has_more`, `cursor`, and the deprecated
`page`, `current_page`, `total_pages`, `per_page`). Activities are in date
order and page with `start-after=<uuid of the last one>`; `has_more` says
whether more follow."""
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import apiserver  # noqa: E402

KEY = "cm-api-key"
CUSTOMERS, ACTIVITIES = 450, 430


def customer(i):
    return {
        "id": 25000 + i,
        "uuid": "cus_%08d-75b4-431b-adb2-eb6b9e546012" % i,
        "external_id": str(34916000 + i),
        "name": "Company %d" % i,
        "email": "billing%d@example.com" % i,
        "status": ["Active", "Lead", "Cancelled", "Past Due"][i % 4],
        "customer-since": "2023-06-%02dT13:16:00-04:00" % (1 + i % 28),
        "attributes": {"tags": ["engage"] if i % 2 else [], "stripe": {"uid": i, "coupon": i % 3 == 0},
                       "clearbit": {}, "custom": {"CAC": 200 + i, "pro": i % 5 == 0}},
        "address": {"address_zip": "%05d" % i, "city": "Nowhereville", "state": "Alaska", "country": "US"},
        "data_source_uuid": "ds_fef05d54-47b4-431b-aed2-eb6b9e545430",
        "data_source_uuids": ["ds_fef05d54-47b4-431b-aed2-eb6b9e545430"],
        "external_ids": [str(34916000 + i)],
        "company": "",
        "country": "US",
        "state": "AK",
        "city": "Nowhereville",
        "zip": "%05d" % i,
        "lead_created_at": None,
        "free_trial_started_at": "2023-05-01T00:00:00-04:00" if i % 6 == 0 else None,
        "mrr": 3000 + i,
        "arr": 12 * (3000 + i),
        "billing-system-url": "https://dashboard.stripe.com/customers/cus_%d" % i,
        "chartmogul-url": "https://app.chartmogul.com/#customers/%d" % (25000 + i),
        "billing-system-type": "Stripe",
        "currency": "USD",
        "currency-sign": "$",
    }


def activity(i):
    return {
        "description": "purchased the %s plan" % ["Silver", "Gold"][i % 2],
        "activity-mrr-movement": 6000 if i % 3 else -1000,
        "activity-mrr": 6000 + i,
        "activity-arr": 12 * (6000 + i),
        "date": "2024-%02d-%02dT09:%02d:10+00:00" % (1 + i // 40, 1 + i % 28, i % 60),
        "type": ["new_biz", "expansion", "contraction", "churn", "reactivation"][i % 5],
        "currency": "USD",
        "subscription-external-id": "sub_%04d" % i,
        "plan-external-id": ["silver", "gold"][i % 2],
        "customer-name": "Company %d" % (i % 97),
        "customer-uuid": "cus_%08d-75b4-431b-adb2-eb6b9e546012" % (i % 97),
        "customer-external-id": "cus_%04d" % (i % 97),
        "billing-connector-uuid": "ds_99076cb8-97a1-11eb-8798-a73b507e7929",
        "uuid": "%08x-21c7-4e3f-9ddc-67927aaadcf4" % (0x10000000 + i * 7),
    }


def authorized(req):
    b = req.basic()
    return b is not None and b[0] == KEY


def customers(req):
    if not authorized(req):
        return 401, {"code": 401, "message": "No valid API key provided", "http_status": 401}, {}
    per_page = int(req.arg("per_page", "200"))
    page = int(req.arg("page", "1"))
    rows = [customer(i) for i in range(1, CUSTOMERS + 1)]
    chunk = rows[(page - 1) * per_page: page * per_page]
    pages = math.ceil(len(rows) / per_page)
    return 200, {"entries": chunk, "per_page": per_page, "page": page, "current_page": page,
                 "total_pages": pages, "cursor": "cursor-after-%d" % (page * per_page),
                 "has_more": page < pages}, {}


def activities(req):
    if not authorized(req):
        return 401, {"code": 401, "message": "No valid API key provided", "http_status": 401}, {}
    per_page = int(req.arg("per_page", "200"))
    rows = [activity(i) for i in range(ACTIVITIES)]
    start = 0
    if req.arg("start-after"):
        start = 1 + [r["uuid"] for r in rows].index(req.arg("start-after"))
    chunk = rows[start:start + per_page]
    return 200, {"entries": chunk, "cursor": "anchor-%d" % (start + len(chunk)),
                 "has_more": start + per_page < len(rows), "per_page": per_page}, {}


if __name__ == "__main__":
    apiserver.serve({("GET", "/v1/customers"): customers, ("GET", "/v1/activities"): activities})

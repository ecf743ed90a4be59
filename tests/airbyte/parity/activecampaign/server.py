"""ActiveCampaign API v3, `GET /api/3/contacts`
(https://developers.activecampaign.com/reference/list-all-contacts and
/reference/pagination): the `Api-Token` header; `limit` (default 20, max 100)
and a zero-based `offset`; the body holds `scoreValues`, `contacts` and
`meta.total` (a string). Fields are strings, as in the documentation's
example, with nulls where a contact has no value."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import apiserver  # noqa: E402

TOKEN = "ac-token-123"
TOTAL = 57


def contact(i, base):
    return {
        "cdate": "2024-01-%02dT09:%02d:11-06:00" % (1 + i % 28, i % 60),
        "email": "contact%d@example.com" % i,
        "phone": "" if i % 3 else "+1 312 555 %04d" % i,
        "firstName": "Given%d" % i,
        "lastName": "Family%d" % i,
        "orgid": str(i % 4),
        "orgname": "",
        "segmentio_id": "",
        "bounced_hard": "0",
        "bounced_soft": "0",
        "bounced_date": None,
        "ip": "0",
        "ua": None,
        "hash": "%032x" % (i * 7919),
        "socialdata_lastcheck": None,
        "email_local": "",
        "email_domain": "",
        "sentcnt": str(i % 9),
        "rating_tstamp": None,
        "gravatar": "1",
        "deleted": "0",
        "anonymized": "0",
        "adate": None,
        "udate": "2024-02-%02dT10:00:00-06:00" % (1 + i % 28),
        "edate": None,
        "deleted_at": None,
        "created_utc_timestamp": "2024-01-%02d 15:%02d:11" % (1 + i % 28, i % 60),
        "updated_utc_timestamp": "2024-02-%02d 16:00:00" % (1 + i % 28),
        "created_timestamp": "2024-01-%02d 09:%02d:11" % (1 + i % 28, i % 60),
        "updated_timestamp": "2024-02-%02d 10:00:00" % (1 + i % 28),
        "created_by": None,
        "updated_by": None,
        "mpp_tracking": "0",
        "scoreValues": [],
        "accountContacts": [],
        "links": {
            "bounceLogs": "%s/api/3/contacts/%d/bounceLogs" % (base, i),
            "contactLists": "%s/api/3/contacts/%d/contactLists" % (base, i),
            "deals": "%s/api/3/contacts/%d/deals" % (base, i),
            "fieldValues": "%s/api/3/contacts/%d/fieldValues" % (base, i),
        },
        "id": str(i),
        "organization": str(i % 4) if i % 4 else None,
    }


def contacts(req):
    if req.headers.get("Api-Token") != TOKEN:
        return 403, {"message": "No Result found for Subscriber with id 0"}, {}
    limit = min(int(req.arg("limit", "20")), 100)
    offset = int(req.arg("offset", "0"))
    ids = range(1 + offset, 1 + min(offset + limit, TOTAL))
    body = {
        "scoreValues": [],
        "contacts": [contact(i, req.origin) for i in ids],
        "meta": {"total": str(TOTAL), "page_input": {"segmentid": None, "formid": 0,
                 "listid": 0, "tagid": 0, "limit": limit, "offset": offset,
                 "search": None, "sort": None, "seriesid": 0, "waitid": 0,
                 "status": -1, "forceQuery": 0, "cacheid": ""}},
    }
    return 200, body, {}


if __name__ == "__main__":
    apiserver.serve({("GET", "/api/3/contacts"): contacts})

"""Delighted API v1 (https://delighted.com/docs/api): HTTP Basic with the API
key as the user name and an empty password.

* `GET /v1/survey_responses.json`: a bare JSON array in creation order,
  oldest first; `per_page` (max 100) and `page`; `since`/`until` filter on
  `created_at` and `updated_since`/`updated_until` on `updated_at` (Unix
  seconds, inclusive).
* `GET /v1/people.json`: a bare array, `since`/`until` on `created_at`,
  `per_page`; further pages by cursor in a `Link: <…page_info=…>;
  rel="next"` header (the cursor carries the filters; no header on the last
  page).

`--anchor EPOCH` (seconds, a midnight UTC) places the data in the 21 days
before it. Phase 2 (`at=EPOCH`) adds and updates responses at `at`, after
the windows' end (today's midnight), so a same-day run reads none of them."""
import base64
import json
import os
import sys
from urllib.parse import urlencode

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import apiserver  # noqa: E402

KEY = "delighted-key"
ANCHOR = int(apiserver.option("--anchor", "1767225600"))
SPAN = 21 * 86400


def response(i, created, updated):
    return {
        "id": str(1000 + i),
        "person": str(5000 + i % 400),
        "survey_type": "nps",
        "score": i % 11,
        "comment": "Comment %d" % i if i % 3 == 0 else None,
        "permalink": "https://app.delighted.com/r/%032x" % (i * 31337),
        "created_at": created,
        "updated_at": updated,
        "person_properties": {"purchase_experience": "Retail Store", "country": "USA"} if i % 2 else None,
        "notes": [],
        "tags": ["vip"] if i % 7 == 0 else [],
        "additional_answers": [],
    }


def responses():
    rows = []
    for i in range(520):
        created = ANCHOR - SPAN + 1800 + i * (SPAN - 7200) // 520
        rows.append(response(i, created, created + (i % 5) * 3600))
    if apiserver.phase() == 2:
        at = apiserver.phase_at()
        for i in (10, 200):
            rows[i]["updated_at"] = at
        rows += [response(i, at, at) for i in (520, 521)]
    return rows


def person(i):
    created = ANCHOR - SPAN + 600 + i * (SPAN - 3600) // 400
    return {
        "id": str(5000 + i),
        "email": "person%d@example.com" % i,
        "name": "Person %d" % i if i % 4 else None,
        "phone_number": "+15555550%03d" % i if i % 5 == 0 else None,
        "created_at": created,
        "last_sent_at": created + 3600 if i % 2 else None,
        "last_responded_at": None,
        "next_survey_scheduled_at": None,
    }


def authorized(req):
    b = req.basic()
    return b is not None and b[0] == KEY


def in_range(v, lo, hi):
    return v is not None and (lo is None or v >= int(lo)) and (hi is None or v <= int(hi))


def survey_responses(req):
    if not authorized(req):
        return 401, {"status": 401, "message": "Invalid API key"}, {}
    per_page = min(int(req.arg("per_page", "20")), 100)
    page = int(req.arg("page", "1"))
    rows = [r for r in responses()
            if in_range(r["created_at"], req.arg("since"), req.arg("until"))
            and (req.arg("updated_since") is None and req.arg("updated_until") is None
                 or in_range(r["updated_at"], req.arg("updated_since"), req.arg("updated_until")))]
    return 200, rows[(page - 1) * per_page: page * per_page], {}


def people(req):
    if not authorized(req):
        return 401, {"status": 401, "message": "Invalid API key"}, {}
    per_page = min(int(req.arg("per_page", "20")), 100)
    if req.arg("page_info"):
        cur = json.loads(base64.urlsafe_b64decode(req.arg("page_info")))
    else:
        cur = {"since": req.arg("since"), "until": req.arg("until"), "offset": 0}
    rows = [p for p in map(person, range(400)) if in_range(p["created_at"], cur["since"], cur["until"])]
    start = cur["offset"]
    headers = {}
    if start + per_page < len(rows):
        token = base64.urlsafe_b64encode(json.dumps({**cur, "offset": start + per_page}).encode()).decode()
        headers["Link"] = '<%s/v1/people.json?%s>; rel="next"' % (
            req.origin, urlencode({"per_page": per_page, "page_info": token}))
    return 200, rows[start:start + per_page], headers


if __name__ == "__main__":
    apiserver.serve({("GET", "/v1/survey_responses.json"): survey_responses,
                     ("GET", "/v1/people.json"): people})

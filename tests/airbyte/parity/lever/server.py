"""Lever API v1 (https://hire.lever.co/developer/documentation): OAuth 2
(`POST /oauth/token` with `grant_type=refresh_token`, answering
`access_token`, `token_type`, `expires_in`, `refresh_token`, `scope`), then
Bearer tokens. Lists answer `{"data": [...], "hasNext": bool, "next":
token}`; the token goes back as `offset`, `limit` is 1 to 100, and `next` is
absent on the last page. `GET /v1/opportunities` filters on
`updated_at_start`/`updated_at_end` (epoch ms, inclusive);
`GET /v1/opportunities/:id/applications` lists one opportunity's
applications.

`--anchor EPOCH` (seconds) places the data: 180 opportunities updated over
the 74 days before it. Phase 2 (`at=EPOCH`) updates four and adds two at
`at`. One opportunity has 120 applications (three pages)."""
import base64
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import apiserver  # noqa: E402

CLIENT_ID, CLIENT_SECRET, REFRESH = "lever-client", "lever-secret", "lever-refresh-1"
ACCESS = "lever-access-abc"
DAY = 86400000
ANCHOR = int(apiserver.option("--anchor", "1767225600")) * 1000
N = 180


def opportunity(i, updated):
    oid = "%08x-22d3-4b9f-9c2a-%012x" % (0x250d8f03 + i, i)
    return {
        "id": oid,
        "name": "Candidate %d" % i,
        "headline": ["Acme, Inc.", "Globex", None][i % 3],
        "contact": "%08x-0000-4000-8000-%012x" % (i, i),
        "emails": ["candidate%d@example.com" % i],
        "phones": [{"type": "mobile", "value": "(123) 456-%04d" % i}] if i % 2 else [],
        "confidentiality": "non-confidential",
        "location": "Oakland",
        "links": ["indeed.com/r/Candidate-%d" % i],
        "createdAt": updated - 10 * DAY,
        "updatedAt": updated,
        "lastInteractionAt": updated - DAY,
        "lastAdvancedAt": updated - 2 * DAY,
        "snoozedUntil": None,
        "archived": {"archivedAt": updated, "reason": "63dd55b2-a99f-4e7b-985f-22c7bf80ab42"} if i % 10 == 0 else None,
        "stage": "00922a60-7c15-422b-b086-f62000824fd7",
        "stageChanges": [{"toStageId": "lead-new", "toStageIndex": 0, "updatedAt": updated - 10 * DAY, "userId": "df0f4f92"}],
        "owner": "df0f4f92-1b4b-4a7c-9c1b-5c0a4a3e0c01",
        "tags": ["Infrastructure Engineer"] if i % 4 == 0 else [],
        "sources": ["linkedin"],
        "origin": ["sourced", "applied", "referred"][i % 3],
        "sourcedBy": "df0f4f92-1b4b-4a7c-9c1b-5c0a4a3e0c01",
        "applications": ["app-%d-%d" % (i, k) for k in range(napps(i))],
        "resume": None,
        "followers": ["df0f4f92-1b4b-4a7c-9c1b-5c0a4a3e0c01"],
        "urls": {"list": "https://hire.lever.co/candidates", "show": "https://hire.lever.co/candidates/" + oid},
        "dataProtection": None,
        "isAnonymized": False,
    }


def napps(i):
    return 120 if i == 7 else i % 3


def application(i, k, oid, created):
    return {
        "id": "app-%d-%d" % (i, k),
        "candidateId": "%08x-0000-4000-8000-%012x" % (i, i),
        "opportunityId": oid,
        "posting": "posting-%d" % (k % 5),
        "postingHiringManager": "df0f4f92-1b4b-4a7c-9c1b-5c0a4a3e0c01",
        "postingOwner": "df0f4f92-1b4b-4a7c-9c1b-5c0a4a3e0c01",
        "name": None,
        "company": None,
        "phone": None,
        "email": None,
        "links": [],
        "comments": None,
        "user": "df0f4f92-1b4b-4a7c-9c1b-5c0a4a3e0c01",
        "customQuestions": [],
        "createdAt": created + k * 60000,
        "type": "posting",
        "archived": None,
        "requisitionForHire": None,
    }


def dataset():
    span = 74 * DAY
    rows = [opportunity(i, ANCHOR - span + i * (span - DAY) // N) for i in range(N)]
    if apiserver.phase() == 2:
        at = apiserver.phase_at() * 1000
        for i in (3, 50, 100, 170):
            rows[i] = opportunity(i, at)
        rows += [opportunity(i, at) for i in (N, N + 1)]
    rows.sort(key=lambda r: (r["updatedAt"], r["id"]))
    return rows


def listing(req, rows):
    limit = min(int(req.arg("limit", "100")), 100)
    start = int(base64.urlsafe_b64decode(req.arg("offset")).decode()) if req.arg("offset") else 0
    body = {"data": rows[start:start + limit], "hasNext": start + limit < len(rows)}
    if body["hasNext"]:
        body["next"] = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
    return 200, body, {}


def authorized(req):
    return req.headers.get("Authorization") == "Bearer " + ACCESS


def opportunities(req):
    if not authorized(req):
        return 401, {"code": "UnauthorizedError", "message": "Invalid token"}, {}
    lo = int(req.arg("updated_at_start", "0"))
    hi = int(req.arg("updated_at_end", str(2 ** 62)))
    return listing(req, [r for r in dataset() if lo <= r["updatedAt"] <= hi])


def applications(req):
    if not authorized(req):
        return 401, {"code": "UnauthorizedError", "message": "Invalid token"}, {}
    parts = req.path.split("/")  # ['', 'v1', 'opportunities', ID, 'applications']
    if len(parts) != 5 or parts[2] != "opportunities" or parts[4] != "applications":
        return 404, {"code": "ResourceNotFound", "message": "not found"}, {}
    for r in dataset():
        if r["id"] == parts[3]:
            i = int(r["name"].split()[-1])
            return listing(req, [application(i, k, r["id"], r["createdAt"]) for k in range(napps(i))])
    return 404, {"code": "ResourceNotFound", "message": "opportunity not found"}, {}


def token(req):
    ctype = req.headers.get("Content-Type", "")
    if "json" in ctype:
        import json
        form = json.loads(req.body or b"{}")
    else:
        form = req.form()
    b = req.basic()
    if b:
        form.setdefault("client_id", b[0])
        form.setdefault("client_secret", b[1])
    if (form.get("grant_type"), form.get("client_id"), form.get("client_secret"), form.get("refresh_token")) \
            != ("refresh_token", CLIENT_ID, CLIENT_SECRET, REFRESH):
        return 403, {"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}, {}
    return 200, {"access_token": ACCESS, "token_type": "Bearer", "expires_in": 3600,
                 "refresh_token": REFRESH, "scope": "opportunities:read:admin offline_access"}, {}


if __name__ == "__main__":
    apiserver.serve({("POST", "/oauth/token"): token,
                     ("GET", "/v1/opportunities"): opportunities,
                     None: applications})

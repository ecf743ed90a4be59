"""Harvest API v2, `GET /v2/clients`
(https://help.getharvest.com/api-v2/clients-api/clients/clients/ and
/api-v2/introduction/overview/pagination/): a Bearer token and the
`Harvest-Account-Id` header; `updated_since` keeps the clients updated at or
after it; clients come most recently created first; the body has `page`,
`total_pages`, `total_entries`, `next_page`, `previous_page` and `links`
whose `next` is the full URL of the next page (cursor style: `cursor=…`,
`per_page`, `ref=next_cursor`, the request's filters kept), null on the last
page. Phase 2 updates five clients and adds three."""
import base64
import json
import math
import os
import sys
from urllib.parse import urlencode

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import apiserver  # noqa: E402

TOKEN, ACCOUNT = "harvest-pat", "1234567"


def client(i, updated):
    return {
        "id": 5735770 + i,
        "name": "Client %d" % i,
        "is_active": i % 9 != 0,
        "address": "%d Main St\nSan Francisco, CA" % (100 + i) if i % 4 else None,
        "statement_key": "%032x" % (i * 104729),
        "created_at": "2024-01-%02dT%02d:%02d:00Z" % (1 + i // 24 % 28, i % 24, i % 60),
        "updated_at": updated,
        "currency": ["USD", "EUR", "GBP"][i % 3],
    }


def dataset():
    rows = [client(i, "2024-03-%02dT%02d:%02d:%02dZ" % (1 + i % 28, i % 24, i % 60, i % 17))
            for i in range(1, 131)]
    if apiserver.phase() == 2:
        for i in range(1, 6):
            rows[i - 1]["updated_at"] = "2024-05-01T12:%02d:00Z" % i
            rows[i - 1]["name"] += " (renamed)"
        rows += [client(i, "2024-05-02T08:%02d:00Z" % (i - 130)) for i in range(131, 134)]
    rows.sort(key=lambda r: r["created_at"], reverse=True)
    return rows


def clients(req):
    if req.headers.get("Authorization") != "Bearer " + TOKEN:
        return 401, {"error": "invalid_token", "error_description": "The access token provided is expired, revoked, malformed or invalid for other reasons."}, {}
    if req.headers.get("Harvest-Account-Id") != ACCOUNT:
        return 403, {"error": "forbidden"}, {}
    per_page = int(req.arg("per_page", "2000"))
    since = req.arg("updated_since")
    rows = [r for r in dataset() if since is None or r["updated_at"] >= since]
    start = 0
    if req.arg("cursor"):
        start = json.loads(base64.urlsafe_b64decode(req.arg("cursor")))["after"]
    chunk = rows[start:start + per_page]
    pages = max(1, math.ceil(len(rows) / per_page))
    page = start // per_page + 1
    keep = {k: v[0] for k, v in req.query.items() if k not in ("cursor", "page", "ref", "per_page")}

    def link(**q):
        return "%s/v2/clients?%s" % (req.origin, urlencode({**q, "per_page": per_page, **keep}))

    nxt = None
    if start + per_page < len(rows):
        token = base64.urlsafe_b64encode(json.dumps({"after": start + per_page}).encode()).decode()
        nxt = link(cursor=token, ref="next_cursor")
    first_or_last = page == 1 or page == pages
    body = {
        "clients": chunk,
        "per_page": per_page,
        "total_pages": pages,
        "total_entries": len(rows),
        "next_page": (page + 1 if nxt else None) if first_or_last else None,
        "previous_page": (page - 1 if page > 1 else None) if first_or_last else None,
        "page": page if first_or_last else None,
        "links": {
            "first": link(page=1, ref="first"),
            "next": nxt,
            "previous": link(page=page - 1, ref="previous") if page > 1 else None,
            "last": link(page=pages, ref="last"),
        },
    }
    return 200, body, {}


if __name__ == "__main__":
    apiserver.serve({("GET", "/v2/clients"): clients})

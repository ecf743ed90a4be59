"""Gong API v2, `GET /v2/users` (https://help.gong.io/apidocs/users, and the
pagination answer on visioneers.gong.io): Basic auth with the access key and
its secret; 100 users a page; `records` holds totalRecords, currentPageSize,
currentPageNumber and, while more pages follow, a `cursor` to send back as
`?cursor=`; the last page has no cursor. Phase 2 has 20 more users."""
import base64
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import apiserver  # noqa: E402

ACCESS_KEY, SECRET = "gong-key", "gong-secret"
PAGE = 100


def user(i):
    return {
        "id": str(234599484848423 + i),
        "emailAddress": "user%d@example.com" % i,
        "created": "2023-%02d-%02dT10:%02d:00.000Z" % (1 + i % 12, 1 + i % 28, i % 60),
        "active": i % 7 != 0,
        "emailAliases": ["alias%d@example.com" % i] if i % 5 == 0 else [],
        "trustedEmailAddress": "user%d@example.com" % i,
        "firstName": "First%d" % i,
        "lastName": "Last%d" % i,
        "title": ["AE", "SDR", "CSM", "Manager"][i % 4],
        "phoneNumber": "+1 555 01%02d" % (i % 100),
        "extension": None,
        "personalMeetingUrls": ["https://zoom.us/j/%d" % (1000 + i)],
        "settings": {
            "webConferencesRecorded": True,
            "preventWebConferenceRecording": False,
            "telephonyCallsImported": i % 2 == 0,
            "emailsImported": True,
            "preventEmailImport": False,
            "nonRecordedMeetingsImported": False,
            "gongConnectEnabled": True,
        },
        "managerId": str(234599484848423 + i // 10) if i >= 10 else None,
        "meetingConsentPageUrl": "https://join.gong.io/acme/user%d" % i,
        "spokenLanguages": [{"language": "en-US", "primary": True}],
    }


def users(req):
    if req.basic() != (ACCESS_KEY, SECRET):
        return 401, {"requestId": "x", "errors": ["Unauthorized"]}, {}
    everyone = [user(i) for i in range(1, 251 + (20 if apiserver.phase() == 2 else 0))]
    start = 0
    if req.arg("cursor"):
        start = json.loads(base64.urlsafe_b64decode(req.arg("cursor")))["offset"]
    chunk = everyone[start:start + PAGE]
    records = {
        "totalRecords": len(everyone),
        "currentPageSize": len(chunk),
        "currentPageNumber": start // PAGE,
    }
    if start + PAGE < len(everyone):
        records["cursor"] = base64.urlsafe_b64encode(
            json.dumps({"offset": start + PAGE}).encode()).decode()
    return 200, {"requestId": "req%d" % start, "records": records, "users": chunk}, {}


if __name__ == "__main__":
    apiserver.serve({("GET", "/v2/users"): users})

"""Posts exactly N events to POST /v1/traces (batches of 1000, one keep-alive connection).

usage: python3 fill.py URL TOKEN N
Timestamps spread over the last 50 minutes; latencies, tokens, models and services vary.
"""
import http.client
import json
import sys
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

url, token, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
u = urllib.parse.urlparse(url)
conn = http.client.HTTPConnection(u.hostname, u.port)
models = ["gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama-3"]
services = ["chat", "search", "summarize"]
now = datetime.now(timezone.utc)
stamps = [(now - timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ") for s in range(3000)]
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
start = time.time()
for base in range(0, total, 1000):
    events = [
        {
            "trace_id": f"fill-{n}",
            "timestamp": stamps[n % 3000],
            "service": services[n % 3],
            "model": models[n % 4],
            "latency_ms": (n * 37) % 2000 + 0.5,
            "prompt_tokens": n % 500,
            "completion_tokens": n % 300,
            "cost_usd": (n % 9) / 1000,
            "status": "error" if n % 20 == 0 else "ok",
        }
        for n in range(base, min(base + 1000, total))
    ]
    conn.request("POST", u.path or "/v1/traces", json.dumps({"events": events}), headers)
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        sys.exit(f"fill: HTTP {resp.status}: {body[:200]!r}")
print(f"fill: {total} events in {time.time() - start:.1f}s", file=sys.stderr)

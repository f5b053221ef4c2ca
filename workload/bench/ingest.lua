-- wrk script: POST /v1/traces batches of unique events.
-- Arguments (after `--`): BATCH TIMESTAMP TOKEN RUN_ID
local batch, ts, token, run = 100, "2026-01-01T00:00:00Z", "", "r"
local counter = 0
local models = { "gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama-3" }
local services = { "chat", "search", "summarize" }

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

function init(args)
  batch = tonumber(args[1]) or batch
  ts = args[2] or ts
  token = args[3] or token
  run = args[4] or run
  thread_id = thread_id or 0
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
  local parts = {}
  for i = 1, batch do
    counter = counter + 1
    local n = counter
    parts[i] = string.format(
      '{"trace_id":"%s-%d-%d","timestamp":"%s","service":"%s","model":"%s","latency_ms":%d.5,"prompt_tokens":%d,"completion_tokens":%d,"cost_usd":0.00%d,"status":"%s"}',
      run, thread_id, n, ts, services[n % 3 + 1], models[n % 4 + 1], (n * 37) % 2000, n % 500, n % 300, n % 9,
      (n % 20 == 0) and "error" or "ok")
  end
  return wrk.format("POST", "/v1/traces", nil, '{"events":[' .. table.concat(parts, ",") .. ']}')
end

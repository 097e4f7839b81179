-- wrk script: POSTs presigned CMQ form bodies (one per line of $BODIES), each thread its own
-- share, counts replies whose CMQ code is not 0, and the requests it wrote (SENT: replies
-- counted plus those still in flight when the run ended, which the server may still answer).
local threads = {}
local nthreads = 0

function setup(thread)
  thread:set("id", nthreads)
  nthreads = nthreads + 1
  thread:set("nthreads_hint", 0)
  table.insert(threads, thread)
end

function init(args)
  local file = os.getenv("BODIES")
  local total_threads = tonumber(os.getenv("WRK_THREADS") or "1")
  bodies = {}
  local i = 0
  for line in io.lines(file) do
    if i % total_threads == id then
      bodies[#bodies + 1] = line
    end
    i = i + 1
  end
  next_body = 1
  cmq_errors = 0
  exhausted = 0
  headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
end

function request()
  local body = bodies[next_body]
  if body == nil then
    exhausted = exhausted + 1
    body = bodies[1]
  end
  next_body = next_body + 1
  return wrk.format("POST", nil, headers, body)
end

function response(status, hdrs, body)
  if status ~= 200 or string.find(body, '"code":0,', 1, true) == nil then
    cmq_errors = cmq_errors + 1
  end
end

function done(summary, latency, requests)
  local errs, ex, sent = 0, 0, 0
  for _, t in ipairs(threads) do
    errs = errs + t:get("cmq_errors")
    ex = ex + t:get("exhausted")
    sent = sent + t:get("next_body") - 1
  end
  io.write(string.format("CMQ_ERRORS %d\nEXHAUSTED %d\nSENT %d\n", errs, ex, sent))
  for _, p in ipairs({ 50, 90, 99, 99.9 }) do
    io.write(string.format("P%s_MS %.2f\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("REQUESTS %d\nDURATION_S %.2f\n", summary.requests, summary.duration / 1e6))
end

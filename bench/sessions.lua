-- wrk script for every scenario of bench/run, set up through the environment:
--   BENCH_PATH      request path (default "/")
--   BENCH_COOKIES   file of Cookie header values, one per line: requests
--                   rotate over them, so each of many sessions is hit in turn
--   BENCH_SESSIONS  use only the first N lines (1: one session for all)
--   BENCH_BODY      a JSON body: POST it as application/json
-- Every request is formatted once in init(), so wrk spends no time building
-- them under load. done() prints one machine-readable line for bench/run.

local path = os.getenv("BENCH_PATH") or "/"
local cookies = os.getenv("BENCH_COOKIES")
local limit = tonumber(os.getenv("BENCH_SESSIONS") or "0") or 0
local body = os.getenv("BENCH_BODY")

local prepared = {}
local n = 0
local next_index = 0

function init(args)
    local method = "GET"
    local headers = {}
    if body and body ~= "" then
        method = "POST"
        headers["Content-Type"] = "application/json"
        headers["Accept"] = "application/json"
    else
        body = nil
    end
    if cookies and cookies ~= "" then
        for line in io.lines(cookies) do
            if line ~= "" then
                headers["Cookie"] = line
                n = n + 1
                prepared[n] = wrk.format(method, path, headers, body)
                if limit > 0 and n >= limit then
                    break
                end
            end
        end
        if n == 0 then
            error("no cookies in " .. cookies)
        end
    else
        n = 1
        prepared[1] = wrk.format(method, path, headers, body)
    end
end

function request()
    next_index = next_index % n + 1
    return prepared[next_index]
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d " ..
        "connect=%d read=%d write=%d status=%d timeout=%d\n",
        summary.requests, summary.duration,
        latency:percentile(50), latency:percentile(99),
        e.connect, e.read, e.write, e.status, e.timeout))
end

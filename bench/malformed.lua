-- wrk script for bench/malformed.sh (issue 14): valid purpose-checked reads mixed with
-- malformed requests. Counts answers per status and per request kind, and fails the run
-- (exit status through the summary file) when any answer is a 5xx, when a malformed
-- request is answered 2xx, or when valid reads stop being answered 200.
--
-- Environment: SUBJECT, ADMIN_TOKEN, BODY_LIMIT, RESULT (file the verdict is written to),
-- VALID_SHARE (percent of valid reads, default 50).

local subject = os.getenv("SUBJECT")
local token = os.getenv("ADMIN_TOKEN")
local body_limit = tonumber(os.getenv("BODY_LIMIT") or "16384")
local valid_share = tonumber(os.getenv("VALID_SHARE") or "50")
local result_file = os.getenv("RESULT") or "/dev/stdout"

local auth = "Bearer " .. token
local json = "application/json"
local record = "/v1/subjects/" .. subject .. "/records/administrator"
local valid_path = record .. "?purpose=account_admin"
local oversized = '{"purpose":"account_admin","service":"azure","fields":{"name":"'
  .. string.rep("x", body_limit + 1) .. '"}}'

-- Each malformed kind: method, path, headers, body. All must be answered 4xx.
local malformed = {
  { "bad_json", "PUT", record, { ["Authorization"] = auth, ["Content-Type"] = json },
    '{"purpose": "account_admin", "service": ' },
  { "json_nul", "PUT", record, { ["Authorization"] = auth, ["Content-Type"] = json },
    '{"purpose":"account_admin\\u0000","service":"azure\\u0000","fields":{"name":"a"}}' },
  { "json_surrogate", "PUT", record, { ["Authorization"] = auth, ["Content-Type"] = json },
    '{"purpose":"account_admin","service":"azure","fields":{"name":"\\ud800"}}' },
  { "deep_json", "PUT", record, { ["Authorization"] = auth, ["Content-Type"] = json },
    string.rep("[", 5000) .. string.rep("]", 5000) },
  { "wrong_type", "PUT", record, { ["Authorization"] = auth, ["Content-Type"] = json },
    '{"purpose":7,"service":["azure"],"fields":null}' },
  { "no_content_type", "PUT", record, { ["Authorization"] = auth },
    '{"purpose":"account_admin","service":"azure","fields":{}}' },
  { "oversized", "PUT", record, { ["Authorization"] = auth, ["Content-Type"] = json },
    oversized },
  { "no_token", "GET", valid_path, {}, nil },
  { "bad_token", "GET", valid_path, { ["Authorization"] = "Bearer nonsense" }, nil },
  { "unknown_token", "GET", valid_path,
    { ["Authorization"] = "Bearer tutela_" .. string.rep("0", 32) .. "_" .. string.rep("0", 64) }, nil },
  { "basic_auth", "GET", valid_path, { ["Authorization"] = "Basic dXNlcjpwdw==" }, nil },
  { "bad_subject_id", "GET", "/v1/subjects/sub_zz/records/administrator?purpose=account_admin",
    { ["Authorization"] = auth }, nil },
  { "nul_subject_id", "GET", "/v1/subjects/%00/records/administrator?purpose=account_admin",
    { ["Authorization"] = auth }, nil },
  { "other_kind_id", "GET",
    "/v1/subjects/ten_00000000000000000000000000000000/records/administrator?purpose=account_admin",
    { ["Authorization"] = auth }, nil },
  { "unknown_subject", "GET",
    "/v1/subjects/sub_00000000000000000000000000000000/records/administrator?purpose=account_admin",
    { ["Authorization"] = auth }, nil },
  { "unknown_category", "GET", "/v1/subjects/" .. subject .. "/records/health?purpose=account_admin",
    { ["Authorization"] = auth }, nil },
  { "bad_purpose", "GET", record .. "?purpose=marketting", { ["Authorization"] = auth }, nil },
  { "no_purpose", "GET", record, { ["Authorization"] = auth }, nil },
  { "prohibited_purpose", "GET", record .. "?purpose=research", { ["Authorization"] = auth }, nil },
  { "bad_query", "GET", record .. "?purpose=account_admin&purpose=%ff&x", { ["Authorization"] = auth }, nil },
  { "bad_method", "PATCH", record, { ["Authorization"] = auth }, nil },
  { "no_route", "GET", "/v1/nothing/" .. string.rep("a", 2000), { ["Authorization"] = auth }, nil },
}

local requests_by_kind = {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  sent_valid = 0
  sent_bad = 0
  ok_200 = 0
  other_2xx = 0
  c4xx = 0
  c5xx = 0
  other = 0
  status_counts = {}
  prepared = {}
  for i, m in ipairs(malformed) do
    prepared[i] = wrk.format(m[2], m[3], m[4], m[5])
  end
  valid_request = wrk.format("GET", valid_path, { ["Authorization"] = auth }, nil)
  -- Per-thread seed so threads do not send the same sequence.
  math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0) % 100000)
end

function request()
  if math.random(100) <= valid_share then
    sent_valid = sent_valid + 1
    return valid_request
  end
  sent_bad = sent_bad + 1
  return prepared[math.random(#prepared)]
end

function response(status, headers, body)
  status_counts[status] = (status_counts[status] or 0) + 1
  if status == 200 then
    ok_200 = ok_200 + 1
  elseif status >= 200 and status < 300 then
    other_2xx = other_2xx + 1
  elseif status >= 400 and status < 500 then
    c4xx = c4xx + 1
  elseif status >= 500 then
    c5xx = c5xx + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local t = { sent_valid = 0, sent_bad = 0, ok_200 = 0, other_2xx = 0, c4xx = 0, c5xx = 0, other = 0 }
  local statuses = {}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do
      t[k] = t[k] + thread:get(k)
    end
    for s, n in pairs(thread:get("status_counts")) do
      statuses[s] = (statuses[s] or 0) + n
    end
  end
  local conns = tonumber(os.getenv("CONNECTIONS") or "8")
  local e = summary.errors
  local lines = {}
  local function say(s) table.insert(lines, s) end
  say(string.format("sent: %d valid reads, %d malformed", t.sent_valid, t.sent_bad))
  local keys = {}
  for s, _ in pairs(statuses) do table.insert(keys, s) end
  table.sort(keys)
  for _, s in ipairs(keys) do say(string.format("  status %d: %d", s, statuses[s])) end
  say(string.format("answered: 200 %d, other 2xx %d, 4xx %d, 5xx %d, other %d",
    t.ok_200, t.other_2xx, t.c4xx, t.c5xx, t.other))
  say(string.format("socket errors: connect %d, read %d, write %d, timeout %d",
    e.connect, e.read, e.write, e.timeout))
  say(string.format("throughput: %.0f req/s; latency p50 %.2f ms, p99 %.2f ms, max %.2f ms",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  local failures = {}
  if t.c5xx > 0 then table.insert(failures, t.c5xx .. " answers were 5xx") end
  if t.other_2xx > 0 or t.other > 0 then table.insert(failures, "unexpected statuses") end
  -- Every valid read is answered 200 (up to the requests in flight when wrk stopped),
  -- and no malformed request is.
  if t.ok_200 < t.sent_valid - conns then
    table.insert(failures, string.format("only %d of %d valid reads were answered 200", t.ok_200, t.sent_valid))
  end
  if t.ok_200 > t.sent_valid then
    table.insert(failures, "a malformed request was answered 200")
  end
  if t.c4xx < t.sent_bad - conns then
    table.insert(failures, string.format("only %d of %d malformed requests were answered 4xx", t.c4xx, t.sent_bad))
  end
  if e.connect + e.timeout > 0 then
    table.insert(failures, "connection errors or timeouts")
  end
  if #failures == 0 then
    say("verdict: PASS")
  else
    say("verdict: FAIL: " .. table.concat(failures, "; "))
  end
  local f = io.open(result_file, "w")
  f:write(table.concat(lines, "\n") .. "\n")
  f:close()
end

-- wrk driver for bench/ca-throughput: POST each prepared body (one JSON
-- request per line of the file, made by `fedpki-load ... --dump FILE`)
-- exactly once, spread over wrk's threads, and count the answers that are
-- a certificate (201 from fedpki and step-ca, 200 from cfssl).
--   wrk -t T -c C -d S -s bench/wrk-bodies.lua https://HOST:PORT -- FILE PATH OKSTATUS T
-- Prints one JSON line: ok, errors, per_s (certificates a second), p50_ms,
-- p99_ms, first_error, exhausted (bodies ran out before the time did).

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  file, path, ok_status, nthreads = args[1], args[2], tonumber(args[3]), tonumber(args[4])
  bodies, next_body, ok, errors, first_error, exhausted = {}, 1, 0, 0, "", 0
  local n = 0
  for line in io.lines(file) do
    if n % nthreads == id then table.insert(bodies, line) end
    n = n + 1
  end
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  local body = bodies[next_body]
  if body == nil then
    exhausted = 1
    wrk.thread:stop()
    body = "{}"
  end
  next_body = next_body + 1
  return wrk.format("POST", path, headers, body)
end

function response(status, _, body)
  if status == ok_status then
    ok = ok + 1
  else
    errors = errors + 1
    if first_error == "" then
      local text = string.sub(body or "", 1, 200):gsub('[%c"\\]', " ")
      first_error = status .. " " .. text
    end
  end
end

function done(summary, latency, _)
  local total_ok, total_err, first, out_of = 0, 0, "", 0
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_err = total_err + t:get("errors")
    if first == "" then first = t:get("first_error") end
    out_of = math.max(out_of, t:get("exhausted"))
  end
  local secs = summary.duration / 1e6
  io.write(string.format(
    '{"ok":%d,"errors":%d,"per_s":%.1f,"p50_ms":%.2f,"p99_ms":%.2f,"exhausted":%s,"first_error":"%s"}\n',
    total_ok, total_err, total_ok / secs, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, out_of == 1 and "true" or "false", first))
end

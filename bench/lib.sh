# Shell helpers shared by the benchmarks (sourced): ports, clocks, a
# process's CPU and memory from /proc, and one wrk run.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ms() { python3 -c "import sys; print(f'{(float(sys.argv[2])-float(sys.argv[1]))*1000:.1f}')" "$1" "$2"; }
now() { date +%s.%N; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
peak_rss_mib() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
field() { python3 -c "import json,sys; v=json.loads(sys.argv[1])[sys.argv[2]]; print(f'{v:.1f}' if isinstance(v,float) else v)" "$1" "$2"; }

# wrk (Debian's), installed on first use.
ensure_wrk() {
  if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian)…" >&2
    if [ "$(id -u)" = 0 ]; then apt-get install -y wrk >/dev/null; else sudo apt-get install -y wrk >/dev/null; fi
  fi
}

# One wrk run with bench/wrk-bodies.lua, each prepared body sent once; its
# line printed and appended to $T/wrk-results (as JSON) for the ratios.
HZ=$(getconf CLK_TCK)
wrk_run() { # NAME PID URL PATH OK_STATUS BODIES
  local t0 out ticks
  t0=$(cpu_ticks "$2")
  out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" -s bench/wrk-bodies.lua "$3" -- "$6" "$4" "$5" 2 | tail -1)
  ticks=$(( $(cpu_ticks "$2") - t0 ))
  python3 - "$1" "$out" "$ticks" "$HZ" "$(peak_rss_mib "$2")" "$T/wrk-results" <<'PY'
import json, sys
name, o, ticks, hz, rss, sink = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
cpu = ticks / hz / max(o["ok"], 1) * 1e6
print(f"wrk {name:15s} {o['per_s']:8,.0f} certs/s  p50 {o['p50_ms']:6.2f} ms  p99 {o['p99_ms']:6.2f} ms  "
      f"errors {o['errors']}  server CPU {cpu:5.0f} us/cert  peak RSS {rss} MiB"
      + (f"  first error: {o['first_error']}" if o["errors"] else "")
      + ("  (warning: ran out of prepared requests)" if o["exhausted"] else ""))
with open(sink, "a") as f:
    f.write(json.dumps({"name": name, "per_s": o["per_s"], "cpu_us": cpu}) + "\n")
PY
}

# The real step-ca VERSION (built by scripts/setup), initialised in
# $T/step-VERSION and started on a free port: sets SPORT, SPID, SH.
start_step_ca() {
  local v=$1 sb
  sb=${XDG_CACHE_HOME:-$HOME/.cache}/fedpki-peers/step-$v/bin
  [ -x "$sb/step-ca" ] || bash scripts/setup >/dev/null
  echo "step-bench-password" > "$T/step-pw"
  SPORT=$(free_port); SH="$T/step-$v"
  STEPPATH=$SH "$sb/step" ca init --name bench --dns localhost --address "127.0.0.1:$SPORT" \
    --provisioner provisioner --password-file "$T/step-pw" >/dev/null 2>&1
  STEPPATH=$SH "$sb/step-ca" --password-file "$T/step-pw" "$SH/config/ca.json" >"$T/step-$v.log" 2>&1 &
  SPID=$!; PIDS+=("$SPID")
  for _ in $(seq 100); do curl -sk "https://localhost:$SPORT/health" 2>/dev/null | grep -q ok && break; sleep 0.1; done
}

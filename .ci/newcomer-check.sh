#!/usr/bin/env bash
# The newcomer's path (issue 5): in this clone, after `npm ci`, `npm start` must serve the sample app on the embedded
# store with no server installed; an order placed over HTTP must reach `completed`. Exits 0 on success.
set -uo pipefail
cd "$(dirname "$0")/.."

PORT="${NEWCOMER_PORT:-$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')}"
DATA="$(mktemp -d)"
LOG="$DATA/npm-start.log"
cleanup() {
  if [ -n "${APP_PID:-}" ]; then
    kill -INT -- "-$APP_PID" 2>/dev/null
    for _ in $(seq 1 20); do kill -0 -- "-$APP_PID" 2>/dev/null || break; sleep 0.25; done
    kill -9 -- "-$APP_PID" 2>/dev/null
  fi
  rm -rf "$DATA"
}
trap cleanup EXIT

PORT="$PORT" CAIRN_DATA_DIR="$DATA/cairn" CAIRN_PAYMENT_FAILURE_RATE=0 setsid npm start >"$LOG" 2>&1 &
APP_PID=$!

for _ in $(seq 1 120); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/orders" && break
  sleep 0.5
done
if ! curl -s -o /dev/null "http://127.0.0.1:$PORT/orders"; then
  echo "newcomer check: npm start did not answer on port $PORT within 60 s" >&2
  cat "$LOG" >&2
  exit 1
fi

ORDER_ID="newcomer-$$"
curl -s -X POST "http://127.0.0.1:$PORT/orders" -H 'content-type: application/json' -H "Idempotency-Key: $ORDER_ID" \
  -d '{"customerId":"newcomer","items":[{"sku":"book","qty":1}],"amount":25}' >/dev/null

for _ in $(seq 1 60); do
  STATUS="$(curl -s "http://127.0.0.1:$PORT/orders/$ORDER_ID" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).status)}catch{console.log("?")}})')"
  [ "$STATUS" = "completed" ] && { echo "newcomer check: npm start served the sample app and order $ORDER_ID completed"; exit 0; }
  sleep 0.5
done
echo "newcomer check: order $ORDER_ID did not complete (last status: $STATUS)" >&2
cat "$LOG" >&2
exit 1

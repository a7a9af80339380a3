#!/usr/bin/env bash
# Mutation testing (cosmic-ray) of the modules that guard citizens and data, each against the
# tests that cover it, so a module takes minutes, not hours. Not part of CI.
#
#   tools/mutation.sh                 # every module below
#   tools/mutation.sh storage/crypto.py channels/wechat/envelope.py
#
# Works on a copy of the checkout in a temporary directory (cosmic-ray edits files in place),
# needs PostgreSQL and Redis as the tests do, and prints per module: mutants, killed, survived,
# then each survivor's diff. Sessions are kept in tools/mutation/<module>.sqlite for cr-report.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export CI=true
export MINYI_TEST_POSTGRES_URL="${MINYI_TEST_POSTGRES_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/test}"
export MINYI_TEST_REDIS_URL="${MINYI_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"

# module | the tests that cover it (one backend where they are parametrised: a mutant that
# survives SQLite would survive the others' shared logic too)
declare -A TESTS=(
  [storage/crypto.py]="tests/test_units.py tests/test_storage.py -k 'pii or phone_hash or masking or key'"
  [channels/wechat/envelope.py]="tests/channels/test_wechat_callback.py tests/channels/test_wechat_units.py -k 'not postgres'"
  [channels/sms/http.py]="tests/channels/test_sms_signing.py tests/channels/test_sms_webhooks.py tests/channels/test_sms_send.py -k http"
  [channels/sms/twilio.py]="tests/channels/test_sms_signing.py tests/channels/test_sms_webhooks.py tests/channels/test_sms_send.py -k twilio"
  [channels/telegram/webhook.py]="tests/channels/telegram_channel/test_telegram_webhook.py -k sqlite"
  [bot/backoffice/lifecycle.py]="tests/test_lifecycle_law.py tests/test_progress_api.py -k sqlite"
  [bot/backoffice/survey_replies.py]="tests/test_surveys.py -k sqlite"
  [conversation/survey_reply.py]="tests/test_survey_reply.py"
  [storage/outbox.py]="tests/test_relay.py -k 'not postgres'"
  [storage/relay.py]="tests/test_relay.py"
)
modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=("${!TESTS[@]}")

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$ROOT" && git ls-files -co --exclude-standard -z | tar --null -T - -c) | tar -x -C "$work"
mkdir -p "$ROOT/tools/mutation"
cd "$work"
export PYTHONPATH="$work"
for module in "${modules[@]}"; do
  tests="${TESTS[$module]:?no tests listed for $module}"
  name="${module//\//_}"
  session="$ROOT/tools/mutation/${name%.py}.sqlite"
  rm -f "$session"
  # -x: the first failing test kills the mutant; one process, fixed order, no timeout of ours
  # (cosmic-ray's own timeout marks a mutant that hangs).
  cat > cosmic-ray.toml <<TOML
[cosmic-ray]
module-path = "$module"
timeout = 300.0
excluded-modules = []
test-command = "python -m pytest -x -q -n 0 -p no:randomly -p no:cacheprovider --timeout=0 $tests"

[cosmic-ray.distributor]
name = "local"

# One meaningful replacement per operator (+ to -, == to !=, < to <=, …), not all eleven.
[cosmic-ray.filters.operators-filter]
exclude-operators = [
  "core/ReplaceBinaryOperator_(?!(Add_Sub|Sub_Add|Mul_Div|Div_Mul|FloorDiv_Mul|Mod_Mul|BitOr_BitAnd|BitAnd_BitOr)\$).*",
  "core/ReplaceComparisonOperator_(?!(Eq_NotEq|NotEq_Eq|Lt_LtE|LtE_Lt|Gt_GtE|GtE_Gt|Lt_GtE|Gt_LtE|Is_IsNot|IsNot_Is|In_NotIn|NotIn_In)\$).*",
]
TOML
  cosmic-ray init cosmic-ray.toml "$session" >/dev/null
  cr-filter-operators "$session" cosmic-ray.toml
  started=$SECONDS
  cosmic-ray exec cosmic-ray.toml "$session" >/dev/null 2>&1
  echo "== $module ($((SECONDS - started)) s)"
  cr-report "$session" --show-pending | tail -n 4
  cr-report "$session" --surviving-only --show-diff || true
done

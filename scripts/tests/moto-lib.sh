# Shared by the emulator tests (sourced): a moto_server on 127.0.0.1 and Terraform with the
# real hashicorp/aws provider from the local filesystem mirror, pointed at moto, the way
# tf-validate runs it (local backend, dummy credentials, every request to moto).
#
# Needs: terraform, the provider mirror ($TF_PLUGIN_MIRROR, default /opt/tf-plugins), and a
# virtualenv with moto[server] and boto3 ($VENV, default .venv-tools, as .ci/run makes it).
# A missing prerequisite prints SKIPPED and exits 0 unless CI=true (then exit 1).
set -euo pipefail

VENV=${VENV:-.venv-tools}
MIRROR=${TF_PLUGIN_MIRROR:-/opt/tf-plugins}
KEEL=${KEEL:-target/debug/keel}

skip() {
    if [ "${CI:-}" = true ]; then echo "FAILED: $*" >&2; exit 1; fi
    echo "SKIPPED: $*"; exit 0
}
fail() { echo "FAILED: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

command -v terraform >/dev/null || skip "terraform is not installed"
[ -d "$MIRROR/registry.terraform.io/hashicorp/aws" ] || skip "no hashicorp/aws in $MIRROR"
[ -x "$VENV/bin/moto_server" ] || skip "no moto_server in $VENV (pip install \"moto[server]==5.2.5\")"
[ -x "$KEEL" ] || skip "no keel binary at $KEEL (cargo build)"
PY="$VENV/bin/python"

WORK=$(mktemp -d)
MOTO_PID=
cleanup() {
    if [ -n "$MOTO_PID" ]; then kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
# A command that fails under `set -e` shows the end of Terraform's log first.
trap 'echo "FAILED at line $LINENO; the end of the Terraform log:" >&2; tail -n 30 "$WORK/tf.log" >&2 2>/dev/null || true' ERR

# The CLI config: the real provider from the mirror, nothing from the network.
cat > "$WORK/terraformrc" <<RC
disable_checkpoint = true
provider_installation {
  filesystem_mirror {
    path    = "$MIRROR"
    include = ["registry.terraform.io/hashicorp/aws"]
  }
}
RC
export TF_CLI_CONFIG_FILE="$WORK/terraformrc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_CLI_ARGS=-no-color
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN

# start_moto ACCOUNT: a moto_server serving ACCOUNT on a free loopback port; sets
# AWS_ENDPOINT_URL for Terraform's provider, boto3 and keel.
start_moto() {
    local port
    port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    MOTO_ACCOUNT_ID=$1 MOTO_IAM_LOAD_MANAGED_POLICIES=true "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$WORK/moto.log" 2>&1 &
    MOTO_PID=$!
    export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
        if "$PY" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1] + '/moto-api/')" "$AWS_ENDPOINT_URL" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    fail "moto_server did not answer on $AWS_ENDPOINT_URL"
}

# moto_override DIR: an override in the Terraform root DIR that keeps state locally and
# sends every AWS call to moto (dummy credentials; the endpoint is AWS_ENDPOINT_URL).
moto_override() {
    cat > "$1/zz_moto_override.tf.json" <<JSON
{
  "terraform": {"backend": {"local": {"path": "$WORK/terraform.tfstate"}}},
  "provider": {"aws": {
    "access_key": "testing", "secret_key": "testing",
    "skip_credentials_validation": true, "skip_metadata_api_check": true,
    "skip_region_validation": true, "s3_use_path_style": true, "max_retries": 2
  }}
}
JSON
}

# root_copy DIR: copies a generated Terraform root into $WORK/root with moto_override;
# prints the copy's path.
root_copy() {
    local to="$WORK/root"
    rm -rf "$to"; mkdir -p "$to"
    cp "$1"/*.tf.json "$to"/
    moto_override "$to"
    echo "$to"
}

# tf DIR ARGS...: terraform -chdir=DIR ARGS, its output kept in $WORK/tf.log.
tf() {
    local dir=$1; shift
    terraform -chdir="$dir" "$@" 2>&1 | tee -a "$WORK/tf.log"
    return "${PIPESTATUS[0]}"
}

#!/usr/bin/env bash
# run-local.sh — set up and run s3grantd on a local default (the README's first command).
#
# Builds the daemon, starts a throwaway Postgres, applies the schema, seeds a
# demo integration (users, data sources, subscriptions) and runs s3grantd in
# the foreground with its logs on the terminal. When no AWS account is
# configured (no AWS_ACCESS_KEY_ID, AWS_PROFILE or ~/.aws files) it starts the
# local S3 Control fake and points the daemon at it. Ctrl-C stops everything.
#
# From another terminal, while it runs:
#   . /tmp/s3grantd-local/env
#   s3grantctl subscriptions add --user dave --data-source 1 --access read
#   s3grantctl status        # (and: s3grantctl plan, integrations list)
#   s3grantctl export run    # the access summary lands in /tmp/s3grantd-local/exports
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
state=${S3G_LOCAL_DIR:-/tmp/s3grantd-local}
build=${BUILD:-build-local}

scripts/deps.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DS3G_TESTS=OFF -DS3G_BENCH=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target s3grantd s3grantctl >/dev/null
ctl="$src/$build/ctl/s3grantctl"
daemon="$src/$build/daemon/s3grantd"

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	scripts/pg-tmp stop "$state/pg" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

mkdir -p "$state"
chmod 755 "$state"
scripts/pg-tmp stop "$state/pg" >/dev/null 2>&1 || true
scripts/pg-tmp start "$state/pg"
# shellcheck disable=SC1091
. "$state/pg/env"
export PGDATABASE=postgres
[ -f "$state/secrets.key" ] || (umask 077 && head -c 32 /dev/urandom >"$state/secrets.key")
export S3GRANT_SECRETS_KEY_FILE="$state/secrets.key"
"$ctl" db migrate

account=111122223333
region=us-east-1
aws_conf=""
if [ -z "${AWS_ACCESS_KEY_ID:-}${AWS_PROFILE:-}" ] && [ ! -e "$HOME/.aws/credentials" ] && [ ! -e "$HOME/.aws/config" ]; then
	echo "run-local: no AWS account configured: using the local S3 Control fake"
	(cd tests/fakes/s3control && [ -d node_modules/@smithy/signature-v4 ] || npm ci --no-audit --no-fund --loglevel=error)
	rm -f "$state/fake.port"
	node tests/fakes/s3control/server.js --port 0 --port-file "$state/fake.port" \
		--credential "AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" >"$state/fake.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 300); do [ -s "$state/fake.port" ] && break; sleep 0.1; done
	[ -s "$state/fake.port" ] || { cat "$state/fake.log"; exit 1; }
	fake="http://127.0.0.1:$(cat "$state/fake.port")"
	# The account's Access Grants instance (validation test 5 wants one).
	curl -s -X POST -H 'Content-Type: application/json' -d '{"instances": [{}]}' "$fake/__fake/state" >/dev/null
	aws_conf="endpoint_url_s3_control = $fake"
	auth='"authenticationType": "accessKey", "awsAccessKeyId": "AKIDEXAMPLE", "awsSecretAccessKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"'
	location_role="arn:aws:iam::$account:role/s3grantd-location"
	echo "run-local: S3 Control fake at $fake (state: curl $fake/__fake/state)"
else
	account=${S3G_ACCOUNT:?set S3G_ACCOUNT to the 12-digit account to manage}
	region=${AWS_REGION:-$region}
	auth='"authenticationType": "auto"'
	location_role=${S3G_LOCATION_ROLE:?set S3G_LOCATION_ROLE to the Access Grants location role ARN}
fi

# A demo integration: location s3:// of the account, two data sources, four users.
if ! "$ctl" integrations list --json | grep -q '"name": *"demo"'; then
	"$ctl" integrations create -f - >/dev/null <<JSON
{"type": "Native S3",
 "config": {"name": "demo", "awsAccountId": "$account", "awsRegion": "$region",
            "awsLocationRole": "$location_role", "awsLocationPath": "s3://", $auth}}
JSON
fi
integ=$("$ctl" integrations list --json | python3 -c 'import json,sys; print([i["id"] for i in json.load(sys.stdin) if i["config"]["name"]=="demo"][0])')
"$ctl" datasources add --integration "$integ" --prefix research-data/demographics --name demographics >/dev/null 2>&1 || true
"$ctl" datasources add --integration "$integ" --prefix research-data/claims --name claims >/dev/null 2>&1 || true
"$ctl" users set-principal alice >/dev/null                                            # IAM user "alice"
"$ctl" users set-principal bob "arn:aws:iam::$account:role/analyst-bob" >/dev/null
"$ctl" users set-principal carol "94482488-3041-7026-18f3-be45837cd0e4" >/dev/null     # Identity Center
"$ctl" users set-principal dave >/dev/null
ds=$("$ctl" datasources list --json | python3 -c 'import json,sys; print(" ".join(str(d["id"]) for d in json.load(sys.stdin)))')
set -- $ds
"$ctl" subscriptions add --user alice --data-source "$1" --access read >/dev/null 2>&1 || true
"$ctl" subscriptions add --user bob --data-source "$1" --access write >/dev/null 2>&1 || true
"$ctl" subscriptions add --user carol --data-source "$2" --access read >/dev/null 2>&1 || true

# The nightly access summary goes to a local directory in the demo ([export] sink_dir).
"$ctl" export-config set -f - --no-verify >/dev/null <<JSON   # no AWS to check against
{"bucket": "access-summary", "region": "$region", "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
 "secretAccessKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "path": "demo"}
JSON
mkdir -p "$state/exports"
cat >"$state/s3grantd.conf" <<CONF
[database]
conninfo = host=$PGHOST port=$PGPORT user=postgres dbname=postgres

[daemon]
log_level = info
status_interval = 10s

[aws]
region = $region
$aws_conf

[reconcile]
resync_interval = 1m
resync_jitter = 5s

[export]
sink_dir = $state/exports

[secrets]
key_file = $state/secrets.key
CONF
cat >"$state/env" <<ENV
export PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=postgres PGDATABASE=postgres
export S3GRANT_SECRETS_KEY_FILE=$state/secrets.key
export PATH=$src/$build/ctl:\$PATH
ENV
"$daemon" --check-config "$state/s3grantd.conf"
echo "run-local: entitlements:"
"$ctl" subscriptions list
echo "run-local: starting s3grantd (Ctrl-C to stop; another terminal: . $state/env; s3grantctl --help)"
echo "run-local: watch for 'integration enabled' and one 'grant created' line per subscription"
"$daemon" --config "$state/s3grantd.conf" &
pids+=($!)
# Once the demo's grants are reconciled, show what s3grantctl status says.
(for _ in $(seq 300); do
	if "$ctl" status 2>/dev/null | grep -q "enabled" &&
	   [ "$(psql -X -At -c "SELECT count(*) FROM s3grant.subscriptions WHERE status = 'pending'")" = 0 ]; then
		echo "run-local: s3grantctl status:"
		"$ctl" status
		break
	fi
	sleep 0.2
done) &
pids+=($!)
wait "${pids[-2]}"
